#!/usr/bin/env bash
# What secret key memory (memfd_secret) costs against locked memory: resumptions per second of
# one serve worker with --key-memory secret, then locked, in turns (ROUNDS each), measured by
# `tlsresume bench` (TLS 1.3 tickets, TLS 1.2 tickets) and by openssl s_time -reuse (an
# external client). Prints a Markdown table with the ratio secret/locked per client.
# usage: bench/key_memory.sh [SECONDS] [ROUNDS]   (run from the tree's root after `make build`)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
SECONDS_EACH=${1:-5}
ROUNDS=${2:-2}
TLSR=build/tlsresume
[ -x "$TLSR" ] || { echo "error bench: no $TLSR (make build)" >&2; exit 1; }
bench_init keymem
make_cert
start_echo_backend
declare -A SUM
for round in $(seq 1 "$ROUNDS"); do
    for mem in secret locked; do
        port=$(free_port)
        "$TLSR" serve --listen "127.0.0.1:$port" --admin off --backend "127.0.0.1:$BACKEND" \
            --workers 1 --cert "$WORK/cert.pem" --key "$WORK/key.pem" --key-memory "$mem" \
            >/dev/null 2>"$WORK/serve.log" &
        pid=$!
        PIDS+=("$pid")
        wait_port "$port" serve
        grep -q "event=key_memory kind=$mem" "$WORK/serve.log" ||
            { echo "error bench: serve did not use $mem key memory" >&2; exit 1; }
        for v in tls1_3 tls1_2; do
            r=$("$TLSR" bench "127.0.0.1:$port" --mode resume "--$v" --duration "${SECONDS_EACH}s" \
                -C 8 2>/dev/null | sed -n 's/^ *\([0-9.]*\) handshakes\/s.*/\1/p' | head -1)
            SUM[$mem,bench_$v]=$(python3 -c "print(${SUM[$mem,bench_$v]:-0} + ${r:-0})")
        done
        n=$(openssl s_time -connect "127.0.0.1:$port" -reuse -tls1_2 -time "$SECONDS_EACH" \
            2>/dev/null | sed -n 's/^\([0-9]*\) connections in .*/\1/p' | tail -1)
        SUM[$mem,s_time]=$(python3 -c "print(${SUM[$mem,s_time]:-0} + ${n:-0} / $SECONDS_EACH)")
        kill "$pid"
        wait "$pid" 2>/dev/null || true
    done
done
echo "| client | secret (resumptions/s) | locked (resumptions/s) | secret / locked |"
echo "|---|---|---|---|"
for c in bench_tls1_3 bench_tls1_2 s_time; do
    python3 - "$c" "${SUM[secret,$c]}" "${SUM[locked,$c]}" "$ROUNDS" <<'PY'
import sys
name, s, l, n = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
label = {"bench_tls1_3": "`tlsresume bench`, TLS 1.3 tickets",
         "bench_tls1_2": "`tlsresume bench`, TLS 1.2 tickets",
         "s_time": "`openssl s_time -reuse`, TLS 1.2"}[name]
print(f"| {label} | {s / n:.0f} | {l / n:.0f} | {s / l if l else 0:.2f} |")
PY
done
