# The servers the suite measures (sourced by bench/suite.sh): start_<name> PORT BACKEND starts
# one terminating TLS on 127.0.0.1:PORT in front of 127.0.0.1:BACKEND, pinned by SERVER_CPU
# with NWORK workers, and sets SPID. Session cache and tickets on everywhere, the same
# certificate ($WORK/cert.pem, key.pem, combined.pem). The *_plain ones proxy without TLS:
# the floor under every TLS figure.

start_tlsresume() {
    $SERVER_CPU "$BUILD/tlsresume" serve --listen "127.0.0.1:$1" --backend "127.0.0.1:$2" \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers "$NWORK" --admin off \
        --log-level error 2>"$WORK/tlsresume.log" &
    SPID=$!
}
# "base": the same from another build (TLSR_BASE_BUILD), to measure a change against what came
# before it in the same run.
start_base() {
    $SERVER_CPU "$TLSR_BASE_BUILD/tlsresume" serve --listen "127.0.0.1:$1" --backend "127.0.0.1:$2" \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers "$NWORK" --admin off \
        --log-level error 2>"$WORK/base.log" &
    SPID=$!
}
start_nginx() {
    nginx_stream_conf "$WORK/nginx" "$1" "$2" "$WORK/cert.pem" "$WORK/key.pem" "$NWORK" \
        "ssl_session_cache shared:SSL:16m;"
    $SERVER_CPU nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' \
        2>"$WORK/nginx.log" &
    SPID=$!
}
start_haproxy() {
    haproxy_tls_conf "$WORK/haproxy.cfg" "$1" "$2" "$WORK/combined.pem" \
        "    nbthread $NWORK
    maxconn 4096
    tune.ssl.cachesize 100000"
    $SERVER_CPU haproxy -f "$WORK/haproxy.cfg" -db 2>"$WORK/haproxy.log" &
    SPID=$!
}
start_hitch() {
    $SERVER_CPU hitch --frontend="[127.0.0.1]:$1" --backend="[127.0.0.1]:$2" --workers="$NWORK" \
        --user=nobody --tls-protos="TLSv1.2 TLSv1.3" "$WORK/combined.pem" 2>"$WORK/hitch.log" &
    SPID=$!
}
start_stunnel() {
    cat >"$WORK/stunnel.conf" <<CONF
foreground = yes
pid =
[tls]
accept = 127.0.0.1:$1
connect = 127.0.0.1:$2
cert = $WORK/combined.pem
sessionCacheSize = 100000
CONF
    $SERVER_CPU stunnel4 "$WORK/stunnel.conf" 2>"$WORK/stunnel.log" &
    SPID=$!
}
start_nginx_plain() {
    mkdir -p "$WORK/nginx_plain"
    cat >"$WORK/nginx_plain/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes $NWORK;
pid $WORK/nginx_plain/nginx.pid;
error_log $WORK/nginx_plain/error.log error;
events { worker_connections 4096; }
stream { server { listen 127.0.0.1:$1; proxy_pass 127.0.0.1:$2; } }
CONF
    $SERVER_CPU nginx -p "$WORK/nginx_plain" -c "$WORK/nginx_plain/nginx.conf" -g 'daemon off;' \
        2>"$WORK/nginx_plain.log" &
    SPID=$!
}
start_haproxy_plain() {
    {
        printf 'global\n    nbthread %s\n    maxconn 4096\n' "$NWORK"
        haproxy_defaults
        printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\n' "$1"
        printf 'backend be\n    server b 127.0.0.1:%s\n' "$2"
    } >"$WORK/haproxy_plain.cfg"
    $SERVER_CPU haproxy -f "$WORK/haproxy_plain.cfg" -db 2>"$WORK/haproxy_plain.log" &
    SPID=$!
}

# stop_server: the server started last, by PID.
stop_server() {
    kill "$SPID"
    wait "$SPID" 2>/dev/null || true
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
