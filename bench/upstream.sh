#!/usr/bin/env bash
# TLS on both legs: server CPU per client connection when the proxy also speaks TLS to its
# backend, with upstream session reuse on and off, for tlsresume serve (--backend-tls), HAProxy
# (`server ... ssl`, no-ssl-reuse for off) and nginx stream (proxy_ssl, proxy_ssl_session_reuse)
# in one run. The backend is nginx with TLS (session cache and tickets), whose own log tells for
# every proxy how many of the upstream handshakes resumed ($ssl_session_reused). Each proxy has
# one worker pinned to core 0; the clients and the backend share core 1. Clients resume with the
# proxy (TLS 1.3), so the backend leg is what differs.
#
# Two clients: `openssl s_time -www / -reuse` (2 processes; each connection a GET answered by
# the backend) and `tlsresume bench --mode resume --data 64` (8 connections; 64 bytes echoed by
# the backend, nginx stream in front of the echo backend). Servers are interleaved, each figure
# the median of the repetitions; every load is bounded by --duration.
#
# usage: bench/upstream.sh [--quick] [--reps N] [--duration S] [--write]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TLSR_BUILD_DIR:-build}
REPS=3
DURATION=5
WRITE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) REPS=1; DURATION=1 ;;
    --reps) REPS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --write) WRITE=1 ;;
    *) echo "usage: $0 [--quick] [--reps N] [--duration S] [--write]" >&2; exit 2 ;;
    esac
    shift
done
[ "$REPS" -ge 1 ] && [ "$REPS" -le 20 ] && [ "$DURATION" -ge 1 ] && [ "$DURATION" -le 60 ] ||
    { echo "error upstream: --reps 1..20, --duration 1..60" >&2; exit 2; }

. bench/lib.sh
bench_init upstream
SERVER_CPU="taskset -c 0"
CLIENT_CPU="taskset -c 1"
[ "$(nproc)" -ge 2 ] || { SERVER_CPU=""; CLIENT_CPU=""; }
. bench/servers.sh

make_cert
cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
# The backend's CA and certificate (backend.test), which every proxy verifies.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -addext basicConstraints=critical,CA:TRUE -keyout "$WORK/ca.key" -out "$WORK/ca.pem" >/dev/null 2>&1
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=backend.test \
    -keyout "$WORK/be.key" -out "$WORK/be.csr" >/dev/null 2>&1
openssl x509 -req -days 2 -in "$WORK/be.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
    -CAcreateserial -extfile <(printf 'subjectAltName=DNS:backend.test\n') -out "$WORK/be.pem" >/dev/null 2>&1
start_echo_backend

# The TLS backend: HTTPS answering 200 (s_time) and TLS in front of the echo backend (bench),
# each on one port that speaks only TLS 1.2 and one that speaks only TLS 1.3 (the backend
# decides the upstream version for every proxy alike), each logging whether the proxy's
# handshake resumed and its version.
declare -A TLS_HTTP TLS_ECHO
mkdir -p "$WORK/be"
{
    printf 'load_module /usr/lib/nginx/modules/ngx_stream_module.so;\nworker_processes 1;\n'
    printf 'pid %s/be/nginx.pid;\nerror_log %s/be/error.log error;\n' "$WORK" "$WORK"
    printf 'events { worker_connections 4096; }\nhttp {\n'
    printf '    log_format reuse "$ssl_session_reused $ssl_protocol";\n'
    printf '    access_log %s/be/access.log reuse;\n' "$WORK"
    printf '    client_body_temp_path %s/be; proxy_temp_path %s/be; fastcgi_temp_path %s/be;\n' "$WORK" "$WORK" "$WORK"
    printf '    uwsgi_temp_path %s/be; scgi_temp_path %s/be;\n' "$WORK" "$WORK"
    printf '    ssl_certificate %s/be.pem;\n    ssl_certificate_key %s/be.key;\n' "$WORK" "$WORK"
    printf '    ssl_session_cache shared:BE:16m;\n    ssl_session_tickets on;\n'
    for v in 1.2 1.3; do
        TLS_HTTP[$v]=$(free_port)
        printf '    server { listen 127.0.0.1:%s ssl; ssl_protocols TLSv%s; keepalive_timeout 0; return 200 "ok\\n"; }\n' "${TLS_HTTP[$v]}" "$v"
    done
    printf '}\nstream {\n'
    printf '    log_format reuse "$ssl_session_reused $ssl_protocol";\n'
    printf '    access_log %s/be/access.log reuse;\n' "$WORK"
    printf '    ssl_certificate %s/be.pem;\n    ssl_certificate_key %s/be.key;\n' "$WORK" "$WORK"
    printf '    ssl_session_cache shared:BES:16m;\n    ssl_session_tickets on;\n'
    for v in 1.2 1.3; do
        TLS_ECHO[$v]=$(free_port)
        printf '    server { listen 127.0.0.1:%s ssl; ssl_protocols TLSv%s; proxy_pass 127.0.0.1:%s; }\n' "${TLS_ECHO[$v]}" "$v" "$BACKEND"
    done
    printf '}\n'
} >"$WORK/be/nginx.conf"
$CLIENT_CPU nginx -p "$WORK/be" -c "$WORK/be/nginx.conf" -g 'daemon off;' >"$WORK/be.log" 2>&1 &
PIDS+=("$!")
wait_port "${TLS_HTTP[1.3]}" "tls backend"

# The proxies: start_<name> PORT BACKEND_PORT, one worker, verifying backend.test.
up_tlsresume() {
    $SERVER_CPU "$BUILD/tlsresume" serve --listen "127.0.0.1:$1" --backend "127.0.0.1:$2" \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1 --admin off --log-level error \
        --backend-tls --backend-ca "$WORK/ca.pem" --backend-servername backend.test \
        --backend-session-reuse="$3" 2>"$WORK/tlsresume.log" &
    SPID=$!
}
start_tlsresume_reuse() { up_tlsresume "$1" "$2" yes; }
start_tlsresume_no_reuse() { up_tlsresume "$1" "$2" no; }
up_haproxy() {
    cat >"$WORK/haproxy.cfg" <<CONF
global
    nbthread 1
    maxconn 4096
    tune.ssl.cachesize 100000
$(haproxy_defaults)
frontend fe
    bind 127.0.0.1:$1 ssl crt $WORK/combined.pem
    default_backend be
backend be
    server b 127.0.0.1:$2 ssl verify required ca-file $WORK/ca.pem verifyhost backend.test sni str(backend.test) $3
CONF
    $SERVER_CPU haproxy -f "$WORK/haproxy.cfg" -db 2>"$WORK/haproxy.log" &
    SPID=$!
}
start_haproxy_reuse() { up_haproxy "$1" "$2" ""; }
start_haproxy_no_reuse() { up_haproxy "$1" "$2" no-ssl-reuse; }
up_nginx() {
    nginx_stream_conf "$WORK/nginx" "$1" "$2" "$WORK/cert.pem" "$WORK/key.pem" 1 \
        "ssl_session_cache shared:SSL:16m;
        proxy_ssl on;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $WORK/ca.pem;
        proxy_ssl_name backend.test;
        proxy_ssl_server_name on;
        proxy_ssl_protocols TLSv1.2 TLSv1.3;
        proxy_ssl_session_reuse $3;"
    $SERVER_CPU nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
        2>"$WORK/nginx.log" &
    SPID=$!
}
start_nginx_reuse() { up_nginx "$1" "$2" on; }
start_nginx_no_reuse() { up_nginx "$1" "$2" off; }

# upstream_share LINES_BEFORE VERSION: of the backend's log lines since, the share that
# resumed (every line must show VERSION: the backend allows no other).
upstream_share() {
    tail -n +"$(($1 + 1))" "$WORK/be/access.log" |
        awk -v v="TLSv$2" '{ n++; if ($1 == "r") r++; if ($2 != v) bad++ }
            END { printf "%.4f", (n > 0 && !bad ? r / n : -1) }'
}

# record SERVER CLIENT VERSION TICKS CONNECTIONS SECONDS UPSTREAM_SHARE
record() {
    awk -v s="$1" -v c="$2" -v v="$3" -v t="$4" -v n="$5" -v d="$6" -v u="$7" \
        -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%s %s %s %.1f %.1f %s\n", s, c, v,
            (d > 0 ? n / d : 0), (n > 0 ? t * 1e6 / hz / n : 0), u }' >>"$RESULTS"
}

run_s_time() {
    local before after start end mark i n=0 pids=()
    mark=$(wc -l <"$WORK/be/access.log")
    before=$(cpu_ticks "$SPID")
    start=$(date +%s.%N)
    for i in 1 2; do
        $CLIENT_CPU openssl s_time -connect "127.0.0.1:$2" -www / -time "$DURATION" -reuse \
            -tls1_3 >"$WORK/s_time.$i" 2>&1 &
        pids+=("$!")
    done
    for i in "${pids[@]}"; do wait "$i" || true; done
    end=$(date +%s.%N)
    after=$(cpu_ticks "$SPID")
    for i in 1 2; do
        n=$((n + $(sed -n 's/^\([0-9]*\) connections in [0-9.]* real seconds.*/\1/p' "$WORK/s_time.$i" | head -n1 || true)))
    done
    sleep 0.5 # the backend's last log lines (a measurement, not a timed assertion)
    record "$1" s_time "$3" "$((after - before))" "$n" \
        "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')" "$(upstream_share "$mark" "$3")"
}

run_bench() {
    local before after mark
    mark=$(wc -l <"$WORK/be/access.log")
    before=$(cpu_ticks "$SPID")
    $CLIENT_CPU "$BUILD/tlsresume" bench "127.0.0.1:$2" --tls1_3 --mode resume --data 64 \
        --duration "$DURATION" --concurrency 8 --json >"$WORK/run.json" 2>>"$WORK/bench.log" || true
    after=$(cpu_ticks "$SPID")
    sleep 0.5
    set -- "$@" "$((after - before))" $(python3 -c '
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    r = {"handshakes": 0, "elapsed_s": 0}
print(r["handshakes"], r["elapsed_s"])' "$WORK/run.json")
    record "$1" bench "$3" "$4" "$5" "$6" "$(upstream_share "$mark" "$3")"
}

# TLSR_UPSTREAM_SERVERS="tlsresume_reuse nginx_reuse" limits the run (quick A/B checks).
read -r -a SERVERS <<<"${TLSR_UPSTREAM_SERVERS:-tlsresume_reuse tlsresume_no_reuse haproxy_reuse haproxy_no_reuse nginx_reuse nginx_no_reuse}"
RESULTS="$WORK/results.txt"
: >"$RESULTS"
for rep in $(seq 1 "$REPS"); do
    for server in "${SERVERS[@]}"; do
        command -v "${server%%_*}" >/dev/null 2>&1 || [ "${server%%_*}" = tlsresume ] ||
            { echo "warn upstream: ${server%%_*} not installed, skipped" >&2; continue; }
        for version in 1.2 1.3; do
            for client in s_time bench; do
                port=$(free_port)
                "start_$server" "$port" "$([ "$client" = s_time ] && echo "${TLS_HTTP[$version]}" || echo "${TLS_ECHO[$version]}")"
                PIDS+=("$SPID")
                wait_port "$port" "$server" || { cat "$WORK"/*.log >&2; exit 1; }
                "run_$client" "$server" "$port" "$version"
                stop_server
            done
        done
    done
done

python3 bench/upstream_summary.py "$RESULTS" "$REPS" "$DURATION" \
    "$(date -u +%F) on $(nproc) cores, $(openssl version | cut -d' ' -f1-2), nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'), HAProxy $(haproxy -v | head -n1 | cut -d' ' -f3 | cut -d- -f1)" \
    >"$WORK/tables.md"
cat "$WORK/tables.md"
if [ "$WRITE" -eq 1 ]; then
    python3 scripts/doc_section.py docs/BENCHMARKS.md upstream "$WORK/tables.md"
fi
