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

# measure LABEL KIND: Redis commands per session while a client makes COUNT pairs of a full
# handshake and a resumption of its session on the next connection (round robin: on the other
# server, which has never seen it). The key ring's own commands in that time (measured idle
# beforehand, per second) are taken out.
: >"$WORK/rows.txt"
measure() {
    local label=$1 kind=$2
    calls >"$WORK/before.txt"
    python3 - "127.0.0.1:$LB" "$kind" "$COUNT" >"$WORK/pairs.json" <<'PY'
import json, sys, time
sys.path.insert(0, "tests/integration/lib")
from fleet_client import connect, context
addr, kind, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
host, port = addr.rsplit(":", 1)
ctx = context(kind)
resumed = 0
t0 = time.time()
for _ in range(count):
    _, sess = connect((host, int(port)), ctx)
    reused, _ = connect((host, int(port)), ctx, sess)
    resumed += reused
print(json.dumps({"pairs": count, "resumed": resumed, "seconds": time.time() - t0}))
PY
    calls >"$WORK/after.txt"
    tally "$label"
}

# tally LABEL: one row from the counts before and after a run and its pairs.json.
tally() {
    python3 - "$1" "$WORK/before.txt" "$WORK/after.txt" "$WORK/pairs.json" \
        "$WORK/ring_rates.json" >>"$WORK/rows.txt" <<'PY'
import json, sys
label, before, after, pairs, rates = sys.argv[1:]
def load(p):
    return {k: int(v) for k, v in (l.split() for l in open(p))}
b, a = load(before), load(after)
r = json.load(open(pairs))
ring = json.load(open(rates))
n = r["pairs"]
ops = {}
for k in a:
    v = a[k] - b.get(k, 0) - ring.get(k, 0.0) * r["seconds"]
    if k == "info":
        v -= 1  # this bench's own INFO commandstats (the strike script runs INFO too)
    if k != "ping" and v / n >= 0.05:
        ops[k] = v
per = ", ".join("%s %.2f" % (k.upper(), v / n) for k, v in sorted(ops.items()))
print("| %s | %d | %d/%d | %s | %.2f |" % (label, n, r["resumed"], n, per or "none",
                                             sum(ops.values()) / n))
PY
}

# early_once: one 0-RTT resumption of $WORK/early.sess through the balancer; true when the
# server accepted its early data.
early_once() {
    sleep 0.1 | timeout 10 openssl s_client -connect "127.0.0.1:$LB" -servername localhost \
        -tls1_3 -sess_in "$WORK/early.sess" -early_data "$WORK/early.txt" 2>&1 |
        grep -q "Early data was accepted"
}

# measure_early LABEL: Redis commands per 0-RTT resumption (COUNT / 8 of them, one ticket
# resumed each time, a new ClientHello each time: each is a first sighting in the strike
# register). Waits first, bounded, until the register is trusted (one record lifetime after
# the fleet's first use of this Redis).
measure_early() {
    local n=$((COUNT / 8)) k acc=0 t0
    sleep 0.5 | timeout 10 openssl s_client -connect "127.0.0.1:$LB" -servername localhost \
        -tls1_3 -sess_out "$WORK/early.sess" >"$WORK/full.out" 2>&1 || true
    grep -q "Max Early Data: 16384" "$WORK/full.out" ||
        { echo "error redis_ops: the ticket allows no early data" >&2; exit 1; }
    printf 'HEAD / HTTP/1.0\r\n\r\n' >"$WORK/early.txt"
    for k in $(seq 1 60); do
        early_once && break
        [ "$k" = 60 ] && { echo "error redis_ops: early data never accepted" >&2; exit 1; }
        sleep 0.5
    done
    calls >"$WORK/before.txt"
    t0=$(date +%s.%N)
    for k in $(seq 1 "$n"); do
        if early_once; then acc=$((acc + 1)); fi
    done
    calls >"$WORK/after.txt"
    python3 -c 'import json,sys,time; print(json.dumps({"pairs": int(sys.argv[1]), "resumed": int(sys.argv[2]), "seconds": time.time() - float(sys.argv[3])}))' \
        "$n" "$acc" "$t0" >"$WORK/pairs.json"
    tally "$1"
}

# The ring's load: two idle members for 10 s.
fleet
calls >"$WORK/before.txt"
sleep 10
calls >"$WORK/after.txt"
python3 - "$WORK/before.txt" "$WORK/after.txt" "$WORK/ring_rates.json" <<'PY'
import json, sys
def load(p):
    return {k: int(v) for k, v in (l.split() for l in open(p))}
b, a = load(sys.argv[1]), load(sys.argv[2])
rates = {k: (a[k] - b.get(k, 0)) / 10.0 for k in a if a[k] > b.get(k, 0) and k != "info"}
json.dump(rates, open(sys.argv[3], "w"))
PY
RING=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(", ".join("%s %.1f/s" % (k.upper(), v) for k, v in sorted(r.items()) if k != "ping"))' "$WORK/ring_rates.json")
measure "TLS 1.3 stateless tickets" tls13
stop_fleet
fleet --no-tickets
measure "TLS 1.2 session IDs" tls12_id
stop_fleet
fleet --tls13-tickets stateful
measure "TLS 1.3 stateful tickets (single use)" tls13
stop_fleet
fleet --early-data --early-data-window 10s --fleet-clock-skew 1s
measure_early "0-RTT resumptions (TLS 1.3 stateless tickets, early data; per resumption, not per pair)"
stop_fleet

{
    printf 'Measured %s on %s cores, Redis %s, `bench/redis_ops.sh --count %s`: two servers behind HAProxy round robin, one worker each. A client makes pairs of a full handshake and a resumption of its session on the next connection, which lands on the server that has never seen it. Commands counted by Redis (`INFO commandstats`, commands run inside scripts included), the key ring'"'"'s own (measured idle) taken out.\n\n' \
        "$(date +%F)" "$(nproc)" "$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')" "$COUNT"
    printf '| sessions | pairs | resumed | Redis commands per pair (full + resumed) | total |\n|---|---|---|---|---|\n'
    cat "$WORK/rows.txt"
    printf '\nThe key ring, two idle members: %s (one poll script a second each, with the commands it runs inside). While keys are in use, each member also reports its counts (HSET and PEXPIRE, once a poll while they change): these show in the 0-RTT row, where tickets are resumed and nothing else is stored.\n' "$RING"
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
