#!/usr/bin/env python3
"""Client load for the fleet tests: resumes sessions through a balancer, counting every loss.

Each round makes, for each kind (TLS 1.2 session ID, TLS 1.2 ticket, TLS 1.3 ticket), a full
handshake and then a resumption of that session on a new connection (through a round-robin
balancer the two land on different servers). Sessions are also kept and tried again later, so
tickets made under keys that have since rotated are tried too. Bounded by --duration and
--rounds. Prints one JSON object: per kind attempts, resumed and failed connections, the same
for old sessions, and the 50th and 99th percentiles of the resumptions' connect-to-echo time
(resume_p50_ms, resume_p99_ms), and the seconds the run took.
"""
import argparse
import json
import socket
import ssl
import sys
import time


def context(kind):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if kind in ("tls12_id", "tls12_ticket"):
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    if kind == "tls12_id":
        ctx.options |= ssl.OP_NO_TICKET
    return ctx


def connect(addr, ctx, session=None, timeout=5.0):
    """One connection with one echoed line; returns (reused, session)."""
    raw = socket.create_connection(addr, timeout=timeout)
    # As browsers and curl do: without it, the client's Finished and its first bytes wait on
    # each other (Nagle, delayed ACK) and every resumed TLS 1.2 connection takes 40 ms more.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        tls = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        tls.sendall(b"ping\n")
        got = b""
        while not got.endswith(b"\n"):
            chunk = tls.recv(100)
            if not chunk:
                break
            got += chunk
        if got != b"ping\n":
            raise OSError("no echo from the backend")
        reused, sess = tls.session_reused, tls.session
        tls.close()
        return reused, sess
    finally:
        raw.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connect", required=True, help="HOST:PORT")
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--pause", type=float, default=0.1, help="seconds between rounds")
    ap.add_argument("--kinds", default="tls12_id,tls12_ticket,tls13")
    ap.add_argument("--old-after", type=float, default=12.0,
                    help="also resume sessions at least this old (seconds)")
    a = ap.parse_args()
    host, port = a.connect.rsplit(":", 1)
    addr = (host, int(port))
    kinds = a.kinds.split(",")
    ctxs = {k: context(k) for k in kinds}
    stats = {k: {"attempts": 0, "resumed": 0, "failed": 0, "old_attempts": 0, "old_resumed": 0}
             for k in kinds}
    kept = {k: [] for k in kinds}
    times = {k: [] for k in kinds}
    start = time.monotonic()
    end = start + a.duration
    rounds = 0
    while time.monotonic() < end and rounds < a.rounds:
        rounds += 1
        for k in kinds:
            s = stats[k]
            try:
                _, sess = connect(addr, ctxs[k])
            except (OSError, ssl.SSLError) as e:
                s["failed"] += 1
                print(f"{k}: full handshake failed: {e}", file=sys.stderr)
                continue
            try:
                t0 = time.monotonic()
                reused, _ = connect(addr, ctxs[k], sess)
                times[k].append(time.monotonic() - t0)
                s["attempts"] += 1
                s["resumed"] += int(reused)
            except (OSError, ssl.SSLError) as e:
                s["failed"] += 1
                print(f"{k}: resumption failed: {e}", file=sys.stderr)
            now = time.monotonic()
            if k != "tls12_id":
                kept[k].append((now, sess))
            # One old session per round: the oldest kept one past --old-after.
            if kept[k] and now - kept[k][0][0] >= a.old_after:
                _, old = kept[k].pop(0)
                try:
                    reused, _ = connect(addr, ctxs[k], old)
                    s["old_attempts"] += 1
                    s["old_resumed"] += int(reused)
                except (OSError, ssl.SSLError) as e:
                    s["failed"] += 1
                    print(f"{k}: old session failed: {e}", file=sys.stderr)
        time.sleep(a.pause)
    for k in kinds:
        t = sorted(times[k])
        for name, q in (("resume_p50_ms", 0.50), ("resume_p99_ms", 0.99)):
            stats[k][name] = round(1000 * t[min(len(t) - 1, int(q * len(t)))], 2) if t else 0
    json.dump({"rounds": rounds, "seconds": round(time.monotonic() - start, 3), "kinds": stats},
              sys.stdout)
    print()


if __name__ == "__main__":
    main()
