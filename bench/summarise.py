#!/usr/bin/env python3
"""Turns the suite's raw lines (server version mode rep per_second cpu_us resumed_fraction)
into Markdown tables: medians with min-max, ratios to the best peer measured in the same run,
and each server's resumed-handshake CPU as a percentage of the in-process ceiling."""
import json
import statistics
import sys
from collections import defaultdict

rows = defaultdict(list)
for line in open(sys.argv[1]):
    server, version, mode, rep, rate, cpu, frac = line.split()
    rows[(server, version, mode)].append((float(rate), float(cpu), float(frac)))
ceiling = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    ceiling[r["version"]] = r
extras_path, idle_n, bulk_mib = sys.argv[3], sys.argv[4], sys.argv[5]
reps, duration, cert, when = sys.argv[6], sys.argv[7], sys.argv[8], sys.argv[9]
servers = []
for (s, _, _) in rows:
    if s not in servers:
        servers.append(s)

print("Measured %s. Certificate %s; one worker per server; %s repetition(s) of %s s per case; "
      "8 connections.\n" % (when, cert, reps, duration))
for version, vname in (("1_2", "TLSv1.2"), ("1_3", "TLSv1.3")):
    print("### %s\n" % vname)
    print("| server | full handshakes/s | resumed handshakes/s | resumed % | server CPU per full | "
          "server CPU per resumed | resumed/s vs best peer | resumed CPU: ceiling / server |")
    print("|---|---|---|---|---|---|---|---|")
    med = {}
    for s in servers:
        for mode in ("full", "resume"):
            vals = rows.get((s, version, mode), [])
            if vals:
                med[(s, mode)] = (statistics.median(v[0] for v in vals),
                                  min(v[0] for v in vals), max(v[0] for v in vals),
                                  statistics.median(v[1] for v in vals),
                                  statistics.median(v[2] for v in vals))
    peers = [med[(s, "resume")][0] for s in servers if s != "tlsresume" and (s, "resume") in med
             and med[(s, "resume")][4] > 0.99]
    best = max(peers) if peers else 0
    ceil_us = ceiling.get(vname, {}).get("resumed_us", 0)
    for s in servers:
        f = med.get((s, "full"))
        r = med.get((s, "resume"))
        if f is None or r is None:
            continue
        ratio = "%.2f" % (r[0] / best) if best and r[4] > 0.99 else "-"
        pct = "%.0f%%" % (100 * ceil_us / r[3]) if r[3] > 0 and r[4] > 0.99 else "-"
        print("| %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.0f%% | %.0f us | %.0f us | %s | %s |"
              % (s, f[0], f[1], f[2], r[0], r[1], r[2], 100 * r[4], f[3], r[3], ratio, pct))
    c = ceiling.get(vname)
    if c:
        print("| in-process ceiling | | | | %.0f us | %.0f us | | 100%% |" % (c["full_us"],
                                                                      c["resumed_us"]))
    print()

print("### Memory per idle connection and bulk throughput\n")
print("RSS growth of the server's processes with %s idle TLS 1.3 connections held open (after "
      "their handshakes), and one stream of %s MiB echoed through the proxy (Python client and "
      "backend: a relative figure).\n" % (idle_n, bulk_mib))
print("| server | connections held | RSS before | RSS after | KiB per idle connection | "
      "bulk MiB/s |")
print("|---|---|---|---|---|---|")
for line in open(extras_path):
    server, held, before, after, mib = line.split()
    per = (int(after) - int(before)) / int(held) if int(held) else 0
    print("| %s | %s | %s KiB | %s KiB | %.1f | %s |" % (server, held, before, after, per, mib))
print()
