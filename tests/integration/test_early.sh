#!/usr/bin/env bash
# TLS 1.3 early data (0-RTT) through `tlsresume serve`: accepted once, replays refused.
# usage: test_early.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/early.sh"

scenario=${1:?scenario}
make_cert
WINDOW=10 # seconds: --early-data-window (its minimum); 0-RTT is refused this long after start

# serve_early ARGS...: serve with 0-RTT and PROXY v2 in front of the line-logging backend,
# after its fresh-start window.
serve_early() {
    start_backend lines --proxy-protocol
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --proxy-protocol --early-data \
        --early-data-window "${WINDOW}s" "$@"
    sleep "$WINDOW"
}

# ---- a fleet of serve processes on one Redis (loopback), for the fleet register -------------
FAKE=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1

# start_early_fleet SKEW ENV...: one serve per ENV (empty, or a FAKETIME value such as +30s) on
# a Redis of the test's own, each with 0-RTT and --fleet-clock-skew SKEW seconds. Sets
# MPORTS and MADMINS (by member, from 0); member i logs to $WORK/m$i.log.
start_early_fleet() {
    local skew=$1 i=0 env
    shift
    start_backend lines --proxy-protocol
    if [ -z "${EARLY_REDIS:-}" ]; then
        start_local_redis
        EARLY_REDIS="redis://127.0.0.1:$REDIS_PORT"
    fi
    MPORTS=()
    MADMINS=()
    for env in "$@"; do
        local p a
        p=$(free_port)
        a=$(free_port)
        local pre=()
        if [ -n "$env" ]; then
            [ -f "$FAKE" ] || fail "libfaketime is not installed"
            pre=(env LD_PRELOAD="$FAKE" FAKETIME="$env"
                ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0")
        fi
        : >"$WORK/m$i.log" # emptied before the wait below can read a former member's log
        "${pre[@]}" "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$p" --admin "127.0.0.1:$a" \
            --backend "127.0.0.1:$BACKEND_PORT" --workers 1 --cert "$WORK/cert.pem" \
            --key "$WORK/key.pem" --proxy-protocol --early-data --early-data-window "${WINDOW}s" \
            --redis "$EARLY_REDIS" --fleet-key "$WORK/fleet.key" \
            --fleet-clock-skew "${skew}s" --redis-timeout-ms 200 \
            >"$WORK/m$i.out" 2>"$WORK/m$i.log" &
        PIDS+=("$!")
        wait_grep "$WORK/m$i.log" "event=started" "member $i did not start" "$!"
        MPORTS+=("$p")
        MADMINS+=("$a")
        i=$((i + 1))
    done
    RECORD_S=$((WINDOW + skew + 2)) # how long Redis keeps a strike record (docs/EARLY_DATA.md)
}

# rcli ARGS...: redis-cli on the test's Redis.
rcli() {
    redis-cli -p "$REDIS_PORT" "$@"
}

# member I: the next helpers talk to member I (ticket, early, record_flight, metric).
member() {
    PORT=${MPORTS[$1]}
    ADMIN_PORT=${MADMINS[$1]}
}

# register_answers I ANSWER: member I's tlsresume_fleet_early_register_total{answer=ANSWER}.
register_answers() {
    member "$1"
    metric "tlsresume_fleet_early_register_total{answer=\"$2\"}"
}

# replay_to TIMES I...: the recorded flight sent TIMES times, spread over members I...
replay_to() {
    local times=$1 to=() i
    shift
    for i in "$@"; do to+=(--to "127.0.0.1:${MPORTS[$i]}"); done
    python3 "$REPLAY" send --flight "$WORK/flight.bin" "${to[@]}" --times "$times" --wait 1 \
        >"$WORK/send.out" || fail "replay sender"
    grep -q "\"connections\": $times" "$WORK/send.out" || fail "replays did not connect"
}

case "$scenario" in
full_flight)
    # The most early data a ticket allows (16 KiB) behind the PROXY header and its TLVs: it all
    # reaches the backend as early data, in order (the header's room is kept in the buffer; a
    # header written past a full buffer is what ASan would report here).
    # gnutls-cli sends the file as one record of 16 KiB (s_client splits it in 8 KiB ones).
    command -v gnutls-cli >/dev/null || fail "gnutls-cli is not installed"
    serve_early
    line=$(head -c 16383 /dev/zero | tr '\0' x)
    printf '%s\n' "$line" >"$WORK/g.txt"
    (sleep 1; echo after) | timeout 20 gnutls-cli --insecure --resume --earlydata="$WORK/g.txt" \
        -p "$PORT" 127.0.0.1 >"$WORK/g.out" 2>&1 || true
    grep -q "This is a resumed session" "$WORK/g.out" || fail "gnutls did not resume"
    wait_until 10 test "$(received "$line")" -ge 1 || fail "16 KiB of early data did not arrive whole"
    [ "$(early_metric accepted)" -ge 1 ] || fail "the early data was not accepted"
    stop_serve
    ;;
s_client)
    serve_early
    ticket
    early e "s-client-early-1"
    grep -q "Early data was accepted" "$WORK/e.out" || fail "early data not accepted"
    grep -q "^Reused, TLSv1.3" "$WORK/e.out" || fail "not resumed"
    [ "$(received s-client-early-1)" = 1 ] || fail "the backend did not get the early data once"
    [ "$(early_metric accepted)" = 1 ] || fail "accepted counter"
    expect_metric_ge tlsresume_early_data_bytes_total 17
    # The most early data a ticket allows (16 KiB), behind the PROXY header: more than the
    # relay buffer holds before the backend is connected, so it goes in two steps.
    big=$(python3 -c "print('x' * 16383)")
    early big "$big"
    grep -q "Early data was accepted" "$WORK/big.out" || fail "16 KiB of early data not accepted"
    [ "$(grep -c "^line early=1 x\{16383\}\$" "$WORK/backend.out")" = 1 ] ||
        fail "the backend did not get 16 KiB of early data once"
    stop_serve
    ;;
gnutls)
    command -v gnutls-cli >/dev/null || fail "gnutls-cli is not installed"
    serve_early
    printf 'gnutls-early-1\n' >"$WORK/g.txt"
    (sleep 1; echo after) | timeout 20 gnutls-cli --insecure --resume --earlydata="$WORK/g.txt" \
        -p "$PORT" 127.0.0.1 >"$WORK/g.out" 2>&1 || true
    grep -q "This is a resumed session" "$WORK/g.out" || fail "gnutls did not resume"
    [ "$(received gnutls-early-1)" = 1 ] || fail "the backend did not get gnutls's early data once"
    [ "$(early_metric accepted)" = 1 ] || fail "accepted counter"
    stop_serve
    ;;
replay | replay_control)
    # The first flight resent byte for byte 30 times at once (over both workers): the backend
    # gets the early data once. Without anti-replay (the control) it gets it again.
    if [ "$scenario" = replay ]; then
        serve_early
    else
        serve_early --early-data-anti-replay no
        grep -q "early_data_anti_replay=no" "$WORK/serve.log" || fail "no warning logged"
    fi
    ticket
    record_flight "replayed-early-1"
    grep -q "Early data was accepted" "$WORK/orig.out" || fail "the original was not accepted"
    python3 "$REPLAY" send --flight "$WORK/flight.bin" --to "127.0.0.1:$PORT" --times 30 \
        --wait 1 >"$WORK/send.out" || fail "replay sender"
    grep -q '"connections": 30' "$WORK/send.out" || fail "replays did not connect"
    sleep 0.5
    got=$(received replayed-early-1)
    if [ "$scenario" = replay ]; then
        [ "$got" = 1 ] || fail "the backend got the early data $got times"
        expect_metric_ge 'tlsresume_early_data_total{result="rejected_replay"}' 30
    else
        [ "$got" -ge 2 ] || fail "control: a replay without anti-replay was not accepted ($got)"
    fi
    stop_serve
    echo "$scenario: 30 replays, early data received $got time(s)"
    ;;
stale)
    # A client whose clock runs 30 s ahead: its ticket age disagrees with the server's by more
    # than 10 s (RFC 8446 §8.3), so early data is refused; the handshake still resumes.
    fake=/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1
    [ -f "$fake" ] || fail "libfaketime is not installed"
    serve_early
    ticket
    early e "stale-early-1" "$PORT" env LD_PRELOAD="$fake" FAKETIME=+30s
    grep -q "Early data was rejected" "$WORK/e.out" || fail "stale early data not rejected"
    grep -q "^Reused, TLSv1.3" "$WORK/e.out" || fail "the handshake did not complete"
    [ "$(received stale-early-1)" = 0 ] || fail "stale early data reached the backend"
    [ "$(early_metric rejected_stale)" = 1 ] || fail "stale counter"
    stop_serve
    ;;
starting)
    # Just started: the register may have forgotten flights seen before a restart (RFC 8446
    # §8.2), so early data is refused for the window; the handshake still resumes.
    start_backend lines --proxy-protocol
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --proxy-protocol --early-data \
        --early-data-window 30s
    ticket
    early e "starting-early-1"
    grep -q "Early data was rejected" "$WORK/e.out" || fail "early data accepted at start"
    grep -q "^Reused, TLSv1.3" "$WORK/e.out" || fail "the handshake did not complete"
    [ "$(early_metric rejected_starting)" = 1 ] || fail "starting counter"
    stop_serve
    ;;
check | check_control)
    # tlsresume check --early-data: accepted, and its replays refused (exit 0); against a
    # server without anti-replay its replay probe reports the failure (exit 1).
    if [ "$scenario" = check ]; then serve_early; else serve_early --early-data-anti-replay=no; fi
    set +e
    "$BUILD_DIR/tlsresume" check "127.0.0.1:$PORT" --insecure --json --attempts 2 --early-data \
        >"$WORK/c.out" 2>"$WORK/c.log"
    rc=$?
    set -e
    [ "$(field c "r['early_data']['accepted']")" = True ] || fail "check: early data not accepted"
    [ "$(field c "r['early_data']['replays']")" = 3 ] || fail "check: replays sent"
    python3 "$SRC_DIR/tests/integration/lib/schema_check.py" "$SRC_DIR/docs/check-json.md" \
        "$WORK/c.out" || fail "report does not match docs/check-json.md"
    if [ "$scenario" = check ]; then
        [ "$rc" = 0 ] || fail "check exit $rc"
        expect_field c "r['early_data']['replay_probe']" ran
        [ "$(field c "r['early_data']['replays_refused']")" = 3 ] || fail "check: replays not refused"
        [ "$(early_metric rejected_replay)" = 3 ] || fail "server: replays not counted"
    else
        [ "$rc" = 1 ] || fail "check exit $rc with replays accepted"
        [ "$(field c "r['early_data']['replays_accepted']")" = 3 ] || fail "check: accepted replays not seen"
        grep -q SECURITY "$WORK/c.out" || fail "no security hint"
    fi
    stop_serve
    ;;
fleet_skew | fleet_skew_control)
    # Three members on one Redis, one at +30 s and one at -30 s of the third (libfaketime),
    # declared with --fleet-clock-skew 60s. The ticket and the original flight come from the
    # +30 s member. A member d seconds behind the issuer finds the flight fresh from d - 1 to
    # d + 10 s after it was sent (OpenSSL's ticket age check, docs/EARLY_DATA.md): the 0 s
    # member from 29 to 40 s, the -30 s member from 59 to 70 s. The flight is replayed to both
    # every 11 s (longer than each member's own 10 s record) until 66 s, within the record's 72 s:
    # Redis never takes it for a first sighting, and none is accepted. The control deletes the
    # record before each round after 10 s, as the old 10 s lifetime did: each member accepts
    # the replay that reaches it while fresh.
    start_early_fleet 60 "" "+30s" "-30s"
    wait_register_trusted "$RECORD_S" rcli
    member 1
    ticket
    record_flight "skew-early-1"
    grep -q "Early data was accepted" "$WORK/orig.out" || fail "the original was not accepted"
    t0=$(date +%s)
    # Rounds as "second:member,member": every 11 s to both; the control sends one replay to each
    # member in the middle of its fresh window, far from its own 10 s record of round 0.
    rounds="0:0,2 11:0,2 22:0,2 33:0,2 44:0,2 55:0,2 66:0,2"
    [ "$scenario" = fleet_skew ] || rounds="0:0,2 34:0 64:2"
    for r in $rounds; do
        t=${r%%:*}
        while [ "$(date +%s)" -lt $((t0 + t)) ]; do sleep 0.2; done
        if [ "$scenario" = fleet_skew_control ] && [ "$t" -ge 11 ]; then
            rcli --scan --pattern 'tlsr:e:*' </dev/null | while read -r k; do
                rcli DEL "$k" </dev/null >/dev/null
            done
        fi
        IFS=, read -r -a to <<<"${r#*:}"
        replay_to "${#to[@]}" "${to[@]}"
    done
    sleep 0.5
    got=$(received skew-early-1)
    accepted=()
    replays=()
    asked=()
    firsts=()
    for i in 0 2; do
        member "$i"
        accepted+=("$(metric 'tlsresume_early_data_total{result="accepted"}')")
        replays+=("$(register_answers "$i" replay)")
        firsts+=("$(register_answers "$i" first)")
        asked+=("$(metric 'tlsresume_early_data_total{result="offered"}')")
    done
    if [ "$scenario" = fleet_skew ]; then
        [ "$got" = 1 ] || fail "the backend got the early data $got times"
        [ "${accepted[*]}" = "0 0" ] || fail "replays accepted (0 s, -30 s members): ${accepted[*]}"
        # Every round reached both members, and Redis never took the flight for a first
        # sighting: its record outlived every round.
        [ "${asked[*]}" = "7 7" ] || fail "the members saw ${asked[*]} of 7 and 7 rounds"
        [ "${firsts[*]}" = "0 0" ] || fail "Redis took a replay for a first sighting: ${firsts[*]}"
    else
        [ "${accepted[0]}" -ge 1 ] || fail "control: the 0 s member accepted no replay in 29-40 s"
        [ "${accepted[1]}" -ge 1 ] || fail "control: the -30 s member accepted no replay in 59-70 s"
    fi
    echo "$scenario: flight from the +30 s member replayed to the 0 s and -30 s members every 11 s until 66 s: received $got time(s); accepted ${accepted[*]}; Redis said replay ${replays[*]} (the rest: the member's own record, or no answer in time), first ${firsts[*]}"
    ;;
fleet_lost | fleet_lost_control)
    # Two members on one Redis. For each way Redis loses records (FLUSHALL, a restart without
    # persistence, eviction under the policy volatile-ttl), a flight accepted by member 0 and
    # replayed to member 1 at once is refused (counted as lost), and 0-RTT works again once a
    # record's lifetime has passed. The control deletes the record by hand, which Redis
    # cannot tell anyone: the replay is accepted (the test can fail).
    start_early_fleet 2 "" ""
    wait_register_trusted "$RECORD_S" rcli
    cases="flush restart evict"
    [ "$scenario" = fleet_lost ] || cases="forget"
    n=0
    for c in $cases; do
        n=$((n + 1))
        member 0
        ticket
        record_flight "lost-$c"
        grep -q "Early data was accepted" "$WORK/orig.out" || fail "$c: the original was refused"
        before=$(register_answers 1 lost)
        case $c in
        flush) rcli FLUSHALL >/dev/null ;;
        restart)
            rcli SHUTDOWN NOSAVE >/dev/null 2>&1 || true
            for k in $(seq 1 50); do rcli PING >/dev/null 2>&1 || break; sleep 0.1; done
            # The new Redis may evict (for the next case): each member warns as it reconnects.
            redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$WORK" --appendonly no \
                --maxmemory 3mb --maxmemory-policy volatile-ttl >"$WORK/redis2.log" 2>&1 &
            PIDS+=("$!")
            wait_port "$REDIS_PORT"
            for i in 0 1; do
                wait_grep "$WORK/m$i.log" "event=redis_may_evict" "member $i did not warn of eviction" ""
            done
            ;;
        evict)
            # 4 MB of keys without a TTL into a 3 MB Redis: under volatile-ttl it evicts keys
            # with one, strike records first, until none is left; then the filler goes.
            for k in $(seq 1 400); do
                rcli SET "fill:$k" "$(head -c 10000 /dev/zero | tr '\0' x)" >/dev/null 2>&1 || break
            done
            [ "$(rcli INFO stats | tr -d '\r' | awk -F: '$1 == "evicted_keys" { print $2 }')" -gt 0 ] ||
                fail "evict: Redis evicted nothing"
            [ -z "$(rcli --scan --pattern 'tlsr:e:*' </dev/null)" ] || fail "evict: the strike record survived"
            for k in $(seq 1 400); do rcli DEL "fill:$k" >/dev/null; done
            ;;
        forget)
            rcli --scan --pattern 'tlsr:e:*' </dev/null | while read -r k; do
                rcli DEL "$k" </dev/null >/dev/null
            done
            ;;
        esac
        for k in $(seq 1 50); do
            replay_to 3 1
            [ "$(received "lost-$c")" != 1 ] && break
            [ "$scenario" = fleet_lost_control ] && break
            [ "$(register_answers 1 lost)" -gt "$before" ] && break
            sleep 0.1 # member 1 is still reconnecting: refused as unavailable; again
        done
        got=$(received "lost-$c")
        if [ "$scenario" = fleet_lost_control ]; then
            [ "$got" -ge 2 ] || fail "control: a replay of a forgotten record was refused ($got)"
            break
        fi
        [ "$got" = 1 ] || fail "$c: the backend got the early data $got times"
        [ "$(register_answers 1 lost)" -gt "$before" ] || fail "$c: the refusal was not counted as lost"
        # Refused until every lost record would have expired, then accepted again.
        member 1
        ticket
        early "again-$c" "again-$c"
        grep -q "Early data was rejected" "$WORK/again-$c.out" || fail "$c: accepted within the period"
        wait_register_trusted "$RECORD_S" rcli
        ticket
        early "later-$c" "later-$c"
        grep -q "Early data was accepted" "$WORK/later-$c.out" || fail "$c: refused after the period"
        echo "$c: replay refused (lost), refused again at once, accepted after ${RECORD_S} s"
    done
    ;;
fleet_failover)
    # Redis behind Sentinel: a flight accepted by member 0, then the master killed and the
    # replica promoted. Replication is asynchronous, so the new master may lack the record;
    # its run id differs, so both members refuse 0-RTT through it for a record lifetime: the
    # replay to member 1 is refused (counted as lost), and 0-RTT works again after.
    start_sentinel_redis
    EARLY_REDIS=$SENTINEL_URL
    REDIS_PORT=$MASTER_PORT
    start_early_fleet 2 "" ""
    wait_register_trusted "$RECORD_S" rcli
    member 0
    ticket
    record_flight "failover-1"
    grep -q "Early data was accepted" "$WORK/orig.out" || fail "the original was refused"
    answered() { echo $(($(register_answers 1 lost) + $(register_answers 1 replay))); }
    before=$(answered)
    wait_failover
    REDIS_PORT=$REPLICA_PORT
    for i in 0 1; do
        wait_grep "$WORK/m$i.log" "part=cache redis=$SENTINEL_URL master=127.0.0.1:$REPLICA_PORT" \
            "member $i did not follow the failover" ""
    done
    # The replay: refused by the new master, as a replay if the record was replicated in time,
    # else as lost; never accepted.
    for k in $(seq 1 50); do
        replay_to 3 1
        [ "$(answered)" -gt "$before" ] && break
        sleep 0.1 # member 1 still reconnecting: refused as unavailable; again
    done
    [ "$(received failover-1)" = 1 ] || fail "the backend got the early data $(received failover-1) times"
    [ "$(answered)" -gt "$before" ] || fail "the new master never answered for the replay"
    # Whatever replication kept, the new master is another Redis: a fresh flight is refused
    # too (counted as lost) until a record lifetime has passed.
    lost=$(register_answers 1 lost)
    member 1
    ticket
    early again "failover-again"
    grep -q "Early data was rejected" "$WORK/again.out" || fail "0-RTT accepted right after the failover"
    # A worker publishes its fleet counters every 0.5 s.
    for k in $(seq 1 30); do
        [ "$(register_answers 1 lost)" -gt "$lost" ] && break
        sleep 0.1
    done
    [ "$(register_answers 1 lost)" -gt "$lost" ] || fail "the refusal after the failover was not counted as lost"
    wait_register_trusted "$RECORD_S" rcli
    member 1
    ticket
    early later "failover-later"
    grep -q "Early data was accepted" "$WORK/later.out" || fail "0-RTT refused after the period"
    echo "fleet_failover: replay after the failover refused (lost); accepted again after ${RECORD_S} s"
    ;;
check_starting)
    # check --early-data against a server in its start-up window: the original's early data is
    # refused, so there is nothing to replay; that is not a pass (exit 1), and it says why. The
    # `check` scenario is the control: same command after the window, replay_probe "ran", exit 0.
    start_backend lines --proxy-protocol
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --proxy-protocol --early-data \
        --early-data-window 30s
    set +e
    "$BUILD_DIR/tlsresume" check "127.0.0.1:$PORT" --insecure --json --attempts 2 --early-data \
        >"$WORK/c.out" 2>"$WORK/c.log"
    rc=$?
    "$BUILD_DIR/tlsresume" check "127.0.0.1:$PORT" --insecure --attempts 2 --early-data \
        >"$WORK/t.out" 2>"$WORK/t.log"
    set -e
    [ "$rc" = 1 ] || fail "check exit $rc at start-up"
    expect_field c "r['early_data']['replay_probe']" refused
    expect_field c "r['early_data']['replays']" 0
    python3 "$SRC_DIR/tests/integration/lib/schema_check.py" "$SRC_DIR/docs/check-json.md" \
        "$WORK/c.out" || fail "report does not match docs/check-json.md"
    grep -q "0-RTT replays not tested: the server refused the early data" "$WORK/t.out" ||
        fail "no hint in the table"
    stop_serve
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
