#!/usr/bin/env bash
# Secrets audit of a running `tlsresume serve`: ticket keys never reach a file, and a core dump
# of the process that holds the key ring does not contain them.
# usage: test_secrets.sh SCENARIO (no_file_writes, core_dump, core_dump_secret, retired_wiped)
# core_dump and retired_wiped read the keys out of the live process, which only locked memory
# allows (--key-memory locked, the fallback where secret memory is refused); core_dump_secret
# shows that secret memory (the default here) is out of reach of both dumps.
. "$(dirname "$0")/lib/common.sh"
KEYMEM="$SRC_DIR/tests/integration/lib/keymem.py"

scenario=${1:?scenario}
make_cert

# key_name: the name of the key that sealed a fresh TLS 1.2 ticket (its first 16 bytes), hex.
key_name() {
    timeout 20 openssl s_client -connect "127.0.0.1:$PORT" -servername localhost -tls1_2 \
        -sess_out "$WORK/s.pem" </dev/null >/dev/null 2>&1 || true
    openssl sess_id -in "$WORK/s.pem" -text -noout 2>/dev/null | python3 -c '
import re, sys
t = sys.stdin.read()
m = re.search(r"TLS session ticket:\n((?:\s+[0-9a-f]{4} - .*\n)+)", t)
hexs = re.sub(r"[ -]", "", "".join(re.findall(r" - ((?:[0-9a-f]{2}[ -]){1,16})", m.group(1))))
print(hexs[:32])'
}

# found FILE HEX: how many times the bytes HEX occur in FILE.
found() {
    python3 -c 'import sys; print(open(sys.argv[1], "rb").read().count(bytes.fromhex(sys.argv[2])))' \
        "$1" "$2"
}

case "$scenario" in
no_file_writes)
    # Through handshakes and five rotations, under strace: no file is opened for writing and
    # nothing is renamed or created; the process writes only to sockets, pipes and stderr.
    command -v strace >/dev/null || fail "strace is not installed"
    start_backend echo
    PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    # LeakSanitizer cannot run under ptrace; leaks are checked by every other test.
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" strace -f -qq -e trace=open,openat,creat,rename,renameat,renameat2,link,linkat,truncate \
        -o "$WORK/strace.txt" "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$PORT" \
        --admin "127.0.0.1:$ADMIN_PORT" --backend "127.0.0.1:$BACKEND_PORT" --workers 2 \
        --cert "$WORK/cert.pem" --key "$WORK/key.pem" >"$WORK/serve.out" 2>"$WORK/serve.log" &
    STRACE_PID=$!
    PIDS+=("$STRACE_PID")
    SERVE_PID=$STRACE_PID # until strace's child (the master) is known
    wait_serve_log "event=started"
    SERVE_PID=$(pgrep -P "$STRACE_PID" -x tlsresume) || fail "no serve under strace"
    names=""
    for k in 1 2 3 4 5; do
        names="$names $(key_name)"
        kill -USR1 "$SERVE_PID"
        sleep 0.3
    done
    [ "$(echo "$names" | tr ' ' '\n' | sort -u | grep -c .)" -ge 5 ] || fail "keys did not rotate"
    kill -TERM "$SERVE_PID"
    wait "$STRACE_PID" || fail "serve exited with an error"
    grep -E 'O_WRONLY|O_RDWR|O_CREAT|O_TRUNC|rename|link\(|creat\(|truncate' "$WORK/strace.txt" |
        grep -v -- '--- SIG' >"$WORK/writes.txt" || true
    if [ -s "$WORK/writes.txt" ]; then
        cat "$WORK/writes.txt" >&2
        fail "serve opened files for writing"
    fi
    # The trace can fail: it sees reads of the certificate.
    grep -q "cert.pem" "$WORK/strace.txt" || fail "strace saw nothing"
    echo "no_file_writes: 5 rotations, $(grep -c . "$WORK/strace.txt") traced calls, no file written"
    ;;
core_dump | core_dump_secret)
    # gcore of the master, which holds the key ring: the current key's name (next to its AES
    # and HMAC keys in the ring) is not in the dump. The control dumps the MADV_DONTDUMP
    # mappings too and must find it (the search works). The key pages show `lo` and `dd` in
    # smaps. In secret memory (core_dump_secret) even that control dump cannot read them. An
    # ASan build's core holds its whole shadow memory (tens of GB), so the dump uses the
    # release build (`make test` builds both).
    command -v gcore >/dev/null || fail "gdb (gcore) is not installed"
    release="$SRC_DIR/build"
    if [ ! -x "$release/tlsresume" ] || ldd "$release/tlsresume" | grep -q libasan; then
        skip "no release build in $release"
    fi
    BUILD_DIR=$release
    start_backend echo
    if [ "$scenario" = core_dump_secret ]; then
        start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
        grep -q "event=key_memory kind=secret" "$WORK/serve.log" || fail "no secret memory"
        name=$(key_name)
        [ ${#name} = 32 ] || fail "no ticket key name"
        gdb -p "$SERVE_PID" -batch -ex "set dump-excluded-mappings on" \
            -ex "gcore $WORK/all.core" >"$WORK/gdb.log" 2>&1 || fail "gdb dump"
        [ -s "$WORK/all.core" ] || fail "no dump"
        [ "$(found "$WORK/all.core" "$name")" = 0 ] || fail "the key is in a dump of secret memory"
        rm -f "$WORK/all.core"
        stop_serve
        echo "core_dump_secret: key $name... absent even from a dump of the excluded mappings"
    else
        start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --key-memory locked
        name=$(key_name)
        python3 "$KEYMEM" find "$SERVE_PID" "$name" >"$WORK/pages.out" || fail "keymem"
        [ -s "$WORK/pages.out" ] || fail "the key is not in a shared mapping"
        # Every page that holds it shows lo (locked) and dd (excluded from dumps).
        [ -z "$(awk '!(/ lo( |$)/ && / dd( |$)/)' "$WORK/pages.out")" ] ||
            fail "a page holding the key is not locked and non-dumpable: $(cat "$WORK/pages.out")"
        [ ${#name} = 32 ] || fail "no ticket key name"
        gcore -o "$WORK/core" "$SERVE_PID" >"$WORK/gcore.log" 2>&1 || fail "gcore"
        gdb -p "$SERVE_PID" -batch -ex "set dump-excluded-mappings on" \
            -ex "gcore $WORK/control.core" >"$WORK/gdb.log" 2>&1 || fail "gdb control dump"
        [ "$(found "$WORK/core.$SERVE_PID" "$name")" = 0 ] || fail "the ticket key is in the core dump"
        [ "$(found "$WORK/control.core" "$name")" -ge 1 ] ||
            fail "control: the key is not found even with excluded mappings dumped"
        rm -f "$WORK/core.$SERVE_PID" "$WORK/control.core"
        stop_serve
        echo "core_dump: key $name... absent from the core dump, present in the control"
    fi
    ;;
retired_wiped)
    # A retired key reads back as zero in the live server: the key that sealed a ticket is
    # found in the ring's shared mapping (the control), then rotated out (SIGUSR1) and, past
    # its 1 s ticket lifetime, wiped: its 80 bytes at the same address are all zero.
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem" --ticket-rotate 1h \
        --ticket-lifetime 1s --key-memory locked
    name=$(key_name)
    [ ${#name} = 32 ] || fail "no ticket key name"
    python3 "$KEYMEM" find "$SERVE_PID" "$name" >"$WORK/before.out" || fail "keymem"
    addr=$(head -n 1 "$WORK/before.out" | cut -d' ' -f1)
    [ -n "$addr" ] || fail "control: the current key is not found in the ring's mapping"
    old=$(python3 "$KEYMEM" read "$SERVE_PID" "$addr" 80)
    kill -USR1 "$SERVE_PID"
    wait_serve_log "event=rotated reason=signal"
    sleep 2 # past the 1 s lifetime of the retired key's tickets (the wipe's deadline)
    metric tlsresume_ticket_keys >/dev/null # any ring operation applies the schedule
    # The slot reads zero, or holds a key made since in the freed slot (the master makes keys
    # ahead): no 16 bytes of the retired key are left in it.
    bytes=$(python3 "$KEYMEM" read "$SERVE_PID" "$addr" 80)
    [ "$bytes" != "$old" ] || fail "the retired key at $addr is still there"
    for i in 0 32 64 96 128; do
        chunk=${old:$i:32}
        [ "$chunk" = "00000000000000000000000000000000" ] && continue
        case "$bytes" in *"$chunk"*) fail "the slot at $addr still holds part of the retired key" ;; esac
    done
    what=zero
    [ "$bytes" = "$(printf '0%.0s' $(seq 1 160))" ] || what="a newer key"
    python3 "$KEYMEM" find "$SERVE_PID" "$name" >"$WORK/after.out" || fail "keymem"
    [ ! -s "$WORK/after.out" ] || fail "the retired key's name is still in the ring's mapping"
    stop_serve
    echo "retired_wiped: key $name... at 0x$addr found, then $what there after retirement"
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"

