"""A bounded client loop for tests: TLS connections one after another (Python's ssl, not ours),
each sending a line through an echo backend and reading it back, until a stop file appears, a
count or a time runs out. Alternates full handshakes and resumptions, TLS 1.2 and 1.3, and
counts every connection that fails at any step.

usage: conn_loop.py --port P [--stop FILE] [--max N] [--seconds S] [--out FILE]
Prints (and writes to --out) JSON: connections, failures, resumed, first errors.
"""

import argparse
import json
import os
import socket
import ssl
import sys
import time

from pyclient import context


def one(port, ctx, session, n):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            line = f"ping {n}\n".encode()
            s.sendall(line)
            got = b""
            while not got.endswith(b"\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                got += chunk
            if got != line:
                raise RuntimeError(f"echo {got!r}")
            return s.session, s.session_reused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--stop")
    ap.add_argument("--max", type=int, default=5000)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--out")
    a = ap.parse_args()
    ctxs = [context(ssl.TLSVersion.TLSv1_3), context(ssl.TLSVersion.TLSv1_2)]
    sessions = [None, None]
    stats = {"connections": 0, "failures": 0, "resumed": 0, "errors": []}
    end = time.monotonic() + a.seconds
    n = 0
    while n < a.max and time.monotonic() < end:
        if a.stop and os.path.exists(a.stop):
            break
        k = n % 2
        # Every fourth connection of each version starts over with a full handshake.
        session = sessions[k] if (n // 2) % 4 != 0 else None
        n += 1
        stats["connections"] += 1
        try:
            sess, reused = one(a.port, ctxs[k], session, n)
            sessions[k] = sess
            stats["resumed"] += bool(reused)
        except (OSError, ssl.SSLError, RuntimeError) as e:
            stats["failures"] += 1
            if len(stats["errors"]) < 5:
                stats["errors"].append(f"connection {n}: {e!r}")
    text = json.dumps(stats)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
