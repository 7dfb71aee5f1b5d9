#!/usr/bin/env bash
# `tlsresume serve --backend-tls`: TLS to real backends (openssl s_server, nginx, HAProxy), each
# telling in its own output or log whether our handshake with it resumed; a backend that
# restarts; certificates that must be refused. usage: test_upstream.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$SRC_DIR/scripts/conf.sh"

scenario=${1:?scenario}
make_cert # the certificate serve shows its clients
# The backends' own CA, and a certificate for backend.test and 127.0.0.1 under it.
mk_cert ca ca ""
mk_cert be backend.test "DNS:backend.test,IP:127.0.0.1" ca
cat "$WORK/be.pem" "$WORK/be.key" >"$WORK/be.crt+key"
mk_cert client serve-client "DNS:serve-client" ca

# start_s_server PORT ARGS...: openssl s_server answering HTTP with its own report of each
# connection ("New, ..." or "Reused, ..."), on PORT.
start_s_server() {
    local port=$1
    shift
    openssl s_server -accept "127.0.0.1:$port" -cert "$WORK/be.pem" -key "$WORK/be.key" -www \
        "$@" >"$WORK/s_server_$port.log" 2>&1 &
    S_SERVER_PID=$!
    PIDS+=("$S_SERVER_PID")
    wait_port "$port"
}

# stop_pid PID: stops a backend this test started.
stop_pid() {
    kill "$1"
    wait "$1" 2>/dev/null || true
}

# serve_tls ARGS...: serve with two workers in front of BACKEND_PORT over TLS.
serve_tls() {
    start_serve --self-signed --backend-tls --backend-ca "$WORK/ca.pem" "$@"
}

# ask OUT: one HTTPS request through serve (curl); the answer in $WORK/OUT.out.
ask() {
    curl -sk --max-time 20 --http1.1 "https://127.0.0.1:$PORT/" >"$WORK/$1.out" 2>"$WORK/$1.err"
}

# both_workers [MAX]: requests through serve until both workers have served one (at most MAX,
# default 40); sets ASKED. Connections go to whichever worker accepts first.
both_workers() {
    local max=${1:-40}
    ASKED=0
    while [ "$ASKED" -lt "$max" ]; do
        ASKED=$((ASKED + 1))
        ask "r$ASKED" || fail "request $ASKED through serve failed"
        [ "$ASKED" -ge 6 ] && grep -q ' access worker=0 ' "$WORK/serve.log" &&
            grep -q ' access worker=1 ' "$WORK/serve.log" && return 0
    done
    fail "$max connections never reached both workers"
}

# upstream_metric RESULT: serve's count of backend handshakes with that result.
upstream_metric() {
    metric "tlsresume_upstream_handshakes_total{result=\"$1\"}"
}

# s_server_reports WANT_NEW: the s_server's pages say New once... and Reused for the rest.
s_server_reports() {
    local new reused
    new=$(cat "$WORK"/r*.out | grep -c '^New, ' || true)
    reused=$(cat "$WORK"/r*.out | grep -c '^Reused, ' || true)
    [ "$((new + reused))" -eq "$ASKED" ] || fail "$ASKED requests but $new new and $reused reused pages"
    [ "$new" -eq "$1" ] || fail "the backend made $new full handshakes, expected $1 (of $ASKED)"
}

case "$scenario" in
s_server)
    # TLS 1.2 with tickets and with session IDs, TLS 1.3 with stateless and stateful tickets:
    # after the first connection every backend handshake resumes, whichever worker makes it (the
    # store is shared), as s_server itself reports.
    for variant in "-tls1_2" "-tls1_2 -no_ticket" "-tls1_3" "-tls1_3 -no_ticket"; do
        BACKEND_PORT=$(free_port)
        # shellcheck disable=SC2086 # the variant is two words on purpose
        start_s_server "$BACKEND_PORT" $variant
        serve_tls
        rm -f "$WORK"/r*.out
        both_workers
        s_server_reports 1
        [ "$(upstream_metric resumed)" -eq $((ASKED - 1)) ] || fail "$variant: serve counted $(upstream_metric resumed) resumed"
        [ "$(metric 'tlsresume_upstream_resumption_misses_total{reason="no_session"}')" -eq 1 ] ||
            fail "$variant: the first full handshake is not counted as no_session"
        n=$(grep -c ' access .* upstream=resumed ' "$WORK/serve.log" || true)
        [ "$n" -eq $((ASKED - 1)) ] || fail "$variant: the access log shows $n resumed"
        stop_serve
        stop_pid "$S_SERVER_PID"
    done
    ;;
s_server_control)
    # The control: with --backend-session-reuse=no every backend handshake is full.
    BACKEND_PORT=$(free_port)
    start_s_server "$BACKEND_PORT"
    serve_tls --backend-session-reuse=no
    both_workers
    s_server_reports "$ASKED"
    [ "$(upstream_metric resumed)" -eq 0 ] || fail "resumed without reuse"
    stop_serve
    ;;
nginx)
    # nginx as the TLS backend, its session cache with tickets and without, TLS 1.2 and 1.3:
    # its own $ssl_session_reused says "r" for all but the first.
    command -v nginx >/dev/null || fail "nginx is not installed"
    for proto in TLSv1.2 TLSv1.3; do
        for tickets in on off; do
            BACKEND_PORT=$(free_port)
            dir="$WORK/nginx_${proto}_$tickets"
            nginx_https_conf "$dir" "$BACKEND_PORT" "$WORK/be.pem" "$WORK/be.key" 2 \
                'reused=$ssl_session_reused proto=$ssl_protocol sni=$ssl_server_name' \
                "ssl_protocols $proto; ssl_session_cache shared:SSL:1m; ssl_session_tickets $tickets;"
            nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir.log" 2>&1 &
            NGINX_PID=$!
            PIDS+=("$NGINX_PID")
            wait_port "$BACKEND_PORT"
            serve_tls --backend-servername backend.test
            both_workers
            grep -q 'hello from nginx' "$WORK/r1.out" || fail "no answer from nginx"
            wait_until 5 count_ge "$dir/access.log" . "$ASKED" || fail "nginx logged fewer than $ASKED requests"
            new=$(grep -c 'reused=\.' "$dir/access.log" || true)
            [ "$new" -eq 1 ] || fail "$proto tickets=$tickets: nginx made $new full handshakes of $ASKED"
            grep -q "proto=$proto sni=backend.test" "$dir/access.log" || fail "nginx saw no $proto with SNI backend.test"
            stop_serve
            stop_pid "$NGINX_PID"
        done
    done
    ;;
haproxy)
    # HAProxy terminating TLS (`bind ... ssl crt`), with tickets and without, TLS 1.2 and 1.3:
    # its own %[ssl_fc_is_resumed] says 1 for all but the first.
    command -v haproxy >/dev/null || fail "haproxy is not installed"
    for ver in TLSv1.2 TLSv1.3; do
        for tickets in "" no-tls-tickets; do
            BACKEND_PORT=$(free_port)
            log="$WORK/haproxy_${ver}_${tickets:-tickets}.log"
            cat >"$WORK/haproxy.cfg" <<CONF
global
    maxconn 100
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$BACKEND_PORT ssl crt $WORK/be.crt+key ssl-min-ver $ver ssl-max-ver $ver $tickets
    log-format "resumed=%[ssl_fc_is_resumed] proto=%[ssl_fc_protocol] sni=%[ssl_fc_sni]"
    http-request return status 200 content-type text/plain string "hello from haproxy"
CONF
            haproxy -f "$WORK/haproxy.cfg" -db >"$log" 2>&1 &
            HAPROXY_PID=$!
            PIDS+=("$HAPROXY_PID")
            wait_port "$BACKEND_PORT"
            serve_tls --backend-servername backend.test
            both_workers
            grep -q 'hello from haproxy' "$WORK/r1.out" || fail "no answer from HAProxy"
            wait_until 5 count_ge "$log" '^resumed=' "$ASKED" || fail "HAProxy logged fewer than $ASKED requests"
            new=$(grep -c '^resumed=0' "$log" || true)
            [ "$new" -eq 1 ] || fail "$ver ${tickets:-tickets}: HAProxy made $new full handshakes of $ASKED"
            grep -q "proto=$ver sni=backend.test" "$log" || fail "HAProxy saw no $ver with SNI backend.test"
            stop_serve
            stop_pid "$HAPROXY_PID"
        done
    done
    ;;
backends)
    # Sessions are kept per backend: two s_server backends (each with its own session cache
    # and ticket key) and a third whose certificate comes from a CA serve does not trust. Every
    # backend handshake after each good backend's first resumes, no session is offered to a
    # backend that did not issue it (none refused), and the untrusted one is passed over
    # without a client noticing.
    mk_cert ca2 other-ca ""
    mk_cert bad backend.test "DNS:backend.test,IP:127.0.0.1" ca2
    for ver in -tls1_2 -tls1_3; do
        B1=$(free_port)
        B2=$(free_port)
        B3=$(free_port)
        start_s_server "$B1" "$ver"
        P1=$S_SERVER_PID
        start_s_server "$B2" "$ver"
        P2=$S_SERVER_PID
        openssl s_server -accept "127.0.0.1:$B3" -cert "$WORK/bad.pem" -key "$WORK/bad.key" -www \
            "$ver" >"$WORK/s_server_$B3.log" 2>&1 &
        P3=$!
        PIDS+=("$P3")
        wait_port "$B3"
        BACKEND_PORT=$B1 serve_tls --backend "127.0.0.1:$B2" --backend "127.0.0.1:$B3"
        rm -f "$WORK"/r*.out
        ASKED=0
        for i in $(seq 1 24); do
            ASKED=$i
            ask "r$i" || fail "$ver: request $i through serve failed"
        done
        s_server_reports 2
        for b in "$B1" "$B2"; do
            n=$(grep -c " access .* backend=127.0.0.1:$b .*upstream=" "$WORK/serve.log" || true)
            [ "$n" -ge 4 ] || fail "$ver: backend $b served only $n of $ASKED"
        done
        [ "$(upstream_metric resumed)" -eq $((ASKED - 2)) ] ||
            fail "$ver: serve counted $(upstream_metric resumed) resumed of $ASKED, expected $((ASKED - 2))"
        [ "$(metric 'tlsresume_upstream_resumption_misses_total{reason="refused"}')" -eq 0 ] ||
            fail "$ver: a session was offered to a backend that did not issue it"
        grep -q "backend=127.0.0.1:$B3 error=\"tls: the backend's certificate is refused" "$WORK/serve.log" ||
            fail "$ver: the untrusted backend's refusal was not logged"
        grep -q ' access .*backend=127.0.0.1:'"$B3"' .*upstream=' "$WORK/serve.log" &&
            fail "$ver: a connection was relayed to the untrusted backend"
        stop_serve
        stop_pid "$P1"
        stop_pid "$P2"
        stop_pid "$P3"
    done
    ;;
single_use)
    # A TLS 1.3 ticket is offered once: s_server with -max_early_data keeps a replay register
    # and refuses a ticket it has seen (a full handshake). Clients come 4 at a time, so
    # handshakes with the backend overlap; serve takes a ticket out of its store for each
    # (RFC 8446 C.4) and never offers one twice. nginx (proxy_ssl_session_reuse), run in the
    # same test on the same traffic, offers its last ticket to every overlapping handshake, and
    # the backend refuses the repeats.
    # bursts URL: 6 rounds of 4 parallel requests to URL; the pages in $WORK/r*.out.
    bursts() {
        rm -f "$WORK"/r*.out
        local round k pids pid
        for round in 1 2 3 4 5 6; do
            pids=()
            for k in 1 2 3 4; do
                curl -sk --max-time 20 --http1.1 "$1" >"$WORK/r$round$k.out" &
                pids+=("$!")
            done
            for pid in "${pids[@]}"; do
                wait "$pid" || fail "a request to $1 failed"
            done
        done
        cat "$WORK"/r*.out | grep -c '^New, ' || true
    }
    BACKEND_PORT=$(free_port)
    start_s_server "$BACKEND_PORT" -tls1_3 -max_early_data 16384
    serve_tls
    ours=$(bursts "https://127.0.0.1:$PORT/")
    [ "$(metric 'tlsresume_upstream_resumption_misses_total{reason="refused"}')" -eq 0 ] ||
        fail "serve offered a ticket the backend had already seen"
    stop_serve
    stop_pid "$S_SERVER_PID"
    command -v nginx >/dev/null || fail "nginx is not installed"
    BACKEND_PORT=$(free_port)
    start_s_server "$BACKEND_PORT" -tls1_3 -max_early_data 16384
    NGINX_PORT=$(free_port)
    nginx_stream_conf "$WORK/nginx_su" "$NGINX_PORT" "$BACKEND_PORT" "$WORK/cert.pem" \
        "$WORK/key.pem" 1 "proxy_ssl on;
        proxy_ssl_verify on;
        proxy_ssl_trusted_certificate $WORK/ca.pem;
        proxy_ssl_name backend.test;
        proxy_ssl_protocols TLSv1.3;
        proxy_ssl_session_reuse on;"
    nginx -p "$WORK/nginx_su" -c "$WORK/nginx_su/nginx.conf" -g 'daemon off;' \
        >"$WORK/nginx_su.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_port "$NGINX_PORT"
    theirs=$(bursts "https://127.0.0.1:$NGINX_PORT/")
    echo "full backend handshakes of 24 overlapping: serve $ours, nginx $theirs"
    [ "$ours" -le "$theirs" ] || fail "serve made $ours full backend handshakes, nginx $theirs"
    [ "$theirs" -gt 1 ] || fail "the control: nginx's repeated tickets were not refused ($theirs new of 24)"
    stop_pid "$NGINX_PID"
    stop_pid "$S_SERVER_PID"
    ;;
restart)
    # The backend restarts (its cache and ticket key are gone): the next handshake offers a
    # dead ticket, is full, counted as refused; the ones after resume again. No request fails.
    for ver in -tls1_2 -tls1_3; do
        BACKEND_PORT=$(free_port)
        start_s_server "$BACKEND_PORT" "$ver"
        serve_tls
        rm -f "$WORK"/r*.out
        for i in 1 2 3 4; do ask "r$i" || fail "request $i"; done
        stop_pid "$S_SERVER_PID"
        start_s_server "$BACKEND_PORT" "$ver"
        for i in 5 6 7 8 9 10; do ask "r$i" || fail "request $i after the restart"; done
        ASKED=10
        s_server_reports 2
        grep -q '^New, ' "$WORK/r5.out" || fail "$ver: the first handshake after the restart resumed"
        for i in 6 7 8 9 10; do
            grep -q '^Reused, ' "$WORK/r$i.out" || fail "$ver: request $i after the restart did not resume"
        done
        [ "$(metric 'tlsresume_upstream_resumption_misses_total{reason="refused"}')" -eq 1 ] ||
            fail "$ver: the refused session is not counted"
        grep -q ' upstream=full:refused ' "$WORK/serve.log" || fail "$ver: no full:refused in the access log"
        stop_serve
        stop_pid "$S_SERVER_PID"
    done
    ;;
reload)
    # Sessions are bound to what verified them: a reload that keeps the trust settings keeps
    # resuming; one that changes the CA file never offers a session verified under the old one
    # (a full handshake the backend would have resumed), then resumes under the new.
    BACKEND_PORT=$(free_port)
    start_s_server "$BACKEND_PORT"
    cp "$WORK/ca.pem" "$WORK/bundle.pem"
    start_serve --self-signed --backend-tls --backend-ca "$WORK/bundle.pem"
    reload() {
        local n
        n=$(grep -c 'event=reloaded' "$WORK/serve.log" || true)
        kill -HUP "$SERVE_PID"
        wait_until 10 count_ge "$WORK/serve.log" 'event=reloaded' $((n + 1)) || fail "no reload"
    }
    rm -f "$WORK"/r*.out
    for i in 1 2 3; do ask "r$i" || fail "request $i"; done
    reload
    ask r4 || fail "request 4"
    grep -q '^Reused, ' "$WORK/r4.out" || fail "a reload with the same trust lost the backend's session"
    mk_cert other other "DNS:other" ""
    cat "$WORK/other.pem" >>"$WORK/bundle.pem"
    reload
    ask r5 || fail "request 5"
    grep -q '^New, ' "$WORK/r5.out" || fail "a session verified under the old CA file was offered"
    for i in 6 7; do
        ask "r$i" || fail "request $i"
        grep -q '^Reused, ' "$WORK/r$i.out" || fail "request $i under the new trust did not resume"
    done
    [ "$(metric 'tlsresume_upstream_resumption_misses_total{reason="no_session"}')" -eq 2 ] ||
        fail "expected two full handshakes for want of a session (the start, the new trust)"
    stop_serve
    ;;
verify)
    # A certificate for another name, or from a CA serve does not trust: the backend is
    # refused with a log line that says why, and the client sees a clean close (close_notify,
    # no bytes); the control (the right name and CA) gets its answer.
    BACKEND_PORT=$(free_port)
    start_s_server "$BACKEND_PORT"
    # clean_close: "clean_close" when serve closed with close_notify before any byte,
    # "answer" when bytes came.
    clean_close() {
        python3 "$SRC_DIR/tests/integration/lib/stream_end.py" "$PORT" |
            sed 's/^end=close_notify bytes=0$/clean_close/; s/^end=close_notify bytes=[1-9].*/answer/'
    }
    serve_tls --backend-servername other.test
    [ "$(clean_close)" = clean_close ] || fail "wrong name: not a clean close"
    wait_serve_log "error=\"tls: the backend's certificate is refused: hostname mismatch (name other.test)\""
    [ "$(metric 'tlsresume_upstream_handshake_failures_total{reason="verify"}')" -ge 1 ] || fail "no verify failure counted"
    grep -q ' access .* end=backend_error$' "$WORK/serve.log" || fail "the connection did not end as backend_error"
    stop_serve
    start_serve --self-signed --backend-tls # the system's CAs, which do not hold ours
    [ "$(clean_close)" = clean_close ] || fail "unknown CA: not a clean close"
    wait_serve_log "error=\"tls: the backend's certificate is refused: unable to get local issuer certificate (address 127.0.0.1)\""
    stop_serve
    serve_tls # the control: our CA, the address in the certificate
    [ "$(clean_close)" = answer ] || fail "control: no answer with the right CA and name"
    stop_serve
    start_serve --self-signed --backend-tls --backend-insecure
    wait_serve_log "event=backend_insecure"
    [ "$(clean_close)" = answer ] || fail "--backend-insecure: no answer"
    stop_serve
    ;;
client_cert)
    # A backend that requires a client certificate: refused without --backend-cert (TLS 1.2:
    # in the handshake; TLS 1.3: by the backend's alert after it), served and resumed with it.
    BACKEND_PORT=$(free_port)
    start_s_server "$BACKEND_PORT" -Verify 1 -CAfile "$WORK/ca.pem" -tls1_2
    serve_tls
    ask r1 || true
    grep -q '^Reused\|^New' "$WORK/r1.out" && fail "served without a client certificate"
    wait_serve_log "error=\"tls: handshake with the backend failed"
    stop_serve
    rm -f "$WORK"/r*.out
    serve_tls --backend-cert "$WORK/client.pem" --backend-key "$WORK/client.key"
    both_workers
    s_server_reports 1
    stop_serve
    ;;
alpn)
    # The protocol the client chose with serve is the one offered to the backend (nginx logs
    # what it agreed): HTTP/2 and HTTP/1.1 pass through end to end; a client without ALPN
    # offers the backend none (the control).
    command -v nginx >/dev/null || fail "nginx is not installed"
    BACKEND_PORT=$(free_port)
    dir="$WORK/nginx_alpn"
    nginx_https_conf "$dir" "$BACKEND_PORT" "$WORK/be.pem" "$WORK/be.key" 1 \
        'alpn=$ssl_alpn_protocol. http=$server_protocol' "" http2
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$BACKEND_PORT"
    serve_tls --alpn h2,http/1.1
    for want in "--http2 alpn=h2. http=HTTP/2.0" "--http1.1 alpn=http/1.1. http=HTTP/1.1" \
        "--no-alpn alpn=-. http=HTTP/1.1"; do
        set -- $want
        : >"$dir/access.log"
        curl -sk --max-time 20 "$1" "https://127.0.0.1:$PORT/" >"$WORK/a.out" 2>&1 || fail "curl $1 failed"
        grep -q 'hello from nginx' "$WORK/a.out" || fail "curl $1: no answer"
        wait_until 5 has_line "$dir/access.log" "^$2 $3\$" || fail "curl $1: nginx logged $(cat "$dir/access.log")"
    done
    stop_serve
    ;;
truncation)
    # A backend that ends its stream without close_notify: the client gets every byte and then
    # the same end (no close_notify), never a clean close that would hide a truncation; the
    # control, a backend that sends close_notify, gives the client a clean close.
    for mode in truncate clean; do
        BACKEND_PORT=$(free_port)
        python3 "$SRC_DIR/tests/integration/lib/tls_backend.py" "$BACKEND_PORT" "$WORK/be.pem" \
            "$WORK/be.key" "$mode" >"$WORK/tls_backend.out" 2>&1 &
        pid=$!
        PIDS+=("$pid")
        wait_until 10 has_line "$WORK/tls_backend.out" listening || fail "the TLS backend did not start"
        serve_tls
        python3 "$SRC_DIR/tests/integration/lib/stream_end.py" "$PORT" >"$WORK/end_$mode.out" 2>&1 ||
            fail "$mode: client: $(cat "$WORK/end_$mode.out")"
        want=$([ "$mode" = truncate ] && echo truncated || echo close_notify)
        grep -q "^end=$want bytes=2719$" "$WORK/end_$mode.out" || fail "$mode: the client saw $(cat "$WORK/end_$mode.out")"
        want=$([ "$mode" = truncate ] && echo backend_no_close_notify || echo done)
        wait_serve_log " upstream=full:no_session .* end=$want$"
        stop_serve
        stop_pid "$pid"
    done
    ;;
early_answer)
    # nginx answers a too large upload at once (413, client_max_body_size) while the client is
    # still sending, then closes (close_notify, lingering): the client gets the whole answer
    # through serve as it does from nginx itself (the control), and the upload is dropped.
    command -v nginx >/dev/null || fail "nginx is not installed"
    BACKEND_PORT=$(free_port)
    nginx_https_conf "$WORK/nginx_413" "$BACKEND_PORT" "$WORK/be.pem" "$WORK/be.key" 1 "" \
        "client_max_body_size 1k;"
    # The answer from a location: a server-level return would come before the size check.
    sed -i 's|^\( *\)\(return 200 .*\)$|\1location / { \2 }|' "$WORK/nginx_413/nginx.conf"
    nginx -p "$WORK/nginx_413" -c "$WORK/nginx_413/nginx.conf" -g 'daemon off;' >"$WORK/nginx_413.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$BACKEND_PORT"
    serve_tls
    head -c 8388608 /dev/zero >"$WORK/upload.bin"
    for port in "$BACKEND_PORT" "$PORT"; do
        for i in 1 2 3; do
            code=$(curl -sk --max-time 30 -o "$WORK/answer.out" -w '%{http_code}' --http1.1 \
                -H 'Expect:' --data-binary @"$WORK/upload.bin" "https://127.0.0.1:$port/" || true)
            [ "$code" = 413 ] || fail "port $port (nginx is $BACKEND_PORT), upload $i: the early answer was lost (HTTP $code)"
        done
    done
    # nginx's lingering close sends a FIN without close_notify: serve passes that on as it is.
    wait_until 10 count_ge "$WORK/serve.log" ' access .* end=backend_no_close_notify$' 3 ||
        fail "the connections did not end as nginx ended them"
    stop_serve
    ;;
alpn_mismatch)
    # A client whose ALPN protocol (h2) the backend does not speak: that connection is refused
    # with a line that says so, counted as reason alpn, and the backend is not marked down: the
    # next client (HTTP/1.1) is served at once.
    command -v nginx >/dev/null || fail "nginx is not installed"
    BACKEND_PORT=$(free_port)
    nginx_https_conf "$WORK/nginx_h1" "$BACKEND_PORT" "$WORK/be.pem" "$WORK/be.key" 1 ""
    nginx -p "$WORK/nginx_h1" -c "$WORK/nginx_h1/nginx.conf" -g 'daemon off;' >"$WORK/nginx_h1.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$BACKEND_PORT"
    serve_tls --alpn h2,http/1.1
    curl -sk --max-time 20 --http2 "https://127.0.0.1:$PORT/" >"$WORK/h2.out" 2>&1 && fail "h2 reached a backend without h2"
    wait_serve_log "error=\"tls: the backend does not speak h2, the client's ALPN protocol\""
    [ "$(metric 'tlsresume_upstream_handshake_failures_total{reason="alpn"}')" -eq 1 ] || fail "not counted as alpn"
    curl -sk --max-time 20 --http1.1 "https://127.0.0.1:$PORT/" >"$WORK/h1.out" 2>&1 || fail "HTTP/1.1 after it failed"
    grep -q 'hello from nginx' "$WORK/h1.out" || fail "no answer for HTTP/1.1"
    grep -q 'event=backend_down' "$WORK/serve.log" && fail "the backend was marked down for a client's protocol"
    stop_serve
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
