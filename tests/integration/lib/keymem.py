#!/usr/bin/env python3
"""Looks for key bytes in a live process's shared mappings (the key ring lives in one).

  keymem.py find PID HEX     one line per shared mapping that holds the bytes: the address
                             where they are (hex) and the mapping's VmFlags from smaps
  keymem.py read PID ADDR N  the N bytes at ADDR (hex), as hex
  keymem.py secret PID       one line per secret memory mapping (memfd_secret): its address,
                             size, whether /proc/PID/mem reads it ("readable" or the error),
                             and its VmFlags
"""
import re
import sys


def find(pid, needle):
    mem = open("/proc/%s/mem" % pid, "rb")
    start = end = None
    for line in open("/proc/%s/smaps" % pid):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            start, end = int(m.group(1), 16), int(m.group(2), 16)
        elif line.startswith("VmFlags:") and " sh " in line + " " and end - start < 1 << 30:
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            at = data.find(needle)
            if at >= 0:
                print("%x %s" % (start + at, line.split(":", 1)[1].strip()))


def secret(pid):
    mem = open("/proc/%s/mem" % pid, "rb")
    start = end = None
    is_secret = False
    for line in open("/proc/%s/smaps" % pid):
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) .*?(\S*)$", line.rstrip())
        if m and re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            is_secret = "/secretmem" in line
        elif line.startswith("VmFlags:") and is_secret:
            try:
                mem.seek(start)
                mem.read(end - start)
                how = "readable"
            except OSError as e:
                how = "unreadable:" + (e.strerror or str(e)).replace(" ", "_")
            print("%x %d %s %s" % (start, end - start, how, line.split(":", 1)[1].strip()))


def main():
    if sys.argv[1] == "find":
        find(sys.argv[2], bytes.fromhex(sys.argv[3]))
    elif sys.argv[1] == "secret":
        secret(sys.argv[2])
    else:
        mem = open("/proc/%s/mem" % sys.argv[2], "rb")
        mem.seek(int(sys.argv[3], 16))
        print(mem.read(int(sys.argv[4])).hex())


if __name__ == "__main__":
    main()
