"""Python ssl client: a full handshake on one port, then a resumption on another with
session= reuse. Prints what each connection reported; exits 1 if the second did not resume.
usage: pyclient.py PORT_A PORT_B 1.2|1.3"""
import socket
import ssl
import sys


def context(version):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = version
    ctx.maximum_version = version
    return ctx


def connect(ctx, port, session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            # Reading the server's line also reads the TLS 1.3 tickets sent before it.
            line = tls.recv(200).decode().strip()
            return line, tls.session, tls.session_reused


def main():
    port_a, port_b = int(sys.argv[1]), int(sys.argv[2])
    version = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}[sys.argv[3]]
    ctx = context(version)
    line, session, _ = connect(ctx, port_a)
    print("first:", line)
    line, _, reused = connect(ctx, port_b, session)
    print("second:", line, "session_reused=%s" % reused)
    return 0 if reused and "worker=1" in line else 1


if __name__ == "__main__":
    sys.exit(main())
