#!/usr/bin/env bash
# What `tlsresume serve` presents besides resumption: OCSP staples (--ocsp) checked at load and
# stapled to full handshakes, seen by openssl s_client -status, with nginx's ssl_stapling_file
# in the same run as the reference; and `tlsresume check` reporting what a server presented.
# usage: test_certs.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$SRC_DIR/scripts/conf.sh"

scenario=${1:?scenario}
# A CA, a certificate for localhost under it (the served chain: leaf then CA), and its OCSP
# responses made by `openssl ocsp` as the CA's responder.
mk_cert ca test-ca ""
mk_cert leaf localhost "DNS:localhost" ca
cat "$WORK/leaf.pem" "$WORK/ca.pem" >"$WORK/chain.pem"

# ocsp_response OUT STATUS [DAYS] [SIGNER] [CERT]: a response for CERT (leaf), V (good) or R
# (revoked), valid DAYS (1), signed by SIGNER (ca).
ocsp_response() {
    local signer=${4:-ca} cert=${5:-leaf} revoked="" serial
    [ "$2" = R ] && revoked=$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)
    serial=$(openssl x509 -in "$WORK/$cert.pem" -noout -serial | cut -d= -f2)
    printf '%s\t%s\t%s\t%s\tunknown\t/CN=x\n' "$2" "$(date -u -d '+2 days' +%y%m%d%H%M%SZ)" \
        "$revoked" "$serial" >"$WORK/index.txt"
    openssl ocsp -index "$WORK/index.txt" -rsigner "$WORK/$signer.pem" -rkey "$WORK/$signer.key" \
        -CA "$WORK/ca.pem" -issuer "$WORK/ca.pem" -cert "$WORK/$cert.pem" -respout "$WORK/$1" \
        -ndays "${3:-1}" >/dev/null 2>&1 || fail "openssl ocsp $1"
}

# client_cert NAME: $WORK/NAME.pem and .key, a client certificate (clientAuth, the e-mail
# address NAME@example.test) under the CA.
client_cert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$1" \
        -keyout "$WORK/$1.key" -out "$WORK/$1.csr" 2>/dev/null || fail "req $1"
    openssl x509 -req -days 2 -in "$WORK/$1.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
        -CAcreateserial -extfile <(printf 'extendedKeyUsage=clientAuth\nsubjectAltName=email:%s@example.test\n' "$1") \
        -out "$WORK/$1.pem" 2>/dev/null || fail "x509 $1"
}

# ca_db: the CA's database for `openssl ca` (revocations, CRLs), in $WORK/ca.cnf.
ca_db() {
    : >"$WORK/ca_index.txt"
    echo 01 >"$WORK/crlnumber"
    cat >"$WORK/ca.cnf" <<CNF
[ca]
default_ca = the_ca
[the_ca]
database = $WORK/ca_index.txt
crlnumber = $WORK/crlnumber
certificate = $WORK/ca.pem
private_key = $WORK/ca.key
default_md = sha256
default_crl_days = 2
CNF
}

# status PORT OUT [ARGS]: one s_client connection asking for a staple; what it saw in OUT.
status() {
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$1" \
        -servername localhost -status -ign_eof "${@:3}" >"$WORK/$2.out" 2>&1 || true
}

# refused WANT ARGS...: serve --check-config with ARGS fails saying WANT.
refused() {
    local want=$1
    shift
    set +e
    "$BUILD_DIR/tlsresume" serve --backend 127.0.0.1:1 --admin off --check-config "$@" \
        >"$WORK/refused.out" 2>&1
    local rc=$?
    set -e
    [ "$rc" -ne 0 ] || fail "accepted: $*"
    grep -q -- "$want" "$WORK/refused.out" || fail "for '$*' expected '$want': $(cat "$WORK/refused.out")"
}

case "$scenario" in
ocsp)
    # Full handshakes carry the staple (TLS 1.2 and 1.3), resumed ones do not (they show no
    # certificate), as with nginx's ssl_stapling_file; without --ocsp no staple (the control).
    command -v nginx >/dev/null || fail "nginx is not installed"
    ocsp_response good.ocsp V
    start_backend http
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --ocsp "$WORK/good.ocsp"
    NGINX_PORT=$(free_port)
    nginx_https_conf "$WORK/nginx" "$NGINX_PORT" "$WORK/chain.pem" "$WORK/leaf.key" 1 "" \
        "ssl_protocols TLSv1.2 TLSv1.3; ssl_stapling on; ssl_stapling_file $WORK/good.ocsp; ssl_session_cache shared:S:1m;"
    nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g 'daemon off;' >"$WORK/nginx.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$NGINX_PORT"
    for port in "$PORT" "$NGINX_PORT"; do
        for v in -tls1_2 -tls1_3; do
            status "$port" "full$v" "$v" -sess_out "$WORK/s$v"
            grep -q 'OCSP Response Status: successful' "$WORK/full$v.out" || fail "$port $v: no staple on a full handshake"
            grep -q 'Cert Status: good' "$WORK/full$v.out" || fail "$port $v: the staple does not say good"
            status "$port" "resumed$v" "$v" -sess_in "$WORK/s$v"
            grep -q '^Reused, ' "$WORK/resumed$v.out" || fail "$port $v: did not resume"
            grep -q 'OCSP Response Status' "$WORK/resumed$v.out" && fail "$port $v: a staple on a resumed handshake"
        done
    done
    stop_serve
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key"
    status "$PORT" control -tls1_3
    grep -q 'OCSP response: no response sent' "$WORK/control.out" || fail "control: a staple without --ocsp"
    stop_serve
    ;;
ocsp_bad)
    # A response that is not for the certificate, revoked, expired, not signed by its issuer,
    # or not a response at all: refused at load, naming the file and why; a reload with one
    # keeps the running configuration.
    ocsp_response good.ocsp V
    mk_cert other other "DNS:other" ca
    ocsp_response mismatch.ocsp V 1 ca other # for another certificate of the same CA
    ocsp_response revoked.ocsp R
    mk_cert rogue rogue "" # a CA of its own signs the next one
    ocsp_response rogue.ocsp V 1 rogue
    printf 'junk' >"$WORK/junk.ocsp"
    crt=(--cert "$WORK/chain.pem" --key "$WORK/leaf.key")
    refused "ocsp: $WORK/mismatch.ocsp: covers none of the certificates" "${crt[@]}" --ocsp "$WORK/mismatch.ocsp"
    refused "ocsp: $WORK/revoked.ocsp: the certificate's status is revoked" "${crt[@]}" --ocsp "$WORK/revoked.ocsp"
    refused "ocsp: $WORK/rogue.ocsp: not signed by the certificate's issuer" "${crt[@]}" --ocsp "$WORK/rogue.ocsp"
    refused "ocsp: $WORK/junk.ocsp: not a DER OCSP response" "${crt[@]}" --ocsp "$WORK/junk.ocsp"
    refused "ocsp: $WORK/missing.ocsp: No such file" "${crt[@]}" --ocsp "$WORK/missing.ocsp"
    # Expired: the same good response three days later (the certificates last two).
    command -v faketime >/dev/null || fail "faketime is not installed"
    set +e
    ASAN_OPTIONS=verify_asan_link_order=0 faketime '+36 hours' "$BUILD_DIR/tlsresume" serve \
        --backend 127.0.0.1:1 --admin off --check-config "${crt[@]}" --ocsp "$WORK/good.ocsp" \
        >"$WORK/expired.out" 2>&1
    set -e
    grep -q "ocsp: $WORK/good.ocsp: not current" "$WORK/expired.out" || fail "an expired staple: $(cat "$WORK/expired.out")"
    # The control: the good one is accepted.
    "$BUILD_DIR/tlsresume" serve --backend 127.0.0.1:1 --admin off --check-config "${crt[@]}" \
        --ocsp "$WORK/good.ocsp" >"$WORK/good.out" 2>&1 || fail "the good response was refused: $(cat "$WORK/good.out")"
    # A reload with a bad staple keeps serving the good one.
    cp "$WORK/good.ocsp" "$WORK/live.ocsp"
    start_backend http
    start_serve "${crt[@]}" --ocsp "$WORK/live.ocsp"
    cp "$WORK/revoked.ocsp" "$WORK/live.ocsp"
    kill -HUP "$SERVE_PID"
    wait_serve_log "event=reload_failed error=\"ocsp: $WORK/live.ocsp: the certificate's status is revoked\""
    status "$PORT" after -tls1_3
    grep -q 'Cert Status: good' "$WORK/after.out" || fail "after a failed reload the good staple is gone"
    stop_serve
    ;;
ocsp_chain)
    # A certificate under an intermediate CA, as public CAs issue them: the response signed by
    # the intermediate (the certificate's issuer, not a root) loads and is stapled.
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=test-intermediate \
        -keyout "$WORK/inter.key" -out "$WORK/inter.csr" 2>/dev/null || fail "req inter"
    openssl x509 -req -days 2 -in "$WORK/inter.csr" -CA "$WORK/ca.pem" -CAkey "$WORK/ca.key" \
        -CAcreateserial -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n') \
        -out "$WORK/inter.pem" 2>/dev/null || fail "x509 inter"
    mk_cert leaf2 localhost "DNS:localhost" inter
    cat "$WORK/leaf2.pem" "$WORK/inter.pem" >"$WORK/chain2.pem"
    serial=$(openssl x509 -in "$WORK/leaf2.pem" -noout -serial | cut -d= -f2)
    printf 'V\t%s\t\t%s\tunknown\t/CN=x\n' "$(date -u -d '+2 days' +%y%m%d%H%M%SZ)" "$serial" >"$WORK/index2.txt"
    openssl ocsp -index "$WORK/index2.txt" -rsigner "$WORK/inter.pem" -rkey "$WORK/inter.key" \
        -CA "$WORK/inter.pem" -issuer "$WORK/inter.pem" -cert "$WORK/leaf2.pem" \
        -respout "$WORK/inter.ocsp" -ndays 1 >/dev/null 2>&1 || fail "openssl ocsp"
    start_backend http
    start_serve --cert "$WORK/chain2.pem" --key "$WORK/leaf2.key" --ocsp "$WORK/inter.ocsp"
    status "$PORT" chain -tls1_3
    grep -q 'Cert Status: good' "$WORK/chain.out" || fail "no staple for a certificate under an intermediate"
    stop_serve
    ;;
ocsp_expiry)
    # A staple whose nextUpdate passes while serve runs is no longer sent (a stale staple is
    # refused by clients; none is not). The response here lives a minute; the wait is bounded.
    ocsp_response short.ocsp V 1
    openssl ocsp -index "$WORK/index.txt" -rsigner "$WORK/ca.pem" -rkey "$WORK/ca.key" \
        -CA "$WORK/ca.pem" -issuer "$WORK/ca.pem" -cert "$WORK/leaf.pem" -respout "$WORK/short.ocsp" \
        -nmin 1 >/dev/null 2>&1 || fail "openssl ocsp -nmin 1"
    start_backend http
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --ocsp "$WORK/short.ocsp"
    status "$PORT" fresh -tls1_3
    grep -q 'Cert Status: good' "$WORK/fresh.out" || fail "no staple while it is current"
    sleep 62
    status "$PORT" stale -tls1_3
    grep -q 'OCSP response: no response sent' "$WORK/stale.out" || fail "an expired staple was still sent"
    stop_serve
    ;;
ocsp_reload)
    # A reload with a new staple keeps every session: the old one resumes after it, and the
    # next full handshake carries the new staple.
    ocsp_response live.ocsp V 1
    start_backend http
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --ocsp "$WORK/live.ocsp"
    status "$PORT" before -tls1_3 -sess_out "$WORK/s13"
    status "$PORT" before12 -tls1_2 -sess_out "$WORK/s12"
    grep -q 'Next Update' "$WORK/before.out" || fail "no staple before the reload"
    ocsp_response live.ocsp V 2
    kill -HUP "$SERVE_PID"
    wait_serve_log "event=reloaded"
    status "$PORT" resumed -tls1_3 -sess_in "$WORK/s13"
    grep -q '^Reused, ' "$WORK/resumed.out" || fail "a new staple cost the TLS 1.3 session"
    status "$PORT" resumed12 -tls1_2 -sess_in "$WORK/s12"
    grep -q '^Reused, ' "$WORK/resumed12.out" || fail "a new staple cost the TLS 1.2 session"
    status "$PORT" fresh -tls1_3
    a=$(sed -n 's/.*Next Update: //p' "$WORK/before.out" | head -n1)
    b=$(sed -n 's/.*Next Update: //p' "$WORK/fresh.out" | head -n1)
    [ -n "$b" ] && [ "$a" != "$b" ] || fail "the full handshake after the reload carries the old staple ($a, $b)"
    stop_serve
    ;;
check_presented)
    # `tlsresume check` reports what a server presented: the certificate's key, an OCSP staple
    # (serve with --ocsp; the control without), a request for a client certificate (s_server
    # -verify asks for one; serve does not).
    ocsp_response good.ocsp V
    start_backend http
    presented() {
        "$BUILD_DIR/tlsresume" check "127.0.0.1:$1" --insecure --json --attempts 2 >"$WORK/check.json" \
            2>"$WORK/check.log" || true
        python3 -c 'import json, sys; p = json.load(open(sys.argv[1]))["presented"]
print("%s staple=%s client_cert=%s" % (p["key"], p["ocsp_staple"], p["client_certificate_requested"]))' \
            "$WORK/check.json"
    }
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --ocsp "$WORK/good.ocsp"
    got=$(presented "$PORT")
    [ "$got" = "EC prime256v1 staple=True client_cert=False" ] || fail "serve with a staple: $got"
    python3 "$SRC_DIR/tests/integration/lib/schema_check.py" "$SRC_DIR/docs/check-json.md" \
        "$WORK/check.json" || fail "check --json does not match docs/check-json.md"
    stop_serve
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
        -addext subjectAltName=DNS:localhost -keyout "$WORK/rsa.key" -out "$WORK/rsa.pem" >/dev/null 2>&1
    start_serve --cert "$WORK/rsa.pem" --key "$WORK/rsa.key"
    got=$(presented "$PORT")
    [ "$got" = "RSA 2048 staple=False client_cert=False" ] || fail "serve, RSA, no staple: $got"
    stop_serve
    port=$(free_port)
    openssl s_server -accept "127.0.0.1:$port" -cert "$WORK/leaf.pem" -key "$WORK/leaf.key" \
        -verify 1 -www >"$WORK/s_server.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$port"
    got=$(presented "$port")
    [ "$got" = "EC prime256v1 staple=False client_cert=True" ] || fail "s_server -verify: $got"
    "$BUILD_DIR/tlsresume" check "127.0.0.1:$port" --insecure --attempts 2 >"$WORK/check.txt" 2>&1 || true
    grep -q '^presented: certificate EC prime256v1, OCSP staple no, client certificate requested$' \
        "$WORK/check.txt" || fail "the text report: $(cat "$WORK/check.txt")"
    ;;
mtls | mtls_optional)
    # Client certificates (s_client -cert, curl --cert): verified against --client-ca; the
    # identity is in the access log for full and resumed connections alike (a resumed session
    # carries the certificate its full handshake verified). require refuses a client without
    # one cleanly; optional serves it, with client_cert=-.
    client_cert alice
    start_backend http
    mode=$([ "$scenario" = mtls ] && echo require || echo optional)
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --client-verify "$mode" \
        --client-ca "$WORK/ca.pem"
    for v in -tls1_2 -tls1_3; do
        sclient "full$v" "$v" -cert "$WORK/alice.pem" -key "$WORK/alice.key" -sess_out "$WORK/m$v"
        sclient "resumed$v" "$v" -cert "$WORK/alice.pem" -key "$WORK/alice.key" -sess_in "$WORK/m$v"
        grep -q '^Reused, ' "$WORK/resumed$v.out" || fail "$v: the client certificate's session did not resume"
    done
    curl -sk --max-time 20 --cert "$WORK/alice.pem" --key "$WORK/alice.key" "https://127.0.0.1:$PORT/" \
        >"$WORK/curl.out" 2>&1 || fail "curl --cert failed"
    grep -q 'hello from the backend' "$WORK/curl.out" || fail "curl --cert: no answer"
    wait_until 10 count_ge "$WORK/serve.log" ' access .* client_cert="CN=alice" san="email:alice@example.test" sha256=[0-9a-f]* verify=ok ' 5 ||
        fail "the access log does not name alice on every connection"
    n=$(grep -cE ' access .* resumed=(ticket|psk) .* client_cert="CN=alice" ' "$WORK/serve.log" || true)
    [ "$n" -eq 2 ] || fail "resumed connections with alice's identity: $n, expected 2"
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" \
        -servername localhost -ign_eof >"$WORK/none.out" 2>&1 || true
    if [ "$mode" = require ]; then
        grep -q 'hello from the backend' "$WORK/none.out" && fail "require served a client without a certificate"
        grep -q 'alert certificate required\|alert handshake failure' "$WORK/none.out" || fail "no clean refusal: $(tail -3 "$WORK/none.out")"
        wait_serve_log ' access .* client_cert=- .* end=handshake_failed$'
    else
        grep -q 'hello from the backend' "$WORK/none.out" || fail "optional refused a client without a certificate"
        wait_serve_log ' access .* resumed=full .* client_cert=- .* end=done$'
    fi
    stop_serve
    # The control: without --client-verify the server asks for nothing and logs none.
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key"
    sclient plain -tls1_3 -cert "$WORK/alice.pem" -key "$WORK/alice.key"
    wait_serve_log ' access .* client_cert=- '
    grep -q 'client_cert="' "$WORK/serve.log" && fail "control: an identity without --client-verify"
    stop_serve
    ;;
mtls_proxy)
    # The backend learns the client's identity from the PROXY v2 header (the SSL TLV with its CN
    # subtype, the certificate's SHA-256 and subject), on resumed connections as on full ones:
    # a full handshake says the certificate came on this connection, a resumed one that it came
    # in the session; the control, without --client-verify, sends no identity.
    client_cert alice
    start_backend http --proxy-protocol
    fp=$(openssl x509 -in "$WORK/alice.pem" -noout -fingerprint -sha256 | cut -d= -f2 | tr -d : | tr 'A-F' 'a-f')
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --proxy-protocol \
        --client-verify require --client-ca "$WORK/ca.pem"
    for v in -tls1_2 -tls1_3; do
        sclient "full$v" "$v" -cert "$WORK/alice.pem" -key "$WORK/alice.key" -sess_out "$WORK/p$v"
        sclient "resumed$v" "$v" -cert "$WORK/alice.pem" -key "$WORK/alice.key" -sess_in "$WORK/p$v"
        grep -q '^Reused, ' "$WORK/resumed$v.out" || fail "$v: did not resume"
        grep -q "^client_cert: cn=alice conn=1 sess=1 verify=0 sha256=$fp subject=CN=alice san=email:alice@example.test$" \
            "$WORK/full$v.out" || fail "$v full: the backend saw $(grep client_cert "$WORK/full$v.out")"
        grep -q "^client_cert: cn=alice conn=0 sess=1 verify=0 sha256=$fp subject=CN=alice san=email:alice@example.test$" \
            "$WORK/resumed$v.out" || fail "$v resumed: the backend saw $(grep client_cert "$WORK/resumed$v.out")"
    done
    # curl, and Java with a PKCS12 keystore (its own session cache resumes): the same identity.
    # Two requests on two connections: curl resumes the second from its own session cache.
    curl -sk --max-time 20 --cert "$WORK/alice.pem" --key "$WORK/alice.key" -H 'Connection: close' \
        "https://127.0.0.1:$PORT/" "https://127.0.0.1:$PORT/" >"$WORK/curl.out" 2>&1 ||
        fail "curl --cert failed"
    grep -q "^client_cert: cn=alice conn=1 sess=1 verify=0 sha256=$fp " "$WORK/curl.out" ||
        fail "curl: the backend saw $(grep client_cert "$WORK/curl.out")"
    grep -q "^client_cert: cn=alice conn=0 sess=1 verify=0 sha256=$fp " "$WORK/curl.out" ||
        fail "curl: no resumed connection with alice's identity: $(grep client_cert "$WORK/curl.out")"
    command -v java >/dev/null || fail "java is not installed (scripts/deps.sh test)"
    openssl pkcs12 -export -in "$WORK/alice.pem" -inkey "$WORK/alice.key" -out "$WORK/alice.p12" \
        -passout pass:changeit || fail "pkcs12"
    timeout 120 java "$SRC_DIR/tests/integration/lib/JavaClient.java" localhost "$PORT" TLSv1.3 4 \
        "$WORK/alice.p12" >"$WORK/java.out" 2>&1 || fail "java client failed: $(tail -5 "$WORK/java.out")"
    grep -q '^answers=4$' "$WORK/java.out" || fail "java: $(cat "$WORK/java.out")"
    [ "$(grep -c "^identity=cn=alice conn=1 sess=1 verify=0 sha256=$fp " "$WORK/java.out")" -ge 1 ] ||
        fail "java: no full connection with alice's identity"
    [ "$(grep -c "^identity=cn=alice conn=0 sess=1 verify=0 sha256=$fp " "$WORK/java.out")" -ge 1 ] ||
        fail "java: no resumed connection with alice's identity: $(cat "$WORK/java.out")"
    stop_serve
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --proxy-protocol
    sclient control -tls1_3 -cert "$WORK/alice.pem" -key "$WORK/alice.key"
    grep -q '^client_cert:' "$WORK/control.out" && fail "control: an identity without --client-verify"
    stop_serve
    ;;
mtls_trust)
    # Sessions are bound to the trust that verified them: a reload that keeps the CAs keeps
    # resuming (the control); one with another CA file, or with a CRL that revokes the client's
    # certificate, resumes none of them: a full handshake, verified again (refused once revoked),
    # and the reason counted.
    client_cert alice
    start_backend http
    cp "$WORK/ca.pem" "$WORK/bundle.pem"
    ca_db
    openssl ca -config "$WORK/ca.cnf" -gencrl -out "$WORK/crl.pem" >/dev/null 2>&1 || fail "gencrl"
    start_serve --cert "$WORK/chain.pem" --key "$WORK/leaf.key" --client-verify require \
        --client-ca "$WORK/bundle.pem" --client-crl "$WORK/crl.pem"
    reload() {
        local n
        n=$(grep -c 'event=reloaded' "$WORK/serve.log" || true)
        kill -HUP "$SERVE_PID"
        wait_until 10 count_ge "$WORK/serve.log" 'event=reloaded' $((n + 1)) || fail "no reload"
    }
    alice=(-cert "$WORK/alice.pem" -key "$WORK/alice.key")
    # TLS 1.3 tickets, TLS 1.2 tickets, TLS 1.2 session IDs. A ticket of the old trust is
    # opened and refused as context_mismatch; a session ID is looked up under the new context
    # (the cache is keyed by it), so it is not found: cache_miss.
    n=0
    for v in "-tls1_3:context_mismatch" "-tls1_2:context_mismatch" "-tls1_2 -no_ticket:cache_miss"; do
        n=$((n + 1))
        reason=${v#*:}
        read -ra ver <<<"${v%%:*}"
        sclient "s0_$n" "${ver[@]}" "${alice[@]}" -sess_out "$WORK/t0_$n"
        reload
        sclient "s1_$n" "${ver[@]}" "${alice[@]}" -sess_in "$WORK/t0_$n" -sess_out "$WORK/t1_$n"
        grep -q '^Reused, ' "$WORK/s1_$n.out" || fail "${v%%:*}: control: a reload with the same trust lost the session"
        mk_cert "other$n" "other$n" "" # another CA joins the bundle
        cat "$WORK/other$n.pem" >>"$WORK/bundle.pem"
        reload
        before=$(metric "tlsresume_resumption_failures_total{reason=\"$reason\"}")
        # A TLS 1.2 resumption may leave no new session file: the old one is the same session.
        sess=$WORK/t1_$n
        [ -s "$sess" ] || sess=$WORK/t0_$n
        sclient "s2_$n" "${ver[@]}" "${alice[@]}" -sess_in "$sess" -sess_out "$WORK/t2_$n"
        grep -q '^Reused, ' "$WORK/s2_$n.out" && fail "${v%%:*}: a session verified under the old CA file resumed"
        grep -q '^New, ' "$WORK/s2_$n.out" || fail "${v%%:*}: no full handshake under the new CA file"
        after=$(metric "tlsresume_resumption_failures_total{reason=\"$reason\"}")
        [ "$after" -gt "$before" ] || fail "${v%%:*}: the refused session is not counted as $reason ($before, then $after)"
    done
    # Revoked: the CRL now lists alice; none of her sessions resumes, and she is refused.
    openssl ca -config "$WORK/ca.cnf" -revoke "$WORK/alice.pem" >/dev/null 2>&1 || fail "revoke"
    openssl ca -config "$WORK/ca.cnf" -gencrl -out "$WORK/crl.pem" >/dev/null 2>&1 || fail "gencrl"
    reload
    n=0
    for v in "-tls1_3" "-tls1_2" "-tls1_2 -no_ticket"; do
        n=$((n + 1))
        read -ra ver <<<"$v"
        printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" \
            -servername localhost -ign_eof "${ver[@]}" "${alice[@]}" -sess_in "$WORK/t2_$n" >"$WORK/s3_$n.out" 2>&1 || true
        grep -q 'hello from the backend' "$WORK/s3_$n.out" && fail "$v: a revoked certificate's session was served"
        grep -q 'alert certificate revoked' "$WORK/s3_$n.out" || fail "$v: not refused as revoked: $(tail -3 "$WORK/s3_$n.out")"
    done
    stop_serve
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
