#!/usr/bin/env python3
"""One TLS stream of MIB MiB through a proxy to an echo backend, sent and read back at once
(no half-close, which some proxies do not pass on). Prints "MiB/s X" or "failed REASON".
Bounded: 120 s. usage: bulk.py PORT MIB"""
import os
import selectors
import socket
import ssl
import sys
import time


def main():
    port, mib = int(sys.argv[1]), int(sys.argv[2])
    payload = os.urandom(1024 * 1024) * mib
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                          server_hostname="localhost")
    tls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(tls, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, got = 0, 0
    start = time.monotonic()
    deadline = start + 120
    while got < len(payload):
        if time.monotonic() > deadline:
            print("failed timeout")
            return 1
        sel.select(timeout=1)
        while sent < len(payload):
            try:
                sent += tls.send(payload[sent:sent + 65536])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                break
        if sent == len(payload):
            sel.modify(tls, selectors.EVENT_READ)
        while True:
            try:
                data = tls.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            if not data:
                print("failed early end after %d bytes" % got)
                return 1
            got += len(data)
    print("MiB/s %.0f" % (mib / (time.monotonic() - start)))
    tls.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
