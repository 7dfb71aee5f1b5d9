#!/usr/bin/env python3
"""A TLS backend for the --backend-tls tests, one behaviour per mode, each connection in turn:

  clean         read the request's head, answer, close_notify, close
  truncate      read the request's head, answer, close the socket without close_notify

usage: tls_backend.py PORT CERT KEY MODE  (prints "listening" when ready)"""
import socket
import ssl
import sys

port, cert, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen(16)
print("listening", flush=True)
while True:
    raw, _ = srv.accept()
    raw.settimeout(10)
    tls = None
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            data = tls.recv(4096)
            if not data:
                break
            head += data
        body = b"hello from the tls backend\n" * 100
        tls.sendall(b"HTTP/1.0 200 OK\r\n\r\n" + body)
        if mode == "truncate":
            tls.shutdown(socket.SHUT_RDWR)  # a FIN, no close_notify (drops the TLS state)
            tls.close()
            continue
        tls = tls.unwrap()  # close_notify (and the client's, when it answers)
        tls.close()
    except (OSError, ssl.SSLError, ValueError):
        raw.close()
        if tls is not None:
            tls.close()
