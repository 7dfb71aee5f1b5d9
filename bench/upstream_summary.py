#!/usr/bin/env python3
"""The tables of bench/upstream.sh: per client and upstream TLS version, each proxy with upstream
reuse on and off, medians over the repetitions.

  upstream_summary.py RESULTS REPS DURATION MEASURED_ON
RESULTS lines: SERVER CLIENT VERSION CONNECTIONS_PER_S CPU_US_PER_CONNECTION UPSTREAM_SHARE
(the share is -1 when the backend saw another version than the one it allows)."""
import statistics
import sys

NAMES = {"tlsresume_reuse": ("tlsresume", "on"), "tlsresume_no_reuse": ("tlsresume", "off"),
         "haproxy_reuse": ("HAProxy", "on"), "haproxy_no_reuse": ("HAProxy", "off"),
         "nginx_reuse": ("nginx", "on"), "nginx_no_reuse": ("nginx", "off")}
CLIENTS = {"s_time": "`openssl s_time -www / -reuse`, 2 processes, each connection a GET",
           "bench": "`tlsresume bench --mode resume --data 64`, 8 connections, 64 bytes echoed"}


def main():
    results, reps, duration, measured = sys.argv[1:5]
    rows = {}
    for line in open(results):
        s, c, v, rate, cpu, share = line.split()
        rows.setdefault((s, c, v), []).append((float(rate), float(cpu), float(share)))
    print("Measured %s. One worker per proxy pinned to core 0; the clients and the nginx TLS "
          "backend on core 1; clients resume with the proxy (TLS 1.3); the backend speaks one "
          "TLS version per table; %s repetition(s) of %s s per case." % (measured, reps, duration))
    for version in ("1.2", "1.3"):
        for c, title in CLIENTS.items():
            print("\n### Upstream TLS %s, client %s\n" % (version, title))
            print("| proxy | upstream reuse | connections/s | server CPU per connection | "
                  "upstream handshakes resumed (backend's log) | CPU: tlsresume / this |")
            print("|---|---|---|---|---|---|")
            med = {k[0]: tuple(statistics.median(x[i] for x in xs) for i in range(3))
                   for k, xs in rows.items() if k[1] == c and k[2] == version}
            ours = med.get("tlsresume_reuse")
            for s, (name, reuse) in NAMES.items():
                if s not in med:
                    continue
                rate, cpu, share = med[s]
                ratio = "%.2f" % (ours[1] / cpu) if ours and cpu > 0 else "-"
                shown = "%.0f%%" % (share * 100) if share >= 0 else "other version seen"
                print("| %s | %s | %.0f | %.0f us | %s | %s |" % (name, reuse, rate, cpu, shown,
                                                                 ratio))


main()
