#!/usr/bin/env bash
# `tlsresume serve` with real clients over loopback, two workers, checked by each client's own
# report and by /metrics. usage: test_serve.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/secrets.sh"

scenario=${1:?scenario}
CLIENT="$SRC_DIR/tests/integration/lib/tlsclient.py"
make_cert

# ask_backend PORT SRC [pieces]: a TLS request from the address SRC to PORT; prints our own
# port and the backend's answer. With "pieces", PORT is serve itself (accept_proxy) and the
# client first sends a PROXY v2 header of its own, in three writes.
ask_backend() {
    python3 - "$@" <<'PY'
import socket, ssl, struct, sys, time
port = int(sys.argv[1])
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.socket()
raw.bind((sys.argv[2], 0))
raw.connect(("127.0.0.1", port))
raw.settimeout(10)
own = raw.getsockname()[1]
if len(sys.argv) > 3:
    addrs = socket.inet_aton(sys.argv[2]) + socket.inet_aton("127.0.0.1")
    body = addrs + struct.pack("!HH", own, port) + b"\x03\x00\x04abcd"  # and a TLV to skip
    header = b"\r\n\r\n\x00\r\nQUIT\n" + b"\x21\x11" + struct.pack("!H", len(body)) + body
    for piece in (header[:5], header[5:14], header[14:]):
        raw.sendall(piece)
        time.sleep(0.2)
with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
    tls.sendall(b"GET / HTTP/1.0\r\n\r\n")
    answer = b""
    while True:
        data = tls.recv(4096)
        if not data:
            break
        answer += data
print("own_port=%d" % own)
print(answer.decode(errors="replace"))
PY
}

# three_servers_resume PORT1 PORT2 PORT3: a TLS 1.2 session ID (through the fleet's session
# cache), a TLS 1.2 ticket and a TLS 1.3 ticket (through its key ring) made on the first server
# resume on the second; on the third, which cannot reach Redis, they are full handshakes.
three_servers_resume() {
    local v opt
    for v in 2id 2 3; do
        opt=()
        [ "$v" = 2id ] && opt=(-no_ticket)
        PORT=$1
        sclient "first$v" "-tls1_${v:0:1}" "${opt[@]}" -sess_out "$WORK/sess$v"
        PORT=$2
        sclient "other$v" "-tls1_${v:0:1}" "${opt[@]}" -sess_in "$WORK/sess$v"
        expect "other$v" "Reused, TLSv1.${v:0:1}"
        PORT=$3
        sclient "wrong$v" "-tls1_${v:0:1}" "${opt[@]}" -sess_in "$WORK/sess$v"
        expect "wrong$v" "New, TLSv1.${v:0:1}"
    done
}

case "$scenario" in
s_client_tls12)
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --no-tickets
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" \
        -tls1_2 -reconnect >"$WORK/ids.out" 2>&1 || true
    [ "$(grep -c '^Reused, TLSv1.2' "$WORK/ids.out")" -eq 5 ] || fail "session IDs: not 5 of 5 Reused"
    expect_metric_ge 'tlsresume_handshakes_total{version="TLSv1.2",resumed="id"}' 5
    expect_metric_ge 'tlsresume_cache_hits_total' 5
    stop_serve
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" \
        -tls1_2 -reconnect >"$WORK/tickets.out" 2>&1 || true
    [ "$(grep -c '^Reused, TLSv1.2' "$WORK/tickets.out")" -eq 5 ] || fail "tickets: not 5 of 5 Reused"
    expect_metric_ge 'tlsresume_handshakes_total{version="TLSv1.2",resumed="ticket"}' 5
    stop_serve
    ;;
s_client_tls13)
    start_backend http
    for mode in stateless stateful; do
        start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --tls13-tickets "$mode"
        sclient "full_$mode" -tls1_3 -sess_out "$WORK/s_$mode"
        sclient "again_$mode" -tls1_3 -sess_in "$WORK/s_$mode"
        expect "again_$mode" "Reused, TLSv1.3"
        expect_metric_ge 'tlsresume_handshakes_total{version="TLSv1.3",resumed="psk"}' 1
        if [ "$mode" = stateful ]; then
            sclient replay -tls1_3 -sess_in "$WORK/s_$mode"
            expect replay "New, TLSv1.3"
            expect_metric_ge 'tlsresume_cache_taken_total' 1
        fi
        stop_serve
    done
    ;;
python)
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    for v in 1.2 1.3; do
        python3 "$CLIENT" resume "$PORT" "$v" >"$WORK/py$v.out" 2>&1 || fail "python TLS $v"
        expect "py$v" "session_reused=True"
    done
    stop_serve
    ;;
node)
    command -v node >/dev/null || fail "node is not installed"
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    for v in TLSv1.2 TLSv1.3; do
        timeout 30 node "$SRC_DIR/tests/integration/lib/nodeclient.js" "$PORT" "$v" \
            >"$WORK/node$v.out" 2>&1 || fail "node $v"
        expect "node$v" "reused=true"
    done
    stop_serve
    ;;
gnutls)
    command -v gnutls-cli >/dev/null || fail "gnutls-cli is not installed"
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    for prio in "NORMAL:-VERS-ALL:+VERS-TLS1.2" "NORMAL:-VERS-ALL:+VERS-TLS1.3"; do
        echo hi | timeout 30 gnutls-cli --insecure --resume --priority "$prio" -p "$PORT" \
            127.0.0.1 >"$WORK/gnutls.out" 2>&1 || true
        expect gnutls "This is a resumed session"
    done
    expect_metric_ge 'tlsresume_handshakes_total{version="TLSv1.3",resumed="psk"}' 1
    stop_serve
    ;;
curl)
    start_backend http
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    timeout 30 curl -sk -v "https://localhost:$PORT/one" "https://localhost:$PORT/two" \
        >"$WORK/curl.out" 2>&1 || fail "curl failed"
    expect curl "request: GET /one"
    expect curl "request: GET /two"
    expect curl "SSL re-using session ID"
    expect_metric_ge 'tlsresume_handshakes_total{version="TLSv1.3",resumed="psk"}' 1
    stop_serve
    ;;
data_64mib)
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    python3 "$CLIENT" bulk "$PORT" 64 >"$WORK/bulk.out" 2>&1 || fail "64 MiB echo"
    expect bulk "received=67108864 sha_match=True"
    expect_metric_ge 'tlsresume_bytes_total{direction="client_to_backend"}' 67108864
    expect_metric_ge 'tlsresume_bytes_total{direction="backend_to_client"}' 67108864
    stop_serve
    ;;
concurrent_500)
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    python3 "$CLIENT" many "$PORT" 500 >"$WORK/many.out" 2>&1 || fail "500 concurrent"
    expect many "ok=500 of 500"
    expect_metric_ge 'tlsresume_connections_total' 500
    stop_serve
    ;;
backends)
    # Several backends: round-robin over those that answer, the next one when a connect fails
    # (a closed port among them, then a backend killed), no client connection lost. With
    # least-connections, a backend holding a long connection gets no new ones; round-robin on
    # the same traffic (the control) shares them.
    start_backend http
    first=$BACKEND_PORT
    first_pid=$BACKEND_PID
    start_backend http
    second=$BACKEND_PORT
    closed=$(free_port)
    BACKEND_PORT=$first
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --backend "127.0.0.1:$second" \
        --backend "127.0.0.1:$closed"
    get() { curl -sk --max-time 10 "https://127.0.0.1:$PORT/" -o /dev/null -w '%{http_code}\n'; }
    for i in $(seq 1 30); do get; done >"$WORK/codes"
    [ "$(grep -c '^200$' "$WORK/codes")" = 30 ] || fail "not every request answered: $(sort "$WORK/codes" | uniq -c)"
    wait_until 5 count_ge "$WORK/serve.log" ' access ' 30 || fail "access lines"
    for b in "$first" "$second"; do
        n=$(grep ' access ' "$WORK/serve.log" | grep -c " backend=127.0.0.1:$b ")
        [ "$n" -ge 8 ] || fail "backend $b served $n of 30"
    done
    grep ' access ' "$WORK/serve.log" | grep -q " backend=127.0.0.1:$closed " && fail "a connection ended on the closed backend"
    [ "$(metric "tlsresume_backend_connect_failures_total{backend=\"127.0.0.1:$closed\"}")" -ge 1 ] ||
        fail "the closed backend's failures were not counted"
    grep -q "backend=127.0.0.1:$closed event=backend_down" "$WORK/serve.log" || fail "no backend_down line"
    kill "$first_pid"
    wait "$first_pid" 2>/dev/null || true
    for i in $(seq 1 20); do get; done >"$WORK/codes2"
    [ "$(grep -c '^200$' "$WORK/codes2")" = 20 ] || fail "requests lost after a backend died: $(sort "$WORK/codes2" | uniq -c)"
    [ "$(metric 'tlsresume_errors_total{kind="backend_connect"}')" = 0 ] || fail "backend_connect errors counted"
    stop_serve
    # The control for failing over: the dead backend alone fails the client.
    BACKEND_PORT=$first
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    [ "$(get)" != 200 ] || fail "control: a dead backend alone answered"
    stop_serve
    # least-connections against round-robin: one long connection held on a backend, then 6
    # short ones, one worker.
    start_backend http
    first=$BACKEND_PORT
    for balance in least-connections round-robin; do
        start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1 \
            --backend "127.0.0.1:$second" --backend-balance "$balance"
        sleep 30 | openssl s_client -connect "127.0.0.1:$PORT" -quiet >/dev/null 2>&1 &
        hold=$!
        held() { [ "$(metric "tlsresume_backend_connects_total{backend=\"127.0.0.1:$first\"}")" = 1 ]; }
        wait_until 10 held || fail "$balance: the long connection did not reach the first backend"
        for i in $(seq 1 6); do get; done >/dev/null
        n=$(metric "tlsresume_backend_connects_total{backend=\"127.0.0.1:$second\"}")
        echo "$balance: $n of 6 short connections to the backend without the long one"
        kill "$hold" 2>/dev/null || true
        wait "$hold" 2>/dev/null || true
        if [ "$balance" = least-connections ]; then
            [ "$n" = 6 ] || fail "least-connections sent $((6 - n)) to the busy backend"
        else
            [ "$n" -lt 6 ] || fail "control: round-robin sent all 6 to one backend"
        fi
        stop_serve
    done
    ;;
backend_down)
    BACKEND_PORT=$(free_port)
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" \
        -ign_eof >"$WORK/down.out" 2>&1 || true
    expect down "New, TLSv1.3"
    wait_serve_log "backend=127.0.0.1:$BACKEND_PORT error=\"connect: Connection refused\""
    expect_metric_ge 'tlsresume_errors_total{kind="backend_connect"}' 1
    stop_serve
    ;;
backend_reset | backend_slow)
    # A backend that resets the connection, or answers one byte at a time: the client gets a
    # clean close (or the whole slow answer), and no connection stays open afterwards.
    start_backend "${scenario#backend_}"
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    for k in 1 2 3; do
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 30 openssl s_client -connect "127.0.0.1:$PORT" \
            -servername localhost -ign_eof >"$WORK/b$k.out" 2>&1 || true
        expect "b$k" "New, TLSv1.3"
        if [ "$scenario" = backend_slow ]; then
            expect "b$k" "slow answer"
        fi
    done
    if [ "$scenario" = backend_reset ]; then
        wait_serve_log "bytes_out=0 .*end="
    fi
    wait_until 5 metric_is tlsresume_connections_open 0 || true
    [ "$(metric tlsresume_connections_open)" = 0 ] || fail "connections left open"
    stop_serve
    ;;
handshake_timeout)
    # The flag is the feature: a silent client is dropped after 1 s, not after the 10 s
    # default. The control, 6 s, shows that the measurement tells them apart.
    start_backend echo
    for t in 1 6; do
        start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --handshake-timeout "${t}s"
        python3 "$CLIENT" silent "$PORT" >"$WORK/silent$t.out" 2>&1 || fail "silent client not dropped"
        expect "silent$t" "closed_by_server=True"
        after=$(sed -n 's/.*after_s=\([0-9.]*\).*/\1/p' "$WORK/silent$t.out")
        python3 -c "import sys; a, t = float(sys.argv[1]), int(sys.argv[2]); sys.exit(0 if t - 0.2 <= a < t + 3 else 1)" \
            "$after" "$t" || fail "--handshake-timeout ${t}s: the client was dropped after ${after} s"
        echo "handshake_timeout ${t}s: dropped after ${after} s"
        wait_serve_log "event=handshake_timeout after_s=$t"
        [ "$(metric 'tlsresume_errors_total{kind="handshake_timeout"}')" -eq 1 ] || fail "timeout count"
        stop_serve
    done
    ;;
sighup_fleet)
    # A reload in fleet mode, once during the join wait (workers not started yet) and once
    # after: the workers start once each time, on the fleet settings of the start (a reload
    # used to leave them pointing into the freed configuration), and sessions cross Redis.
    start_backend http
    start_local_redis
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --redis "redis://127.0.0.1:$REDIS_PORT" \
        --fleet-key "$WORK/fleet.key"
    kill -HUP "$SERVE_PID"
    wait_serve_log "event=reloaded"
    wait_serve_log "event=joined_fleet_ring"
    sclient one -tls1_3 -sess_out "$WORK/s1"
    kill -HUP "$SERVE_PID"
    wait_until 5 count_ge "$WORK/serve.log" 'event=reloaded' 2 || true
    sclient two -tls1_3 -sess_in "$WORK/s1"
    expect two "Reused, TLSv1.3"
    [ "$(metric tlsresume_workers)" -eq 2 ] || fail "workers: $(metric tlsresume_workers), expected 2"
    [ "$(pgrep -c -P "$SERVE_PID")" -eq 2 ] || fail "worker processes: $(pgrep -c -P "$SERVE_PID")"
    stop_serve
    ;;
redis_acl)
    # Redis with ACL users, as managed Redis runs it: the default user is off, and serve logs in
    # as a user of its own, limited to the fleet's keys (~tlsr:*) and to non-dangerous commands
    # plus INFO. Sessions (TLS 1.2 IDs and TLS 1.3 tickets) cross two servers through it; a
    # server with the wrong password logs why, and its offers are misses, never failures.
    start_backend echo
    REDIS_PORT=$(free_port)
    printf 'user default off\nuser tlsr on >acl-pass-%s ~tlsr:* +@all -@dangerous +info\n' \
        "$REDIS_PORT" >"$WORK/users.acl"
    # An operator's user, for the test's dump of Redis.
    printf 'user admin on >admin-pass-%s ~* &* +@all\n' "$REDIS_PORT" >>"$WORK/users.acl"
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$WORK" --appendonly no \
        --aclfile "$WORK/users.acl" >"$WORK/redis.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$REDIS_PORT"
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
    printf 'acl-pass-%s\n' "$REDIS_PORT" >"$WORK/good.pass"
    printf 'not-the-password\n' >"$WORK/bad.pass"
    chmod 600 "$WORK/good.pass" "$WORK/bad.pass"
    ports=()
    spids=()
    for n in 1 2 3; do
        pass=good
        [ "$n" = 3 ] && pass=bad
        p=$(free_port)
        "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$p" --admin off \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 1 --cert "$WORK/cert.pem" \
            --key "$WORK/key.pem" --redis "redis://127.0.0.1:$REDIS_PORT" \
            --fleet-key "$WORK/fleet.key" --redis-user tlsr \
            --redis-password-file "$WORK/$pass.pass" >"$WORK/s$n.out" 2>"$WORK/s$n.log" &
        PIDS+=("$!")
        spids+=("$!")
        wait_grep "$WORK/s$n.log" "event=started" "server $n did not start" "$!"
        ports+=("$p")
    done
    wait_grep "$WORK/s2.log" "event=redis_up part=cache" "server 2 never reached Redis" ""
    wait_grep "$WORK/s3.log" "WRONGPASS" "server 3 did not log the refused password" ""
    three_servers_resume "${ports[@]}"
    # The sessions are in Redis under the fleet prefix, which the user may write.
    [ "$(redis-cli -p "$REDIS_PORT" --user tlsr --pass "acl-pass-$REDIS_PORT" --no-auth-warning \
        --scan --pattern 'tlsr:s:*' | wc -l)" -ge 1 ] || fail "no session in Redis"
    no_secrets_in_redis "127.0.0.1:${ports[0]}" redis-cli -p "$REDIS_PORT" --user admin \
        --pass "admin-pass-$REDIS_PORT" --no-auth-warning
    stop_servers "${spids[@]}"
    ;;
redis_tls)
    # TLS to Redis (rediss://), as managed Redis runs it: Redis listens with TLS only and asks
    # for a client certificate. Two servers verify it against the fleet's CA, one by the
    # endpoint's address, one by a name (redis_tls_name), and share sessions and ticket keys;
    # a third trusts another CA: it refuses Redis (the reason logged), and its offers are
    # misses, never failures.
    start_backend echo
    mk_cert ca "fleet CA" ""
    mk_cert other "another CA" ""
    mk_cert redis redis.test "DNS:redis.test,IP:127.0.0.1" ca
    mk_cert client tlsresume "DNS:tlsresume" ca
    REDIS_PORT=$(free_port)
    redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$WORK" --appendonly no \
        --tls-cert-file "$WORK/redis.pem" --tls-key-file "$WORK/redis.key" \
        --tls-ca-cert-file "$WORK/ca.pem" --tls-auth-clients yes >"$WORK/redis.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$REDIS_PORT"
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
    ports=()
    spids=()
    for n in 1 2 3; do
        tls=(--redis-tls-ca "$WORK/ca.pem" --redis-tls-cert "$WORK/client.pem"
            --redis-tls-key "$WORK/client.key")
        [ "$n" = 2 ] && tls+=(--redis-tls-name redis.test)
        [ "$n" = 3 ] && tls[1]="$WORK/other.pem"
        p=$(free_port)
        "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$p" --admin off \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 1 --cert "$WORK/cert.pem" \
            --key "$WORK/key.pem" --redis "rediss://127.0.0.1:$REDIS_PORT" \
            --fleet-key "$WORK/fleet.key" "${tls[@]}" >"$WORK/s$n.out" 2>"$WORK/s$n.log" &
        PIDS+=("$!")
        spids+=("$!")
        wait_grep "$WORK/s$n.log" "event=started" "server $n did not start" "$!"
        ports+=("$p")
    done
    for n in 1 2; do
        wait_grep "$WORK/s$n.log" "event=joined_fleet_ring" "server $n did not join over TLS" ""
        wait_grep "$WORK/s$n.log" "event=redis_up part=cache" "server $n: no cache over TLS" ""
    done
    wait_grep "$WORK/s3.log" "certificate did not verify" "server 3 did not refuse Redis's certificate" ""
    three_servers_resume "${ports[@]}"
    [ "$(redis-cli --tls --cacert "$WORK/ca.pem" --cert "$WORK/client.pem" --key "$WORK/client.key" \
        -p "$REDIS_PORT" --scan --pattern 'tlsr:s:*' | wc -l)" -ge 1 ] || fail "no session in Redis"
    no_secrets_in_redis "127.0.0.1:${ports[0]}" redis-cli --tls --cacert "$WORK/ca.pem" \
        --cert "$WORK/client.pem" --key "$WORK/client.key" -p "$REDIS_PORT"
    # A bad TLS setting is refused before anything starts, naming it.
    set +e
    "$BUILD_DIR/tlsresume" serve --check-config --backend 127.0.0.1:1 --cert "$WORK/cert.pem" \
        --key "$WORK/key.pem" --redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key" \
        --redis-tls-ca "$WORK/ca.pem" >"$WORK/bad.out" 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "a TLS setting without rediss:// was accepted ($rc)"
    grep -q "redis_tls_ca: needs a rediss:// endpoint" "$WORK/bad.out" || fail "no clear error"
    stop_servers "${spids[@]}"
    ;;
redis_sentinel)
    # Redis behind Sentinel, as operators run it for failover: a master, a replica and three
    # sentinels. Two servers find the master through the sentinels and share sessions; the
    # master is killed, the sentinels promote the replica, and the servers follow it (they
    # ask the sentinels again when the connection goes): connections during the failover are
    # answered (misses, not failures), and afterwards sessions cross Redis again.
    start_backend echo
    start_sentinel_redis
    master=$MASTER_PORT
    replica=$REPLICA_PORT
    master_pid=$MASTER_PID
    sentinels=("${SENTINELS[@]}")
    sentinel_url=$SENTINEL_URL
    ports=()
    spids=()
    for n in 1 2; do
        p=$(free_port)
        "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$p" --admin off \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 1 --cert "$WORK/cert.pem" \
            --key "$WORK/key.pem" --redis "$sentinel_url" --redis-timeout-ms 200 \
            --fleet-key "$WORK/fleet.key" >"$WORK/s$n.out" 2>"$WORK/s$n.log" &
        PIDS+=("$!")
        spids+=("$!")
        wait_grep "$WORK/s$n.log" "event=started" "server $n did not start" "$!"
        wait_grep "$WORK/s$n.log" "master=127.0.0.1:$master" "server $n: no master from the sentinels" ""
        ports+=("$p")
    done
    for n in 1 2; do
        wait_grep "$WORK/s$n.log" "event=redis_up part=cache" "server $n: no cache behind sentinel" ""
    done
    cross() { # TAG: a TLS 1.2 session ID made on server 1 resumes on server 2 (through Redis)
        PORT=${ports[0]}
        sclient "a$1" -tls1_2 -no_ticket -sess_out "$WORK/sess$1"
        PORT=${ports[1]}
        sclient "b$1" -tls1_2 -no_ticket -sess_in "$WORK/sess$1"
        expect "b$1" "Reused, TLSv1.2"
    }
    cross before
    PORT=${ports[0]}
    sclient t13 -tls1_3 -sess_out "$WORK/t13"
    kill -KILL "$master_pid"
    killed_at=$(date +%s.%N)
    # During the failover every connection is answered (sclient fails the test otherwise).
    for k in $(seq 1 200); do
        PORT=${ports[$((k % 2))]}
        sclient "during$k" -tls1_2 -no_ticket
        at=$(redis-cli -p "${sentinels[0]#*:}" SENTINEL get-master-addr-by-name fleet | tail -1)
        [ "$at" = "$replica" ] && break
        sleep 0.1
    done
    [ "$at" = "$replica" ] || fail "the sentinels did not promote the replica"
    during=$k
    for n in 1 2; do
        wait_grep "$WORK/s$n.log" "master=127.0.0.1:$replica" "server $n did not follow the failover" ""
    done
    followed_s=$(python3 -c "import time,sys; print(round(time.time() - float(sys.argv[1]), 1))" "$killed_at")
    for k in $(seq 1 50); do
        PORT=${ports[0]}
        sclient "probe$k" -tls1_2 -no_ticket -sess_out "$WORK/probe"
        PORT=${ports[1]}
        sclient "probe2_$k" -tls1_2 -no_ticket -sess_in "$WORK/probe"
        grep -q "Reused, TLSv1.2" "$WORK/probe2_$k.out" && break
        sleep 0.2
    done
    cross after
    # A ticket from before the failover still resumes: the servers hold the fleet's keys.
    PORT=${ports[1]}
    sclient t13b -tls1_3 -sess_in "$WORK/t13"
    expect t13b "Reused, TLSv1.3"
    # Nothing secret on the promoted replica, which holds what the old master had and more.
    no_secrets_in_redis "127.0.0.1:${ports[0]}" redis-cli -p "$replica"
    stop_servers "${spids[@]}"
    echo "redis_sentinel: $during connections answered during the failover; both servers on the new master ${followed_s} s after the kill; sessions cross Redis before and after"
    ;;
sighup)
    start_backend echo
    cp "$WORK/cert.pem" "$WORK/live.pem"
    printf 'cert = %s\nkey = %s\n' "$WORK/live.pem" "$WORK/key.pem" >"$WORK/serve.ini"
    start_serve --config "$WORK/serve.ini"
    python3 "$CLIENT" resume "$PORT" 1.2 >/dev/null 2>&1 || fail "warm-up"
    sclient before -tls1_2 -sess_out "$WORK/s_before"
    mkfifo "$WORK/go"
    python3 "$CLIENT" pause "$PORT" <"$WORK/go" >"$WORK/pause.out" 2>&1 &
    pause_pid=$!
    PIDS+=("$pause_pid")
    exec 3>"$WORK/go"
    wait_until 10 has_line "$WORK/pause.out" midway || true
    expect pause midway
    kill -HUP "$SERVE_PID"
    wait_serve_log "event=reloaded"
    echo go >&3
    exec 3>&-
    wait "$pause_pid" || fail "transfer across the reload"
    expect pause "sha_match=True"
    sclient after -tls1_2 -sess_in "$WORK/s_before"
    expect after "Reused, TLSv1.2"
    # The reload applies its configuration: ALPN, absent before, is offered after.
    sclient alpn0 -alpn http/1.1
    expect alpn0 "No ALPN negotiated"
    printf 'cert = %s\nkey = %s\nalpn = http/1.1\n' "$WORK/live.pem" "$WORK/key.pem" >"$WORK/serve.ini"
    kill -HUP "$SERVE_PID"
    wait_until 5 count_ge "$WORK/serve.log" 'event=reloaded' 2 || true
    sclient alpn1 -alpn http/1.1 -tls1_2 -sess_in "$WORK/s_before"
    expect alpn1 "ALPN protocol: http/1.1"
    expect alpn1 "Reused, TLSv1.2"
    # A broken config is refused and the old one keeps serving.
    printf 'cert = %s\nkey = %s\ncache_size = lots\n' "$WORK/live.pem" "$WORK/key.pem" >"$WORK/serve.ini"
    kill -HUP "$SERVE_PID"
    wait_serve_log "event=reload_failed"
    grep -q "serve.ini:3: cache_size: expected a size" "$WORK/serve.log" || fail "reload error"
    sclient still -tls1_2 -sess_in "$WORK/s_before"
    expect still "Reused, TLSv1.2"
    [ "$(metric tlsresume_reloads_total)" -eq 2 ] || fail "reloads_total"
    # A new certificate in the same files is served after the next reload (the reloads above
    # served the old one: the control).
    sclient oldcert -tls1_3
    expect oldcert "subject=CN = localhost"
    renew() { # CN, extra config line, reloads expected after it
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=$1" -addext "subjectAltName=DNS:$1" \
            -keyout "$WORK/key.pem" -out "$WORK/live.pem" 2>/dev/null
        printf 'cert = %s\nkey = %s\n%s\n' "$WORK/live.pem" "$WORK/key.pem" "$2" >"$WORK/serve.ini"
        kill -HUP "$SERVE_PID"
        wait_until 5 count_ge "$WORK/serve.log" 'event=reloaded' "$3" || true
        [ "$(grep -c 'event=reloaded' "$WORK/serve.log")" -ge "$3" ] || fail "reload $3"
    }
    renew reloaded.test "" 3
    sclient newcert -tls1_3
    expect newcert "subject=CN = reloaded.test"
    # The derived session context hashes the certificate (as nginx's does): a session of the
    # old certificate gets a full handshake, counted as a miss, not an error.
    sclient oldsess -tls1_2 -sess_in "$WORK/s_before"
    expect oldsess "New, TLSv1.2"
    # With session_context set, sessions survive a certificate renewal.
    renew reloaded.test "session_context = app" 4
    sclient ctx1 -tls1_2 -sess_out "$WORK/s_app"
    renew renewed.test "session_context = app" 5
    sclient ctx2 -tls1_2 -sess_in "$WORK/s_app"
    expect ctx2 "Reused, TLSv1.2"
    stop_serve
    ;;
fleet_foreign_key)
    # A well-formed fleet key that is not the fleet's: keys says so and exits 1; serve stops at
    # start with the same words (exit 2, nothing left listening) and never offers the fleet a
    # key it cannot open; the fleet's own members go on. The control: the right key.
    start_backend http
    start_local_redis
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --redis "redis://127.0.0.1:$REDIS_PORT" \
        --fleet-key "$WORK/fleet.key" --fleet-poll-ms 200
    wait_serve_log "event=joined_fleet_ring"
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/other.key" 2>/dev/null || fail "keys init"
    fleet=(--redis "redis://127.0.0.1:$REDIS_PORT")
    set +e
    timeout 20 "$BUILD_DIR/tlsresume" keys status "${fleet[@]}" --fleet-key "$WORK/other.key" \
        >"$WORK/kother.out" 2>&1
    krc=$?
    timeout 20 "$BUILD_DIR/tlsresume" keys status "${fleet[@]}" --fleet-key "$WORK/fleet.key" \
        >"$WORK/kright.out" 2>&1
    kright=$?
    other_port=$(free_port)
    timeout 30 "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$other_port" --admin off \
        --backend "127.0.0.1:$BACKEND_PORT" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
        "${fleet[@]}" --fleet-key "$WORK/other.key" --fleet-poll-ms 200 >"$WORK/sother.out" 2>&1
    src=$?
    set -e
    [ "$krc" = 1 ] || fail "keys status with another fleet's key exited $krc: $(cat "$WORK/kother.out")"
    expect kother "fleet_key: $WORK/other.key is not this fleet's key"
    [ "$kright" = 0 ] || fail "control: keys status with the fleet's key exited $kright: $(cat "$WORK/kright.out")"
    ! grep -q "not this fleet's key" "$WORK/kright.out" || fail "control: the fleet's key called foreign"
    [ "$src" = 2 ] || fail "serve with another fleet's key exited $src (124: it hung)"
    expect sother "fleet_key: $WORK/other.key is not this fleet's key"
    [ "$(grep -c 'event=fleet_key_mismatch' "$WORK/sother.out")" = 1 ] || fail "the mismatch is not said once"
    ! (exec 7<>"/dev/tcp/127.0.0.1/$other_port") 2>/dev/null || fail "serve with a foreign key left a listener"
    # The fleet's server rejected no key (the foreign one offered none) and still resumes.
    ! grep -q "key_rejected" "$WORK/serve.log" || fail "the fleet saw a key it cannot open"
    sclient one -tls1_2 -sess_out "$WORK/s1"
    sclient two -tls1_2 -sess_in "$WORK/s1"
    expect two "Reused"
    stop_serve
    ;;
key_password)
    # An encrypted key opened by key_password_file at start; at a reload whose pass phrase no
    # longer opens it, the reload fails at once (nothing waits on a terminal), the old
    # configuration keeps serving, and a SIGTERM right after still stops serve.
    start_backend http
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 2 -subj /CN=localhost \
        -passout pass:s3cret -keyout "$WORK/enc.key" -out "$WORK/enc.pem" >/dev/null 2>&1
    printf 's3cret\n' >"$WORK/pass.txt"
    start_serve --cert "$WORK/enc.pem" --key "$WORK/enc.key" --key-password-file "$WORK/pass.txt"
    sclient first -tls1_2
    printf 'changed\n' >"$WORK/pass.txt"
    kill -HUP "$SERVE_PID"
    wait_serve_log "event=reload_failed"
    grep -q "no line of key_password_file $WORK/pass.txt opens it" "$WORK/serve.log" ||
        fail "the failed reload does not say why"
    sclient after -tls1_2
    kill -TERM "$SERVE_PID"
    timeout 20 tail --pid="$SERVE_PID" -f /dev/null || fail "serve did not stop after the failed reload"
    ;;
keys_ahead)
    # Scheduled rotations (every 10 s) under handshakes: the master makes the keys ahead, so no
    # worker makes one in a handshake (the control, the library without tlsr_keyring_prepare,
    # is unit_tickets: one key made inline per period).
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --ticket-rotate 10s \
        --ticket-lifetime 60s
    start_s=$SECONDS
    n=0
    while [ $((SECONDS - start_s)) -lt 40 ] && [ "$n" -lt 200 ]; do
        sclient "ahead" -tls1_2
        n=$((n + 1))
        [ "$(metric tlsresume_ticket_key_rotations_total)" -ge 2 ] && break
        sleep 0.5
    done
    sclient "ahead_last" -tls1_2
    expect_metric_ge tlsresume_ticket_key_rotations_total 2
    expect_metric_ge tlsresume_tickets_issued_total "$n"
    inline=$(metric tlsresume_ticket_keys_made_inline_total)
    [ "$inline" = 0 ] || fail "handshakes made $inline ticket keys (expected none: the master makes them)"
    echo "handshakes=$n rotations=$(metric tlsresume_ticket_key_rotations_total) keys_made_inline=$inline"
    stop_serve
    ;;
rotation)
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --ticket-rotate 7d
    sclient first12 -tls1_2 -sess_out "$WORK/s12"
    sclient first13 -tls1_3 -sess_out "$WORK/s13"
    # Load in the background while the keys rotate: 300 concurrent connections, all must pass.
    python3 "$CLIENT" many "$PORT" 300 >"$WORK/load.out" 2>&1 &
    load_pid=$!
    PIDS+=("$load_pid")
    for i in 1 2 3; do
        kill -USR1 "$SERVE_PID"
        # The rotation has happened before the old tickets are offered.
        wait_until 5 metric_ge tlsresume_ticket_key_rotations_total "$i" || true
        [ "$(metric tlsresume_ticket_key_rotations_total)" -ge "$i" ] || fail "rotation $i not done"
        for v in 12 13; do
            sclient "r${i}_$v" "-tls1_${v#1}" -sess_in "$WORK/s$v"
            expect "r${i}_$v" "Reused"
        done
    done
    wait "$load_pid" || fail "load during rotation"
    expect load "ok=300 of 300"
    [ "$(grep -c 'event=rotated' "$WORK/serve.log")" -eq 3 ] || fail "three rotations logged"
    expect_metric_ge 'tlsresume_ticket_key_rotations_total' 3
    expect_metric_ge 'tlsresume_tickets_renewed_total' 2
    stop_serve
    ;;
sni)
    start_backend echo
    for h in a b; do
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=$h.test" -addext "subjectAltName=DNS:$h.test" \
            -keyout "$WORK/$h.key" -out "$WORK/$h.pem" >/dev/null 2>&1
    done
    start_serve --cert "$WORK/a.pem" --key "$WORK/a.key" --cert "$WORK/b.pem" --key "$WORK/b.key"
    # Sessions and tickets made for b.test never resume on a.test (nginx's CVE-2025-23419).
    sni_client() {
        local out=$1 name=$2
        shift 2
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" \
            -servername "$name" -ign_eof "$@" >"$WORK/$out.out" 2>&1 || true
        expect "$out" "hello from the backend"
    }
    for v in tls1_2 tls1_3; do
        sni_client "b_$v" b.test "-$v" -sess_out "$WORK/sb_$v"
        expect "b_$v" "subject=CN = b.test"
        sni_client "cross_$v" a.test "-$v" -sess_in "$WORK/sb_$v"
        expect "cross_$v" "subject=CN = a.test"
        expect "cross_$v" "New, TLSv1"
        sni_client "same_$v" b.test "-$v" -sess_in "$WORK/sb_$v"
        expect "same_$v" "Reused, TLSv1"
    done
    stop_serve
    ;;
accept_proxy)
    # serve behind real balancers that send the PROXY header: HAProxy (send-proxy-v2 and
    # send-proxy, v1) and nginx stream (proxy_protocol on, v1). The client connects from
    # 127.0.0.3; the backend's own PROXY header, and the access log, must name that address,
    # not the balancer's. Resumption goes through. Controls: a client without a header is
    # refused (counted), one that sends nothing is closed at the handshake timeout, a header in
    # pieces is read whole.
    for cmd in haproxy nginx; do
        command -v "$cmd" >/dev/null || fail "$cmd is not installed (scripts/deps.sh test)"
    done
    . "$SRC_DIR/scripts/conf.sh"
    start_backend http --proxy-protocol
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --accept-proxy --proxy-protocol \
        --handshake-timeout 2s
    hp2=$(free_port)
    hp1=$(free_port)
    ngx=$(free_port)
    {
        haproxy_defaults
        printf 'frontend v2\n    bind 127.0.0.1:%s\n    default_backend s2\n' "$hp2"
        printf 'backend s2\n    server s 127.0.0.1:%s send-proxy-v2\n' "$PORT"
        printf 'frontend v1\n    bind 127.0.0.1:%s\n    default_backend s1\n' "$hp1"
        printf 'backend s1\n    server s 127.0.0.1:%s send-proxy\n' "$PORT"
    } >"$WORK/haproxy.cfg"
    haproxy -f "$WORK/haproxy.cfg" -db >"$WORK/haproxy.log" 2>&1 &
    PIDS+=("$!")
    mkdir -p "$WORK/ngx"
    cat >"$WORK/ngx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes 1;
pid $WORK/ngx/nginx.pid;
error_log $WORK/ngx/error.log error;
events { worker_connections 64; }
stream {
    server {
        listen 127.0.0.1:$ngx;
        proxy_pass 127.0.0.1:$PORT;
        proxy_protocol on;
    }
}
CONF
    nginx -p "$WORK/ngx" -c "$WORK/ngx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$hp2"
    wait_port "$hp1"
    wait_port "$ngx"
    for via in "v2 $hp2" "v1 $hp1" "nginx $ngx" "pieces $PORT pieces"; do
        set -- $via
        name=$1
        ask_backend "$2" 127.0.0.3 ${3:+"$3"} >"$WORK/ap_$name.out" 2>&1 || fail "$name: the request failed: $(cat "$WORK/ap_$name.out")"
        own=$(sed -n 's/^own_port=//p' "$WORK/ap_$name.out")
        expect "ap_$name" "client: 127.0.0.3:$own\$"
        grep -q "client=127.0.0.3:$own " "$WORK/serve.log" || fail "$name: the access log lacks client=127.0.0.3:$own"
        echo "$name: the backend saw 127.0.0.3:$own"
    done
    # Resumption through the balancer (the TLS bytes behind the header are intact).
    timeout 20 openssl s_client -connect "127.0.0.1:$hp2" -tls1_2 -reconnect </dev/null \
        >"$WORK/ap_resume.out" 2>&1 || true
    [ "$(grep -c '^Reused' "$WORK/ap_resume.out")" = 5 ] || fail "no resumption through HAProxy"
    # Controls: TLS without a header is refused and counted; silence ends at the timeout.
    before=$(metric 'tlsresume_errors_total{kind="proxy_header"}')
    timeout 10 openssl s_client -connect "127.0.0.1:$PORT" </dev/null >"$WORK/ap_direct.out" 2>&1 || true
    grep -q 'Cipher is (NONE)' "$WORK/ap_direct.out" || fail "a client without a PROXY header got a handshake"
    wait_until 5 metric_ge 'tlsresume_errors_total{kind="proxy_header"}' $((before + 1)) ||
        fail "the refusal was not counted"
    grep -q 'event=proxy_header_refused error="no PROXY header (the first byte is 0x16: TLS' "$WORK/serve.log" ||
        fail "the refusal does not say why"
    python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $PORT))
t = time.time()
s.settimeout(10)
assert s.recv(1) == b'', 'data from serve'
print('closed after %.1f s' % (time.time() - t))
" >"$WORK/ap_silent.out" 2>&1 || fail "a silent client was not closed: $(cat "$WORK/ap_silent.out")"
    wait_until 5 metric_ge 'tlsresume_errors_total{kind="proxy_header_timeout"}' 1 ||
        fail "the header timeout was not counted"
    cat "$WORK/ap_silent.out"
    stop_serve
    ;;
proxy_protocol)
    start_backend http --proxy-protocol
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --proxy-protocol
    # The header carries the client's own address and port (on loopback the addresses of
    # both ends read 127.0.0.1; the port tells them apart).
    ask_backend "$PORT" 127.0.0.1 >"$WORK/pp.out" 2>&1 || fail "PROXY client"
    own=$(sed -n 's/^own_port=//p' "$WORK/pp.out")
    expect pp "client: 127.0.0.1:$own\$"
    stop_serve
    ;;
ipv6)
    python3 -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null ||
        skip "no ::1 here"
    start_backend echo
    PORT6=$(free_port)
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --listen "[::1]:$PORT6"
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "[::1]:$PORT6" \
        -ign_eof >"$WORK/v6.out" 2>&1 || true
    expect v6 "hello from the backend"
    expect v6 "New, TLSv1.3"
    stop_serve
    ;;
max_connections)
    # Exactly the limit: with 2 open, the third is refused at once (not closed by the 10 s
    # handshake timeout); with 1 open, a second is served.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1 --max-connections 2
    exec 4<>/dev/tcp/127.0.0.1/"$PORT"
    exec 5<>/dev/tcp/127.0.0.1/"$PORT"
    wait_until 5 metric_is tlsresume_connections_open 2 || true
    [ "$(metric tlsresume_connections_open)" = 2 ] || fail "the two connections are not open"
    python3 "$CLIENT" silent "$PORT" >"$WORK/refused.out" 2>&1 || fail "third connection not refused"
    after=$(sed -n 's/.*after_s=\([0-9.]*\).*/\1/p' "$WORK/refused.out")
    python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 2 else 1)" "$after" ||
        fail "the third connection was closed after $after s: not refused at the limit"
    wait_serve_log "event=refused reason=max_connections"
    [ "$(metric 'tlsresume_errors_total{kind="max_connections"}')" -eq 1 ] || fail "refusals"
    exec 5>&-
    wait_until 5 metric_is tlsresume_connections_open 1 || true
    sclient below -tls1_3 # one connection: the second of the limit
    [ "$(metric 'tlsresume_errors_total{kind="max_connections"}')" -eq 1 ] || fail "refused below the limit"
    exec 4>&-
    stop_serve
    ;;
drain)
    # A connection that never ends does not hold a stop forever: drain_timeout closes it.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --drain-timeout 1s
    mkfifo "$WORK/hold"
    python3 "$CLIENT" pause "$PORT" <"$WORK/hold" >"$WORK/held.out" 2>&1 &
    PIDS+=("$!")
    exec 3>"$WORK/hold"
    wait_until 10 has_line "$WORK/held.out" midway || true
    expect held midway
    kill -TERM "$SERVE_PID"
    timeout 20 tail --pid="$SERVE_PID" -f /dev/null || fail "serve did not stop"
    exec 3>&-
    grep -q "event=drain_timeout closing=1" "$WORK/serve.log" || fail "no drain_timeout"
    ;;
burst)
    # Records decrypted inside OpenSSL while the buffer is full are not forgotten.
    start_backend count --count 1050000
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1
    worker=$(pgrep -P "$SERVE_PID" | head -n 1)
    [ -n "$worker" ] || fail "no worker"
    mkfifo "$WORK/go"
    python3 "$CLIENT" burst "$PORT" <"$WORK/go" >"$WORK/burst.out" 2>&1 &
    burst_pid=$!
    PIDS+=("$burst_pid")
    exec 3>"$WORK/go"
    wait_until 10 has_line "$WORK/burst.out" ready || true
    kill -STOP "$worker"
    echo go >&3
    exec 3>&-
    sleep 1 # let the burst queue up while the worker is stopped (not a timed assertion)
    kill -CONT "$worker"
    wait "$burst_pid" || fail "burst echo"
    expect burst "answer=b'got 1050000"
    stop_serve
    ;;
ticket_flood)
    # 150 connections offering forged tickets (unknown key names, good names with broken MACs,
    # random bytes): every one completes as a full handshake, every ticket is counted as
    # rejected, nothing fails. The server CPU per handshake is printed beside plain full
    # handshakes (reported, not asserted: a performance figure, not a test).
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 1
    timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -tls1_2 -sess_out "$WORK/real.pem" \
        </dev/null >/dev/null 2>&1 || true
    for how in unknown_key bad_mac random; do
        python3 "$SRC_DIR/tests/integration/lib/forge_ticket.py" "$WORK/real.pem" \
            "$WORK/$how.pem" "$how" || fail "forge $how"
    done
    worker=$(pgrep -P "$SERVE_PID" | head -n 1)
    ticks() { awk '{ print $14 + $15 }' "/proc/$worker/stat"; }
    run() { # run OUT N [ARGS...]: N s_client connections, 4 at a time
        local out=$1 n=$2
        shift 2
        seq 1 "$n" | xargs -P 4 -I{} sh -c 'timeout 20 openssl s_client -connect "$0" -tls1_2 "$@" \
            </dev/null 2>/dev/null | grep -E "^(New|Reused)," || echo failed' "127.0.0.1:$PORT" "$@" \
            >"$WORK/$out.out"
    }
    before=$(ticks)
    run plain 150
    plain=$(($(ticks) - before))
    before=$(ticks)
    for how in unknown_key bad_mac random; do
        run "flood_$how" 50 -sess_in "$WORK/$how.pem"
    done
    flood=$(($(ticks) - before))
    cat "$WORK"/flood_*.out >"$WORK/flood.out"
    [ "$(grep -c '^New, TLSv1.2' "$WORK/flood.out")" = 150 ] ||
        fail "not every forged-ticket connection completed as a full handshake"
    unknown=$(metric 'tlsresume_tickets_rejected_total{reason="unknown_key"}')
    bad=$(metric 'tlsresume_tickets_rejected_total{reason="bad_mac"}')
    [ $((unknown + bad)) -ge 150 ] || fail "only $((unknown + bad)) forged tickets counted"
    [ "$(metric 'tlsresume_errors_total{kind="handshake_failed"}')" = 0 ] || fail "handshakes failed"
    stop_serve
    echo "ticket_flood: 150 forged tickets, 150 full handshakes; rejected unknown_key=$unknown bad_mac=$bad; server CPU $flood ticks for them against $plain for 150 plain full handshakes"
    ;;
fleet_unix)
    # Fleet mode over a Unix socket, with a password from a file and database 3: a session made
    # on one server resumes on another (two processes, two caches, one Redis).
    command -v redis-server >/dev/null || fail "redis-server is not installed"
    sock="$WORK/redis.sock"
    redis-server --port 0 --unixsocket "$sock" --requirepass s3cret-pass --save '' \
        --appendonly no --dir "$WORK" >"$WORK/redis.log" 2>&1 &
    PIDS+=("$!")
    wait_until 10 test -S "$sock" || true
    printf 's3cret-pass\n' >"$WORK/redis.pass"
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
    start_backend echo
    fleet=(--redis "unix:$sock?db=3" --redis-password-file "$WORK/redis.pass"
        --fleet-key "$WORK/fleet.key" --redis-timeout-ms 200)
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" "${fleet[@]}"
    first=$PORT
    first_pid=$SERVE_PID
    cp "$WORK/serve.log" "$WORK/serve1.log"
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" "${fleet[@]}"
    wait_serve_log "event=joined_fleet_ring"
    for mode in "-tls1_2 -no_ticket" "-tls1_2" "-tls1_3"; do
        # shellcheck disable=SC2086
        sleep 0.3 | timeout 20 openssl s_client -connect "127.0.0.1:$first" -servername localhost \
            $mode -sess_out "$WORK/sess" >/dev/null 2>&1 || true
        # shellcheck disable=SC2086
        timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost $mode \
            -sess_in "$WORK/sess" </dev/null >"$WORK/resume.out" 2>&1 || true
        grep -q '^Reused' "$WORK/resume.out" || fail "no resumption across servers ($mode)"
    done
    [ "$(redis-cli -s "$sock" -a s3cret-pass --no-auth-warning -n 3 --scan --pattern 'tlsr:s:*' | wc -l)" -ge 1 ] ||
        fail "no session in database 3"
    ! grep -q "s3cret-pass" "$WORK/serve.log" "$WORK/serve1.log" || fail "the password was logged"
    stop_serve
    kill -TERM "$first_pid"
    wait "$first_pid" || fail "first serve exited with an error"
    ;;
soak_short)
    # 20 s of bench/soak.sh: mixed load with RSS and descriptors flat and no failed handshake.
    # ASan keeps freed memory in a quarantine (256 MiB by default) that would read as growth.
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=4" TLSR_BUILD_DIR="$BUILD_DIR" timeout 120 bash "$SRC_DIR/bench/soak.sh" 20 >"$WORK/soak.out" 2>&1 ||
        fail "soak: $(tail -n 3 "$WORK/soak.out")"
    grep -q "result: flat" "$WORK/soak.out" || fail "soak did not report"
    ;;
worker_kill)
    # A worker SIGKILLed under load: the other worker keeps serving, the master starts a new
    # one, and the shared cache (robust locks) still resumes sessions afterwards.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --workers 2
    timeout 60 "$BUILD_DIR/tlsresume" bench "127.0.0.1:$PORT" --tls1_2 --mode mixed:50 \
        --duration 5 -C 8 --json >"$WORK/load.out" 2>"$WORK/load.log" &
    load=$!
    PIDS+=("$load")
    sleep 1.5
    victim=$(pgrep -P "$SERVE_PID" | head -n 1)
    [ -n "$victim" ] || fail "no worker"
    kill -KILL "$victim"
    wait "$load" || true
    grep -q "event=worker_died pid=$victim" "$WORK/serve.log" || fail "the death went unnoticed"
    for _ in $(seq 1 50); do
        [ "$(pgrep -P "$SERVE_PID" | grep -cv "^$victim\$")" -ge 2 ] && break
        sleep 0.1
    done
    [ "$(pgrep -P "$SERVE_PID" | grep -cv "^$victim\$")" -ge 2 ] || fail "no new worker"
    done=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['handshakes'])" "$WORK/load.out")
    errors=$(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print(sum(r['errors'].values()) if isinstance(r['errors'], dict) else r['errors'])" "$WORK/load.out")
    [ "$done" -ge 200 ] || fail "only $done handshakes around the kill"
    [ "$errors" -le 16 ] || fail "$errors failed connections: more than the killed worker held"
    # Sessions resume on the survivors and the newcomer alike.
    "$BUILD_DIR/tlsresume" check "127.0.0.1:$PORT" --insecure --json --attempts 10 \
        >"$WORK/after.out" 2>/dev/null || fail "resumption broken after the kill"
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || fail "serve exited with status $?"
    ! grep -qE "AddressSanitizer|runtime error|LeakSanitizer" "$WORK/serve.log" ||
        fail "sanitizer report"
    echo "worker_kill: $done handshakes, $errors errors around the kill; 10/10 resumed after"
    ;;
early_answer)
    # A backend that answers an upload early and closes: the client still gets the answer.
    start_backend reject
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    python3 "$CLIENT" upload "$PORT" 8 >"$WORK/upload.out" 2>&1 || fail "early answer lost"
    expect upload "answer=b'HTTP/1.1 413"
    stop_serve
    ;;
cache_churn)
    # A 64 KiB cache (about 500 sessions) under a churn of new TLS 1.2 sessions (half full
    # handshakes, no tickets): it fills, evicts (counted), and no handshake fails.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --no-tickets --cache-size 64k
    timeout 60 "$BUILD_DIR/tlsresume" bench "127.0.0.1:$PORT" --tls1_2 --mode mixed:50 \
        --duration 4 -C 8 --json >"$WORK/churn.out" 2>"$WORK/churn.log" || fail "bench"
    set -- $(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))
print(r["handshakes"], sum(r["errors"].values()), round(100 * r["resumed_fraction"]))' \
        "$WORK/churn.out")
    [ "$1" -ge 1000 ] || fail "only $1 handshakes"
    [ "$2" = 0 ] || fail "$2 failed handshakes with the cache full"
    evicted=$(metric tlsresume_cache_evictions_total)
    [ "${evicted:-0}" -ge 100 ] || fail "only ${evicted:-0} evictions: the cache never filled"
    # Half the handshakes offer a session; eviction costs some of them, never most.
    [ "$3" -ge 30 ] || fail "only $3% resumed under churn: the cache hardly ever hits"
    stop_serve
    echo "cache_churn: $1 handshakes ($3% resumed), $evicted evictions, 0 errors"
    ;;
slow_redis)
    # Two servers share sessions through a Redis reached over a relay that delays every
    # chunk; a balancer alternates between them, so every resumption asks Redis. At 0, 1 and
    # 30 ms of added delay each way: no handshake fails, latency is reported (p50, p99), and
    # slower lookups give up at their 5 ms deadline: full handshakes instead of waits.
    command -v haproxy >/dev/null || fail "haproxy is not installed"
    . "$SRC_DIR/scripts/conf.sh"
    start_backend echo
    start_local_redis
    echo 0 >"$WORK/delay"
    relay=$(free_port)
    python3 "$SRC_DIR/tests/integration/lib/slow_proxy.py" --listen "127.0.0.1:$relay" \
        --target "127.0.0.1:$REDIS_PORT" --delay-file "$WORK/delay" >"$WORK/relay.out" 2>&1 &
    PIDS+=("$!")
    wait_grep "$WORK/relay.out" listening "the relay did not start" ""
    ports=()
    admins=()
    for n in 1 2; do
        p=$(free_port)
        admins+=("$(free_port)")
        "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$p" --admin "127.0.0.1:${admins[-1]}" \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 1 --cert "$WORK/cert.pem" \
            --key "$WORK/key.pem" --no-tickets --redis "redis://127.0.0.1:$relay" \
            --fleet-key "$WORK/fleet.key" >"$WORK/s$n.out" 2>"$WORK/s$n.log" &
        PIDS+=("$!")
        wait_grep "$WORK/s$n.log" "event=redis_up part=cache" "server $n never reached Redis" "$!"
        ports+=("$p")
    done
    lb=$(free_port)
    { printf 'global\n'; haproxy_defaults; printf 'frontend fe\n    bind 127.0.0.1:%s\n' "$lb"
        printf '    default_backend be\nbackend be\n    balance roundrobin\n'
        printf '    server a 127.0.0.1:%s\n    server b 127.0.0.1:%s\n' "${ports[@]}"; } \
        >"$WORK/lb.cfg"
    haproxy -f "$WORK/lb.cfg" -db >"$WORK/lb.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$lb"
    report=""
    for d in 0 1 30; do
        echo "$d" >"$WORK/delay"
        python3 "$SRC_DIR/tests/integration/lib/fleet_client.py" --connect "127.0.0.1:$lb" \
            --duration 3 --pause 0 --kinds tls12_id >"$WORK/f$d.out" 2>"$WORK/f$d.log" ||
            fail "client at $d ms"
        line=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["kinds"]["tls12_id"]
print(r["failed"], r["resumed"], r["attempts"], r["resume_p50_ms"], r["resume_p99_ms"])' \
            "$WORK/f$d.out")
        set -- $line
        [ "$1" = 0 ] || fail "$1 failed connections with Redis $d ms slower"
        [ "$3" -ge 20 ] || fail "only $3 resumptions at $d ms"
        # With no added delay nearly every offer resumes; 30 ms over the 5 ms deadline makes
        # them full handshakes (misses), never failures.
        if [ "$d" = 0 ]; then
            [ $(($2 * 100)) -ge $(($3 * 90)) ] || fail "at 0 ms only $2 of $3 resumed"
        fi
        if [ "$d" = 30 ]; then
            [ $(($2 * 100)) -le $(($3 * 10)) ] || fail "at 30 ms $2 of $3 resumed past the deadline"
        fi
        report="$report $d ms: $2/$3 resumed, p50 $4 ms, p99 $5 ms;"
    done
    t=0
    for a in "${admins[@]}"; do
        v=$(curl -s "http://127.0.0.1:$a/metrics" |
            awk '$1 == "tlsresume_fleet_cache_lookups_total{result=\"timeout\"}" { print $2 }')
        t=$((t + ${v:-0}))
    done
    [ "${t:-0}" -ge 1 ] || fail "no lookup gave up at its deadline with Redis 30 ms slower"
    echo "slow_redis:$report 0 failed handshakes"
    ;;
chain | chain_control)
    # A TLS 1.3 client that resumes every 4 s with the newest ticket: each ticket is fresh, but
    # the chain from the full handshake ends after --max-resumption-chain (the control: a cap
    # longer than the test goes on resuming).
    start_backend echo
    cap=$([ "$scenario" = chain ] && echo 10s || echo 1h)
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --max-resumption-chain "$cap"
    sclient c0 -tls1_3 -sess_out "$WORK/c.sess"
    outcomes=""
    for i in 1 2 3; do
        sleep 4 # real time for the chain to age (bounded: 12 s in all)
        sclient "c$i" -tls1_3 -sess_in "$WORK/c.sess" -sess_out "$WORK/c.sess"
        outcomes="$outcomes $(grep -oE '^(Reused|New)' "$WORK/c$i.out" | head -n 1)"
    done
    if [ "$scenario" = chain ]; then
        [ "$outcomes" = " Reused Reused New" ] || fail "chain: $outcomes (expected Reused Reused New)"
        expect_metric_ge 'tlsresume_resumption_failures_total{reason="chain_expired"}' 1
    else
        [ "$outcomes" = " Reused Reused Reused" ] || fail "control: $outcomes"
    fi
    stop_serve
    echo "$scenario: resumptions at 4, 8 and 12 s:$outcomes (cap $cap)"
    ;;
fd_limit)
    # Out of descriptors: accepting pauses (a few log lines, no spin), and serving resumes.
    start_backend echo
    PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    (
        ulimit -n 48
        exec "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$PORT" --admin off \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 1 --handshake-timeout 2s \
            --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    ) >"$WORK/serve.out" 2>"$WORK/serve.log" &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    wait_serve_log "event=started"
    grep -q "warn serve event=fd_limit rlimit_nofile=48 " "$WORK/serve.log" || fail "no descriptor warning"
    # A limit the workers together can live with is said at info level, not warned about.
    ok_port=$(free_port)
    (
        ulimit -n 4000
        exec "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$ok_port" --admin off \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 2 --max-connections 3000 \
            --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    ) >"$WORK/fdok.out" 2>"$WORK/fdok.log" &
    fdok_pid=$!
    PIDS+=("$fdok_pid")
    wait_grep "$WORK/fdok.log" "event=started" "serve under ulimit -n 4000 did not start" "$fdok_pid"
    grep -q "info serve event=fd_limit rlimit_nofile=4000 connections_per_worker=1968" "$WORK/fdok.log" ||
        fail "no fd_limit line at info: $(cat "$WORK/fdok.log")"
    ! grep -q "warn serve event=fd_limit" "$WORK/fdok.log" || fail "a limit that suffices was warned about"
    kill -TERM "$fdok_pid"
    python3 -c "
import socket, time
held = [socket.create_connection(('127.0.0.1', $PORT)) for _ in range(80)]
time.sleep(3)
" || fail "could not open 80 connections"
    lines=$(grep -c "event=accept_paused" "$WORK/serve.log" || true)
    [ "$lines" -ge 1 ] && [ "$lines" -le 10 ] || fail "accept_paused logged $lines times"
    python3 "$CLIENT" resume "$PORT" 1.3 >"$WORK/after.out" 2>&1 || fail "not serving after"
    stop_serve
    ;;
bad_configs)
    # Each mistake: a message naming what and where, a non-zero exit, nothing bound.
    other=$(free_port)
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=x \
        -keyout "$WORK/other.key" -out "$WORK/other.pem" >/dev/null 2>&1
    printf 'backend = 127.0.0.1:1\nnope = 1\n' >"$WORK/unknown.ini"
    printf 'this line has no equals sign\n' >"$WORK/syntax.ini"
    check() {
        local want=$1
        shift
        set +e
        "$BUILD_DIR/tlsresume" serve "$@" --listen "127.0.0.1:$other" --admin off \
            >"$WORK/bad.out" 2>&1
        local rc=$?
        set -e
        [ "$rc" -ne 0 ] || fail "accepted: $*"
        grep -q -- "$want" "$WORK/bad.out" || { cat "$WORK/bad.out" >&2; fail "for '$*' expected '$want'"; }
    }
    ok=(--backend 127.0.0.1:1 --cert "$WORK/cert.pem" --key "$WORK/key.pem")
    check "--bogus: unknown option" "${ok[@]}" --bogus
    check "--cache-sise: unknown option; did you mean --cache-size?" "${ok[@]}" --cache-sise 1m
    # Ports are 1 to 65535 wherever an address is read (it used to wrap: 99999 bound 34463).
    check "--backend: 127.0.0.1:70000: port '70000': expected 1 to 65535" \
        --backend 127.0.0.1:70000 --self-signed
    check "listen: 127.0.0.1:99999: port '99999': expected 1 to 65535" "${ok[@]}" \
        --listen 127.0.0.1:99999
    check "listen: 127.0.0.1:0: port '0': expected 1 to 65535" "${ok[@]}" --listen 127.0.0.1:0
    set +e
    "$BUILD_DIR/tlsresume" serve "${ok[@]}" --admin 127.0.0.1:65536 --check-config >"$WORK/admin.out" 2>&1
    rc=$?
    set -e
    [ "$rc" = 2 ] || fail "--admin 127.0.0.1:65536 exited $rc"
    expect admin "admin: 127.0.0.1:65536: port '65536': expected 1 to 65535"
    printf 'backend = 127.0.0.1:1\ncache_size = 12x\n' >"$WORK/value.ini"
    check "value.ini:2: cache_size: expected a size like 64m" --config "$WORK/value.ini" --self-signed
    check "--cache-size: expected a size like 64m" "${ok[@]}" --cache-size 12x
    check "--session-timeout: 691200 is outside 1 to 604800" "${ok[@]}" --session-timeout 8d
    check "--tls13-tickets: expected one of stateless|stateful" "${ok[@]}" --tls13-tickets sometimes
    check "accept_session_context: 'apache:localhost': expected apache:SERVERNAME:PORT" "${ok[@]}" \
        --accept-session-context apache:localhost
    check "accept_session_context: 'hex:zz': expected hex:" "${ok[@]}" --accept-session-context hex:zz
    check "accept_session_context: 'nginx': not a server's name" "${ok[@]}" \
        --accept-session-context nginx
    check "session_context: 'Apache:www:443': not a server's name" "${ok[@]}" \
        --session-context Apache:www:443
    check "accept_session_context: 'text:': empty text" "${ok[@]}" --accept-session-context text:
    check "accept_session_context: not with client_verify" "${ok[@]}" --accept-session-context \
        nginx-stream --client-verify require --client-ca "$WORK/cert.pem"
    check "accept_session_context: applies to tickets" "${ok[@]}" --accept-session-context none \
        --no-tickets
    check "accept_session_context: 9 contexts (at most 8)" "${ok[@]}" $(for i in $(seq 1 9); do
        printf -- '--accept-session-context text:c%s ' "$i"
    done)
    check "session_context: 'text:0123456789abcdef0123456789abcdefX': more than 32 bytes" \
        "${ok[@]}" --session-context text:0123456789abcdef0123456789abcdefX
    check "session_context: 'none' is for --accept-session-context" "${ok[@]}" --session-context none
    check "same names with the same key type; only one of them could ever be served" "${ok[@]}" \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    echo garbage >"$WORK/bad.crl"
    check "client_crl: $WORK/bad.crl: no CRL in it" "${ok[@]}" --client-verify require \
        --client-ca "$WORK/cert.pem" --client-crl "$WORK/bad.crl"
    check "--client-verify-depth: 0 is outside 1 to 16" "${ok[@]}" --client-verify require \
        --client-ca "$WORK/cert.pem" --client-verify-depth 0
    check "backend: required" --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    check "1 certificates but 0 keys" --backend 127.0.0.1:1 --cert "$WORK/cert.pem"
    check "cert: $WORK/missing.pem" --backend 127.0.0.1:1 --cert "$WORK/missing.pem" --key "$WORK/key.pem"
    check "other.key (for cert $WORK/cert.pem): .*key values mismatch" --backend 127.0.0.1:1 --cert "$WORK/cert.pem" --key "$WORK/other.key"
    check "unknown.ini:2: unknown option 'nope'" --config "$WORK/unknown.ini" --self-signed
    check "syntax.ini:1: expected name = value" --config "$WORK/syntax.ini" --self-signed
    # Config file lines: ':' is no separator, a line needs '=', a '#' after a value is a comment,
    # CRLF line ends read as LF (each was accepted, misread or misnamed before).
    printf 'backend: 127.0.0.1:1\nself_signed = yes\n' >"$WORK/colon.ini"
    check "colon.ini:1: expected name = value (':' is not a separator)" --config "$WORK/colon.ini"
    printf 'self_signed = yes\nbackend\n' >"$WORK/noeq.ini"
    check "noeq.ini:2: expected name = value" --config "$WORK/noeq.ini"
    printf 'backend = 127.0.0.1:1  # the app\r\nself_signed = yes ; a demo\r\nadmin = off\r\n' >"$WORK/comment.ini"
    "$BUILD_DIR/tlsresume" serve --config "$WORK/comment.ini" --check-config >"$WORK/comment.out" 2>&1 ||
        fail "inline comments and CRLF: $(cat "$WORK/comment.out")"
    # An encrypted key: refused without its pass phrase, at once, even with a terminal to prompt
    # on (script gives it one); opened by a line of key_password_file.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -days 2 -subj /CN=localhost \
        -passout pass:s3cret -keyout "$WORK/enc.key" -out "$WORK/enc.pem" >/dev/null 2>&1
    printf 'not this one\ns3cret\n' >"$WORK/pass.txt"
    printf 'wrong\n' >"$WORK/wrong.txt"
    set +e
    timeout 20 script -qec "'$BUILD_DIR/tlsresume' serve --backend 127.0.0.1:1 --cert '$WORK/enc.pem' --key '$WORK/enc.key' --admin off --check-config" /dev/null </dev/null >"$WORK/tty.out" 2>&1
    rc=$?
    set -e
    [ "$rc" != 124 ] || fail "serve waited for a pass phrase on the terminal"
    [ "$rc" = 2 ] || fail "an encrypted key without its pass phrase: exit $rc"
    expect tty "key: $WORK/enc.key: encrypted, and no key_password_file gives its pass phrase"
    check "no line of key_password_file $WORK/wrong.txt opens it" --backend 127.0.0.1:1 \
        --cert "$WORK/enc.pem" --key "$WORK/enc.key" --key-password-file "$WORK/wrong.txt"
    "$BUILD_DIR/tlsresume" serve --backend 127.0.0.1:1 --cert "$WORK/enc.pem" --key "$WORK/enc.key" \
        --key-password-file "$WORK/pass.txt" --admin off --check-config >"$WORK/pass.out" 2>&1 ||
        fail "the pass phrase file did not open the key: $(cat "$WORK/pass.out")"
    check "rotate less often" "${ok[@]}" --ticket-rotate 60 --ticket-lifetime 7d
    check "--backend: no-such-host.invalid:80: cannot resolve" --backend no-such-host.invalid:80 --self-signed
    check "--workers: 999 is outside" "${ok[@]}" --workers 999
    check "--backend: needs a value (HOST:PORT)" --self-signed --backend --listen 127.0.0.1:1
    check "--access-log: expected yes or no" "${ok[@]}" --access-log=maybe
    # The backend leg's TLS: each of its settings needs it, its files must load, and what does
    # not combine with it yet says so.
    printf 'junk\n' >"$WORK/junk.pem"
    check "backend_ca: needs --backend-tls" "${ok[@]}" --backend-ca "$WORK/cert.pem"
    check "backend_ca: $WORK/missing.pem: No such file" "${ok[@]}" --backend-tls --backend-ca "$WORK/missing.pem"
    check "backend_ca: $WORK/junk.pem: .*no certificate or crl found" "${ok[@]}" --backend-tls --backend-ca "$WORK/junk.pem"
    check "backend_insecure: conflicts with --backend-ca" "${ok[@]}" --backend-tls --backend-insecure --backend-ca "$WORK/cert.pem"
    check "backend_key: $WORK/other.key does not fit $WORK/cert.pem" "${ok[@]}" --backend-tls \
        --backend-cert "$WORK/cert.pem" --backend-key "$WORK/other.key"
    check "backend_key: needs --backend-cert" "${ok[@]}" --backend-tls --backend-key "$WORK/key.pem"
    check "early_data: not yet with --backend-tls" "${ok[@]}" --backend-tls --early-data
    check "proxy_protocol: not yet with --backend-tls" "${ok[@]}" --backend-tls --proxy-protocol
    # Client certificates: a mode needs its CA file, a CA or CRL needs a mode, files must load.
    check "client_ca: required with --client-verify require" "${ok[@]}" --client-verify require
    check "client_crl: needs --client-verify optional or require" "${ok[@]}" --client-crl "$WORK/cert.pem"
    check "client_ca: $WORK/missing.pem: No such file" "${ok[@]}" --client-verify optional --client-ca "$WORK/missing.pem"
    check "client_crl: $WORK/cert.pem: no CRL in it" "${ok[@]}" --client-verify optional \
        --client-ca "$WORK/cert.pem" --client-crl "$WORK/cert.pem"
    check "--client-verify: expected one of off|optional|require" "${ok[@]}" --client-verify maybe
    python3 -c "print('cert = ' + 'x' * 250)" >"$WORK/long.ini"
    check "long.ini:1: line longer than 198 characters" --config "$WORK/long.ini" --backend 127.0.0.1:1
    # Fleet mode: endpoints, the fleet key file and the password.
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
    set +e
    "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" >"$WORK/bad.out" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] && grep -q "fleet.key: File exists" "$WORK/bad.out" || fail "keys init overwrote"
    check "fleet_key: required with --redis" "${ok[@]}" --redis redis://127.0.0.1:1
    check "fleet_key: needs --redis" "${ok[@]}" --fleet-key "$WORK/fleet.key"
    check "redis: redis endpoint \"127.0.0.1:6379\": expected redis://" "${ok[@]}" \
        --redis 127.0.0.1:6379 --fleet-key "$WORK/fleet.key"
    check "no credentials in the endpoint; use a password file" "${ok[@]}" \
        --redis redis://u:pw@127.0.0.1 --fleet-key "$WORK/fleet.key"
    check "fleet_key: $WORK/missing.key: No such file" "${ok[@]}" --redis redis://127.0.0.1:1 \
        --fleet-key "$WORK/missing.key"
    cp "$WORK/fleet.key" "$WORK/open.key"
    chmod 644 "$WORK/open.key"
    check "open.key: readable by group or others" "${ok[@]}" --redis redis://127.0.0.1:1 \
        --fleet-key "$WORK/open.key"
    printf 'tlsresume-fleet-key 1\nnot base64\n' >"$WORK/bad.key"
    chmod 600 "$WORK/bad.key"
    check "bad.key:2: expected the 32-byte key" "${ok[@]}" --redis redis://127.0.0.1:1 \
        --fleet-key "$WORK/bad.key"
    check "self_signed: with --redis every server would make its own certificate" \
        --backend 127.0.0.1:1 --self-signed --redis redis://127.0.0.1:1 --fleet-key "$WORK/fleet.key"
    check "redis_password_file: $WORK/nopass: No such file" "${ok[@]}" \
        --redis redis://127.0.0.1:1 --fleet-key "$WORK/fleet.key" --redis-password-file "$WORK/nopass"
    busy=$(free_port)
    python3 -c "import socket,time; s=socket.socket(); s.bind(('127.0.0.1',$busy)); s.listen(); time.sleep(30)" &
    PIDS+=("$!")
    wait_port "$busy"
    set +e
    "$BUILD_DIR/tlsresume" serve "${ok[@]}" --listen "127.0.0.1:$busy" --admin off >"$WORK/busy.out" 2>&1
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "started on a busy port"
    expect busy "listen: 127.0.0.1:$busy: Address already in use"
    set +e
    "$BUILD_DIR/tlsresume" serve "${ok[@]}" --listen "127.0.0.1:$other" --admin "127.0.0.1:$busy" \
        >"$WORK/busyadmin.out" 2>&1
    rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "started with a busy admin port"
    expect busyadmin "admin: 127.0.0.1:$busy: Address already in use (another serve on this host?"
    # make run with a port taken: which one, and how to choose others, before anything starts.
    set +e
    TLSR_DEMO_BACKEND="127.0.0.1:$(free_port)" TLSR_DEMO_ADMIN="127.0.0.1:$(free_port)" \
        TLSR_DEMO_LISTEN="127.0.0.1:$busy" timeout 20 bash "$SRC_DIR/scripts/demo.sh" >"$WORK/demo.out" 2>&1
    rc=$?
    set -e
    [ "$rc" = 1 ] || fail "make run with a busy port: exit $rc"
    expect demo "error demo: 127.0.0.1:$busy is in use"
    "$BUILD_DIR/tlsresume" serve "${ok[@]}" --check-config >"$WORK/check.out" 2>&1 || fail "--check-config on a good config"
    expect check "result=ok"
    # A boolean flag takes its value as a following word, as with "=".
    "$BUILD_DIR/tlsresume" serve "${ok[@]}" --early-data --early-data-anti-replay no \
        --check-config >"$WORK/boolword.out" 2>&1 || fail "--early-data-anti-replay no: $(cat "$WORK/boolword.out")"
    check "--early-data-anti-replay: expected yes or no" "${ok[@]}" --early-data-anti-replay=maybe
    # --help gives each option's range or choices; an unknown option points at its command.
    "$BUILD_DIR/tlsresume" serve --help >"$WORK/help.out"
    expect help "(integer, 0 to 256; default: 0)"
    expect help "(choice, 1.2|1.3; default: 1.2)"
    set +e
    "$BUILD_DIR/tlsresume" keys status --bogus >"$WORK/kbogus.out" 2>&1
    set -e
    expect kbogus "--bogus: unknown option (see tlsresume keys --help)"
    # keys takes serve's fleet settings as flags, not the others (those only from --config).
    set +e
    "$BUILD_DIR/tlsresume" keys status --backend 127.0.0.1:1 >"$WORK/kserve.out" 2>&1
    krc=$?
    "$BUILD_DIR/tlsresume" keys status --help >"$WORK/khelp.out" 2>&1
    set -e
    [ "$krc" = 2 ] || fail "keys status --backend exited $krc"
    expect kserve "--backend: not an option of this command (a config file setting of tlsresume serve)"
    expect khelp "--fleet-key FILE"
    expect khelp "(duration, 1 to 3600 s; default: 10s)"
    ! grep -q -- "--backend" "$WORK/khelp.out" || fail "keys --help lists serve's --backend"
    ;;
config_doc)
    # docs/CONFIG.md carries exactly the table the program prints.
    "$BUILD_DIR/tlsresume" serve --config-table >"$WORK/table.out"
    sed -n '/<!-- options:begin -->/,/<!-- options:end -->/p' "$SRC_DIR/docs/CONFIG.md" |
        sed '1d;$d' >"$WORK/doc.out"
    diff -u "$WORK/doc.out" "$WORK/table.out" >"$WORK/diff.out" || fail "docs/CONFIG.md differs from --config-table"
    ;;
man_pages)
    # Each command's man page comes from the rows --help prints: every flag of --help is in
    # it, and man renders it without a warning. The build installs the four pages.
    for cmd in serve check bench keys; do
        case $cmd in keys) help=(keys status --help) ;; *) help=("$cmd" --help) ;; esac
        "$BUILD_DIR/tlsresume" "${help[@]}" >"$WORK/$cmd.help"
        page="$BUILD_DIR/man/tlsresume-$cmd.1"
        [ -s "$page" ] || fail "no man page $page"
        cmp -s <("$BUILD_DIR/tlsresume" "$cmd" --man) "$page" || fail "$page is stale"
        n=0
        for flag in $(grep -oE '^  --[a-z0-9_-]+' "$WORK/$cmd.help"); do
            grep -qF -- "${flag//-/\\-}" "$page" || fail "$cmd: $flag is in --help, not in the man page"
            n=$((n + 1))
        done
        [ "$n" -ge 8 ] || fail "$cmd: only $n flags in --help"
        LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$page" >"$WORK/$cmd.man" 2>"$WORK/$cmd.warn" ||
            fail "man $page failed: $(cat "$WORK/$cmd.warn")"
        grep -v "can't break line" "$WORK/$cmd.warn" >"$WORK/$cmd.warn2" || true
        [ ! -s "$WORK/$cmd.warn2" ] || fail "man $cmd: $(cat "$WORK/$cmd.warn2")"
        grep -q "^SYNOPSIS" "$WORK/$cmd.man" || fail "man $cmd: no SYNOPSIS"
        echo "man $cmd: $n flags"
    done
    # tlsresume(1) lists every command; tlsresume.ini(5) every option a file may hold.
    for cmd in serve check bench keys; do
        grep -q "tlsresume\\\\-$cmd(1)" "$BUILD_DIR/man/tlsresume.1" || fail "tlsresume.1 does not name $cmd"
    done
    "$BUILD_DIR/tlsresume" serve --config-table | sed -n 's/^| `\([a-z0-9_]*\)` .*/\1/p' >"$WORK/rows.txt"
    [ "$(wc -l <"$WORK/rows.txt")" -ge 40 ] || fail "too few rows in --config-table"
    while read -r row; do
        grep -qx ".B ${row}" "$BUILD_DIR/man/tlsresume.ini.5" || fail "tlsresume.ini.5 lacks $row"
    done <"$WORK/rows.txt"
    for page in tlsresume.1 tlsresume.ini.5 "$SRC_DIR/docs/libtlsresume.3"; do
        [ -f "$page" ] || page="$BUILD_DIR/man/$page"
        LC_ALL=C.UTF-8 MANWIDTH=100 man --warnings -l "$page" >/dev/null 2>"$WORK/page.warn" ||
            fail "man $page failed"
        ! grep -v "can't break line" "$WORK/page.warn" | grep -q . || fail "man $page: $(cat "$WORK/page.warn")"
    done
    cmake --install "$BUILD_DIR" --prefix "$WORK/prefix" >"$WORK/install.log" 2>&1 || fail "install: $(tail -3 "$WORK/install.log")"
    for page in man1/tlsresume-serve.1 man1/tlsresume-check.1 man1/tlsresume-bench.1 \
        man1/tlsresume-keys.1 man1/tlsresume.1 man5/tlsresume.ini.5 man3/libtlsresume.3; do
        [ -f "$WORK/prefix/share/man/$page" ] || fail "$page not installed"
    done
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
