#!/usr/bin/env bash
# The benchmark suite (`make bench`): tlsresume serve against nginx (stream), HAProxy (TCP),
# hitch and stunnel, measured side by side in one run on this machine, plus the in-process
# ceiling. Servers are pinned to core 0 and the load generator to core 1 (when there are two
# cores), one worker each, the same ECDSA P-256 certificate (RSA-2048 with --rsa), session cache
# and tickets on everywhere. Servers are interleaved (A B C D E, then again) and each figure is
# the median of the repetitions. Every load is bounded by --duration.
#
# usage: bench/suite.sh [--quick] [--reps N] [--duration S] [--rsa] [--all-cores] [--idle N] [--bulk MIB] [--write]
#   --all-cores  one worker (or thread) per core for every server, unpinned; the client shares
#             the cores (without it: one worker pinned to core 0, the client on core 1)
#   --quick   1 repetition of 1 s per case (what `make test` runs, to prove the suite works)
#   --idle N  memory per idle TLS connection: RSS growth with N idle connections (default 2000)
#   --bulk M  throughput of one stream of M MiB echoed through the proxy (default 64)
#   --write   replace the suite section of docs/BENCHMARKS.md with this run's tables
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TLSR_BUILD_DIR:-build}
REPS=3
DURATION=5
RSA=0
WRITE=0
ALL=0
IDLE=2000
BULK=64
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) REPS=1; DURATION=1; IDLE=50; BULK=4 ;;
    --idle) IDLE=$2; shift ;;
    --bulk) BULK=$2; shift ;;
    --reps) REPS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --rsa) RSA=1 ;;
    --all-cores) ALL=1 ;;
    --write) WRITE=1 ;;
    *) echo "usage: $0 [--quick] [--reps N] [--duration S] [--rsa] [--all-cores] [--idle N] [--bulk M] [--write]" >&2; exit 2 ;;
    esac
    shift
done
[ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] &&
    [ "$IDLE" -ge 1 ] && [ "$IDLE" -le 20000 ] && [ "$BULK" -ge 1 ] && [ "$BULK" -le 1024 ] ||
    { echo "error suite: --reps 1..20, --duration 1..60, --idle 1..20000, --bulk 1..1024" >&2; exit 2; }

. bench/lib.sh
bench_init bench

SERVER_CPU="taskset -c 0"
CLIENT_CPU="taskset -c 1"
NWORK=1
[ "$(nproc)" -ge 2 ] || { SERVER_CPU=""; CLIENT_CPU=""; }
[ "$ALL" -eq 0 ] || { SERVER_CPU=""; CLIENT_CPU=""; NWORK=$(nproc); }

make_cert "$([ "$RSA" -eq 1 ] && echo rsa || true)"
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
start_echo_backend

# start_<server> PORT: starts it pinned, sets SPID.
start_tlsresume() {
    $SERVER_CPU "$BUILD/tlsresume" serve --listen "127.0.0.1:$1" --backend "127.0.0.1:$BACKEND" \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers "$NWORK" --admin off \
        --log-level error 2>"$WORK/tlsresume.log" &
    SPID=$!
}
start_nginx() {
    nginx_conf "$WORK/nginx" "$1" "$NWORK"
    $SERVER_CPU nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
        2>"$WORK/nginx.log" &
    SPID=$!
}
start_haproxy() {
    haproxy_tls_conf "$WORK/haproxy.cfg" "$1" "$BACKEND" "$WORK/combined.pem" \
        "    nbthread $NWORK
    maxconn 4096
    tune.ssl.cachesize 100000"
    $SERVER_CPU haproxy -f "$WORK/haproxy.cfg" -db 2>"$WORK/haproxy.log" &
    SPID=$!
}
start_hitch() {
    $SERVER_CPU hitch --frontend="[127.0.0.1]:$1" --backend="[127.0.0.1]:$BACKEND" --workers="$NWORK" \
        --user=nobody --tls-protos="TLSv1.2 TLSv1.3" "$WORK/combined.pem" 2>"$WORK/hitch.log" &
    SPID=$!
}
start_stunnel() {
    cat >"$WORK/stunnel.conf" <<CONF
foreground = yes
pid =
[tls]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$BACKEND
cert = $WORK/combined.pem
sessionCacheSize = 100000
CONF
    $SERVER_CPU stunnel4 "$WORK/stunnel.conf" 2>"$WORK/stunnel.log" &
    SPID=$!
}

# Resident memory (KiB) of a process and its descendants.
rss_kib() {
    local total=0 p v
    for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

# extras SERVER PORT: memory per idle connection and bulk throughput, one line to $EXTRAS.
extras() {
    local before after held mib_s start end
    before=$(rss_kib "$SPID")
    rm -f "$WORK/idle.fifo"
    mkfifo "$WORK/idle.fifo"
    python3 bench/idle.py "$2" "$IDLE" <"$WORK/idle.fifo" >"$WORK/idle.out" 2>&1 &
    local idle_pid=$!
    exec 8>"$WORK/idle.fifo"
    for _ in $(seq 1 600); do grep -q '^held' "$WORK/idle.out" 2>/dev/null && break; sleep 0.1; done
    held=$(sed -n 's/^held //p' "$WORK/idle.out")
    sleep 1 # let the server settle its buffers (not a timed assertion: a measurement)
    after=$(rss_kib "$SPID")
    echo >&8
    exec 8>&-
    wait "$idle_pid" 2>/dev/null || true
    python3 bench/bulk.py "$2" "$BULK" >"$WORK/bulk.out" 2>&1 || true
    mib_s=$(sed -n 's/^MiB\/s //p' "$WORK/bulk.out")
    echo "$1 ${held:-0} $before $after ${mib_s:-failed}" >>"$EXTRAS"
}

# CPU ticks used so far by a process and its descendants.
cpu_ticks() {
    local total=0 p
    for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
        [ -r "/proc/$p/stat" ] || continue
        set -- $(sed 's/^.*) //' "/proc/$p/stat")
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}

# TLSR_SUITE_SERVERS="tlsresume nginx" limits the run (for quick A/B checks while profiling).
read -r -a SERVERS <<<"${TLSR_SUITE_SERVERS:-tlsresume nginx haproxy hitch stunnel}"
RESULTS="$WORK/results.txt"
EXTRAS="$WORK/extras.txt"
: >"$RESULTS"
: >"$EXTRAS"
for rep in $(seq 1 "$REPS"); do
    for server in "${SERVERS[@]}"; do
        command -v "${server/tlsresume/true}" >/dev/null 2>&1 || [ "$server" = stunnel ] ||
            { echo "warn suite: $server not installed, skipped" >&2; continue; }
        port=$(free_port)
        "start_$server" "$port"
        PIDS+=("$SPID")
        wait_port "$port" "$server" || { cat "$WORK/$server.log" >&2; exit 1; }
        for version in 1_2 1_3; do
            for mode in full resume; do
                before=$(cpu_ticks "$SPID")
                $CLIENT_CPU "$BUILD/tlsresume" bench "127.0.0.1:$port" "--tls$version" \
                    --mode "$mode" --duration "$DURATION" --concurrency 8 --json \
                    >"$WORK/run.json" 2>>"$WORK/bench.log" || true
                after=$(cpu_ticks "$SPID")
                python3 - "$WORK/run.json" "$server" "$version" "$mode" "$rep" \
                    "$((after - before))" "$(getconf CLK_TCK)" >>"$RESULTS" <<'PY'
import json, sys
path, server, version, mode, rep, ticks, hz = sys.argv[1:]
try:
    r = json.load(open(path))
except (OSError, ValueError):
    r = {"handshakes": 0, "per_second": 0, "resumed_fraction": 0}
n = r["handshakes"]
cpu_us = int(ticks) * 1e6 / int(hz) / n if n else 0
print(server, version, mode, rep, "%.1f" % r["per_second"], "%.1f" % cpu_us,
      "%.4f" % r["resumed_fraction"])
PY
            done
        done
        [ "$rep" -eq 1 ] && extras "$server" "$port"
        kill "$SPID"
        wait "$SPID" 2>/dev/null || true
    done
done

cert=$([ "$RSA" -eq 1 ] && echo "--rsa" || true)
"$BUILD/ceiling" --count 1000 $cert --json >"$WORK/ceiling.json"
python3 bench/summarise.py "$RESULTS" "$WORK/ceiling.json" "$EXTRAS" "$IDLE" "$BULK" "$REPS" "$DURATION" \
    "$([ "$ALL" -eq 1 ] && echo "$NWORK workers (or threads) per server, unpinned, the client on the same cores" || echo "one worker per server pinned to core 0, the client on core 1")" \
    "$([ "$RSA" -eq 1 ] && echo RSA-2048 || echo 'ECDSA P-256')" \
    "$(date -u +%F) on $(nproc) cores, $(openssl version | cut -d' ' -f1-2), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), HAProxy $(haproxy -v | head -n1 | cut -d' ' -f3 | cut -d- -f1), hitch $(hitch --version 2>&1 | sed 's/.* //'), stunnel $(stunnel4 -version 2>&1 | sed -n 's/^stunnel \([0-9.]*\).*/\1/p' | head -n1)" \
    >"$WORK/tables.md"
cat "$WORK/tables.md"
if [ "$WRITE" -eq 1 ]; then
    python3 scripts/doc_section.py docs/BENCHMARKS.md \
        "suite$([ "$RSA" -eq 1 ] && echo -rsa || true)$([ "$ALL" -eq 1 ] && echo -all || true)" \
        "$WORK/tables.md"
    echo "info suite: docs/BENCHMARKS.md updated" >&2
fi
