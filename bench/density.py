#!/usr/bin/env python3
"""Session cache density through real handshakes: tlsresume's 1 MiB shared cache against
nginx's `ssl_session_cache shared:SSL:1m`, measured in the same run.

For each server: N full TLS 1.2 handshakes (tickets off, so every session lives in the server
cache), keeping each session; then one resumption attempt per session, newest first, counting
how many resume. That count is how many sessions 1 MiB of that cache holds.

usage: bench/density.py [--sessions N] [--build DIR]     (loopback only; bounded in count)
"""
import argparse
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from free_port import free_port  # noqa: E402


def wait_port(port, proc, deadline_s=10):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError("server exited at start")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d" % port)


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.options |= ssl.OP_NO_TICKET
    return ctx


def handshake(ctx, port, session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            return tls.session, tls.session_reused


def measure(port, n):
    ctx = client_context()
    sessions = [handshake(ctx, port)[0] for _ in range(n)]
    held = 0
    for sess in reversed(sessions):
        if handshake(ctx, port, sess)[1]:
            held += 1
    return held


NGINX_CONF = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx.err;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
    uwsgi_temp_path {dir}; scgi_temp_path {dir};
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.2;
        ssl_session_cache shared:SSL:1m;
        ssl_session_tickets off;
        ssl_session_timeout 1h;
        return 200 "ok";
    }}
}}
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=12000)
    ap.add_argument("--build", default="build")
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="tlsr-density.")
    procs = []
    try:
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", work + "/key.pem", "-out", work + "/cert.pem"],
                       check=True, capture_output=True)
        results = {}
        port = free_port()
        conf = work + "/nginx.conf"
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=work, port=port))
        nginx = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", work, "-c",
                                  conf, "-g", "daemon off;"], stderr=subprocess.DEVNULL)
        procs.append(nginx)
        wait_port(port, nginx)
        results["nginx 1.22 shared:SSL:1m"] = measure(port, args.sessions)
        port_a, port_b = free_port(), free_port()
        tserver = subprocess.Popen([args.build + "/tserver", "--cert", work + "/cert.pem",
                                    "--key", work + "/key.pem", "--port-a", str(port_a),
                                    "--port-b", str(port_b), "--tls", "1.2", "--mode", "ids",
                                    "--cache-kib", "1024"], stdout=subprocess.DEVNULL)
        procs.append(tserver)
        wait_port(port_a, tserver)
        results["tlsresume 1 MiB cache"] = measure(port_a, args.sessions)
        print("| server | TLS 1.2 sessions held by 1 MiB | ratio to nginx |")
        print("|---|---|---|")
        base = results["nginx 1.22 shared:SSL:1m"]
        for name, held in results.items():
            print("| %s | %d | %.2f |" % (name, held, held / base if base else 0))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
