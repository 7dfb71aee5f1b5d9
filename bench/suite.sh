#!/usr/bin/env bash
# The benchmark suite (`make bench`): tlsresume serve against nginx (stream), HAProxy (TCP),
# hitch and stunnel, measured side by side in one run on this machine, plus the in-process
# ceiling. Servers are pinned to core 0 and the load generator to core 1 (when there are two
# cores), one worker each, the same ECDSA P-256 certificate (RSA-2048 with --rsa), session cache
# and tickets on everywhere. Servers are interleaved (A B C D E, then again) and each figure is
# the median of the repetitions. Every load is bounded by --duration.
#
# Two load generators, so that neither can favour its own server: `tlsresume bench` (8
# connections, handshakes without data) and `openssl s_time -www /` (2 processes, each
# connection a GET answered by an nginx HTTP backend; and 1 process for serial latency). The
# no-TLS floor is nginx and HAProxy proxying the same GET without TLS (bench/plain.py).
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

. bench/servers.sh

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

# record SERVER VERSION MODE REP CLIENT TICKS CONNECTIONS SECONDS RESUMED: one result line
# (rate, server CPU per connection, resumed fraction) to $RESULTS.
record() {
    awk -v s="$1" -v v="$2" -v m="$3" -v r="$4" -v c="$5" -v t="$6" -v n="$7" -v d="$8" \
        -v f="$9" -v hz="$(getconf CLK_TCK)" 'BEGIN {
        printf "%s %s %s %s %.1f %.1f %.4f %s\n", s, v, m, r, (d > 0 ? n / d : 0),
            (n > 0 ? t * 1e6 / hz / n : 0), f, c }' >>"$RESULTS"
}

# run_bench SERVER PORT VERSION MODE REP: `tlsresume bench`, 8 connections.
run_bench() {
    local before after
    before=$(cpu_ticks "$SPID")
    $CLIENT_CPU "$BUILD/tlsresume" bench "127.0.0.1:$2" "--tls$3" --mode "$4" \
        --duration "$DURATION" --concurrency 8 --json >"$WORK/run.json" 2>>"$WORK/bench.log" || true
    after=$(cpu_ticks "$SPID")
    set -- "$@" "$((after - before))" $(python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    r = {"handshakes": 0, "elapsed_s": 0, "resumed_fraction": 0}
print(r["handshakes"], r["elapsed_s"], r["resumed_fraction"])' "$WORK/run.json")
    record "$1" "$3" "$4" "$5" bench "$6" "$7" "$8" "$9"
}

# run_s_time SERVER PORT VERSION MODE REP PROCS: PROCS parallel `openssl s_time -www /`
# processes (-new or -reuse): each connection sends a GET and reads the answer to the end.
# The resumed fraction is 1 - (connections s_time marks '*', not reused) / connections.
run_s_time() {
    local before after start end i n=0 fresh=0 flag=-new pids=()
    [ "$4" = resume ] && flag=-reuse
    before=$(cpu_ticks "$SPID")
    start=$(date +%s.%N)
    for i in $(seq 1 "$6"); do
        $CLIENT_CPU openssl s_time -connect "127.0.0.1:$2" -www / -time "$DURATION" "$flag" \
            "-tls$3" >"$WORK/s_time.$i" 2>&1 &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    end=$(date +%s.%N)
    after=$(cpu_ticks "$SPID")
    for i in $(seq 1 "$6"); do
        n=$((n + $(sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p' "$WORK/s_time.$i" | head -n1 || true)))
        fresh=$((fresh + $(sed -n '/^starting/,/connections in/p' "$WORK/s_time.$i" | tr -cd '*' | wc -c)))
    done
    [ "$4" = full ] && fresh=$n
    record "$1" "$3" "$4" "$5" "$([ "$6" -eq 1 ] && echo s_time_serial || echo s_time)" \
        "$((after - before))" "$n" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" \
        "$(awk -v n="$n" -v f="$fresh" 'BEGIN { printf "%.4f", (n > 0 ? 1 - f / n : 0) }')"
}

# run_plain SERVER PORT REP: the no-TLS floor, bench/plain.py with 2 processes.
run_plain() {
    local before after n d
    before=$(cpu_ticks "$SPID")
    $CLIENT_CPU python3 bench/plain.py "127.0.0.1:$2" --time "$DURATION" --procs 2 \
        >"$WORK/plain.out" 2>>"$WORK/bench.log" || true
    after=$(cpu_ticks "$SPID")
    read -r _ n _ d _ <"$WORK/plain.out" || { n=0; d=0; }
    record "$1" - plain "$3" plain "$((after - before))" "${n:-0}" "${d:-0}" 1
}

# TLSR_SUITE_SERVERS="tlsresume nginx" limits the run (for quick A/B checks while profiling;
# "base" is tlsresume from TLSR_BASE_BUILD).
read -r -a SERVERS <<<"${TLSR_SUITE_SERVERS:-tlsresume nginx haproxy hitch stunnel}"
read -r -a FLOORS <<<"${TLSR_SUITE_FLOORS-nginx_plain haproxy_plain}"
RESULTS="$WORK/results.txt"
EXTRAS="$WORK/extras.txt"
: >"$RESULTS"
: >"$EXTRAS"
start_http_backend
for rep in $(seq 1 "$REPS"); do
    for server in "${SERVERS[@]}"; do
        bin=${server/tlsresume/true}
        command -v "${bin/base/true}" >/dev/null 2>&1 || [ "$server" = stunnel ] ||
            { echo "warn suite: $server not installed, skipped" >&2; continue; }
        port=$(free_port)
        "start_$server" "$port" "$HTTP_BACKEND"
        PIDS+=("$SPID")
        wait_port "$port" "$server" || { cat "$WORK/$server.log" >&2; exit 1; }
        for version in 1_2 1_3; do
            for mode in full resume; do
                run_bench "$server" "$port" "$version" "$mode" "$rep"
                run_s_time "$server" "$port" "$version" "$mode" "$rep" 2
            done
            run_s_time "$server" "$port" "$version" resume "$rep" 1
        done
        stop_server
        if [ "$rep" -eq 1 ]; then
            "start_$server" "$port" "$BACKEND"
            PIDS+=("$SPID")
            wait_port "$port" "$server" || { cat "$WORK/$server.log" >&2; exit 1; }
            extras "$server" "$port"
            stop_server
        fi
    done
    for server in "${FLOORS[@]}"; do
        port=$(free_port)
        "start_$server" "$port" "$HTTP_BACKEND"
        PIDS+=("$SPID")
        wait_port "$port" "$server" || { cat "$WORK/$server.log" >&2; exit 1; }
        run_plain "$server" "$port" "$rep"
        stop_server
    done
done

# TLSR_SUITE_RAW=FILE keeps the raw result lines (to summarise again, or compare runs).
[ -z "${TLSR_SUITE_RAW:-}" ] || cp "$RESULTS" "$TLSR_SUITE_RAW"
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
