#!/usr/bin/env python3
"""Python ssl client for the serve integration tests. Every mode is bounded in time and count.

  tlsclient.py bulk PORT MIB          send MIB MiB of random bytes through an echo backend while
                                      reading the echo; half-close (TCP FIN, no close_notify);
                                      check the SHA-256 of what came back and the clean end
  tlsclient.py many PORT N            N concurrent connections, each echoing one line
  tlsclient.py resume PORT 1.2|1.3    full handshake, then a resumption with session=
  tlsclient.py silent PORT            connect, say nothing, report when the server closes
  tlsclient.py pause PORT             bulk of 1 MiB, print "midway", wait for a line on stdin,
                                      then 1 MiB more and finish as bulk
  tlsclient.py burst PORT             handshake, print "ready", wait for a line on stdin, then
                                      send 1,050,000 bytes as 10,000-byte TLS records to a
                                      counting backend and wait for its "got 1050000"
  tlsclient.py upload PORT MIB        upload MIB MiB to a backend that answers early and closes;
                                      print the answer it got
"""
import asyncio
import hashlib
import os
import selectors
import socket
import ssl
import sys
import time

DEADLINE_S = 60


def context(version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if version is not None:
        ctx.minimum_version = version
        ctx.maximum_version = version
    return ctx


def connect(port, ctx, session=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost", session=session)


def pump(tls, payload, on_half=None, chunk=65536):
    """Writes payload and reads the echo on one non-blocking SSL socket, then half-closes the
    TCP connection and reads to the end. Returns the bytes received."""
    tls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(tls, selectors.EVENT_READ | selectors.EVENT_WRITE)
    sent, received, eof, half_closed = 0, bytearray(), False, False
    end = time.monotonic() + DEADLINE_S
    while not eof:
        if time.monotonic() > end:
            raise RuntimeError("timed out: sent %d received %d" % (sent, len(received)))
        if on_half is not None and sent >= len(payload) // 2:
            on_half()
            on_half = None
        sel.select(timeout=1)
        # With a pause pending, stop at half way: the connection is then really mid-transfer.
        limit = len(payload) // 2 if on_half is not None else len(payload)
        while sent < limit:
            try:
                sent += tls.send(payload[sent:min(sent + chunk, limit)])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                break
        if sent == len(payload) and not half_closed:
            # A TCP half-close under the TLS layer: the server must pass it on to the backend.
            socket.socket(fileno=os.dup(tls.fileno())).shutdown(socket.SHUT_WR)
            half_closed = True
            sel.modify(tls, selectors.EVENT_READ)
        while True:
            try:
                data = tls.recv(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break
            except ssl.SSLZeroReturnError:
                eof = True
                break
            if not data:
                eof = True
                break
            received += data
    return bytes(received)


def bulk(port, mib, pause=False):
    payload = os.urandom(mib * 1024 * 1024)
    with connect(port, context()) as tls:
        def wait():
            print("midway", flush=True)
            sys.stdin.readline()
        got = pump(tls, payload, wait if pause else None)
    want = hashlib.sha256(payload).hexdigest()
    have = hashlib.sha256(got).hexdigest()
    print("sent=%d received=%d sha_match=%s" % (len(payload), len(got), want == have))
    return 0 if want == have else 1


async def one(port, ctx, i):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost"), 30)
    line = b"ping %d\n" % i
    writer.write(line)
    got = await asyncio.wait_for(reader.readexactly(len(line)), 30)
    writer.close()
    return got == line


async def many(port, n):
    ctx = context()
    results = await asyncio.gather(*(one(port, ctx, i) for i in range(n)), return_exceptions=True)
    ok = sum(1 for r in results if r is True)
    errors = [repr(r) for r in results if r is not True][:3]
    print("ok=%d of %d errors=%s" % (ok, n, errors))
    return 0 if ok == n else 1


def resume(port, version):
    ctx = context({"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[version])
    with connect(port, ctx) as tls:
        tls.sendall(b"x\n")
        tls.recv(10)
        session = tls.session
    with connect(port, ctx, session) as tls:
        reused = tls.session_reused
        tls.sendall(b"y\n")
        tls.recv(10)
    print("session_reused=%s" % reused)
    return 0 if reused else 1


def silent(port):
    start = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            data = s.recv(1)
        except ConnectionResetError:
            data = b""
    print("closed_by_server=%s after_s=%.1f" % (data == b"", time.monotonic() - start))
    return 0 if data == b"" else 1


def burst(port):
    """Sends 1,050,000 bytes in 10,000-byte records while the worker is stopped, to a backend
    that stays silent until it has them all: bytes left decrypted inside OpenSSL when the
    proxy's buffer was full must still be delivered, with no further event to wake it."""
    with connect(port, context()) as tls:
        print("ready", flush=True)
        sys.stdin.readline()
        for _ in range(105):
            tls.sendall(b"x" * 10000)
        tls.settimeout(5)
        try:
            answer = tls.recv(100)
        except (socket.timeout, ssl.SSLError) as e:
            answer = repr(e).encode()
    print("answer=%r" % answer)
    return 0 if answer.startswith(b"got 1050000") else 1


def upload(port, mib):
    payload = os.urandom(mib * 1024 * 1024)
    got = b""
    with connect(port, context()) as tls:
        try:
            got = pump(tls, payload)
        except (ConnectionError, ssl.SSLError) as e:
            print("error %r" % e)
    print("answer=%r" % got[:40])
    return 0 if got.startswith(b"HTTP/1.1 413") else 1


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "bulk":
        return bulk(port, int(sys.argv[3]))
    if mode == "pause":
        return bulk(port, 2, pause=True)
    if mode == "many":
        return asyncio.run(many(port, int(sys.argv[3])))
    if mode == "resume":
        return resume(port, sys.argv[3])
    if mode == "silent":
        return silent(port)
    if mode == "burst":
        return burst(port)
    if mode == "upload":
        return upload(port, int(sys.argv[3]))
    print("unknown mode", mode)
    return 2


if __name__ == "__main__":
    sys.exit(main())
