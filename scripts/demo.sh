#!/usr/bin/env bash
# `make run`: starts a tiny HTTP backend on 127.0.0.1:8080 and `tlsresume serve --self-signed`
# in front of it on 127.0.0.1:8443 (admin endpoint on 127.0.0.1:9443), and says how to try it.
# Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKEND=${TLSR_DEMO_BACKEND:-127.0.0.1:8080}
LISTEN=${TLSR_DEMO_LISTEN:-127.0.0.1:8443}
ADMIN=${TLSR_DEMO_ADMIN:-127.0.0.1:9443}
backend_pid=""
serve_pid=""
stop() {
    [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
    [ -n "$backend_pid" ] && kill -TERM "$backend_pid" 2>/dev/null && wait "$backend_pid" 2>/dev/null
    return 0
}
trap stop EXIT
trap 'exit 0' INT TERM

# Each address must be free: say which is taken and how to choose others, before starting.
for addr in "$BACKEND" "$LISTEN" "$ADMIN"; do
    if (exec 7<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
        echo "error demo: $addr is in use (another make run, or another server); choose free" \
            "addresses, e.g. TLSR_DEMO_LISTEN=127.0.0.1:8444 TLSR_DEMO_BACKEND=127.0.0.1:8081" \
            "TLSR_DEMO_ADMIN=127.0.0.1:9444 make run" >&2
        exit 1
    fi
done
python3 scripts/backend.py --listen "$BACKEND" --mode http >/dev/null &
backend_pid=$!
port=${LISTEN##*:}
cat <<TXT
info demo: backend on $BACKEND; tlsresume serve on $LISTEN (admin on $ADMIN). Try, in another
           terminal:

  curl -k https://localhost:$port/ https://localhost:$port/again -v 2>&1 | grep -E 're-using|hello'
  openssl s_client -connect $LISTEN -tls1_2 -reconnect </dev/null | grep -E '^(New|Reused)'
  openssl s_client -connect $LISTEN -tls1_3 -sess_out /tmp/s.pem </dev/null
  openssl s_client -connect $LISTEN -tls1_3 -sess_in /tmp/s.pem </dev/null | grep -E '^(New|Reused)'
  curl -s http://$ADMIN/metrics | grep handshakes_total

The status page, to watch resumptions happen: open http://$ADMIN/ in a browser.

Ctrl-C stops both.
TXT
build/tlsresume serve --self-signed --listen "$LISTEN" --backend "$BACKEND" --admin "$ADMIN" \
    --access-log &
serve_pid=$!
rc=0
wait "$serve_pid" || rc=$?
serve_pid=""
[ "$rc" = 0 ] || echo "error demo: tlsresume serve exited $rc (its error is above)" >&2
exit "$rc"
