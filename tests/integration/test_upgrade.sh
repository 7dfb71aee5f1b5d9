#!/usr/bin/env bash
# Upgrades and restarts that keep sessions and keys (docs/DEPLOY.md, "Upgrades and restarts"):
# SIGUSR2 hands the sockets, the session cache, the key ring and the strike register to the
# binary at serve's path; systemd's file descriptor store keeps them across a restart; keys
# live in secret memory.
# usage: test_upgrade.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"
. "$(dirname "$0")/lib/early.sh"
KEYMEM="$SRC_DIR/tests/integration/lib/keymem.py"
LOOP="$SRC_DIR/tests/integration/lib/conn_loop.py"

scenario=${1:?scenario}
make_cert

# A copy of the binary that the test can replace as a package upgrade does (a new file renamed
# over the old path), and serve started from it.
BIN="$WORK/bin"
mkdir -p "$BIN"
cp "$BUILD_DIR/tlsresume" "$BIN/tlsresume"
replace_binary() {
    cp "$BUILD_DIR/tlsresume" "$BIN/.tlsresume.new"
    mv -f "$BIN/.tlsresume.new" "$BIN/tlsresume"
}
serve_bin() {
    BUILD_DIR=$BIN start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" "$@"
}

# sc NAME ARGS...: s_client with ARGS (a second of input, so TLS 1.3 tickets arrive); the
# first line saying New or Reused goes to $WORK/NAME.res.
sc() {
    local name=$1
    shift
    sleep 1 | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost "$@" \
        >"$WORK/$name.sc" 2>&1 || true
    grep -m1 -E '^(New|Reused),' "$WORK/$name.sc" | cut -d, -f1 >"$WORK/$name.res" || true
}

# save_sessions: a TLS 1.3 ticket, a TLS 1.2 ticket and a TLS 1.2 session ID, saved; and 40
# more session IDs in the cache (Python), so that its entry count says something.
save_sessions() {
    sc t13 -tls1_3 -sess_out "$WORK/t13.pem"
    sc t12 -tls1_2 -sess_out "$WORK/t12.pem"
    sc id12 -tls1_2 -no_ticket -sess_out "$WORK/id12.pem"
    local f
    for f in t13 t12 id12; do
        [ -s "$WORK/$f.pem" ] || fail "no $f session saved"
    done
    python3 - "$PORT" <<'EOF' || fail "session ID clients"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.maximum_version = ssl.TLSVersion.TLSv1_2
ctx.options |= ssl.OP_NO_TICKET
for _ in range(40):
    with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost"):
            pass
EOF
}

# resume_saved: how many of the three saved sessions resume (0 to 3).
resume_saved() {
    sc r13 -tls1_3 -sess_in "$WORK/t13.pem"
    sc r12 -tls1_2 -sess_in "$WORK/t12.pem"
    sc rid -tls1_2 -no_ticket -sess_in "$WORK/id12.pem"
    cat "$WORK/r13.res" "$WORK/r12.res" "$WORK/rid.res" | grep -c '^Reused' || true
}

# snapshot NAME: the cache's entry count and the ticket key names from /status, one line.
snapshot() {
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/status" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(d["cache"]["entries"], " ".join(k["name"] for k in d["tickets"]["key_list"]))' \
        >"$WORK/$1.snap" || fail "no /status for $1"
}

# start_loop: the client loop (bounded: 3000 connections, 60 s) in the background.
start_loop() {
    rm -f "$WORK/loop.stop" "$WORK/loop.json"
    python3 "$LOOP" --port "$PORT" --stop "$WORK/loop.stop" --max 3000 --seconds 60 \
        --out "$WORK/loop.json" >/dev/null 2>"$WORK/loop.err" &
    LOOP_PID=$!
    PIDS+=("$LOOP_PID")
    sleep 1
}

# stop_loop: stops it; sets LOOP_CONNS and LOOP_FAILS.
stop_loop() {
    touch "$WORK/loop.stop"
    wait "$LOOP_PID" || fail "client loop: $(cat "$WORK/loop.err")"
    LOOP_CONNS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["connections"])' "$WORK/loop.json")
    LOOP_RESUMED=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["resumed"])' "$WORK/loop.json")
    LOOP_FAILS=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["failures"]); [print(e, file=sys.stderr) for e in d["errors"]]' "$WORK/loop.json")
}

# upgrade_now: SIGUSR2 to the master; waits for the new master to serve and the old one to exit
# (status 0). Sets OLD_PID and SERVE_PID (the new master).
upgrade_now() {
    OLD_PID=$SERVE_PID
    local n
    n=$(grep -c "event=upgraded" "$WORK/serve.log" || true)
    kill -USR2 "$OLD_PID"
    wait_until 40 eval '[ "$(grep -c "event=upgraded" "$WORK/serve.log")" -gt '"$n"' ]' ||
        fail "no upgrade: $(grep -E 'upgrade|handover' "$WORK/serve.log" | tail -3)"
    SERVE_PID=$(grep "event=upgraded" "$WORK/serve.log" | tail -1 | sed 's/.*new_pid=\([0-9]*\).*/\1/')
    PIDS+=("$SERVE_PID")
    wait "$OLD_PID" || fail "the old master exited with status $?"
}

# stop_new: stops the master an upgrade started (not this shell's child), and checks the log.
stop_new() {
    kill -TERM "$SERVE_PID"
    timeout 40 tail --pid="$SERVE_PID" -f /dev/null || fail "the new master did not stop"
    if grep -qE "event=worker_died|AddressSanitizer|runtime error|LeakSanitizer" "$WORK/serve.log"; then
        fail "serve log shows a crash or a sanitizer report"
    fi
}

case "$scenario" in
upgrade)
    # Under a client loop, a new binary is put at serve's path and SIGUSR2 sent: no connection
    # fails; the saved TLS 1.3 ticket, TLS 1.2 ticket and TLS 1.2 session ID resume on the new
    # master; the cache's entry count and the ticket key names are the same before and after.
    start_backend echo
    serve_bin
    save_sessions
    snapshot before
    start_loop
    replace_binary
    upgrade_now
    sleep 1 # connections served by the new master alone
    stop_loop
    snapshot after
    [ "$LOOP_FAILS" = 0 ] || fail "$LOOP_FAILS of $LOOP_CONNS connections failed across the upgrade"
    [ "$LOOP_CONNS" -ge 20 ] || fail "the client loop made only $LOOP_CONNS connections"
    [ "$LOOP_RESUMED" -ge 1 ] || fail "the client loop resumed nothing"
    [ "$(cat "$WORK/before.snap")" = "$(cat "$WORK/after.snap")" ] ||
        fail "status changed: $(cat "$WORK/before.snap") -> $(cat "$WORK/after.snap")"
    [ "$(cut -d' ' -f1 "$WORK/before.snap")" -ge 40 ] || fail "the cache held too few sessions"
    # The new master runs the new file; the old one ran the file it replaced.
    [[ "$(readlink "/proc/$SERVE_PID/exe")" != *deleted* ]] || fail "the new master runs the old file"
    grep -q "event=handover source=upgrade .*cache=adopted keys=adopted" "$WORK/serve.log" ||
        fail "no adoption logged"
    [ "$(resume_saved)" = 3 ] || fail "saved sessions did not all resume: $(cat "$WORK"/r*.res | tr '\n' ' ')"
    stop_new
    echo "upgrade: $LOOP_CONNS connections, 0 failed; 3/3 saved sessions resumed; status $(cat "$WORK/after.snap")"
    ;;
fleet)
    # A fleet member upgrades: the new master joins the fleet's ring again (the same keys are
    # in the ring it adopted and in Redis), and the saved sessions resume on it.
    start_backend echo
    start_local_redis
    fleet_key
    serve_bin --redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key"
    wait_serve_log "event=joined_fleet_ring"
    save_sessions
    snapshot before
    start_loop
    upgrade_now
    wait_until 20 count_ge "$WORK/serve.log" "event=joined_fleet_ring" 2 ||
        fail "the new master did not join the fleet's ring"
    sleep 1
    stop_loop
    snapshot after
    [ "$LOOP_FAILS" = 0 ] || fail "$LOOP_FAILS of $LOOP_CONNS connections failed across the upgrade"
    [ "$(cut -d' ' -f2- "$WORK/before.snap")" = "$(cut -d' ' -f2- "$WORK/after.snap")" ] ||
        fail "keys changed: $(cat "$WORK/before.snap") -> $(cat "$WORK/after.snap")"
    [ "$(resume_saved)" = 3 ] || fail "saved sessions did not all resume: $(cat "$WORK"/r*.res | tr '\n' ' ')"
    stop_new
    echo "fleet: $LOOP_CONNS connections, 0 failed; 3/3 resumed; keys $(cut -d' ' -f2- "$WORK/after.snap")"
    ;;
restart_control)
    # The control: a plain restart (stop, start) loses the cache and the keys; the saved
    # sessions do not resume and the key names change.
    start_backend echo
    serve_bin
    save_sessions
    snapshot before
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || fail "serve exited with status $?"
    serve_bin
    snapshot after
    [ "$(resume_saved)" = 0 ] || fail "control: sessions resumed after a plain restart"
    [ "$(cut -d' ' -f2- "$WORK/before.snap")" != "$(cut -d' ' -f2- "$WORK/after.snap")" ] ||
        fail "control: the keys survived a plain restart"
    stop_serve
    echo "restart_control: 0/3 resumed after a plain restart; keys changed"
    ;;
layout)
    # A hand-over in a layout the new binary does not read (the old master writes layout 2, a
    # test hook): one log line says so, the new master starts with a fresh cache and keys, and
    # keeps the sockets: no connection fails.
    start_backend echo
    export TLSRESUME_TEST_HANDOVER_LAYOUT=2
    serve_bin
    unset TLSRESUME_TEST_HANDOVER_LAYOUT
    save_sessions
    snapshot before
    start_loop
    upgrade_now
    sleep 1
    stop_loop
    snapshot after
    [ "$LOOP_FAILS" = 0 ] || fail "$LOOP_FAILS of $LOOP_CONNS connections failed across the upgrade"
    [ "$(grep -c 'event=handover result=fresh reason="hand-over layout 2, this build reads 1" kept=sockets' "$WORK/serve.log")" = 1 ] ||
        fail "no single line about the layout"
    [ "$(cut -d' ' -f2- "$WORK/before.snap")" != "$(cut -d' ' -f2- "$WORK/after.snap")" ] ||
        fail "the keys were adopted from an unknown layout"
    [ "$(resume_saved)" = 0 ] || fail "sessions resumed from an unknown layout"
    stop_new
    echo "layout: fresh start logged once; $LOOP_CONNS connections, 0 failed; sockets kept"
    ;;
failed)
    # The binary at serve's path cannot serve (it exits at once): the upgrade is called off,
    # the running master keeps serving and its sessions keep resuming; no connection fails.
    start_backend echo
    serve_bin
    save_sessions
    start_loop
    printf '#!/bin/sh\necho "broken build" >&2\nexit 3\n' >"$BIN/.tlsresume.new"
    chmod +x "$BIN/.tlsresume.new"
    mv -f "$BIN/.tlsresume.new" "$BIN/tlsresume"
    kill -USR2 "$SERVE_PID"
    wait_serve_log "event=upgrade_failed"
    sleep 1
    stop_loop
    [ "$LOOP_FAILS" = 0 ] || fail "$LOOP_FAILS of $LOOP_CONNS connections failed"
    kill -0 "$SERVE_PID" || fail "the running master is gone"
    [ "$(resume_saved)" = 3 ] || fail "sessions stopped resuming"
    stop_serve
    echo "failed: upgrade_failed logged; the running master kept serving $LOOP_CONNS connections"
    ;;
failed_after_adopt)
    # The new binary adopts the cache and keys, then fails to start (one of its listen
    # addresses is taken): it must leave the memory the running master serves from as it was,
    # so the old workers live on and the saved sessions still resume there.
    start_backend echo
    serve_bin
    save_sessions
    workers=$(pgrep -P "$SERVE_PID" | tr '\n' ' ')
    start_loop
    printf '#!/bin/sh\nexec "%s" "$@" --listen "127.0.0.1:%s"\n' "$BUILD_DIR/tlsresume" \
        "$BACKEND_PORT" >"$BIN/.tlsresume.new"
    chmod +x "$BIN/.tlsresume.new"
    mv -f "$BIN/.tlsresume.new" "$BIN/tlsresume"
    kill -USR2 "$SERVE_PID"
    wait_serve_log "event=upgrade_failed"
    sleep 1
    stop_loop
    grep -q "event=handover source=upgrade" "$WORK/serve.log" ||
        grep -q "Address already in use" "$WORK/serve.log" || fail "the new master did not try"
    [ "$LOOP_FAILS" = 0 ] || fail "$LOOP_FAILS of $LOOP_CONNS connections failed"
    for w in $workers; do
        kill -0 "$w" || fail "worker $w of the running master died"
    done
    [ "$(resume_saved)" = 3 ] || fail "sessions stopped resuming: the memory was wiped"
    stop_serve
    echo "failed_after_adopt: the failed new master left the memory alone; 3/3 still resume"
    ;;
early | early_control)
    # 0-RTT across an upgrade: the strike register comes along, so a flight accepted before
    # is refused after as a replay, and new early data is accepted at once (the register's age
    # came along too). The control hands over in an unknown layout: the new register is young,
    # so new early data is refused for the window ("starting").
    start_backend lines --proxy-protocol
    if [ "$scenario" = early_control ]; then export TLSRESUME_TEST_HANDOVER_LAYOUT=2; fi
    serve_bin --proxy-protocol --early-data --early-data-window 10s
    unset TLSRESUME_TEST_HANDOVER_LAYOUT
    sleep 10 # past the fresh-start window
    ticket
    record_flight "before-upgrade"
    [ "$(received before-upgrade)" = 1 ] || fail "the first flight was not accepted"
    upgrade_now
    if [ "$scenario" = early ]; then
        python3 "$REPLAY" send --flight "$WORK/flight.bin" --to "127.0.0.1:$PORT" --times 1 \
            --wait 1 >"$WORK/send.out" || fail "replay sender"
        ticket
        early e "after-upgrade"
        grep -q "Early data was accepted" "$WORK/e.out" || fail "new early data refused after the upgrade"
        [ "$(received before-upgrade)" = 1 ] || fail "the replayed flight was accepted after the upgrade"
        [ "$(early_metric rejected_replay)" = 1 ] || fail "the replay was not refused as a replay"
        echo "early: the replay refused as a replay after the upgrade; new early data accepted at once"
    else
        ticket
        early e "after-upgrade"
        grep -q "Early data was rejected" "$WORK/e.out" || fail "control: early data accepted by a young register"
        [ "$(early_metric rejected_starting)" = 1 ] || fail "control: not refused as starting"
        echo "early_control: a fresh register refuses 0-RTT for its window"
    fi
    stop_new
    ;;
secret_memory | secret_control | secret_fallback)
    # Keys in secret memory: their pages cannot be read through /proc/PID/mem, and the current
    # key's name is in no readable mapping of the master. The control (--key-memory locked)
    # finds it where the secret case cannot. The fallback: memfd_secret refused (strace injects
    # ENOSYS) gives locked memory and one warning; --key-memory secret then refuses to start.
    start_backend echo
    case "$scenario" in
    secret_memory) serve_bin ;;
    secret_control) serve_bin --key-memory locked ;;
    secret_fallback)
        command -v strace >/dev/null || fail "strace is not installed"
        SERVE_WRAP=(env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -o /dev/null
            -e trace=memfd_secret -e inject=memfd_secret:error=ENOSYS)
        serve_bin
        SERVE_WRAP=()
        STRACE_PID=$SERVE_PID
        SERVE_PID=$(pgrep -P "$STRACE_PID" -x tlsresume) || fail "no serve under strace"
        ;;
    esac
    sc t12 -tls1_2 -sess_out "$WORK/t12.pem"
    name=$(openssl sess_id -in "$WORK/t12.pem" -text -noout | python3 -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)+)", t)
print(re.sub(r"[ -]", "", "".join(re.findall(r" - ((?:[0-9a-f]{2}[ -]){1,16})", m.group(1))))[:32])')
    [ ${#name} = 32 ] || fail "no ticket key name"
    python3 "$KEYMEM" find "$SERVE_PID" "$name" >"$WORK/found.out"
    python3 "$KEYMEM" secret "$SERVE_PID" >"$WORK/secret.out"
    case "$scenario" in
    secret_memory)
        grep -q "event=key_memory kind=secret" "$WORK/serve.log" || fail "secret memory not used"
        [ -s "$WORK/secret.out" ] || fail "no secret memory mapping"
        if grep -v " unreadable:" "$WORK/secret.out"; then fail "a secret mapping is readable"; fi
        [ ! -s "$WORK/found.out" ] || fail "the key is readable: $(cat "$WORK/found.out")"
        stop_serve
        echo "secret_memory: $(grep -c . "$WORK/secret.out") secret mappings, none readable; key $name... not found"
        ;;
    secret_control)
        grep -q "event=key_memory kind=locked" "$WORK/serve.log" || fail "locked memory not used"
        [ ! -s "$WORK/secret.out" ] || fail "control: secret memory used"
        [ -s "$WORK/found.out" ] || fail "control: the key is not found in locked memory"
        stop_serve
        echo "secret_control: key $name... found at $(cut -d' ' -f1 "$WORK/found.out" | head -1) in locked memory"
        ;;
    secret_fallback)
        grep -q 'event=key_memory kind=locked reason="memfd_secret: Function not implemented"' \
            "$WORK/serve.log" || fail "no fallback warning"
        [ -s "$WORK/found.out" ] || fail "the key is not in locked memory"
        [ -z "$(awk '!(/ lo( |$)/ && / dd( |$)/)' "$WORK/found.out")" ] ||
            fail "a page holding the key is not locked and non-dumpable"
        kill -TERM "$SERVE_PID"
        wait "$STRACE_PID" || fail "serve exited with an error"
        set +e
        env "ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -o /dev/null \
            -e trace=memfd_secret -e inject=memfd_secret:error=ENOSYS \
            "$BIN/tlsresume" serve --listen "127.0.0.1:$(free_port)" --admin off \
            --backend "127.0.0.1:$BACKEND_PORT" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
            --key-memory secret >/dev/null 2>"$WORK/required.log"
        rc=$?
        set -e
        [ "$rc" = 2 ] || fail "--key-memory secret without it: exit $rc"
        grep -q "secret memory (memfd_secret) was required and refused" "$WORK/required.log" ||
            fail "no clear error: $(cat "$WORK/required.log")"
        echo "secret_fallback: locked memory with one warning; --key-memory secret refused to start"
        ;;
    esac
    ;;
systemd | systemd_crash)
    # Under a stand-in for systemd's notify socket and file descriptor store: serve stores its
    # sockets and memory files; stopped (systemctl restart) or killed with its workers (a crash,
    # then Restart=), it is started again with them, and the saved sessions resume.
    start_backend echo
    PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    python3 "$SRC_DIR/tests/integration/lib/fdstore.py" --socket "$WORK/notify.sock" \
        --log "$WORK/fdstore.log" --restarts 1 -- "$BIN/tlsresume" serve \
        --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN_PORT" \
        --backend "127.0.0.1:$BACKEND_PORT" --workers 2 --cert "$WORK/cert.pem" \
        --key "$WORK/key.pem" >"$WORK/serve.out" 2>"$WORK/serve.log" &
    STORE_PID=$!
    PIDS+=("$STORE_PID")
    wait_until 20 has_line "$WORK/fdstore.log" "^ready" || fail "serve never said READY=1"
    for n in cache keys "sock=127.0.0.1%3A$PORT" "sock=127.0.0.1%3A$ADMIN_PORT"; do
        grep -qx "stored $n" "$WORK/fdstore.log" || fail "$n not stored: $(cat "$WORK/fdstore.log")"
    done
    first=$(grep '^started' "$WORK/fdstore.log" | head -1 | sed 's/started pid=\([0-9]*\).*/\1/')
    save_sessions
    snapshot before
    if [ "$scenario" = systemd ]; then
        kill -TERM "$first"
    else
        workers=$(pgrep -P "$first" | tr '\n' ' ')
        kill -KILL "$first"
        # shellcheck disable=SC2086 # the worker pids, one word each
        kill -TERM $workers # systemd stops the rest of the unit's processes
    fi
    wait_until 20 count_ge "$WORK/fdstore.log" "^ready" 2 ||
        fail "not started again: $(cat "$WORK/fdstore.log")"
    grep -q "event=handover source=systemd .*cache=adopted keys=adopted" "$WORK/serve.log" ||
        fail "nothing adopted from the store"
    snapshot after
    [ "$(cut -d' ' -f2- "$WORK/before.snap")" = "$(cut -d' ' -f2- "$WORK/after.snap")" ] ||
        fail "keys changed: $(cat "$WORK/before.snap") -> $(cat "$WORK/after.snap")"
    [ "$(resume_saved)" = 3 ] || fail "saved sessions did not all resume after the restart"
    second=$(grep '^started' "$WORK/fdstore.log" | tail -1 | sed 's/started pid=\([0-9]*\).*/\1/')
    kill -TERM "$second"
    wait "$STORE_PID" || fail "the stand-in failed"
    if grep -qE "event=worker_died|AddressSanitizer|runtime error|LeakSanitizer" "$WORK/serve.log"; then
        fail "serve log shows a crash or a sanitizer report"
    fi
    echo "$scenario: 3/3 sessions resumed after the $([ "$scenario" = systemd ] && echo restart || echo crash); keys $(cut -d' ' -f2- "$WORK/after.snap")"
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
