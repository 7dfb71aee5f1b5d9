# Shared by the bench scripts (sourced): a temp dir whose processes are stopped by PID on exit,
# free ports, a certificate, the echo backend and nginx's stream configuration.

# bench_init NAME: WORK (removed on exit) and PIDS (each killed on exit).
bench_init() {
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsr-$1.XXXXXX")
    PIDS=()
    trap bench_cleanup EXIT
}
bench_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/ports.sh"

# wait_port PORT [WHAT]: waits (bounded) for a listener on 127.0.0.1:PORT.
wait_port() {
    port_listening "$1" && return 0
    echo "error bench: nothing listens on $1 (${2:-})" >&2
    return 1
}

# make_cert [rsa]: $WORK/cert.pem and key.pem for localhost (ECDSA P-256, or RSA-2048).
make_cert() {
    local kind=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    [ "${1:-}" = rsa ] && kind=(-newkey rsa:2048)
    openssl req -x509 "${kind[@]}" -nodes -days 2 -subj /CN=localhost \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1
}

# start_echo_backend: the echo backend on BACKEND.
start_echo_backend() {
    BACKEND=$(free_port)
    python3 scripts/backend.py --listen "127.0.0.1:$BACKEND" --mode echo >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_port "$BACKEND" backend
}

# start_http_backend: an nginx HTTP server on HTTP_BACKEND that answers every request with 200
# and closes (HTTP/1.0): the backend of `openssl s_time -www /` and of the no-TLS floor. Pinned
# with the client (CLIENT_CPU), not the server under test.
start_http_backend() {
    HTTP_BACKEND=$(free_port)
    mkdir -p "$WORK/http"
    cat >"$WORK/http/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/http/nginx.pid;
error_log $WORK/http/error.log error;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $WORK/http; proxy_temp_path $WORK/http; fastcgi_temp_path $WORK/http;
    uwsgi_temp_path $WORK/http; scgi_temp_path $WORK/http;
    server { listen 127.0.0.1:$HTTP_BACKEND; location / { return 200 "ok\n"; } }
}
CONF
    ${CLIENT_CPU:-} nginx -p "$WORK/http" -c "$WORK/http/nginx.conf" -g 'daemon off;' \
        >"$WORK/http.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$HTTP_BACKEND" "http backend"
}

. "$(dirname "${BASH_SOURCE[0]}")/../scripts/conf.sh"

# nginx_conf DIR PORT [WORKERS]: an nginx stream server on PORT terminating TLS in front of
# BACKEND, with a shared session cache and tickets on, written to DIR/nginx.conf.
nginx_conf() {
    nginx_stream_conf "$1" "$2" "$BACKEND" "$WORK/cert.pem" "$WORK/key.pem" "${3:-1}" \
        "ssl_session_cache shared:SSL:16m;"
}
