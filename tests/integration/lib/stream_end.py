#!/usr/bin/env python3
"""One HTTP/1.0 GET over TLS to 127.0.0.1:PORT, read to the end; prints how the stream ended:
"end=close_notify bytes=N" (a clean TLS close) or "end=truncated bytes=N" (a FIN or reset
without close_notify). usage: stream_end.py PORT"""
import socket
import ssl
import sys

ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
tls = ctx.wrap_socket(raw, server_hostname="localhost", suppress_ragged_eofs=False)
tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
got = 0
try:
    while True:
        data = tls.recv(65536)
        if not data:
            print("end=close_notify bytes=%d" % got)
            break
        got += len(data)
except (ssl.SSLEOFError, ConnectionResetError):
    print("end=truncated bytes=%d" % got)
