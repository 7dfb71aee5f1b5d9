"""A stand-in for the part of systemd that `serve` talks to when it runs as a service (systemd
itself cannot run inside these tests): the notify socket (sd_notify(3): READY=1, MAINPID=,
FDSTORE=1 with FDNAME=, FDSTOREREMOVE=1) and the restart that hands the stored descriptors
back (sd_listen_fds_with_names(3): fds from 3 on, LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID).

usage: fdstore.py --socket PATH --log FILE --restarts N -- COMMAND ARGS...
Starts COMMAND with NOTIFY_SOCKET=PATH; each time it exits, while restarts are left, starts it
again with every stored descriptor, as Restart= does. Logs one line per event to FILE:
"started pid=P fds=N names=A:B", "ready pid=P", "stored NAME", "removed NAME",
"exited pid=P status=S".
"""

import argparse
import array
import os
import select
import socket
import subprocess
import sys


def log(path, text):
    with open(path, "a") as f:
        f.write(text + "\n")


def start(cmd, sock_path, store, logf):
    names = [n for n, _ in store]
    fds = [fd for _, fd in store]
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    keep = tuple(range(3, 3 + len(fds)))
    if fds:
        env["LISTEN_FDS"] = str(len(fds))
        env["LISTEN_FDNAMES"] = ":".join(names)
    # Above every descriptor the child will be given, so the moves below cannot clobber one.
    high = [os.dup2(fd, 200 + i, inheritable=True) for i, fd in enumerate(fds)]

    def arrange():
        for i, h in enumerate(high):
            os.dup2(h, 3 + i, inheritable=True)
        for h in high:
            os.close(h)

    # LISTEN_PID must be the pid of the process that reads it: the shell's, which execs.
    argv = ["/bin/sh", "-c", 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"'] + cmd
    if not fds:
        argv = cmd
    p = subprocess.Popen(argv, env=env, pass_fds=keep + tuple(high), preexec_fn=arrange)
    for h in high:
        os.close(h)
    log(logf, "started pid=%d fds=%d names=%s" % (p.pid, len(fds), ":".join(names)))
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--restarts", type=int, default=1)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if os.path.exists(a.socket):
        os.unlink(a.socket)
    sock.bind(a.socket)
    store = []  # (name, fd), in the order stored
    restarts = a.restarts
    child = start(cmd, a.socket, store, a.log)
    while True:
        r, _, _ = select.select([sock], [], [], 0.1)
        if r:
            fds = array.array("i")
            msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(64 * fds.itemsize))
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
            fields = dict(line.split("=", 1) for line in msg.decode().split("\n") if "=" in line)
            name = fields.get("FDNAME", "stored")
            if fields.get("FDSTOREREMOVE") == "1":
                for n, fd in [x for x in store if x[0] == name]:
                    os.close(fd)
                store[:] = [x for x in store if x[0] != name]
                log(a.log, "removed " + name)
            if fields.get("FDSTORE") == "1":
                for fd in fds:
                    store.append((name, fd))
                    log(a.log, "stored " + name)
            elif fds:
                for fd in fds:
                    os.close(fd)
            if fields.get("READY") == "1":
                log(a.log, "ready pid=%s" % fields.get("MAINPID", "?"))
        status = child.poll()
        if status is not None:
            log(a.log, "exited pid=%d status=%d" % (child.pid, status))
            if restarts <= 0:
                return 0
            restarts -= 1
            child = start(cmd, a.socket, store, a.log)


if __name__ == "__main__":
    sys.exit(main())
