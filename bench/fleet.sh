#!/usr/bin/env bash
# Resumption through a 3-server fleet behind HAProxy (TCP, round robin): tlsresume with Redis
# against nginx with per-host session caches and ticket keys (its default), in the same run.
# usage: bench/fleet.sh [--quick] [--duration S] [--write]
#   --quick   1 s per case and 5 check attempts (what `make test` runs, to prove it works)
#   --write   replace the fleet section of docs/BENCHMARKS.md with this run's table
# Each server is its own process with its own cache, on loopback; Redis, HAProxy and the
# backend are started here and stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TLSR_BUILD_DIR:-build}
DURATION=5
ATTEMPTS=30
WRITE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) DURATION=1; ATTEMPTS=5 ;;
    --duration) DURATION=${2:?}; shift ;;
    --write) WRITE=1 ;;
    *) echo "usage: $0 [--quick] [--duration S] [--write]" >&2; exit 2 ;;
    esac
    shift
done
[ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] || { echo "error fleet: --duration 1..60" >&2; exit 2; }

. bench/lib.sh
bench_init fleet
make_cert
start_echo_backend
REDIS=$(free_port)
redis-server --bind 127.0.0.1 --port "$REDIS" --save '' --appendonly no --dir "$WORK" \
    >"$WORK/redis.log" 2>&1 &
PIDS+=("$!")
wait_port "$REDIS" redis
"$BUILD/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null

# balancer PORT SERVER_PORTS...: HAProxy round robin in TCP mode.
balancer() {
    local lb=$1 p
    shift
    {
        printf 'global\n    maxconn 4096\ndefaults\n    mode tcp\n    timeout connect 5s\n'
        printf '    timeout client 30s\n    timeout server 30s\n'
        printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\n' "$lb"
        printf 'backend be\n    balance roundrobin\n'
        for p in "$@"; do
            printf '    server s%s 127.0.0.1:%s\n' "$p" "$p"
        done
    } >"$WORK/haproxy-$lb.cfg"
    haproxy -f "$WORK/haproxy-$lb.cfg" -db >"$WORK/haproxy-$lb.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$lb"
}

start_tlsresume() {
    "$BUILD/tlsresume" serve --listen "127.0.0.1:$1" --backend "127.0.0.1:$BACKEND" \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1 --admin off --log-level error \
        --redis "redis://127.0.0.1:$REDIS" --fleet-key "$WORK/fleet.key" 2>>"$WORK/serve.log" &
    PIDS+=("$!")
}

start_nginx() {
    nginx_conf "$WORK/nginx-$1" "$1"
    nginx -p "$WORK/nginx-$1" -c "$WORK/nginx-$1/nginx.conf" -g 'daemon off;' \
        2>>"$WORK/nginx.log" &
    PIDS+=("$!")
}

: >"$WORK/rows.txt"
for server in tlsresume nginx; do
    ports=()
    for k in 1 2 3; do
        p=$(free_port)
        "start_$server" "$p"
        ports+=("$p")
    done
    for p in "${ports[@]}"; do wait_port "$p"; done
    lb=$(free_port)
    balancer "$lb" "${ports[@]}"
    sleep 2 # the fleet ring: every server joins and holds the keys
    "$BUILD/tlsresume" check "127.0.0.1:$lb" --insecure --json --attempts "$ATTEMPTS" \
        >"$WORK/check-$server.json" 2>/dev/null || true
    for version in 1_2 1_3; do
        "$BUILD/tlsresume" bench "127.0.0.1:$lb" "--tls$version" --mode resume \
            --duration "$DURATION" --concurrency 8 --json >"$WORK/bench-$server-$version.json" \
            2>/dev/null || true
    done
    python3 - "$server" "$WORK/check-$server.json" "$WORK/bench-$server-1_2.json" \
        "$WORK/bench-$server-1_3.json" >>"$WORK/rows.txt" <<'PY'
import json, sys
server, check, b12, b13 = sys.argv[1:]
def load(p):
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None
c, r12, r13 = load(check), load(b12), load(b13)
def m(path):
    try:
        v = c
        for k in path:
            v = v[k]
        return "%d/%d" % (v["resumed"], v["attempts"])
    except (TypeError, KeyError):
        return "-"
def b(r):
    if not r:
        return "-", "-"
    return "%.0f%%" % (100 * r["resumed_fraction"]), "%.0f" % r["per_second"]
f12, s12 = b(r12)
f13, s13 = b(r13)
print("| %s | %s | %s | %s | %s (%s/s) | %s (%s/s) |" % (
    "tlsresume + Redis" if server == "tlsresume" else "nginx, per-host keys",
    m(["tls12", "session_id"]), m(["tls12", "ticket"]), m(["tls13", "ticket"]), f12, s12, f13, s13))
PY
    for p in "${PIDS[@]:2}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    PIDS=("${PIDS[@]:0:2}") # the backend and Redis stay
done

{
    echo "Measured $(date -u +%F) on $(nproc) cores, $(openssl version | cut -d' ' -f1-2), nginx" \
        "$(nginx -v 2>&1 | sed 's/.*nginx\///'), HAProxy $(haproxy -v | head -n1 | cut -d' ' -f3 | cut -d- -f1)," \
        "Redis $(redis-server --version | sed 's/.*v=\([0-9.]*\).*/\1/'): three servers of one kind" \
        "behind HAProxy round robin, one worker each; \`tlsresume check --attempts $ATTEMPTS\` and" \
        "\`tlsresume bench --mode resume\` (${DURATION} s, 8 connections: the fraction of offered" \
        "resumptions that resumed)."
    echo
    echo "| fleet | TLS 1.2 IDs | TLS 1.2 tickets | TLS 1.3 | bench TLS 1.2 resumed | bench TLS 1.3 resumed |"
    echo "|---|---|---|---|---|---|"
    cat "$WORK/rows.txt"
} >"$WORK/table.md"
cat "$WORK/table.md"
if [ "$WRITE" -eq 1 ]; then
    python3 scripts/doc_section.py docs/BENCHMARKS.md fleet "$WORK/table.md"
    echo "info fleet: docs/BENCHMARKS.md updated" >&2
fi
