#!/usr/bin/env bash
# `make run`: starts the library demo server (two forked workers sharing one session cache and
# one ticket key ring) on 127.0.0.1:8443 and 127.0.0.1:8444 with a fresh self-signed
# certificate, and tells how to watch it resume. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT_A=${TLSR_DEMO_PORT_A:-8443}
PORT_B=${TLSR_DEMO_PORT_B:-8444}
dir=$(mktemp -d "${TMPDIR:-/tmp}/tlsr-demo.XXXXXX")
pid=""
stop() {
    [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$dir"
}
trap stop EXIT
trap 'exit 0' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$dir/key.pem" -out "$dir/cert.pem" >/dev/null 2>&1
echo "info demo: self-signed certificate for localhost (ephemeral, in $dir)"

build/tserver --cert "$dir/cert.pem" --key "$dir/key.pem" --port-a "$PORT_A" --port-b "$PORT_B" \
    --mode tickets &
pid=$!
cat <<TXT
info demo: two workers listen on 127.0.0.1:$PORT_A (worker 0) and 127.0.0.1:$PORT_B (worker 1);
           they share one session cache and one ticket key ring. Try, in another terminal:

  openssl s_client -connect 127.0.0.1:$PORT_A -tls1_2 -no_ticket -reconnect </dev/null | grep -E '^(New|Reused)'
  openssl s_client -connect 127.0.0.1:$PORT_A -sess_out /tmp/s.pem </dev/null
  openssl s_client -connect 127.0.0.1:$PORT_B -sess_in /tmp/s.pem </dev/null | grep -E '^(New|Reused)|resumed='
  kill -USR1 $pid    # rotate the ticket keys now; held tickets still resume

Ctrl-C stops the server and prints its counters. (The full terminating proxy,
'tlsresume serve', is not built yet.)
TXT
wait "$pid"
