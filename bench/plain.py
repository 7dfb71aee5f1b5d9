#!/usr/bin/env python3
"""The no-TLS floor's client: what `openssl s_time -www /` does per connection, without TLS.

  plain.py HOST:PORT --time S [--procs N] [--max N]

Each of N processes connects, sends "GET / HTTP/1.0", reads the answer until the server
closes, closes, and starts again, for S seconds (at most --max connections per process).
Prints "connections C seconds T failed F" for all processes together."""
import argparse
import multiprocessing
import socket
import time

REQUEST = b"GET / HTTP/1.0\r\n\r\n"


def worker(host, port, seconds, cap, out):
    done = failed = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and done + failed < cap:
        try:
            with socket.create_connection((host, port), timeout=5) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(REQUEST)
                got = 0
                while True:
                    b = s.recv(16384)
                    if not b:
                        break
                    got += len(b)
            if got > 0:
                done += 1
            else:
                failed += 1
        except OSError:
            failed += 1
    out.put((done, failed))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("target")
    ap.add_argument("--time", type=float, required=True)
    ap.add_argument("--procs", type=int, default=2)
    ap.add_argument("--max", type=int, default=1000000)
    a = ap.parse_args()
    if not 0 < a.time <= 60 or not 1 <= a.procs <= 16:
        ap.error("--time 0..60, --procs 1..16")
    host, _, port = a.target.rpartition(":")
    q = multiprocessing.Queue()
    start = time.monotonic()
    ps = [multiprocessing.Process(target=worker, args=(host, int(port), a.time, a.max, q))
          for _ in range(a.procs)]
    for p in ps:
        p.start()
    results = [q.get() for _ in ps]
    for p in ps:
        p.join()
    print("connections %d seconds %.3f failed %d" % (sum(r[0] for r in results),
                                                     time.monotonic() - start,
                                                     sum(r[1] for r in results)))


if __name__ == "__main__":
    main()
