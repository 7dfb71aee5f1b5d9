#!/usr/bin/env bash
# The monitoring files (monitoring/, docs/MONITORING.md) against a live fleet serve and
# promtool. usage: test_monitoring.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"

scenario=${1:?scenario}
make_cert
MON="$SRC_DIR/monitoring"

case "$scenario" in
names)
    # Every metric the dashboard and the rules use is served by a fleet serve with 0-RTT (the
    # configuration that serves the most families), and docs/MONITORING.md lists exactly what it
    # serves. The control: a dashboard with a misspelt metric fails.
    start_backend http
    start_local_redis
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --early-data \
        --redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key"
    wait_serve_log "event=joined_fleet_ring"
    sclient one -tls1_3 -sess_out "$WORK/s1"
    sclient two -tls1_3 -sess_in "$WORK/s1"
    expect two "Reused, TLSv1.3"
    metric tlsresume_workers >/dev/null
    check() {
        python3 "$SRC_DIR/tests/integration/lib/monitoring_check.py" "$WORK/metrics.out" \
            "$SRC_DIR/docs/MONITORING.md" "$1" "$MON/alerts.yml" >"$WORK/check.out" 2>&1
    }
    check "$MON/grafana-dashboard.json" || fail "$(cat "$WORK/check.out")"
    cat "$WORK/check.out"
    sed 's/tlsresume_handshakes_total/tlsresume_handshake_total/' "$MON/grafana-dashboard.json" \
        >"$WORK/misspelt.json"
    check "$WORK/misspelt.json" && fail "control: a dashboard with a misspelt metric passed"
    grep -q "tlsresume_handshake_total is not served" "$WORK/check.out" ||
        fail "control: $(cat "$WORK/check.out")"
    stop_serve
    ;;
rules)
    # The rules load, and their unit tests pass: each alert fires on the series that should
    # raise it and not on healthy ones. The control: a rule with the wrong threshold fails them.
    command -v promtool >/dev/null || fail "promtool is not installed (Debian prometheus)"
    promtool check rules "$MON/alerts.yml" >"$WORK/check.out" 2>&1 || fail "$(cat "$WORK/check.out")"
    promtool test rules "$MON/alerts_test.yml" >"$WORK/test.out" 2>&1 || fail "$(cat "$WORK/test.out")"
    mkdir -p "$WORK/broken"
    sed 's/) > 0.2$/) > 0.9/' "$MON/alerts.yml" >"$WORK/broken/alerts.yml"
    cmp -s "$MON/alerts.yml" "$WORK/broken/alerts.yml" && fail "control: the threshold was not changed"
    cp "$MON/alerts_test.yml" "$WORK/broken/"
    promtool test rules "$WORK/broken/alerts_test.yml" >"$WORK/broken.out" 2>&1 &&
        fail "control: a rule with the wrong threshold passed its tests"
    grep -q "TlsresumeResumptionFailing" "$WORK/broken.out" || fail "control: $(cat "$WORK/broken.out")"
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
