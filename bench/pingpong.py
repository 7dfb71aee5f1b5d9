#!/usr/bin/env python3
"""Small request and answer round trips over one TLS connection through a proxy to the echo
backend: what an interactive client costs a proxy per message, not per handshake.

  pingpong.py HOST:PORT --count N [--size BYTES]

Sends SIZE bytes, reads them back, N times (bounded: at most 100000, 5 s per read)."""
import argparse
import socket
import ssl


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--size", type=int, default=512)
    a = ap.parse_args()
    if not 1 <= a.count <= 100000 or not 1 <= a.size <= 16384:
        ap.error("--count 1..100000, --size 1..16384")
    host, _, port = a.target.rpartition(":")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    msg = b"x" * a.size
    with socket.create_connection((host, int(port)), timeout=5) as raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            for _ in range(a.count):
                s.sendall(msg)
                got = 0
                while got < len(msg):
                    b = s.recv(65536)
                    if not b:
                        raise SystemExit("error pingpong: the proxy closed the connection")
                    got += len(b)
    print("round_trips %d" % a.count)


if __name__ == "__main__":
    main()
