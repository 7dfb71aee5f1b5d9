#!/usr/bin/env bash
# System calls per connection of each server under the same external load (`make bench` does
# not run it; docs/BENCHMARKS.md shows its table and the command): one worker per server, an
# nginx HTTP backend, and one `openssl s_time -www / -reuse` process for a few seconds, with
# `strace -c -f` attached to every process and thread of the server.
# The same for small round trips on one long-lived connection (bench/pingpong.py, the echo
# backend): what each message costs, not each handshake.
# usage: bench/syscalls.sh [--time S] [--count N] [--tls1_2|--tls1_3] [--servers "tlsresume nginx ..."]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TLSR_BUILD_DIR:-build}
TIME=3
COUNT=2000
VERSION=1_2
SERVERS="tlsresume nginx haproxy hitch"
while [ $# -gt 0 ]; do
    case "$1" in
    --time) TIME=$2; shift ;;
    --count) COUNT=$2; shift ;;
    --tls1_2) VERSION=1_2 ;;
    --tls1_3) VERSION=1_3 ;;
    --servers) SERVERS=$2; shift ;;
    *) echo "usage: $0 [--time S] [--count N] [--tls1_2|--tls1_3] [--servers LIST]" >&2; exit 2 ;;
    esac
    shift
done
[ "$TIME" -ge 1 ] && [ "$TIME" -le 30 ] && [ "$COUNT" -ge 1 ] && [ "$COUNT" -le 100000 ] ||
    { echo "error syscalls: --time 1..30, --count 1..100000" >&2; exit 2; }
command -v strace >/dev/null || { echo "error syscalls: strace is not installed" >&2; exit 1; }

. bench/lib.sh
bench_init syscalls
SERVER_CPU="taskset -c 0"
CLIENT_CPU="taskset -c 1"
[ "$(nproc)" -ge 2 ] || { SERVER_CPU=""; CLIENT_CPU=""; }
NWORK=1
. bench/servers.sh
make_cert
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
start_http_backend

# tasks PID: every thread of PID and of its descendants, comma-separated.
tasks() {
    local p out=()
    for p in $1 $(pgrep -P "$1" 2>/dev/null || true); do
        out+=($(ls "/proc/$p/task" 2>/dev/null || true))
    done
    local IFS=,
    echo "${out[*]}"
}

# trace SERVER LOAD UNIT: runs LOAD (a command printing a count as its last word, or s_time's
# report) under `strace -c` of every thread of the server; prints one table row per UNIT.
trace() {
    local server=$1 load=$2 tracer n total top calls errs
    timeout 60 strace -c -f -p "$(tasks "$SPID")" -o "$WORK/strace.out" 2>/dev/null &
    tracer=$!
    sleep 0.5
    eval "$load" >"$WORK/load.out" 2>&1 || true
    sleep 0.5
    kill -INT "$tracer" 2>/dev/null || true
    wait "$tracer" 2>/dev/null || true
    n=$(sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p; s/^round_trips \([0-9]*\)$/\1/p' \
        "$WORK/load.out" | head -n1)
    total=$(awk '$NF == "total" { print $4, ($6 == "" ? 0 : $5) }' "$WORK/strace.out")
    top=$(awk '$1 ~ /^[0-9.]+$/ && $NF != "total" { print $4, $NF }' "$WORK/strace.out" |
        sort -nr | head -n 8 | awk -v n="${n:-0}" '{ printf "%s%s %.1f", (NR > 1 ? ", " : ""), $2, $1 / n }')
    if [ "${n:-0}" -gt 0 ] && [ -n "$total" ]; then
        read -r calls errs <<<"$total"
        awk -v s="$server" -v c="$calls" -v e="$errs" -v n="$n" -v t="$top" \
            'BEGIN { printf "| %s | %.1f | %.1f | %s |\n", s, c / n, e / n, t }'
    else
        echo "| $server | - | - | nothing measured |"
    fi
}

start_echo_backend
for load in handshake round_trip; do
    if [ "$load" = handshake ]; then
        echo "Resumed TLS ${VERSION/_/.} connections, each a GET answered by the HTTP backend and closed" \
            "(\`openssl s_time -www / -reuse\`, $TIME s):"
    else
        echo "Round trips of 512 bytes on one TLS ${VERSION/_/.} connection through the echo backend" \
            "(\`bench/pingpong.py --count $COUNT\`):"
    fi
    echo
    echo "| server | system calls per ${load/_/ } | failing | most frequent, per ${load/_/ } |"
    echo "|---|---|---|---|"
    for server in $SERVERS; do
        port=$(free_port)
        if [ "$load" = handshake ]; then
            "start_$server" "$port" "$HTTP_BACKEND"
        else
            "start_$server" "$port" "$BACKEND"
        fi
        PIDS+=("$SPID")
        wait_port "$port" "$server" || { cat "$WORK/$server.log" >&2; exit 1; }
        sleep 0.5 # the workers are up
        if [ "$load" = handshake ]; then
            trace "$server" "$CLIENT_CPU openssl s_time -connect 127.0.0.1:$port -www / -time $TIME -reuse -tls$VERSION"
        else
            trace "$server" "$CLIENT_CPU python3 bench/pingpong.py 127.0.0.1:$port --count $COUNT"
        fi
        stop_server
    done
    echo
done
