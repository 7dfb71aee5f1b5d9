#!/usr/bin/env bash
# Resumption through the library over real loopback sockets, with two forked workers on two
# ports sharing one cache and one key ring: the full handshake lands on worker 0 and the
# resumption on worker 1. Checked by the client's own report ("Reused") and by the server.
# usage: test_resume.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"

scenario=${1:?scenario}
make_cert

case "$scenario" in
tls12_id)
    start_tserver --tls 1.2 --mode ids
    client "$PORT_A" full -tls1_2 -no_ticket -sess_out "$WORK/s1"
    expect full "New, TLSv1.2"
    client "$PORT_B" again -tls1_2 -no_ticket -sess_in "$WORK/s1"
    expect again "Reused, TLSv1.2"
    expect again "worker=1 resumed=id"
    # openssl s_client -reconnect: five reconnections, all "Reused".
    timeout 30 openssl s_client -connect "127.0.0.1:$PORT_A" -tls1_2 -no_ticket -reconnect \
        </dev/null >"$WORK/reconnect.out" 2>&1 || true
    reused=$(grep -c '^Reused' "$WORK/reconnect.out" || true)
    [ "$reused" -eq 5 ] || fail "s_client -reconnect: $reused of 5 reused"
    stop_tserver
    [ "$(tstat cache_hits)" -ge 6 ] || fail "cache hits $(tstat cache_hits), expected >= 6"
    [ "$(tstat tickets_issued)" -eq 0 ] || fail "tickets issued in ids mode"
    ;;
tls12_ticket)
    start_tserver --tls 1.2 --mode tickets
    client "$PORT_A" full -tls1_2 -sess_out "$WORK/s1"
    expect full "New, TLSv1.2"
    client "$PORT_B" again -tls1_2 -sess_in "$WORK/s1"
    expect again "Reused, TLSv1.2"
    expect again "worker=1 resumed=ticket"
    stop_tserver
    [ "$(tstat tickets_decrypted)" -ge 1 ] || fail "no ticket decrypted"
    ;;
tls13_stateless)
    start_tserver --tls 1.3 --mode tickets
    client "$PORT_A" full -tls1_3 -sess_out "$WORK/s1"
    expect full "New, TLSv1.3"
    client "$PORT_B" again -tls1_3 -sess_in "$WORK/s1"
    expect again "Reused, TLSv1.3"
    expect again "worker=1 resumed=psk"
    stop_tserver
    [ "$(tstat cache_inserts)" -eq 0 ] || fail "stateless tickets were stored in the cache"
    ;;
tls13_stateful)
    start_tserver --tls 1.3 --mode stateful
    client "$PORT_A" full -tls1_3 -sess_out "$WORK/s1"
    client "$PORT_B" again -tls1_3 -sess_in "$WORK/s1" -sess_out "$WORK/s2"
    expect again "Reused, TLSv1.3"
    expect again "worker=1 resumed=psk"
    # The same ticket a second time: single use, so a full handshake.
    client "$PORT_A" replay -tls1_3 -sess_in "$WORK/s1"
    expect replay "New, TLSv1.3"
    client "$PORT_A" next -tls1_3 -sess_in "$WORK/s2"
    expect next "Reused, TLSv1.3"
    stop_tserver
    [ "$(tstat cache_taken)" -ge 2 ] || fail "cache_taken $(tstat cache_taken)"
    ;;
rotation)
    # Clients hold tickets of both versions; the keys rotate; every ticket still resumes.
    # (A week-long period: no scheduled rotation can happen during the test.)
    start_tserver --mode tickets --rotate 604800
    client "$PORT_A" full12 -tls1_2 -sess_out "$WORK/s12"
    client "$PORT_A" full13 -tls1_3 -sess_out "$WORK/s13"
    kill -USR1 "$TSERVER_PID"
    wait_log "rotated ticket keys"
    client "$PORT_B" again12 -tls1_2 -sess_in "$WORK/s12"
    expect again12 "Reused, TLSv1.2"
    client "$PORT_B" again13 -tls1_3 -sess_in "$WORK/s13"
    expect again13 "Reused, TLSv1.3"
    stop_tserver
    [ "$(tstat tickets_rotations)" -eq 1 ] || fail "rotations $(tstat tickets_rotations)"
    [ "$(tstat tickets_renewed)" -ge 2 ] || fail "renewed $(tstat tickets_renewed), expected 2"
    ;;
python_ssl)
    # Python closes without close_notify: the session must survive that.
    start_tserver --mode ids --tls 1.2
    python3 "$(dirname "$0")/lib/pyclient.py" "$PORT_A" "$PORT_B" 1.2 >"$WORK/pyid.out" 2>&1 ||
        fail "python client TLS 1.2 session ID"
    expect pyid "resumed=id.*session_reused=True"
    stop_tserver
    start_tserver --mode tickets
    for version in 1.2 1.3; do
        python3 "$(dirname "$0")/lib/pyclient.py" "$PORT_A" "$PORT_B" "$version" \
            >"$WORK/py$version.out" 2>&1 || fail "python client TLS $version"
        expect "py$version" "session_reused=True"
    done
    stop_tserver
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
