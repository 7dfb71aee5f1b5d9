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
status_page)
    # The status page at the admin endpoint's /, rendered by headless Chromium, shows what
    # /status says after known traffic on a fleet serve: 10 full TLS 1.2 handshakes, 20
    # resumed, one rotation. The control: the page as served, before a browser renders it,
    # fails the same comparison.
    command -v chromium >/dev/null || fail "chromium is not installed (scripts/deps.sh test)"
    start_backend http
    start_local_redis
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
        --redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key"
    wait_serve_log "event=joined_fleet_ring"
    status() { curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status" >"$WORK/status.json"; }
    sfield() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($1)" "$WORK/status.json"; }
    sclient full1 -tls1_2 -sess_out "$WORK/s12"
    for i in $(seq 2 10); do sclient "full$i" -tls1_2; done
    for i in $(seq 1 20); do
        sclient "res$i" -tls1_2 -sess_in "$WORK/s12"
        expect "res$i" "Reused, TLSv1.2"
    done
    status
    rotations=$(sfield "r['tickets']['rotations']")
    kill -USR1 "$SERVE_PID"
    rotated() { status && [ "$(sfield "r['tickets']['rotations']")" -gt "$rotations" ]; }
    wait_until 15 rotated || fail "no rotation after SIGUSR1"
    # A history sample after the traffic, so that the graphs have it.
    sampled() { status && [ "$(sfield "sum(r['history']['samples'][-1][1:4]) if len(r['history']['samples']) > 2 else 0")" -ge 30 ]; }
    wait_until 20 sampled || fail "no history sample after the traffic"
    [ "$(sfield "r['handshakes_by']['TLSv1.2']['full']")" = 10 ] || fail "full: $(cat "$WORK/status.json")"
    [ "$(sfield "r['handshakes_by']['TLSv1.2']['ticket'] + r['handshakes_by']['TLSv1.2']['id']")" = 20 ] ||
        fail "resumed: $(cat "$WORK/status.json")"
    python3 "$SRC_DIR/tests/integration/lib/schema_check.py" "$SRC_DIR/docs/status-json.md" \
        "$WORK/status.json" || fail "/status does not match docs/status-json.md"
    page() { # OUT [FLAGS]: the page as Chromium rendered it, then /status at once
        rm -rf "$WORK/chromium"
        timeout 90 chromium --headless --no-sandbox --disable-gpu --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --user-data-dir="$WORK/chromium" --virtual-time-budget=3000 "${@:2}" --dump-dom \
            "http://127.0.0.1:$ADMIN_PORT/" >"$WORK/$1.html" 2>"$WORK/chromium.log" || true
        status
        python3 "$SRC_DIR/tests/integration/lib/status_page_check.py" "$WORK/$1.html" \
            "$WORK/status.json" 40 >"$WORK/$1.check" 2>&1
    }
    page dom || fail "the page: $(cat "$WORK/dom.check")"
    cat "$WORK/dom.check"
    grep -q 'data-field="handshakes_by.TLSv1.2.full"[^>]*>10<' "$WORK/dom.html" || fail "10 full not shown"
    grep -q 'id="share-12">66.7%<' "$WORK/dom.html" || fail "the TLS 1.2 share (20 of 30) not shown"
    # The control: the page as served, not rendered (what a browser without scripts shows).
    curl -s "http://127.0.0.1:$ADMIN_PORT/" >"$WORK/page.html"
    python3 "$SRC_DIR/tests/integration/lib/status_page_check.py" "$WORK/page.html" \
        "$WORK/status.json" 40 >"$WORK/raw.check" 2>&1 && fail "control: the unrendered page passed"
    grep -q "the page shows ''" "$WORK/raw.check" || fail "control: $(cat "$WORK/raw.check")"
    # Nothing of the page comes from elsewhere: no external URL in it.
    grep -Eq '(src|href)="?(https?:)?//' "$WORK/page.html" && fail "the page loads something from elsewhere"
    rm -rf "$WORK/chromium"
    timeout 90 chromium --headless --no-sandbox --disable-gpu --hide-scrollbars \
        --user-data-dir="$WORK/chromium" --window-size=1280,1600 --virtual-time-budget=3000 \
        --screenshot="$WORK/status.png" "http://127.0.0.1:$ADMIN_PORT/" >/dev/null 2>&1 || true
    [ "$(stat -c %s "$WORK/status.png" 2>/dev/null || echo 0)" -gt 20000 ] || fail "no screenshot"
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
