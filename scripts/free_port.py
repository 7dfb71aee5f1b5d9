"""A free TCP port on 127.0.0.1 for tests and benchmarks, printed (see free_port in ports.sh)."""

import os
import random
import socket
import sys
import tempfile
import time

LOW, HIGH = 20000, 32768  # below the kernel's ephemeral range


def reserve(root, port):
    """True when PORT is now ours: its reservation made (or a stale one taken over), and
    nothing bound to it."""
    mark = os.path.join(root, str(port))
    try:
        os.mkdir(mark)
    except FileExistsError:
        try:
            if time.time() - os.stat(mark).st_mtime <= 3600:
                return False
            os.utime(mark)  # a stale reservation: take it over
        except FileNotFoundError:
            return False
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(offset=0):
    """Reserves and returns a port no other test holds and nothing is bound to; with OFFSET,
    port + OFFSET too (a Redis Cluster node's bus port), both below the ephemeral range."""
    root = os.path.join(tempfile.gettempdir(), "tlsr-ports")
    os.makedirs(root, exist_ok=True)
    for _ in range(2000):
        port = random.randrange(LOW, HIGH - offset)
        if reserve(root, port) and (offset == 0 or reserve(root, port + offset)):
            return port
    raise SystemExit(f"free_port: no free port in {LOW}-{HIGH - 1 - offset}")


if __name__ == "__main__":
    print(free_port(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
