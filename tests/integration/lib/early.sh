# TLS 1.3 early data helpers for tests (sourced after common.sh): a ticket, a resumption with
# early data, what the backend received, and a recorded first flight to replay.
REPLAY="$SRC_DIR/tests/integration/lib/replay.py"

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
    wait_until 5 has_line "$WORK/record.out" listening || true
    early orig "$1" "$relay"
    wait_until 5 has_line "$WORK/record.out" recorded || true
    [ -s "$WORK/flight.bin" ] || fail "no flight recorded"
}
