#!/usr/bin/env bash
# The GnuTLS adapter through its example server (examples/gnutls_server.c), with real
# gnutls-cli and openssl s_client, on loopback.
# usage: test_gnutls.sh SCENARIO
#   resume    gnutls-cli --resume and s_client resume TLS 1.2 IDs, TLS 1.2 tickets and TLS 1.3
#             through the shared cache and ring of the server's two workers
#   control   the same server without the adapter (--plain): nothing resumes across workers
#   fleet     two GnuTLS servers and a serve on one Redis fleet ring: a ticket from one resumes
#             on the other, before and after a rotation (the ticket's key is found by name);
#             session IDs cross through Redis
#   stores    the same over TLS Redis, Sentinel (with a failover) and a TLS Cluster
#   early     0-RTT from gnutls-cli accepted once; the first flight replayed 20 times is refused
. "$(dirname "$0")/lib/common.sh"
scenario=${1:?scenario}
TLSR="$BUILD_DIR/tlsresume"
GSERVER="$BUILD_DIR/gnutls_server"
command -v gnutls-cli >/dev/null || fail "gnutls-cli is not installed (scripts/deps.sh test)"
make_cert

# start_gnutls NAME ARGS...: the example server on a fresh port (GPORT_<NAME>).
start_gnutls() {
    local name=$1 port
    shift
    port=$(free_port)
    "$GSERVER" --port "$port" --cert "$WORK/cert.pem" --key "$WORK/key.pem" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PIDS+=("$!")
    printf -v "GPORT_$name" %s "$port"
    printf -v "GPID_$name" %s "$!"
    wait_grep "$WORK/$name.log" "event=started" "$name did not start" "$!"
    wait_port "$port"
}

# stop_gnutls NAME: stops the server started as NAME.
stop_gnutls() {
    local pid
    eval "pid=\$GPID_$1"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# resumed NAME: how many handshakes the server logged as resumed.
resumed() {
    grep -c "event=handshake .*resumed=yes" "$WORK/$1.log" || true
}

# gcli OUT PORT PRIORITY: gnutls-cli --resume (a full handshake, then a resumption).
gcli() {
    echo ping | timeout 20 gnutls-cli --insecure --resume -p "$2" 127.0.0.1 --priority "$3" \
        >"$WORK/$1.out" 2>&1 || true
    grep -c "This is a resumed session" "$WORK/$1.out" || true
}

# sclient_pair OUT FROM_PORT TO_PORT ARGS...: a session from one server offered to the other.
sclient_pair() {
    local out=$1 from=$2 to=$3
    shift 3
    { printf 'ping\n'; sleep 0.3; } | timeout 20 openssl s_client -connect "127.0.0.1:$from" \
        -sess_out "$WORK/$out.sess" "$@" >"$WORK/$out.1.out" 2>&1 || true
    { printf 'ping\n'; sleep 0.3; } | timeout 20 openssl s_client -connect "127.0.0.1:$to" \
        -sess_in "$WORK/$out.sess" "$@" >"$WORK/$out.2.out" 2>&1 || true
    grep -oE '^(Reused|New)' "$WORK/$out.2.out" | head -n 1
}

PRIO12=NORMAL:-VERS-ALL:+VERS-TLS1.2
PRIO13=NORMAL:-VERS-ALL:+VERS-TLS1.3

case "$scenario" in
resume | control)
    extra=()
    [ "$scenario" = control ] && extra=(--plain)
    start_gnutls g --workers 2 "${extra[@]}"
    # No warm-up: a client reconnecting at once to the other worker must find its session ID
    # (the adapter stores it before the server's Finished leaves; unit_gnutls holds a server
    # there).
    total=0
    missed=""
    for i in $(seq 1 6); do
        for kind in "ids$i $PRIO12:%NO_TICKETS" "t12_$i $PRIO12" "t13_$i $PRIO13"; do
            n=$(gcli "${kind%% *}" "$GPORT_g" "${kind#* }")
            total=$((total + n))
            [ "$n" = 1 ] || missed="$missed gnutls-cli:${kind%% *}"
        done
        for args in "-tls1_2 -no_ticket" "-tls1_2" "-tls1_3"; do
            # shellcheck disable=SC2086
            if [ "$(sclient_pair "s$i" "$GPORT_g" "$GPORT_g" $args)" = Reused ]; then
                total=$((total + 1))
            else
                missed="$missed s_client:$i:${args// /}"
            fi
        done
    done
    pids=$({ grep "event=handshake .*resumed=yes" "$WORK/g.log" || true; } |
        sed 's/.*pid=\([0-9]*\).*/\1/' | sort -u | wc -l)
    if [ "$scenario" = resume ]; then
        [ "$total" -eq 36 ] || fail "$total of 36 resumptions (gnutls-cli and s_client); missed:$missed"
        [ "$(resumed g)" -eq 36 ] || fail "the server logged $(resumed g) resumptions"
        # Which worker accepts is the kernel's choice: reported, not asserted. (GnuTLS keeps
        # no session cache of its own, so every ID resumed came through the shared cache.)
        echo "resume: 36/36 (gnutls-cli and s_client; IDs, TLS 1.2 tickets, TLS 1.3), resumed" \
            "by $pids of 2 workers"
    else
        # Without the adapter a session ID resumes only on the worker that made it (GnuTLS
        # keeps no cache of its own) and no ticket is issued.
        [ "$total" -lt 6 ] || fail "control: $total resumptions without the adapter"
        echo "control: $total of 36 resumed without the adapter"
    fi
    ;;
fleet)
    start_local_redis
    FLEET=(--redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key")
    start_backend echo
    port=$(free_port)
    "$TLSR" serve --listen "127.0.0.1:$port" --admin off --workers 1 --cert "$WORK/cert.pem" \
        --key "$WORK/key.pem" --backend "127.0.0.1:$BACKEND_PORT" --fleet-poll-ms 200 \
        --ticket-rotate 10s --ticket-lifetime 60s "${FLEET[@]}" >"$WORK/serve.out" \
        2>"$WORK/serve.log" &
    PIDS+=("$!")
    for n in a b; do
        start_gnutls "$n" --workers 1 "${FLEET[@]}" --ticket-rotate 10 --ticket-lifetime 60
        wait_grep "$WORK/$n.log" "event=joined_fleet_ring" "$n never joined the fleet" ""
    done
    for v in 1_2 1_3; do
        [ "$(sclient_pair "ab$v" "$GPORT_a" "$GPORT_b" "-tls$v")" = Reused ] ||
            fail "TLS $v: a ticket from server a did not resume on b"
    done
    # TLS 1.2 session IDs cross too, through Redis behind each server's cache; a server
    # without the fleet (the control) does not resume them.
    [ "$(sclient_pair ids "$GPORT_a" "$GPORT_b" -tls1_2 -no_ticket)" = Reused ] ||
        fail "a session ID from server a did not resume on b through Redis"
    start_gnutls c --workers 1
    [ "$(sclient_pair ids_c "$GPORT_a" "$GPORT_c" -tls1_2 -no_ticket)" = New ] ||
        fail "control: a server outside the fleet resumed a session ID it never saw"
    "$TLSR" keys status --json "${FLEET[@]}" >"$WORK/status.out" 2>/dev/null || fail "status"
    grep -q '"members":3' "$WORK/status.out" || fail "not 3 members: $(cat "$WORK/status.out")"
    # A ticket from before a rotation still resumes: the hook finds its (now older) key.
    { printf 'ping\n'; sleep 0.3; } | timeout 20 openssl s_client -connect "127.0.0.1:$GPORT_a" \
        -tls1_3 -sess_out "$WORK/old.sess" >"$WORK/old.out" 2>&1 || true
    g0=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["generation"])' \
        "$WORK/status.out")
    "$TLSR" keys rotate --wait "${FLEET[@]}" --timeout 30 2>"$WORK/rotate.log" || fail "rotate"
    sleep 0.5 # one poll (200 ms) for every server to promote the new key
    { printf 'ping\n'; sleep 0.3; } | timeout 20 openssl s_client -connect "127.0.0.1:$GPORT_b" \
        -tls1_3 -sess_in "$WORK/old.sess" >"$WORK/old2.out" 2>&1 || true
    grep -q '^Reused' "$WORK/old2.out" || fail "a ticket from before the rotation did not resume"
    [ "$(sclient_pair after "$GPORT_a" "$GPORT_b" -tls1_2)" = Reused ] ||
        fail "after the rotation: a new ticket from a did not resume on b"
    echo "fleet: TLS 1.2 and 1.3 tickets and TLS 1.2 session IDs (through Redis) cross two" \
        "GnuTLS servers sharing the ring with serve (3 members; a server outside: New); a" \
        "ticket from generation $g0 resumes after the rotation"
    ;;
stores)
    # The workers' blocking stores and the master's ring on Redis as operators run it: over
    # TLS with a client certificate, behind Sentinel (the master killed and the replica
    # promoted), and as a TLS-only Cluster. In each, two GnuTLS servers share TLS 1.2 session
    # IDs through Redis (neither server's own cache has seen the other's sessions) and TLS
    # 1.2 and 1.3 tickets through the ring. The control: a server that trusts another CA
    # refuses Redis, says why, and cannot resume the others' session IDs.
    mk_cert ca "fleet CA" ""
    mk_cert other "another CA" ""
    mk_cert redis redis.test "DNS:redis.test,IP:127.0.0.1" ca
    mk_cert client tlsresume "DNS:tlsresume" ca
    "$TLSR" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
    # pair NAME ARGS...: servers NAMEa and NAMEb in one fleet with ARGS, both reaching Redis.
    pair() {
        local name=$1 n
        shift
        for n in a b; do
            start_gnutls "$name$n" --workers 1 --fleet-key "$WORK/fleet.key" \
                --redis-timeout-ms 200 "$@"
            wait_grep "$WORK/$name$n.log" "event=joined_fleet_ring" "$name$n never joined" ""
            wait_grep "$WORK/$name$n.log" "event=redis_up part=store" "$name$n: no store" ""
        done
    }
    # crosses NAME: IDs, TLS 1.2 and TLS 1.3 tickets made on NAMEa resume on NAMEb.
    crosses() {
        local a b args
        eval "a=\$GPORT_${1}a b=\$GPORT_${1}b"
        for args in "-tls1_2 -no_ticket" "-tls1_2" "-tls1_3"; do
            # shellcheck disable=SC2086
            [ "$(sclient_pair "$1${args// /}" "$a" "$b" $args)" = Reused ] ||
                fail "$1: a session ($args) from server a did not resume on b"
        done
    }
    stop_pair() {
        stop_gnutls "${1}a"
        stop_gnutls "${1}b"
    }
    # TLS, with a client certificate.
    REDIS_PORT=$(free_port)
    redis-server --port 0 --tls-port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$WORK" \
        --appendonly no --tls-cert-file "$WORK/redis.pem" --tls-key-file "$WORK/redis.key" \
        --tls-ca-cert-file "$WORK/ca.pem" --tls-auth-clients yes >"$WORK/redis-tls.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$REDIS_PORT"
    tls=(--redis "rediss://127.0.0.1:$REDIS_PORT" --redis-tls-ca "$WORK/ca.pem"
        --redis-tls-cert "$WORK/client.pem" --redis-tls-key "$WORK/client.key")
    pair tls "${tls[@]}"
    crosses tls
    tls[3]=$WORK/other.pem
    start_gnutls tlsc --workers 1 --fleet-key "$WORK/fleet.key" "${tls[@]}"
    wait_grep "$WORK/tlsc.log" "certificate did not verify" "a server trusting another CA did not refuse Redis" ""
    [ "$(sclient_pair tls_control "$GPORT_tlsa" "$GPORT_tlsc" -tls1_2 -no_ticket)" = New ] ||
        fail "control: a server that cannot reach Redis resumed a session ID it never saw"
    stop_gnutls tlsc
    stop_pair tls
    # Sentinel, with a failover.
    start_sentinel_redis
    pair sen --redis "$SENTINEL_URL"
    crosses sen
    wait_failover
    for n in a b; do
        wait_grep "$WORK/sen$n.log" "part=store .*master=127.0.0.1:$REPLICA_PORT" \
            "sen$n: the store did not follow the failover" ""
    done
    for k in $(seq 1 50); do
        [ "$(sclient_pair sen_after "$GPORT_sena" "$GPORT_senb" -tls1_2 -no_ticket)" = Reused ] && break
        [ "$k" = 50 ] && fail "sentinel: session IDs did not cross again after the failover"
        sleep 0.2
    done
    crosses sen
    stop_pair sen
    # A TLS-only Cluster.
    CLUSTER_TLS=$WORK start_cluster_redis 127.0.0.1
    pair cl --redis "$CLUSTER_URL" --redis-tls-ca "$WORK/ca.pem"
    crosses cl
    # serve on the same TLS Cluster: its session IDs cross two of them as well.
    start_backend echo
    sports=()
    for n in 1 2; do
        p=$(free_port)
        "$TLSR" serve --listen "127.0.0.1:$p" --admin off --workers 1 --cert "$WORK/cert.pem" \
            --key "$WORK/key.pem" --backend "127.0.0.1:$BACKEND_PORT" --redis "$CLUSTER_URL" \
            --redis-tls-ca "$WORK/ca.pem" --fleet-key "$WORK/fleet.key" --redis-timeout-ms 200 \
            >"$WORK/serve$n.out" 2>"$WORK/serve$n.log" &
        PIDS+=("$!")
        wait_grep "$WORK/serve$n.log" "event=redis_up part=cache" "serve $n: no cache on the TLS Cluster" "$!"
        sports+=("$p")
    done
    [ "$(sclient_pair serve_ids "${sports[0]}" "${sports[1]}" -tls1_2 -no_ticket)" = Reused ] ||
        fail "serve: a session ID did not cross two servers on the TLS Cluster"
    n=0
    for p in "${CLUSTER_PORTS[@]}"; do
        n=$((n + $(redis-cli "${REDIS_CLI_TLS[@]}" -p "$p" --scan --pattern 'tlsr:s:*' | wc -l)))
    done
    [ "$n" -ge 1 ] || fail "no session on the Cluster"
    stop_pair cl
    echo "stores: IDs, TLS 1.2 and 1.3 tickets cross two GnuTLS servers over TLS Redis (client" \
        "certificate), behind Sentinel before and after a failover ($k tries), and on a TLS" \
        "Cluster (serve's IDs too); a server trusting another CA refuses Redis and resumes" \
        "nothing of theirs"
    ;;
early | early_control)
    # Replayed first flights never finish their handshake, so the server logs whether it
    # accepted their early data on the failed handshake (early=yes). The control turns the
    # strike register off and must see the replays accepted: the count can move.
    extra=()
    [ "$scenario" = early_control ] && extra=(--no-anti-replay)
    start_gnutls g --workers 2 --early-data "${extra[@]}"
    printf 'gnutls-early-1\n' >"$WORK/e.txt"
    (sleep 1; echo after) | timeout 20 gnutls-cli --insecure --resume --earlydata="$WORK/e.txt" \
        -p "$GPORT_g" 127.0.0.1 >"$WORK/e.out" 2>&1 || true
    grep -q "This is a resumed session" "$WORK/e.out" || fail "gnutls-cli did not resume"
    [ "$(grep -c 'early=yes' "$WORK/g.log")" -eq 1 ] || fail "early data not accepted once"
    # The same with s_client through a recording relay, then its first flight replayed.
    REPLAY="$SRC_DIR/tests/integration/lib/replay.py"
    { printf 'ping\n'; sleep 0.5; } | timeout 20 openssl s_client -connect "127.0.0.1:$GPORT_g" \
        -tls1_3 -sess_out "$WORK/t.sess" >"$WORK/t.out" 2>&1 || true
    rport=$(free_port)
    python3 "$REPLAY" record --listen "127.0.0.1:$rport" --target "127.0.0.1:$GPORT_g" \
        --out "$WORK/flight.bin" >"$WORK/relay.out" 2>&1 &
    PIDS+=("$!")
    wait_grep "$WORK/relay.out" "listening" "the relay did not start" ""
    printf 'replayed-early-1\n' >"$WORK/r.txt"
    { sleep 1; } | timeout 20 openssl s_client -connect "127.0.0.1:$rport" -tls1_3 \
        -sess_in "$WORK/t.sess" -early_data "$WORK/r.txt" >"$WORK/orig.out" 2>&1 || true
    grep -q "Early data was accepted" "$WORK/orig.out" || fail "the original was not accepted"
    before=$(grep -c 'handshake_failed' "$WORK/g.log" || true)
    python3 "$REPLAY" send --flight "$WORK/flight.bin" --to "127.0.0.1:$GPORT_g" --times 20 \
        --wait 1 >"$WORK/send.out" || fail "replay sender"
    grep -q '"connections": 20' "$WORK/send.out" || fail "replays did not connect"
    # Each replay ends as a failed handshake (no client Finished): all 20 must be logged.
    for _ in $(seq 1 100); do
        [ "$(($(grep -c 'handshake_failed' "$WORK/g.log") - before))" -ge 20 ] && break
        sleep 0.1
    done
    failed=$(($(grep -c 'handshake_failed' "$WORK/g.log") - before))
    accepted=$(grep -c 'handshake_failed early=yes' "$WORK/g.log" || true)
    [ "$failed" -ge 20 ] || fail "only $failed of 20 replays reached a handshake"
    if [ "$scenario" = early ]; then
        [ "$accepted" -eq 0 ] || fail "$accepted replays had their early data accepted"
        echo "early: gnutls-cli's and s_client's early data accepted once each; 20 replays refused"
    else
        [ "$accepted" -ge 2 ] || fail "control: only $accepted replays accepted without anti-replay"
        echo "early_control: without the register $accepted of 20 replays were accepted"
    fi
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
