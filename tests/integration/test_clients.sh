#!/usr/bin/env bash
# Resumption as real clients see it: Chromium, Java JSSE, curl, Python, Node, gnutls-cli and
# openssl s_client against `tlsresume serve` and, in the same run, nginx 1.22 (stream module,
# shared session cache, tickets) on the same certificate and backend. Each server's own log
# counts the resumed connections; serve must resume at least as often as nginx, every offer of a
# valid session must resume, and serve's accounting must hold: offered = resumed + failures.
# usage: test_clients.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$SRC_DIR/scripts/conf.sh"

scenario=${1:?scenario}
LIB="$SRC_DIR/tests/integration/lib"
make_cert

# start_nginx [LINES]: the reference, nginx's stream module on NGINX_PORT in front of the same
# backend, two workers, logging "PROTOCOL reused=r|." per connection to $WORK/nginx/access.log.
start_nginx() {
    command -v nginx >/dev/null || fail "nginx is not installed"
    NGINX_PORT=$(free_port)
    nginx_stream_conf "$WORK/nginx" "$NGINX_PORT" "$BACKEND_PORT" "$WORK/cert.pem" \
        "$WORK/key.pem" 2 "${1:-ssl_session_cache shared:S:1m;} access_log $WORK/nginx/access.log tlsr;"
    sed -i "s|^stream {|stream {\n    log_format tlsr '\$ssl_protocol reused=\$ssl_session_reused';|" \
        "$WORK/nginx/nginx.conf"
    case "${1:-}" in *ssl_session_tickets*) sed -i '/ssl_session_tickets on;/d' "$WORK/nginx/nginx.conf" ;; esac
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$NGINX_PORT"
}

# Resumed connections in each server's own log since the last mark_logs.
mark_logs() {
    SERVE_MARK=$(wc -l <"$WORK/serve.log")
    NGINX_MARK=$(wc -l <"$WORK/nginx/access.log" 2>/dev/null || echo 0)
}
serve_resumed() {
    tail -n +"$((SERVE_MARK + 1))" "$WORK/serve.log" | grep -c ' access .*resumed=\(id\|ticket\|psk\) ' || true
}
serve_conns() {
    tail -n +"$((SERVE_MARK + 1))" "$WORK/serve.log" | grep -c ' access .*resumed=' || true
}
nginx_resumed() {
    tail -n +"$((NGINX_MARK + 1))" "$WORK/nginx/access.log" | grep -c 'reused=r' || true
}
nginx_conns() {
    tail -n +"$((NGINX_MARK + 1))" "$WORK/nginx/access.log" | wc -l
}

# compare WHAT [SLACK]: serve resumed at least as often as nginx (both logs since mark_logs),
# less SLACK connections that the client's own timing decides (Chromium sometimes opens a second
# socket before the first connection's tickets arrive); prints the row of the results table.
compare() {
    local s n sc nc
    s=$(serve_resumed)
    n=$(nginx_resumed)
    sc=$(serve_conns)
    nc=$(nginx_conns)
    echo "result: $1: serve resumed $s of $sc, nginx resumed $n of $nc"
    [ "$s" -ge $((n - ${2:-0})) ] || fail "$1: serve resumed $s of $sc, fewer than nginx ($n of $nc)"
}

# expect_fewer [SLACK]: the control of compare: serve without TLS 1.3 renewal resumes fewer than
# nginx, by more than the SLACK compare allows.
expect_fewer() {
    local s n
    s=$(serve_resumed)
    n=$(nginx_resumed)
    echo "control: serve resumed $s, nginx $n"
    [ "$s" -lt $((n - ${1:-0})) ] || fail "control: without renewal serve still resumed $s (nginx $n)"
}

# accounting: the accounting adds up (accounting_holds), and no offer of a valid session missed.
accounting() {
    accounting_holds
    echo "accounting: offered $OFFERED = resumed $RESUMED + failures $FAILURES"
    [ "$OFFERED" -gt 0 ] || fail "accounting: no client offered a session"
    [ "$FAILURES" -eq 0 ] || fail "accounting: $FAILURES offered sessions did not resume"
}

CHROMIUM_FLAGS=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
    --disable-background-networking --disable-component-update --disable-sync
    --ignore-certificate-errors --virtual-time-budget=20000 --dump-dom)

# chromium PORT: loads the page (ten resources fetched in turn, each on a new connection).
chromium_page() {
    command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh test)"
    rm -rf "$WORK/chromium"
    timeout 90 chromium "${CHROMIUM_FLAGS[@]}" --user-data-dir="$WORK/chromium" \
        "https://localhost:$1/" >"$WORK/page.out" 2>"$WORK/chromium.log" || true
    grep -q 'fetched 10' "$WORK/page.out" || fail "chromium did not fetch the 10 resources"
}

# java_client PORT VERSION N [JVM_OPTION...]: N connections from one SSLContext.
java_client() {
    command -v java >/dev/null || fail "java is not installed (scripts/deps.sh test)"
    timeout 120 java "${@:4}" "$LIB/JavaClient.java" localhost "$1" "$2" "$3" >"$WORK/java.out" \
        2>&1 || fail "java client failed"
    expect java "answers=$3"
}

# sclient_port PORT OUT ARGS...: one s_client connection sending one HTTP request.
sclient_port() {
    local port=$1 out=$2
    shift 2
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$port" \
        -servername localhost -ign_eof "$@" >"$WORK/$out.out" 2>&1 || true
    grep -q 'hello from the backend' "$WORK/$out.out" || fail "$out: no answer from the backend"
}

# both CLIENT ARGS...: runs CLIENT against serve, then nginx (CLIENT takes the port first).
both() {
    local what=$1
    shift
    mark_logs
    "$@" "$PORT"
    "$@" "$NGINX_PORT"
    compare "$what"
}

# start_pair BACKEND_MODE: the backend, serve (without TLS 1.3 renewal in a *_control scenario)
# and the nginx reference.
start_pair() {
    start_backend "$1"
    local extra=()
    case "$scenario" in *_control) extra=(--resume-tickets 0) ;; esac
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" "${extra[@]}"
    start_nginx
}

case "$scenario" in
chromium | chromium_control)
    start_pair page
    mark_logs
    chromium_page "$PORT"
    chromium_page "$NGINX_PORT"
    if [ "$scenario" = chromium ]; then
        compare "Chromium, 11 connections" 1
        accounting # and every ticket Chromium offered resumed
    else
        # Without renewal Chromium runs out of tickets: the comparison must fail.
        expect_fewer 1
    fi
    stop_serve
    ;;
java | java_control)
    start_pair http
    if [ "$scenario" = java ]; then
        for v in TLSv1.3 TLSv1.2; do
            mark_logs
            java_client "$PORT" "$v" 6
            java_client "$NGINX_PORT" "$v" 6
            compare "Java 17 $v, 6 connections"
            [ "$(serve_resumed)" -eq 5 ] || fail "Java $v: serve resumed $(serve_resumed) of 6"
        done
        accounting
    else
        mark_logs
        java_client "$PORT" TLSv1.3 6
        java_client "$NGINX_PORT" TLSv1.3 6
        expect_fewer
    fi
    stop_serve
    ;;
curl)
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    start_nginx
    curl_urls() {
        local p=$1 u=() i
        for i in 1 2 3 4; do u+=("https://localhost:$p/u$i"); done
        timeout 30 curl -sk "${CURL_TLS[@]}" "${u[@]}" >"$WORK/curl.out" 2>&1 || fail "curl"
        [ "$(grep -c 'hello from the backend' "$WORK/curl.out")" -eq 4 ] || fail "curl: answers"
    }
    for v in 1.3 1.2; do
        CURL_TLS=(--tlsv1.3)
        [ $v = 1.2 ] && CURL_TLS=(--tlsv1.2 --tls-max 1.2)
        both "curl TLS $v, 4 URLs in one run" curl_urls
        [ "$(serve_resumed)" -eq 3 ] || fail "curl TLS $v: serve resumed $(serve_resumed) of 4"
    done
    accounting
    stop_serve
    ;;
python | python_control)
    start_backend http
    if [ "$scenario" = python_control ]; then
        # The feature off: nginx with no cache and no tickets. The same client must report it.
        start_nginx "ssl_session_cache off; ssl_session_tickets off;"
        if python3 "$LIB/abrupt.py" "$NGINX_PORT" 1.2 close 5 >"$WORK/py.out" 2>&1; then
            fail "control: a server that keeps no session passed"
        fi
        expect py "resumed=0"
        exit 0
    fi
    for mode in ids tickets; do
        flags=(--cert "$WORK/cert.pem" --key "$WORK/key.pem")
        [ $mode = ids ] && flags+=(--no-tickets)
        start_serve "${flags[@]}"
        nginx_lines="ssl_session_cache shared:S:1m;"
        [ $mode = ids ] && nginx_lines="ssl_session_cache shared:S:1m; ssl_session_tickets off;"
        start_nginx "$nginx_lines"
        versions="1.2"
        [ $mode = tickets ] && versions="1.2 1.3"
        for v in $versions; do
            for b in close reset reset_mid unread quick; do
                mark_logs
                python3 "$LIB/abrupt.py" "$PORT" "$v" "$b" 30 >"$WORK/py.out" 2>&1 ||
                    fail "python TLS $v $mode $b: $(cat "$WORK/py.out")"
                python3 "$LIB/abrupt.py" "$NGINX_PORT" "$v" "$b" 30 >"$WORK/pyn.out" 2>&1 || true
                compare "Python TLS $v $mode, $b, 30 offers"
            done
        done
        accounting
        [ $mode = tickets ] || expect_metric_ge tlsresume_cache_inserts_total 1
        stop_serve
        kill "${PIDS[-1]}"
    done
    ;;
node)
    command -v node >/dev/null || fail "node is not installed"
    start_backend echo # answers the agent's GETs, and echoes nodeclient.js's line
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    start_nginx
    for v in TLSv1.2 TLSv1.3; do
        agent() { timeout 60 node "$LIB/nodeagent.js" "$1" "$v" 6 >"$WORK/node.out" 2>&1 || fail "node agent $v"; }
        both "Node https.Agent $v, 6 requests" agent
        [ "$(serve_resumed)" -eq 5 ] || fail "Node $v: serve resumed $(serve_resumed) of 6"
        tlsc() { timeout 30 node "$LIB/nodeclient.js" "$1" "$v" >"$WORK/nodet.out" 2>&1 || fail "node tls $v"; }
        both "Node tls $v" tlsc
    done
    accounting
    stop_serve
    ;;
gnutls)
    command -v gnutls-cli >/dev/null || fail "gnutls-cli is not installed"
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    start_nginx
    for prio in "NORMAL:-VERS-ALL:+VERS-TLS1.2" "NORMAL:-VERS-ALL:+VERS-TLS1.3"; do
        g() {
            echo hi | timeout 30 gnutls-cli --insecure --resume --priority "$prio" -p "$1" \
                127.0.0.1 >"$WORK/gnutls.out" 2>&1 || true
            expect gnutls "This is a resumed session"
        }
        both "gnutls-cli --resume $prio" g
    done
    accounting
    stop_serve
    ;;
s_client)
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    start_nginx
    rc() {
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$1" \
            -tls1_2 -reconnect >"$WORK/rc.out" 2>&1 || true
    }
    both "s_client -reconnect TLS 1.2" rc
    [ "$(serve_resumed)" -eq 5 ] || fail "s_client: serve resumed $(serve_resumed) of 6"
    # TLS 1.3 as browsers do: each connection offers the newest ticket, once.
    chain13() {
        local p=$1 i
        sclient_port "$p" c0 -sess_out "$WORK/s0"
        for i in 1 2 3 4 5; do
            sclient_port "$p" "c$i" -sess_in "$WORK/s$((i - 1))" -sess_out "$WORK/s$i"
        done
    }
    both "s_client TLS 1.3, each ticket once" chain13
    [ "$(serve_resumed)" -eq 5 ] || fail "s_client TLS 1.3: serve resumed $(serve_resumed) of 6"
    accounting
    stop_serve
    ;;
dual_cert | dual_cert_control)
    # An RSA and an ECDSA certificate for the same name, as nginx serves them with two
    # ssl_certificate lines (its reference in the same run): a client that can verify only one
    # kind gets that one, by its signature algorithms (TLS 1.3) or its cipher (TLS 1.2), and
    # resumes; Chromium and Java connect. The control serves the ECDSA certificate alone: the
    # RSA-only client is refused.
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost -keyout "$WORK/rsa.key" -out "$WORK/rsa.pem" \
        >/dev/null 2>&1 || fail "openssl req rsa"
    start_backend page
    certs=(--cert "$WORK/cert.pem" --key "$WORK/key.pem")
    [ "$scenario" = dual_cert ] && certs+=(--cert "$WORK/rsa.pem" --key "$WORK/rsa.key")
    start_serve "${certs[@]}"
    start_nginx "ssl_session_cache shared:S:1m; ssl_certificate $WORK/rsa.pem; ssl_certificate_key $WORK/rsa.key;"
    # kind PORT VERSION ARGS...: the key size of the certificate the server presented, and
    # whether a second connection with the first one's session resumed.
    kind() {
        local port=$1 v=$2
        shift 2
        sclient_port "$port" k1 "$v" "$@" -sess_out "$WORK/k.sess"
        sclient_port "$port" k2 "$v" "$@" -sess_in "$WORK/k.sess"
        echo "$(sed -n 's/^Server public key is \([0-9]*\) bit/\1/p' "$WORK/k1.out" | head -n1)" \
            "$(grep -c '^Reused, ' "$WORK/k2.out")"
    }
    rsa13=(-sigalgs rsa_pss_rsae_sha256:rsa_pkcs1_sha256)
    ec13=(-sigalgs ecdsa_secp256r1_sha256)
    rsa12=(-cipher ECDHE-RSA-AES128-GCM-SHA256)
    ec12=(-cipher ECDHE-ECDSA-AES128-GCM-SHA256)
    if [ "$scenario" = dual_cert_control ]; then
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" \
            -tls1_3 "${rsa13[@]}" >"$WORK/only_ec.out" 2>&1 || true
        grep -q 'hello from the backend' "$WORK/only_ec.out" && fail "control: an RSA-only client was served by the ECDSA certificate alone"
        grep -q '^Server public key is 2048 bit' "$WORK/only_ec.out" && fail "control: an RSA key without an RSA certificate"
        [ "$(kind "$NGINX_PORT" -tls1_3 "${rsa13[@]}")" = "2048 1" ] || fail "control: nginx did not serve RSA"
        stop_serve
        exit 0
    fi
    for port in "$PORT" "$NGINX_PORT"; do
        [ "$(kind "$port" -tls1_3 "${rsa13[@]}")" = "2048 1" ] || fail "$port TLS 1.3 RSA-only client: $(kind "$port" -tls1_3 "${rsa13[@]}")"
        [ "$(kind "$port" -tls1_3 "${ec13[@]}")" = "256 1" ] || fail "$port TLS 1.3 ECDSA-only client: $(kind "$port" -tls1_3 "${ec13[@]}")"
        [ "$(kind "$port" -tls1_2 "${rsa12[@]}")" = "2048 1" ] || fail "$port TLS 1.2 ECDHE-RSA client: $(kind "$port" -tls1_2 "${rsa12[@]}")"
        [ "$(kind "$port" -tls1_2 "${ec12[@]}")" = "256 1" ] || fail "$port TLS 1.2 ECDHE-ECDSA client: $(kind "$port" -tls1_2 "${ec12[@]}")"
    done
    echo "result: RSA and ECDSA clients get their certificate and resume, on serve as on nginx"
    mark_logs
    chromium_page "$PORT"
    chromium_page "$NGINX_PORT"
    compare "Chromium, two certificates" 1
    mark_logs
    java_client "$PORT" TLSv1.3 6
    java_client "$NGINX_PORT" TLSv1.3 6
    compare "Java 17, two certificates"
    # Java limited to RSA signatures (as a client without ECDSA support): the RSA certificate,
    # and it resumes as well.
    mark_logs
    for port in "$PORT" "$NGINX_PORT"; do
        java_client "$port" TLSv1.3 6 -Djdk.tls.client.SignatureSchemes=rsa_pss_rsae_sha256,rsa_pkcs1_sha256
        [ "$(grep -c '^key=RSA$' "$WORK/java.out")" -eq 6 ] ||
            fail "$port: Java limited to RSA got $(grep '^key=' "$WORK/java.out" | sort | uniq -c)"
    done
    compare "Java 17 limited to RSA signatures, two certificates"
    accounting
    stop_serve
    ;;
s_time)
    # openssl s_time -www: each connection sends a GET, reads the answer to the server's close,
    # and closes with a reset (SO_LINGER 0) instead of a close_notify. After our close_notify,
    # with everything delivered, that is the end of a connection, not a proxy error.
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    start_nginx
    for v in 1_2 1_3; do
        st() {
            timeout 30 openssl s_time -connect "127.0.0.1:$1" -www / -time 1 -reuse "-tls$v" \
                >"$WORK/st$1.out" 2>&1 || fail "s_time TLS $v against port $1 failed"
            grep -q ' connections in ' "$WORK/st$1.out" || fail "s_time TLS $v: no connection"
            ! grep -q '^[r*]*\*' "$WORK/st$1.out" || fail "s_time TLS $v: a session was not reused"
        }
        # Counted in fractions: s_time runs for a time, and serve is under ASan here.
        mark_logs
        st "$PORT"
        st "$NGINX_PORT"
        echo "result: s_time -reuse TLS $v: serve resumed $(serve_resumed) of $(serve_conns)," \
            "nginx $(nginx_resumed) of $(nginx_conns)"
        [ "$(nginx_resumed)" -eq $(($(nginx_conns) - 1)) ] || fail "s_time TLS $v: nginx missed"
        [ "$(serve_resumed)" -eq $(($(serve_conns) - 1)) ] ||
            fail "s_time TLS $v: serve resumed $(serve_resumed) of $(serve_conns)"
        ends=$(tail -n +"$((SERVE_MARK + 1))" "$WORK/serve.log" | grep ' access ' | grep -vc ' end=done$' || true)
        [ "$ends" -eq 0 ] || fail "s_time TLS $v: $ends connections did not end as done"
    done
    metric_is 'tlsresume_errors_total{kind="proxy_io"}' 0 || fail "s_time's resets counted as proxy errors"
    accounting
    stop_serve
    ;;
backend_faults)
    # A backend that refuses, resets or answers slowly ends the connection after a finished
    # handshake; the session must stay.
    for mode in refuse reset slow; do
        if [ $mode = refuse ]; then
            BACKEND_PORT=$(free_port) # nothing listens there
        else
            start_backend "$mode"
        fi
        start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --no-tickets \
            --backend-connect-timeout 2s --idle-timeout 1s
        start_nginx "ssl_session_cache shared:S:1m; ssl_session_tickets off;"
        mark_logs
        for p in "$PORT" "$NGINX_PORT"; do
            python3 "$LIB/abrupt.py" "$p" 1.2 unread 10 >"$WORK/py.out" 2>&1 || true
        done
        compare "backend $mode, 10 offers"
        [ "$(serve_resumed)" -eq 11 ] || fail "backend $mode: serve resumed $(serve_resumed) of 12"
        accounting
        stop_serve
        kill "${PIDS[-1]}"
        [ $mode = refuse ] || kill "$BACKEND_PID"
    done
    ;;
fleet)
    # Three servers on one Redis behind HAProxy round robin, the default Redis timeout: every
    # offer resumes whichever server it reaches, and nothing is deleted from Redis.
    command -v haproxy >/dev/null || fail "haproxy is not installed"
    start_backend http
    start_local_redis
    for mode in ids tickets; do
        ports=()
        admins=()
        pids=()
        flags=()
        [ $mode = ids ] && flags=(--no-tickets)
        for i in 1 2 3; do
            p=$(free_port)
            a=$(free_port)
            "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$p" --admin "127.0.0.1:$a" \
                --backend "127.0.0.1:$BACKEND_PORT" --workers 2 --access-log \
                --cert "$WORK/cert.pem" --key "$WORK/key.pem" "${flags[@]}" \
                --redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key" \
                --redis-prefix "$mode:" >"$WORK/serve$i.out" 2>"$WORK/serve$mode$i.log" &
            PIDS+=("$!")
            pids+=("$!")
            ports+=("$p")
            admins+=("$a")
        done
        for i in 1 2 3; do
            wait_grep "$WORK/serve$mode$i.log" "event=started" "server $i did not start"
            # Both workers' connections to Redis are up before the first lookup.
            wait_until 15 count_ge "$WORK/serve$mode$i.log" 'event=redis_up part=cache' 2 || true
            [ "$(grep -c 'event=redis_up part=cache' "$WORK/serve$mode$i.log")" -ge 2 ] ||
                fail "server $i: the workers never reached Redis"
            [ $mode = tickets ] || continue # no tickets: no key ring to join
            # Workers start only once the ring holds the fleet's keys: the join comes first,
            # well within the wait.
            wait_grep "$WORK/serve$mode$i.log" "event=joined_fleet_ring\|event=key_encrypting\|event=join_timeout" \
                "server $i neither joined nor gave up" "${pids[$((i - 1))]}"
            ! grep -q "event=join_timeout" "$WORK/serve$mode$i.log" ||
                fail "server $i did not join the ring in time"
        done
        lb=$(free_port)
        {
            printf 'global\n    maxconn 200\n'
            haproxy_defaults
            printf 'frontend fe\n    bind 127.0.0.1:%s\n    default_backend be\n' "$lb"
            printf 'backend be\n    balance roundrobin\n'
            for i in 1 2 3; do printf '    server s%s 127.0.0.1:%s\n' "$i" "${ports[$((i - 1))]}"; done
        } >"$WORK/haproxy.cfg"
        haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
        PIDS+=("$!")
        pids+=("$!")
        wait_port "$lb"
        versions="1.2"
        [ $mode = tickets ] && versions="1.2 1.3"
        for v in $versions; do
            for b in close reset quick; do
                python3 "$LIB/abrupt.py" "$lb" "$v" "$b" 30 >"$WORK/py.out" 2>&1 ||
                    fail "fleet TLS $v $mode $b: $(cat "$WORK/py.out")"
                echo "result: fleet of 3, TLS $v $mode, $b: $(cat "$WORK/py.out")"
            done
        done
        for i in 1 2 3; do
            ADMIN_PORT=${admins[$((i - 1))]}
            accounting
            [ "$(metric 'tlsresume_fleet_cache_removed_total')" -eq 0 ] ||
                fail "server $i deleted sessions from Redis"
            # No ticket under a key of this server alone.
            awk '$1 ~ /^tlsresume_ticket_key_issued_total\{.*origin="local"/ && $2 > 0 { bad = 1 }
                END { exit bad }' "$WORK/metrics.out" || fail "server $i issued tickets under a local key"
        done
        for pid in "${pids[@]}"; do
            kill -TERM "$pid"
            wait "$pid" || true
        done
        if grep -qE "AddressSanitizer|runtime error|LeakSanitizer|event=worker_died" "$WORK"/serve"$mode"*.log; then
            fail "a fleet server crashed or reported a sanitizer error"
        fi
    done
    ;;
fleet_join_control)
    # The control of the start-up check: with Redis unreachable the workers start after the
    # join wait on local keys, and the metric the fleet scenario reads shows them.
    start_backend http
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
        --redis "redis://127.0.0.1:$(free_port)" --fleet-key "$WORK/fleet.key"
    wait_serve_log "event=join_timeout"
    sclient_port "$PORT" one -tls1_3
    metric x >/dev/null || true
    awk '$1 ~ /^tlsresume_ticket_key_issued_total\{.*origin="local"/ && $2 > 0 { found = 1 }
        END { exit !found }' "$WORK/metrics.out" || fail "control: no ticket under a local key"
    stop_serve
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
