#!/usr/bin/env python3
"""Secrets a TLS client saw, and a search for them in dumps of Redis.

    secrets_scan.py needles SESS_TEXT KEYLOG   print "label hex" lines: the session ID, master
                                               secret, TLS 1.3 resumption PSK and ticket key
                                               name of `openssl sess_id -text`, and every
                                               secret of an SSLKEYLOGFILE
    secrets_scan.py scan NEEDLES FILE...       exit 1 when a needle is in a file, raw or as hex
                                               (either case), naming each one found
"""
import re
import sys


def needles(sess_text, keylog):
    t = open(sess_text).read()
    for label in ("Session-ID", "Master-Key", "Resumption PSK"):
        m = re.search(label + r": ([0-9A-F]+)", t)
        if m and len(m.group(1)) >= 32:
            print(label.replace(" ", "-"), m.group(1).lower())
    m = re.search(r"TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)+)", t)
    if m:
        hexs = "".join(re.findall(r" - ((?:[0-9a-f]{2}[ -]){1,16})", m.group(1)))
        print("ticket-key-name", re.sub(r"[ -]", "", hexs)[:32])
    for line in open(keylog):
        f = line.split()
        if len(f) == 3 and len(f[2]) >= 32:
            print("keylog-" + f[0], f[2].lower())


def scan(needle_file, files):
    found = [l.split() for l in open(needle_file) if l.strip()]
    blobs = [open(p, "rb").read() for p in files]
    hits = 0
    for label, h in found:
        for probe in (bytes.fromhex(h), h.encode(), h.upper().encode()):
            if any(probe in b for b in blobs):
                print(f"found {label} {h[:16]}... in Redis", file=sys.stderr)
                hits += 1
    return 1 if hits else 0


if __name__ == "__main__":
    if sys.argv[1] == "needles":
        needles(sys.argv[2], sys.argv[3])
    else:
        sys.exit(scan(sys.argv[2], sys.argv[3:]))
