#!/usr/bin/env python3
"""Clients that end connections the way real ones do, each offering the same session again.

  abrupt.py PORT VERSION BEHAVIOUR N [PORT2 ...]

VERSION is 1.2 or 1.3. A first connection makes a session (a full handshake that reads its
answer, so TLS 1.3 tickets arrive); then N connections offer that session, each ended by
BEHAVIOUR; then one more offers it and must resume. Connections go round the ports given
(a balancer's, or several servers'). Prints "offered=N resumed=K final=True|False".

Behaviours: close (read the answer, close without close_notify), reset (TCP reset right after
the handshake), reset_mid (reset after the first byte of the answer), unread (send the request,
close without reading: the kernel resets), quick (handshake only, then close at once).
"""
import socket
import ssl
import struct
import sys

REQUEST = b"GET /abrupt HTTP/1.0\r\nHost: localhost\r\n\r\n"


def context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    v = ssl.TLSVersion.TLSv1_2 if version == "1.2" else ssl.TLSVersion.TLSv1_3
    ctx.minimum_version = v
    ctx.maximum_version = v
    return ctx


def connect(ctx, port, session):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="localhost", session=session)


def read_some(tls, limit=None):
    got = b""
    while limit is None or len(got) < limit:
        try:
            data = tls.recv(limit - len(got) if limit else 65536)
        except (ssl.SSLError, OSError):
            break
        if not data:
            break
        got += data
    return got


def reset(tls):
    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def one(ctx, port, session, behaviour):
    """Runs one connection; returns (reused, session after it)."""
    tls = connect(ctx, port, session)
    reused = tls.session_reused
    if behaviour == "reset":
        reset(tls)
    elif behaviour == "quick":
        pass
    else:
        tls.sendall(REQUEST)
        if behaviour == "reset_mid":
            read_some(tls, 1)
            reset(tls)
        elif behaviour == "close":
            read_some(tls)
    newest = tls.session
    # No unwrap(): no close_notify, as browsers and most clients end a connection.
    tls.close()
    return reused, newest


def main():
    port_list = [int(sys.argv[1])] + [int(p) for p in sys.argv[5:]]
    version, behaviour, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    ctx = context(version)
    _, first = one(ctx, port_list[0], None, "close")
    if first is None:
        print("no session from the first connection")
        return 2
    resumed = 0
    for i in range(n):
        reused, _ = one(ctx, port_list[(i + 1) % len(port_list)], first, behaviour)
        resumed += reused
    final, _ = one(ctx, port_list[(n + 1) % len(port_list)], first, "close")
    print("offered=%d resumed=%d final=%s" % (n, resumed, final))
    return 0 if resumed == n and final else 1


if __name__ == "__main__":
    sys.exit(main())
