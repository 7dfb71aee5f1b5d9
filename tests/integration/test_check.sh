#!/usr/bin/env bash
# `tlsresume check` against real servers started here, in configurations where the right
# answer is known. usage: test_check.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$SRC_DIR/scripts/conf.sh"

scenario=${1:?scenario}
make_cert
TLSR="$BUILD_DIR/tlsresume"

# start_s_server PORT ARGS...: openssl s_server (one process, its own cache and keys).
start_s_server() {
    local port=$1
    shift
    openssl s_server -accept "127.0.0.1:$port" -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
        -quiet "$@" </dev/null >"$WORK/s_server_$port.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$port"
}

# run_check OUT EXPECTED_EXIT ARGS...: runs check --json, keeps its output in OUT.out.
run_check() {
    local out=$1 want=$2
    shift 2
    set +e
    timeout 120 "$TLSR" check "$@" >"$WORK/$out.out" 2>"$WORK/$out.log"
    local rc=$?
    set -e
    [ "$rc" -eq "$want" ] || { cat "$WORK/$out.out" "$WORK/$out.log" >&2; fail "$out: exit $rc, expected $want"; }
}

# start_nginx_https PORT "CACHE DIRECTIVES": nginx answering HTTPS, one worker (nginx stores a
# TLS 1.2 session only after its Finished is out, so a client that reconnects at once can reach
# another worker first, seen under load).
start_nginx_https() {
    local dir="$WORK/nginx_$1"
    nginx_https_conf "$dir" "$1" "$WORK/cert.pem" "$WORK/key.pem" 1 "" \
        "ssl_protocols TLSv1.2 TLSv1.3; $2"
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' >"$dir.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$1"
}

# trace_ok REPORT [ARGS]: the ladders of a --trace report are what each handshake must be.
trace_ok() {
    python3 "$SRC_DIR/tests/integration/lib/trace_check.py" "$WORK/$1.out" "${@:2}" \
        >"$WORK/$1.trace" 2>&1
}

case "$scenario" in
s_server_no_ticket)
    port=$(free_port)
    start_s_server "$port" -no_ticket
    run_check r 0 "127.0.0.1:$port" --insecure --json --attempts 4
    expect_field r "r['tls12']['session_id']['resumed']" 4
    expect_field r "r['tls12']['ticket']['supported']" False
    expect_field r "r['tls13']['ticket']['resumed']" 4
    ;;
s_server_no_cache)
    port=$(free_port)
    start_s_server "$port" -no_cache
    run_check r 0 "127.0.0.1:$port" --insecure --json --attempts 4
    expect_field r "r['tls12']['session_id']['supported']" False
    expect_field r "r['tls12']['ticket']['resumed']" 4
    expect_field r "r['tls13']['ticket']['resumed']" 4
    run_check e 1 "127.0.0.1:$port" --insecure --json --attempts 2 --expect id,ticket
    expect_field e "r['expect_failed']" id
    # A server that resumes nothing at all fails the check (it used to pass: nothing supported,
    # so nothing failed).
    none=$(free_port)
    start_s_server "$none" -no_cache -no_ticket -num_tickets 0
    run_check n 1 "127.0.0.1:$none" --insecure --json --attempts 2
    expect_field n "any('no resumption at all' in h for h in r['hints'])" True
    ;;
serve)
    start_backend echo
    # A week-long key period: no scheduled rotation during the test (one key name expected).
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --ticket-rotate 7d
    run_check r 0 "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --servername localhost --json \
        --expect id,ticket,tls13
    expect_field r "r['tls12']['session_id']['resumed']" 5
    expect_field r "r['tls12']['ticket']['resumed']" 5
    expect_field r "r['tls13']['ticket']['resumed']" 5
    expect_field r "r['tls13']['ticket']['single_use']" False
    expect_field r "r['tls13']['ticket']['psk_mode']" psk_dhe_ke
    expect_field r "len(r['tls12']['ticket']['key_names'])" 1
    stop_serve
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --tls13-tickets stateful
    run_check s 0 "127.0.0.1:$PORT" --insecure --json
    expect_field s "r['tls13']['ticket']['single_use']" True
    expect_field s "r['tls12']['ticket']['supported']" False
    stop_serve
    # The table: the same facts for a person.
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    run_check t 0 "127.0.0.1:$PORT" --insecure
    expect t "TLS 1.2 session ID     yes       5/5"
    expect t "result: every supported mechanism resumed"
    stop_serve
    ;;
nginx)
    command -v nginx >/dev/null || fail "nginx is not installed"
    for variant in shared none; do
        port=$(free_port)
        if [ "$variant" = shared ]; then
            start_nginx_https "$port" "ssl_session_cache shared:SSL:1m; ssl_session_tickets on;"
            run_check "n_$variant" 0 "127.0.0.1:$port" --insecure --json
            expect_field "n_$variant" "r['tls12']['session_id']['resumed']" 5
            expect_field "n_$variant" "r['tls12']['ticket']['resumed']" 5
            expect_field "n_$variant" "r['tls13']['ticket']['resumed']" 5
        else
            start_nginx_https "$port" "ssl_session_cache none; ssl_session_tickets off;"
            run_check "n_$variant" 1 "127.0.0.1:$port" --insecure --json
            expect_field "n_$variant" "r['tls12']['session_id']['supported']" True
            expect_field "n_$variant" "r['tls12']['session_id']['resumed']" 0
            expect_field "n_$variant" "any('never resumes' in h for h in r['hints'])" True
        fi
    done
    ;;
browser)
    # TLS 1.3 attempts as browsers make them (each ticket once): a server that sends no ticket
    # after a resumption (serve --resume-tickets 0, the old behaviour) resumes k of N, with the
    # hint that names the cause; serve with renewal and nginx resume every time.
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --resume-tickets 0
    run_check dry 1 "127.0.0.1:$PORT" --insecure --json --attempts 6
    expect_field dry "r['tls13']['ticket']['tickets_after_resumption']" 0
    expect_field dry "r['tls13']['ticket']['resumed']" 4
    expect_field dry "any('resumes 4 of 6 like a browser' in h for h in r['hints'])" True
    expect_field dry "any('load balancer' in h for h in r['hints'])" False
    stop_serve
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    run_check renew 0 "127.0.0.1:$PORT" --insecure --json --attempts 6
    expect_field renew "r['tls13']['ticket']['tickets_after_resumption']" 1
    expect_field renew "r['tls13']['ticket']['resumed']" 6
    stop_serve
    port=$(free_port)
    nginx_stream_conf "$WORK/nginx" "$port" "$BACKEND_PORT" "$WORK/cert.pem" "$WORK/key.pem" 1 \
        "ssl_session_cache shared:S:1m;"
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$port"
    run_check nginx 0 "127.0.0.1:$port" --insecure --json --attempts 6
    expect_field nginx "r['tls13']['ticket']['resumed']" 6
    expect_field nginx "r['tls13']['ticket']['tickets_after_resumption'] >= 1" True
    ;;
balancer)
    # HAProxy round-robin over two s_servers that share nothing: partial, with the hint.
    command -v haproxy >/dev/null || fail "haproxy is not installed"
    a=$(free_port)
    b=$(free_port)
    lb=$(free_port)
    start_s_server "$a"
    start_s_server "$b"
    cat >"$WORK/haproxy.cfg" <<CONF
global
    maxconn 100
defaults
    mode tcp
    timeout connect 2s
    timeout client 10s
    timeout server 10s
frontend fe
    bind 127.0.0.1:$lb
    default_backend be
backend be
    balance roundrobin
    server a 127.0.0.1:$a
    server b 127.0.0.1:$b
CONF
    haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$lb"
    run_check r 1 "127.0.0.1:$lb" --insecure --json --attempts 10
    id=$(field r "r['tls12']['session_id']['resumed']")
    [ "$id" -ge 3 ] && [ "$id" -le 7 ] || fail "session IDs through the balancer: $id of 10"
    expect_field r "any('load balancer' in h for h in r['hints'])" True
    expect_field r "len(r['tls12']['ticket']['key_names']) >= 2" True
    ;;
json_schema)
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    run_check r 0 "127.0.0.1:$PORT" --insecure --json --attempts 2
    python3 "$SRC_DIR/tests/integration/lib/schema_check.py" "$SRC_DIR/docs/check-json.md" \
        "$WORK/r.out" || fail "report does not match docs/check-json.md"
    stop_serve
    ;;
errors)
    closed=$(free_port)
    run_check refused 2 "127.0.0.1:$closed" --insecure
    grep -q "cannot connect to 127.0.0.1:$closed: Connection refused" "$WORK/refused.log" || fail "refused message"
    run_check args 2 "127.0.0.1:$closed" --attempts 0
    grep -q -- "--attempts: 0 is outside 1 to 100" "$WORK/args.log" || fail "args message"
    run_check noargs 2
    # A misspelt option is named as unknown, with the option it may mean; a yes/no flag takes
    # only yes or no; a second target is refused.
    run_check typo 2 "127.0.0.1:$closed" --jsn
    grep -q -- "--jsn: unknown option; did you mean --json?" "$WORK/typo.log" || fail "typo message"
    run_check flagval 2 "127.0.0.1:$closed" --json=maybe
    grep -q -- "--json: expected yes or no, got 'maybe'" "$WORK/flagval.log" || fail "flag value message"
    run_check twotargets 2 "127.0.0.1:$closed" "127.0.0.2:$closed"
    grep -q -- "one server at a time" "$WORK/twotargets.log" || fail "two targets message"
    run_check badport 2 "127.0.0.1:99999"
    grep -q -- "127.0.0.1:99999: expected HOST\[:PORT\], a port of 1 to 65535" "$WORK/badport.log" ||
        fail "port range message"
    # A listener that never answers: the handshake times out, no hang.
    silent=$(free_port)
    python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$silent)); s.listen(8); time.sleep(60)" &
    PIDS+=("$!")
    wait_port "$silent"
    run_check slow 2 "127.0.0.1:$silent" --insecure --timeout 500
    grep -q "timed out after 500 ms" "$WORK/slow.log" || fail "timeout message"
    # Plain TCP, not TLS: a clear handshake failure.
    start_backend echo
    run_check plain 2 "127.0.0.1:$BACKEND_PORT" --insecure --timeout 2000
    grep -q "TLS handshake" "$WORK/plain.log" || fail "non-TLS message"
    # The wrong name: verification fails and says so.
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    run_check name 2 "127.0.0.1:$PORT" --ca "$WORK/cert.pem" --servername wrong.example
    grep -q "certificate verify failed: hostname mismatch" "$WORK/name.log" || fail "name message"
    stop_serve
    # The program's own flags: --version as the version command; an unknown command named.
    for v in version --version -V; do
        "$BUILD_DIR/tlsresume" "$v" >"$WORK/v.out" 2>&1 || fail "tlsresume $v failed"
        grep -q "^tlsresume [0-9]" "$WORK/v.out" || fail "tlsresume $v: $(cat "$WORK/v.out")"
    done
    set +e
    "$BUILD_DIR/tlsresume" --bogus >"$WORK/bogus.out" 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] && grep -q "unknown command '--bogus'" "$WORK/bogus.out" || fail "unknown command: $rc"
    ;;
session_file)
    # Two invocations: the second resumes the session the first saved.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    run_check one 0 "127.0.0.1:$PORT" --insecure --json --attempts 1 --session-file "$WORK/sessions"
    expect_field one "r['session_file']['offered']" False
    [ "$(stat -c %a "$WORK/sessions")" = 600 ] || fail "session file mode"
    run_check two 0 "127.0.0.1:$PORT" --insecure --json --attempts 1 --session-file "$WORK/sessions"
    expect_field two "r['session_file']['offered']" True
    expect_field two "r['session_file']['resumed']" True
    echo "this is not a session file" >"$WORK/sessions"
    run_check bad 0 "127.0.0.1:$PORT" --insecure --attempts 1 --session-file "$WORK/sessions"
    expect bad "session file: $WORK/sessions:1: not a tlsresume session file"
    stop_serve
    ;;
trace)
    # --trace: the ladders of serve (with 0-RTT) and nginx as RFC 5246 and RFC 8446 draw them,
    # what resumption saved, and serve no worse than nginx on round trips and messages. The
    # control: a server that resumes nothing fails the same checks.
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --early-data \
        --early-data-window 10s
    sleep 11 # 0-RTT is refused for the window after start (docs/EARLY_DATA.md)
    run_check s 0 "127.0.0.1:$PORT" --insecure --json --trace --attempts 2 --early-data
    trace_ok s --early || { cat "$WORK/s.trace" >&2; fail "serve's ladders"; }
    python3 "$SRC_DIR/tests/integration/lib/schema_check.py" "$SRC_DIR/docs/check-json.md" \
        "$WORK/s.out" || fail "a --trace report does not match docs/check-json.md"
    run_check t 0 "127.0.0.1:$PORT" --insecure --trace --attempts 1
    expect t "TLS 1.2 session ID #1: TLSv1.2 resumed"
    expect t "== handshake complete: 1 round trip, 6 messages"
    expect t "What resumption saved"
    stop_serve
    port=$(free_port)
    start_nginx_https "$port" "ssl_session_cache shared:SSL:1m; ssl_session_tickets on;"
    run_check n 0 "127.0.0.1:$port" --insecure --json --trace --attempts 2
    trace_ok n || { cat "$WORK/n.trace" >&2; fail "nginx's ladders"; }
    python3 - "$WORK/s.out" "$WORK/n.out" <<'PY' || fail "serve resumes with more than nginx"
import json, sys
ours, ref = (
    {s["version"]: s["resumed"] for s in json.load(open(p))["trace"]["saved"]} for p in sys.argv[1:])
for v in ("TLSv1.2", "TLSv1.3"):
    for k in ("round_trips", "messages"):
        print(v, k, ours[v][k], ref[v][k])
        assert ours[v][k] <= ref[v][k], (v, k)
PY
    c_port=$(free_port)
    start_nginx_https "$c_port" "ssl_session_cache none; ssl_session_tickets off;"
    run_check c 1 "127.0.0.1:$c_port" --insecure --json --trace --attempts 2
    trace_ok c && fail "control: the ladders of a server that never resumes passed"
    grep -q "TLS 1.2 session ID: no resumed handshake traced" "$WORK/c.trace" ||
        fail "control: $(cat "$WORK/c.trace")"
    run_check w 2 "127.0.0.1:$c_port" --trace --watch 5s
    grep -q -- "--trace shows the connections of one check" "$WORK/w.log" || fail "--trace --watch"
    ;;
keylog)
    # --keylog: tshark decrypts a capture of a check with the file (the TLS 1.3 handshake
    # messages and the HTTP request sent as early data); without it, it cannot (the control).
    command -v tshark >/dev/null && command -v tcpdump >/dev/null || fail "tshark, tcpdump missing"
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --early-data \
        --early-data-window 10s
    tcpdump -i lo -U -w "$WORK/cap.pcap" "tcp port $PORT" >"$WORK/tcpdump.log" 2>&1 &
    dump_pid=$!
    PIDS+=("$dump_pid")
    wait_until 10 has_line "$WORK/tcpdump.log" "listening on" || fail "tcpdump did not start"
    sleep 11 # past serve's 0-RTT window
    run_check k 0 "127.0.0.1:$PORT" --insecure --json --attempts 1 --early-data \
        --keylog "$WORK/keys.txt"
    sleep 1
    kill "$dump_pid"
    wait "$dump_pid" 2>/dev/null || true
    [ "$(stat -c %a "$WORK/keys.txt")" = 600 ] || fail "key log mode $(stat -c %a "$WORK/keys.txt")"
    grep -q "^CLIENT_RANDOM " "$WORK/keys.txt" || fail "no TLS 1.2 secret logged"
    grep -q "^CLIENT_HANDSHAKE_TRAFFIC_SECRET " "$WORK/keys.txt" || fail "no TLS 1.3 secret logged"
    grep -q "^CLIENT_EARLY_TRAFFIC_SECRET " "$WORK/keys.txt" || fail "no 0-RTT secret logged"
    decode() { # FILTER [KEYLOG]: how many packets of the capture tshark finds with FILTER
        tshark -n -r "$WORK/cap.pcap" -d "tcp.port==$PORT,tls" ${2:+-o "tls.keylog_file:$2"} \
            -Y "$1" 2>/dev/null | wc -l
    }
    ee=$(decode "tls.handshake.type == 8" "$WORK/keys.txt")
    http=$(decode 'http.request.method == "HEAD"' "$WORK/keys.txt")
    echo "with the key log: $ee EncryptedExtensions, $http HEAD requests"
    [ "$ee" -ge 1 ] && [ "$http" -ge 1 ] || fail "tshark did not decrypt with the key log"
    [ "$(decode "tls.handshake.type == 8")" = 0 ] && [ "$(decode 'http.request')" = 0 ] ||
        fail "control: tshark saw inside without the key log"
    stop_serve
    # A key log others can read is refused, and so is a symbolic link; nothing is written.
    closed=$(free_port)
    touch "$WORK/open.txt"
    chmod 644 "$WORK/open.txt"
    run_check open 2 "127.0.0.1:$closed" --keylog "$WORK/open.txt"
    grep -q -- "--keylog $WORK/open.txt: mode 644" "$WORK/open.log" || fail "$(cat "$WORK/open.log")"
    ln -s "$WORK/keys.txt" "$WORK/link.txt"
    run_check link 2 "127.0.0.1:$closed" --keylog "$WORK/link.txt"
    grep -q "is a symbolic link" "$WORK/link.log" || fail "$(cat "$WORK/link.log")"
    ;;
watch)
    # Keys rotated during the watch: the rotation is observed and old tickets still resume.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --ticket-rotate 7d
    timeout 60 "$TLSR" check "127.0.0.1:$PORT" --insecure --watch 6s --interval 1s \
        >"$WORK/watch.out" 2>&1 &
    watch_pid=$!
    PIDS+=("$watch_pid")
    wait_until 10 has_line "$WORK/watch.out" '^t=' || true
    kill -USR1 "$SERVE_PID"
    wait "$watch_pid" || fail "watch exit status"
    expect watch "1 rotations observed, old tickets resumed"
    grep -q "old=.*:resumed" "$WORK/watch.out" || fail "old ticket did not resume"
    grep -q "old=.*:full" "$WORK/watch.out" && fail "an old ticket failed"
    stop_serve
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
