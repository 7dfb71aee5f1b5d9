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
reps, duration, layout, cert, when = sys.argv[6:11]
servers = []
for (s, _, _) in rows:
    if s not in servers:
        servers.append(s)

print("Measured %s. Certificate %s; %s; %s repetition(s) of %s s per case; 8 connections.\n"
      % (when, cert, layout, reps, duration))
goals = []
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
    ours_f, ours_r = med.get(("tlsresume", "full")), med.get(("tlsresume", "resume"))
    best_full = max([med[(s, "full")][0] for s in servers if s != "tlsresume"
                     and (s, "full") in med] or [0])
    if ours_r and best:
        goals.append(("%s resumed handshakes/s vs the best peer" % vname, "1.2x (at least 1.0x)",
                      "%.2fx" % (ours_r[0] / best), ours_r[0] / best >= 1.2))
    cpu_peers = [med[(s, "resume")][3] for s in servers if s != "tlsresume"
                 and (s, "resume") in med and med[(s, "resume")][4] > 0.99]
    if ours_r and cpu_peers and ours_r[3] > 0:
        goals.append(("%s server CPU per resumed handshake: best peer / ours" % vname, "1.2x",
                      "%.2fx" % (min(cpu_peers) / ours_r[3]), min(cpu_peers) / ours_r[3] >= 1.2))
    if ours_f and best_full:
        goals.append(("%s full handshakes/s vs the best peer" % vname, "1.0x",
                      "%.2fx" % (ours_f[0] / best_full), ours_f[0] >= best_full))
    if ours_r and ceil_us and ours_r[3] > 0:
        goals.append(("%s resumed CPU: ceiling / ours" % vname, "70%",
                      "%.0f%%" % (100 * ceil_us / ours_r[3]), ceil_us / ours_r[3] >= 0.7))
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
per_idle = {}
for line in open(extras_path):
    server, held, before, after, mib = line.split()
    per = (int(after) - int(before)) / int(held) if int(held) else 0
    per_idle[server] = per
    print("| %s | %s | %s KiB | %s KiB | %.1f | %s |" % (server, held, before, after, per, mib))
print()
peers_idle = [v for k, v in per_idle.items() if k != "tlsresume"]
if "tlsresume" in per_idle and peers_idle:
    goals.append(("memory per idle connection vs the best peer", "no more than %.1f KiB"
                  % min(peers_idle), "%.1f KiB" % per_idle["tlsresume"],
                  per_idle["tlsresume"] <= min(peers_idle)))
print("### Goals from the bench issue, in this run\n")
print("| goal | target | measured | met |")
print("|---|---|---|---|")
for name, target, got, ok in goals:
    print("| %s | %s | %s | %s |" % (name, target, got, "yes" if ok else "**no**"))
print()
