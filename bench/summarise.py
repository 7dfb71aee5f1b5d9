#!/usr/bin/env python3
"""Turns the suite's raw lines (server version mode rep per_second cpu_us resumed_fraction
client) into Markdown tables: one set per load generator (`tlsresume bench`, `openssl
s_time`), medians with min-max, ratios to the best peer measured in the same run, each
server's resumed-handshake CPU against the in-process ceiling, the no-TLS floor, and the goals
of the performance issue marked met or not."""
import json
import statistics
import sys
from collections import defaultdict

OURS = "tlsresume"
NOT_PEERS = (OURS, "base")  # "base": ours from another build, for A/B runs

rows = defaultdict(list)
for line in open(sys.argv[1]):
    server, version, mode, rep, rate, cpu, frac, client = line.split()
    rows[(client, server, version, mode)].append((float(rate), float(cpu), float(frac)))
ceiling = {}
for line in open(sys.argv[2]):
    r = json.loads(line)
    ceiling[r["version"]] = r
extras_path, idle_n, bulk_mib = sys.argv[3], sys.argv[4], sys.argv[5]
reps, duration, layout, cert, when = sys.argv[6:11]
servers = []
for (client, s, _, _) in rows:
    if s not in servers and client != "plain":
        servers.append(s)
floors = []
for (client, s, _, _) in rows:
    if client == "plain" and s not in floors:
        floors.append(s)


def med(client, s, version, mode):
    """(rate median, min, max, cpu median, resumed fraction median) or None."""
    vals = rows.get((client, s, version, mode), [])
    if not vals:
        return None
    return (statistics.median(v[0] for v in vals), min(v[0] for v in vals),
            max(v[0] for v in vals), statistics.median(v[1] for v in vals),
            statistics.median(v[2] for v in vals))


def ok(m, mode):
    return m is not None and m[3] > 0 and (mode == "full" or m[4] > 0.99)


def best_peer(client, version, mode, key):
    """The best peer's figure: the highest rate (key 0) or the lowest CPU (key 3)."""
    vals = [med(client, s, version, mode)[key] for s in servers
            if s not in NOT_PEERS and ok(med(client, s, version, mode), mode)]
    if not vals:
        return 0
    return max(vals) if key == 0 else min(vals)


print("Measured %s. Certificate %s; %s; %s repetition(s) of %s s per case.\n"
      % (when, cert, layout, reps, duration))
goals = []
VERSIONS = (("1_2", "TLSv1.2"), ("1_3", "TLSv1.3"))
CLIENTS = (("bench", "`tlsresume bench`, 8 connections, handshakes without data"),
           ("s_time", "`openssl s_time -www /`, 2 processes, each connection a GET answered by "
            "the nginx HTTP backend"))
for client, what in CLIENTS:
    for version, vname in VERSIONS:
        print("### %s, client %s\n" % (vname, what))
        serial = client == "s_time"
        print("| server | full handshakes/s | resumed handshakes/s | resumed %% | server CPU per "
              "full | server CPU per resumed | resumed CPU: best peer / server |%s "
              "resumed CPU: ceiling / server |" % (" serial resumed/s (1 process) |"
                                                   if serial else ""))
        print("|---|---|---|---|---|---|---|---|%s" % ("---|" if serial else ""))
        ceil_us = ceiling.get(vname, {}).get("resumed_us", 0)
        best_cpu_r = best_peer(client, version, "resume", 3)
        best_cpu_f = best_peer(client, version, "full", 3)
        for s in servers:
            f, r = med(client, s, version, "full"), med(client, s, version, "resume")
            if f is None or r is None:
                continue
            ratio = "%.2f" % (best_cpu_r / r[3]) if best_cpu_r and ok(r, "resume") else "-"
            pct = "%.0f%%" % (100 * ceil_us / r[3]) if ceil_us and ok(r, "resume") else "-"
            ser = ""
            if serial:
                sr = med("s_time_serial", s, version, "resume")
                ser = " %.0f |" % sr[0] if sr else " - |"
            print("| %s | %.0f (%.0f-%.0f) | %.0f (%.0f-%.0f) | %.0f%% | %.0f us | %.0f us | %s |%s"
                  " %s |" % (s, f[0], f[1], f[2], r[0], r[1], r[2], 100 * r[4], f[3], r[3], ratio,
                             ser, pct))
        c = ceiling.get(vname)
        if c:
            print("| in-process ceiling | | | | %.0f us | %.0f us | |%s 100%% |"
                  % (c["full_us"], c["resumed_us"], " |" if serial else ""))
        print()
        ours_r, ours_f = med(client, OURS, version, "resume"), med(client, OURS, version, "full")
        if ok(ours_r, "resume") and best_cpu_r:
            goals.append(("%s server CPU per resumed connection, %s: best peer / ours"
                          % (vname, client), "1.2x", "%.2fx" % (best_cpu_r / ours_r[3]),
                          best_cpu_r / ours_r[3] >= 1.2))
        if ok(ours_f, "full") and best_cpu_f:
            goals.append(("%s server CPU per full handshake, %s: best peer / ours"
                          % (vname, client), "1.0x", "%.2fx" % (best_cpu_f / ours_f[3]),
                          best_cpu_f / ours_f[3] >= 1.0))
        if serial:
            ours_s = med("s_time_serial", OURS, version, "resume")
            best_s = best_peer("s_time_serial", version, "resume", 0)
            if ours_s and best_s:
                goals.append(("%s serial resumed connections/s (1 s_time): ours / best peer"
                              % vname, "1.0x", "%.2fx" % (ours_s[0] / best_s),
                              ours_s[0] >= best_s))

if floors:
    print("### The no-TLS floor\n")
    print("The same request through nginx (stream) and HAProxy (TCP) without TLS "
          "(`bench/plain.py`, 2 processes): what accepting, connecting to the backend, "
          "relaying the GET and closing cost with no TLS at all. \"TLS share\" is a server's "
          "CPU per resumed `s_time` connection above the lowest floor, against the in-process "
          "ceiling (the TLS work alone).\n")
    print("| floor | connections/s | server CPU per connection |")
    print("|---|---|---|")
    floor_cpu = []
    for s in floors:
        m = med("plain", s, "-", "plain")
        if m and m[3] > 0:
            floor_cpu.append(m[3])
            print("| %s | %.0f (%.0f-%.0f) | %.0f us |" % (s, m[0], m[1], m[2], m[3]))
    print()
    if floor_cpu:
        floor = min(floor_cpu)
        print("| server | TLS 1.2 resumed: CPU above the floor | / ceiling | TLS 1.3 resumed: "
              "CPU above the floor | / ceiling |")
        print("|---|---|---|---|---|")
        for s in servers:
            cells = []
            for version, vname in VERSIONS:
                r = med("s_time", s, version, "resume")
                ceil_us = ceiling.get(vname, {}).get("resumed_us", 0)
                if ok(r, "resume") and ceil_us:
                    cells += ["%.0f us" % (r[3] - floor), "%.2fx" % ((r[3] - floor) / ceil_us)]
                    if s == OURS:
                        share = (r[3] - floor) / ceil_us
                        goals.append(("%s TLS share (resumed CPU above the floor) / ceiling"
                                      % vname, "at most 1.5x", "%.2fx" % share, share <= 1.5))
                else:
                    cells += ["-", "-"]
            print("| %s | %s |" % (s, " | ".join(cells)))
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
peers_idle = [v for k, v in per_idle.items() if k not in NOT_PEERS]
if OURS in per_idle and peers_idle:
    # "No more than before" is the build before the change, measured in the same run (a figure
    # from another run or another OpenSSL build is not comparable: OpenSSL's own allocations
    # are most of it).
    target = min(peers_idle)
    name = "memory per idle connection: below every peer"
    if "base" in per_idle:
        target = min(target, per_idle["base"])
        name = "memory per idle connection: no more than the base build and below every peer"
    goals.append((name, "at most %.1f KiB" % target, "%.1f KiB" % per_idle[OURS],
                  per_idle[OURS] <= target))
print("### Goals of the performance issue, in this run\n")
print("| goal | target | measured | met |")
print("|---|---|---|---|")
for name, target, got, met in goals:
    print("| %s | %s | %s | %s |" % (name, target, got, "yes" if met else "**no**"))
print()
