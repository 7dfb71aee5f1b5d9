# Nothing secret in Redis, in every way of running it: the secrets a TLS client saw are looked
# for in full dumps of Redis (an RDB and every value). Sourced after common.sh.
#
#   client_secrets ADDR MODE [PREFIX...]   one connection; what it saw joins $WORK/needles.txt
#   redis_dump NAME CLI...                 dumps the instance that CLI (redis-cli and its
#                                          connection options) reaches
#   secrets_scan                           true when no needle is in any dump
#   secrets_scan_can_fail KEY CLI...       a master secret planted at KEY is found (the control)

SCAN_PY="$(dirname "${BASH_SOURCE[0]}")/secrets_scan.py"

# client_secrets ADDR MODE [PREFIX...]: an openssl s_client connection to ADDR with the options
# MODE (e.g. "-tls1_2 -no_ticket"), run through PREFIX (e.g. `ip netns exec NS`); its session
# ID, master secret, TLS 1.3 resumption PSK, ticket key name and key log secrets are added to
# $WORK/needles.txt.
client_secrets() {
    local addr=$1 mode=$2
    shift 2
    rm -f "$WORK/s.pem" "$WORK/keylog.txt"
    touch "$WORK/keylog.txt"
    # shellcheck disable=SC2086
    sleep 0.3 | "$@" timeout 20 openssl s_client -connect "$addr" -servername localhost $mode \
        -keylogfile "$WORK/keylog.txt" -sess_out "$WORK/s.pem" >/dev/null 2>&1 || true
    openssl sess_id -in "$WORK/s.pem" -text -noout >"$WORK/s.txt" 2>/dev/null ||
        fail "sess_id ($mode to $addr)"
    python3 "$SCAN_PY" needles "$WORK/s.txt" "$WORK/keylog.txt" >>"$WORK/needles.txt"
}

# redis_dump NAME CLI...: $WORK/dump-NAME.rdb (the instance's RDB), $WORK/values-NAME.bin
# (every string, set and sorted set value, raw) and $WORK/keys-NAME.txt (its keys).
redis_dump() {
    local name=$1 key
    shift
    "$@" --rdb "$WORK/dump-$name.rdb" >/dev/null 2>&1 || fail "redis dump ($name)"
    [ -s "$WORK/dump-$name.rdb" ] || fail "empty redis dump ($name)"
    "$@" --scan >"$WORK/keys-$name.txt" || fail "redis scan ($name)"
    : >"$WORK/values-$name.bin"
    while read -r key; do
        case "$("$@" TYPE "$key")" in
        string) "$@" --raw GET "$key" >>"$WORK/values-$name.bin" ;;
        set) "$@" --raw SMEMBERS "$key" >>"$WORK/values-$name.bin" ;;
        zset) "$@" --raw ZRANGE "$key" 0 -1 >>"$WORK/values-$name.bin" ;;
        hash) "$@" --raw HGETALL "$key" >>"$WORK/values-$name.bin" ;;
        esac
    done <"$WORK/keys-$name.txt"
}

# secrets_scan: true when no needle of $WORK/needles.txt is in any dump made so far (each one
# found is named on stderr).
secrets_scan() {
    python3 "$SCAN_PY" scan "$WORK/needles.txt" "$WORK"/dump-*.rdb "$WORK"/values-*.bin
}

# secrets_scan_can_fail KEY CLI...: plants the first master secret seen at KEY through CLI,
# checks that a dump and scan find it, and removes it again.
secrets_scan_can_fail() {
    local key=$1 planted
    shift
    planted=$(awk '$1 == "Master-Key" { print $2; exit }' "$WORK/needles.txt")
    [ -n "$planted" ] || fail "no master secret to plant"
    python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))' "$planted" |
        "$@" -x SET "$key" >/dev/null || fail "could not plant a secret"
    redis_dump planted "$@"
    if secrets_scan 2>/dev/null; then
        fail "the scan missed a master secret planted in Redis"
    fi
    "$@" DEL "$key" >/dev/null
    rm -f "$WORK/dump-planted.rdb" "$WORK/values-planted.bin"
}

# no_secrets_in_redis ADDR CLI...: a server at ADDR stores TLS 1.2 sessions in the Redis that
# CLI reaches (redis-cli and its connection options, allowed to dump): four connections'
# secrets are in no dump of it, and a planted one is (the control). Prints what it scanned.
no_secrets_in_redis() {
    local addr=$1 mode
    shift
    : >"$WORK/needles.txt"
    for mode in "-tls1_2 -no_ticket" "-tls1_2 -no_ticket" "-tls1_2" "-tls1_3"; do
        client_secrets "$addr" "$mode"
    done
    [ "$(grep -c Master-Key "$WORK/needles.txt")" -ge 3 ] || fail "too few master secrets seen"
    secrets_scan_can_fail tlsr:probe "$@"
    redis_dump redis "$@"
    grep -q '^tlsr:s:' "$WORK/keys-redis.txt" || fail "no session in Redis to scan"
    secrets_scan || fail "a secret the client saw is readable in Redis"
    echo "secrets: $(wc -l <"$WORK/needles.txt") client secrets, none in Redis" \
        "($(wc -l <"$WORK/keys-redis.txt") keys dumped)"
}
