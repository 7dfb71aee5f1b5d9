#!/usr/bin/env bash
# Redis operations per handshake in each fleet mode, and the key ring's polling load, counted
# by Redis itself (INFO commandstats): two tlsresume servers behind HAProxy round robin, so
# every resumption lands on the server that did not make the session (the fleet's case).
# usage: bench/redis_ops.sh [--count N] [--write]
#   --count N  handshakes per mode (default 2000; `make test` runs 100 to prove it works)
#   --write    replace the capacity section of docs/BENCHMARKS.md with this run's table
# Redis, HAProxy, the servers and the backend are started here and stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TLSR_BUILD_DIR:-build}
COUNT=2000
WRITE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --count) COUNT=${2:?}; shift ;;
    --write) WRITE=1 ;;
    *) echo "usage: $0 [--count N] [--write]" >&2; exit 2 ;;
    esac
    shift
done
[ "$COUNT" -ge 10 ] && [ "$COUNT" -le 100000 ] || { echo "error redis_ops: --count 10..100000" >&2; exit 2; }

. bench/lib.sh
bench_init redis_ops
make_cert
start_echo_backend
REDIS=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS" --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
wait_port "$REDIS" redis
"$BUILD/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null

# calls: Redis's command counts as "cmd calls" lines (lower case), summed over the instance.
calls() {
    redis-cli -p "$REDIS" INFO commandstats | tr -d '\r' |
        sed -n 's/^cmdstat_\([a-z|]*\):calls=\([0-9]*\),.*/\1 \2/p'
}

# fleet FLAGS...: two servers with FLAGS behind a fresh HAProxy; sets LB and FLEET_PIDS.
fleet() {
    FLEET_PIDS=()
    local ports=() k p
    for k in 1 2; do
        p=$(free_port)
        "$BUILD/tlsresume" serve --listen "127.0.0.1:$p" --backend "127.0.0.1:$BACKEND" \
            --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1 --admin off \
            --log-level error --redis "redis://127.0.0.1:$REDIS" --fleet-key "$WORK/fleet.key" \
            --redis-timeout-ms 50 "$@" 2>>"$WORK/serve.log" &
        PIDS+=("$!")
        FLEET_PIDS+=("$!")
        ports+=("$p")
    done
    for p in "${ports[@]}"; do wait_port "$p" serve; done
    LB=$(free_port)
    {
        printf 'global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 5s\n'
        printf '    timeout client 30s\n    timeout server 30s\n'
        printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\n' "$LB"
        printf 'backend be\n    balance roundrobin\n'
        for p in "${ports[@]}"; do printf '    server s%s 127.0.0.1:%s\n' "$p" "$p"; done
    } >"$WORK/haproxy-$LB.cfg"
    haproxy -f "$WORK/haproxy-$LB.cfg" -db >"$WORK/haproxy-$LB.log" 2>&1 &
    PIDS+=("$!")
    FLEET_PIDS+=("$!")
    wait_port "$LB" haproxy
    sleep 2 # both servers join the key ring
}

stop_fleet() {
    local p
    for p in "${FLEET_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${FLEET_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
}

# measure LABEL BENCH_ARGS...: Redis commands per handshake while `tlsresume bench` makes COUNT
# handshakes (one connection at a time, so that each resumption follows its session's full
# handshake onto the other server). The ring's polls in that time are left out: they are
# measured on their own below.
: >"$WORK/rows.txt"
measure() {
    local label=$1
    shift
    calls >"$WORK/before.txt"
    local t0 t1
    t0=$(date +%s.%N)
    "$BUILD/tlsresume" bench "127.0.0.1:$LB" --count "$COUNT" --concurrency 1 --json "$@" \
        >"$WORK/bench.json" 2>/dev/null || true
    t1=$(date +%s.%N)
    calls >"$WORK/after.txt"
    python3 - "$label" "$WORK/before.txt" "$WORK/after.txt" "$WORK/bench.json" "$t0" "$t1" \
        "$POLL_RATE" >>"$WORK/rows.txt" <<'PY'
import json, sys
label, before, after, bench, t0, t1, poll_rate = sys.argv[1:]
def load(p):
    d = {}
    for line in open(p):
        k, v = line.split()
        d[k] = int(v)
    return d
b, a = load(before), load(after)
r = json.load(open(bench))
n = r["handshakes"]
seconds = float(t1) - float(t0)
# The ring's own scripts and reports in that time (2 members), measured apart.
ring = float(poll_rate) * seconds
ops = {k: a.get(k, 0) - b.get(k, 0) for k in a}
ops["eval"] = max(0.0, ops.get("eval", 0) - ring)
# HSET and PEXPIRE are the ring's per-poll use reports, not the handshakes'.
shown = {k: v for k, v in ops.items()
         if k not in ("info", "ping", "hset", "pexpire") and v / n >= 0.005}
per = ", ".join("%s %.2f" % (k.upper(), v / n) for k, v in sorted(shown.items()))
total = sum(shown.values()) / n
print("| %s | %d | %.0f%% | %s | %.2f |" % (label, n, 100 * r.get("resumed_fraction", 0.0),
                                             per or "none", total))
PY
}

# The ring's load: two idle members for 10 s.
fleet
calls >"$WORK/before.txt"
sleep 10
calls >"$WORK/after.txt"
POLL_RATE=$(python3 - "$WORK/before.txt" "$WORK/after.txt" <<'PY'
import sys
def load(p):
    return {k: int(v) for k, v in (l.split() for l in open(p))}
b, a = load(sys.argv[1]), load(sys.argv[2])
print("%.2f" % ((a.get("eval", 0) - b.get("eval", 0)) / 10.0))
PY
)
RING_OTHERS=$(python3 - "$WORK/before.txt" "$WORK/after.txt" <<'PY'
import sys
def load(p):
    return {k: int(v) for k, v in (l.split() for l in open(p))}
b, a = load(sys.argv[1]), load(sys.argv[2])
print(", ".join("%s %.1f/s" % (k.upper(), (a[k] - b.get(k, 0)) / 10.0)
                for k in sorted(a) if k not in ("eval", "info", "ping") and a[k] > b.get(k, 0)))
PY
)
measure "TLS 1.3 stateless tickets, full" --tls1_3 --mode full
measure "TLS 1.3 stateless tickets, resumed" --tls1_3 --mode resume
stop_fleet
fleet --no-tickets
measure "TLS 1.2 session IDs, full" --tls1_2 --mode full
measure "TLS 1.2 session IDs, resumed" --tls1_2 --mode resume
stop_fleet
fleet --tls13-tickets stateful
measure "TLS 1.3 stateful tickets, resumed" --tls1_3 --mode resume
stop_fleet

{
    printf 'Measured %s on %s cores, Redis %s: two servers behind HAProxy round robin, one worker each; `tlsresume bench --count %s --concurrency 1` per mode, so each resumption lands on the server that did not make the session. Commands counted by Redis (`INFO commandstats`), the key ring'"'"'s own polls left out (below).\n\n' \
        "$(date +%F)" "$(nproc)" "$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')" "$COUNT"
    printf '| mode | handshakes | resumed | Redis commands per handshake | total per handshake |\n|---|---|---|---|---|\n'
    cat "$WORK/rows.txt"
    printf '\nThe key ring, idle: %s EVAL/s for 2 members (one poll script a second each); also %s.\n' \
        "$POLL_RATE" "${RING_OTHERS:-nothing else}"
} >"$WORK/section.md"
cat "$WORK/section.md"
if [ "$WRITE" = 1 ]; then
    python3 - "$WORK/section.md" docs/BENCHMARKS.md <<'PY'
import sys
section, doc = sys.argv[1:]
text = open(doc).read()
new = open(section).read().strip("\n")
begin, end = "<!-- capacity:begin -->", "<!-- capacity:end -->"
if begin in text:
    a = text.index(begin) + len(begin)
    b = text.index(end)
    text = text[:a] + "\n" + new + "\n" + text[b:]
open(doc, "w").write(text)
PY
fi
