#!/usr/bin/env bash
# TLS 1.3 early data (0-RTT) through `tlsresume serve`: accepted once, replays refused.
# usage: test_early.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"

scenario=${1:?scenario}
make_cert
REPLAY="$SRC_DIR/tests/integration/lib/replay.py"
WINDOW=10 # seconds: --early-data-window (its minimum); 0-RTT is refused this long after start

# serve_early ARGS...: serve with 0-RTT and PROXY v2 in front of the line-logging backend,
# after its fresh-start window.
serve_early() {
    start_backend lines --proxy-protocol
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --proxy-protocol --early-data \
        --early-data-window "${WINDOW}s" "$@"
    sleep "$WINDOW"
}

# ticket: a full TLS 1.3 handshake that saves its session (with its tickets) to $WORK/sess.
ticket() {
    rm -f "$WORK/sess"
    sleep 0.5 | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost \
        -tls1_3 -sess_out "$WORK/sess" >"$WORK/full.out" 2>&1 || true
    grep -q "Max Early Data: 16384" "$WORK/full.out" || fail "the ticket allows no early data"
}

# early OUT TEXT [PORT] [WRAPPER...]: resumes with TEXT as early data.
early() {
    local out=$1 text=$2 port=${3:-$PORT}
    shift 3 || shift $#
    printf '%s\n' "$text" >"$WORK/early.txt"
    sleep 0.5 | "$@" timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost \
        -tls1_3 -sess_in "$WORK/sess" -early_data "$WORK/early.txt" >"$WORK/$out.out" 2>&1 || true
}

# received TEXT: how many times the backend got the line TEXT as early data.
received() {
    grep -c "^line early=1 $1\$" "$WORK/backend.out" || true
}

early_metric() {
    metric "tlsresume_early_data_total{result=\"$1\"}"
}

# record_flight TEXT: a resumption with early data TEXT through a recording relay; the first
# flight (ClientHello and early data) lands in $WORK/flight.bin.
record_flight() {
    local relay
    relay=$(free_port)
    python3 "$REPLAY" record --listen "127.0.0.1:$relay" --target "127.0.0.1:$PORT" \
        --out "$WORK/flight.bin" >"$WORK/record.out" 2>&1 &
    PIDS+=("$!")
    local i
    for i in $(seq 1 50); do
        grep -q listening "$WORK/record.out" && break
        sleep 0.1
    done
    early orig "$1" "$relay"
    for i in $(seq 1 50); do
        grep -q recorded "$WORK/record.out" && break
        sleep 0.1
    done
    [ -s "$WORK/flight.bin" ] || fail "no flight recorded"
}

case "$scenario" in
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
        serve_early --early-data-anti-replay=no
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
        [ "$(field c "r['early_data']['replays_refused']")" = 3 ] || fail "check: replays not refused"
        [ "$(early_metric rejected_replay)" = 3 ] || fail "server: replays not counted"
    else
        [ "$rc" = 1 ] || fail "check exit $rc with replays accepted"
        [ "$(field c "r['early_data']['replays_accepted']")" = 3 ] || fail "check: accepted replays not seen"
        grep -q SECURITY "$WORK/c.out" || fail "no security hint"
    fi
    stop_serve
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
