#!/usr/bin/env bash
# `tlsresume keys` against the servers it drives: nginx, HAProxy and Node from Debian, a real
# Redis, and `tlsresume serve`, all on loopback.
# usage: test_keys.sh SCENARIO
#   formats        each export format loaded by its server (nginx -t, HAProxy -c, two Node
#                  servers resuming each other's tickets); malformed imports refused clearly;
#                  a disk-backed path refused
#   cross_nginx    keys sync feeds nginx; tickets cross nginx -> serve and serve -> nginx
#   cross_haproxy  keys sync feeds HAProxy over its runtime API; tickets cross both ways
#   fleet_nginx    two nginx (each with its own keys sync) and serve behind a round-robin
#                  balancer: 100% resumption through forced rotations
#   fleet_nginx_control  the same without keys sync: resumptions lost (the test can fail)
#   fleet_haproxy  the same with two HAProxy
#   import         an nginx with its own 48-byte key: the key imported into the fleet, serve
#                  resumes the tickets that nginx issued (a migration loses none)
#   node_stream    keys sync --format node --stdout feeds a Node server through rotations
#   status         keys status and rotate: names, states, acknowledgements, per-key use
#   apache         two Apache servers on one exported key seal their TLS 1.2 and 1.3 tickets
#                  under it (named by it, opened by its AES half; a third on a key of its own,
#                  the control, does not), and their MAC is not under the key's HMAC half
#                  (mod_ssl with OpenSSL 3, docs/KEYS.md), while Node's is
scenario=${1:?scenario}
. "$(dirname "$0")/lib/keys.sh"

case "$scenario" in
formats)
    fleet_serve s1
    cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
    for fmt in nginx48 nginx80; do
        mkdir -p "$KEYS/$fmt"
        "$TLSR" keys export "${FLEET[@]}" --format "$fmt" --out "$KEYS/$fmt" --slots 3 \
            2>"$WORK/export_$fmt.log" || fail "export $fmt"
        size=$([ "$fmt" = nginx48 ] && echo 48 || echo 80)
        for i in 0 1 2; do
            [ "$(stat -c %s "$KEYS/$fmt/$i.key")" -eq "$size" ] || fail "$fmt/$i.key size"
            [ "$(stat -c %a "$KEYS/$fmt/$i.key")" = 600 ] || fail "$fmt/$i.key mode"
        done
        nginx_conf "ng_$fmt" "$(free_port)" "$KEYS/$fmt" 3
        nginx -t -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" >"$WORK/nginx_t_$fmt.log" 2>&1 ||
            fail "nginx -t refused the $fmt keys"
    done
    # Slot 0 encrypts: the fleet's current key (nginx80 keeps our name; nginx48 derives one).
    cur=$(curl -s "http://127.0.0.1:$ADMIN_s1/metrics" |
        sed -n 's/.*tlsresume_ticket_key_issued_total{generation="[0-9]*",key="\([0-9a-f]*\)",state="current".*/\1/p')
    [ "$(od -An -tx1 -N4 "$KEYS/nginx80/0.key" | tr -d ' \n')" = "$cur" ] ||
        fail "nginx80 slot 0 is not the current key ($cur)"
    [ "$(od -An -tx1 -N4 "$KEYS/nginx48/0.key" | tr -d ' \n')" != "$cur" ] ||
        fail "nginx48 slot 0 is not a derived key"
    "$TLSR" keys export "${FLEET[@]}" --format haproxy --out "$KEYS/haproxy.keys" \
        2>"$WORK/export_haproxy.log" || fail "export haproxy"
    [ "$(wc -l <"$KEYS/haproxy.keys")" -eq 3 ] || fail "haproxy file: not 3 lines"
    [ "$(sed -n 2p "$KEYS/haproxy.keys" | base64 -d | od -An -tx1 -N4 | tr -d ' \n')" = "$cur" ] ||
        fail "haproxy: the penultimate line is not the current key"
    start_haproxy hp "$(free_port)" "$KEYS/haproxy.keys"
    # Node: two servers on one exported key resume each other's tickets (TLS 1.2 and 1.3).
    "$TLSR" keys export "${FLEET[@]}" --format node --out "$KEYS/node.key" \
        2>"$WORK/export_node.log" || fail "export node"
    [ "$(stat -c %s "$KEYS/node.key")" -eq 48 ] || fail "node key size"
    for n in a b; do
        p=$(free_port)
        node "$SRC_DIR/tests/integration/lib/nodeserver.js" "$p" "$WORK/cert.pem" \
            "$WORK/key.pem" "$KEYS/node.key" >"$WORK/node_$n.out" 2>"$WORK/node_$n.log" &
        PIDS+=("$!")
        wait_port "$p"
        printf -v "NODE_$n" %s "$p"
    done
    for v in 1_2 1_3; do
        [ "$(pycross "$NODE_a" "$NODE_b" "$v")" = Reused ] ||
            fail "node: TLS $v ticket from one server not resumed by the other"
    done
    # Apache's layout is Node's (name | HMAC | AES, 48 bytes): the same bytes.
    "$TLSR" keys export "${FLEET[@]}" --format apache --out "$KEYS/apache.key" 2>/dev/null ||
        fail "export apache"
    cmp -s "$KEYS/apache.key" "$KEYS/node.key" || fail "apache and node keys differ"
    # Raw: 80-byte records; imported back, the fleet already holds them.
    "$TLSR" keys export "${FLEET[@]}" --format raw --out "$KEYS/raw.keys" 2>/dev/null ||
        fail "export raw"
    [ $(($(stat -c %s "$KEYS/raw.keys") % 80)) -eq 0 ] || fail "raw: not 80-byte records"
    # Malformed files: refused with the file, the line and what is wrong.
    printf 'AAAA\n' >"$WORK/short.keys"
    printf 'not*base64*at*all\n' >"$WORK/bad.keys"
    : >"$WORK/empty.keys"
    head -c 47 /dev/urandom >"$WORK/47.key"
    for c in "haproxy short.keys short.keys:1: a key of 3 bytes" \
        "haproxy bad.keys bad.keys:1:" "nginx80 empty.keys empty.keys: empty" \
        "nginx48 47.key 47.key: 47 bytes" "node 47.key 47.key: 47 bytes"; do
        set -- $c
        if "$TLSR" keys import "${FLEET[@]}" --format "$1" --in "$WORK/$2" 2>"$WORK/import.log"; then
            fail "import accepted $2"
        fi
        grep -q "$3" "$WORK/import.log" || fail "import $2: message lacks '$3': $(cat "$WORK/import.log")"
    done
    # A disk-backed directory is refused unless --allow-disk.
    if [ "$(stat -f -c %T "$WORK")" != tmpfs ]; then
        if "$TLSR" keys export "${FLEET[@]}" --format haproxy --out "$WORK/disk.keys" \
            2>"$WORK/disk.log"; then
            fail "export wrote to a disk-backed path"
        fi
        grep -q "memory-backed" "$WORK/disk.log" || fail "no reason given for the refusal"
        [ ! -e "$WORK/disk.keys" ] || fail "a refused export left a file"
        "$TLSR" keys export "${FLEET[@]}" --format haproxy --out "$WORK/disk.keys" \
            --allow-disk 2>/dev/null || fail "--allow-disk refused"
    fi
    # A missing directory is named, before Redis is asked anything; a Redis that refuses fails
    # at once (it used to wait the whole --timeout).
    set +e
    "$TLSR" keys export "${FLEET[@]}" --format raw --out "$KEYS/missing/raw.keys" 2>"$WORK/nodir.log"
    nodir_rc=$?
    refused=$(free_port)
    timeout 5 "$TLSR" keys status --redis "redis://127.0.0.1:$refused" --fleet-key "$WORK/fleet.key" \
        2>"$WORK/refused.log"
    refused_rc=$?
    set -e
    [ "$nodir_rc" = 2 ] && grep -q "$KEYS/missing: No such file or directory (the directory --out writes into must exist)" \
        "$WORK/nodir.log" || fail "a missing directory: rc=$nodir_rc $(cat "$WORK/nodir.log")"
    [ "$refused_rc" = 1 ] && grep -q "cannot reach Redis at redis://127.0.0.1:$refused" "$WORK/refused.log" ||
        fail "a Redis that refuses: rc=$refused_rc (124: it waited) $(cat "$WORK/refused.log")"
    echo "formats: nginx48, nginx80 (nginx -t), haproxy (HAProxy started), node (2 servers" \
        "resume each other), apache, raw; 5 malformed files refused"
    ;;
cross_nginx)
    fleet_serve s1 --session-context "$NGINX_CTX"
    mkdir -p "$KEYS/ng"
    port=$(free_port)
    nginx_conf ng "$port" "$KEYS/ng" 3
    start_sync sync_ng --format nginx80 --out "$KEYS/ng" \
        --reload "nginx -s reload -p $NGINX_DIR -c $NGINX_DIR/nginx.conf"
    start_nginx ng "$port" "$KEYS/ng" 3
    for v in 1_2 1_3; do
        [ "$(cross "n2s$v" "$port" "$PORT_s1" "$v")" = Reused ] || fail "TLS $v: nginx -> serve"
        [ "$(cross "s2n$v" "$PORT_s1" "$port" "$v")" = Reused ] || fail "TLS $v: serve -> nginx"
    done
    echo "cross_nginx: TLS 1.2 and 1.3 tickets resume nginx -> serve and serve -> nginx"
    ;;
cross_haproxy)
    fleet_serve s1 --session-context haproxy
    cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
    "$TLSR" keys export "${FLEET[@]}" --format haproxy --out "$KEYS/hp.keys" 2>/dev/null ||
        fail "export haproxy"
    port=$(free_port)
    start_haproxy hp "$port" "$KEYS/hp.keys"
    start_sync sync_hp --haproxy-socket "$WORK/hp.sock" --haproxy-ref "$KEYS/hp.keys"
    for v in 1_2 1_3; do
        [ "$(cross "h2s$v" "$port" "$PORT_s1" "$v")" = Reused ] || fail "TLS $v: HAProxy -> serve"
        [ "$(cross "s2h$v" "$PORT_s1" "$port" "$v")" = Reused ] || fail "TLS $v: serve -> HAProxy"
    done
    # After a rotation HAProxy encrypts with the fleet's new key, pushed over the runtime API.
    g0=$(generation)
    "$TLSR" keys rotate --wait "${FLEET[@]}" --timeout 30 2>"$WORK/rotate.log" || fail "rotate"
    wait_until 5 count_ge "$WORK/sync_hp.log" "event=haproxy_updated" 2 || true
    [ "$(cross "h2s_after" "$port" "$PORT_s1" 1_3)" = Reused ] || fail "after rotation: HAProxy -> serve"
    ticket=$(sed -n '/TLS session ticket:/{n;p}' "$WORK/h2s_after.1.out" | head -n 1 |
        awk '{print $3 $4 $5 $6}')
    cur=$(curl -s "http://127.0.0.1:$ADMIN_s1/metrics" |
        sed -n 's/.*key="\([0-9a-f]*\)",state="current".*/\1/p' | head -n 1)
    [ -n "$cur" ] && [ "$ticket" = "$cur" ] ||
        fail "HAProxy's ticket names key '$ticket', the fleet encrypts with '$cur'"
    echo "cross_haproxy: TLS 1.2 and 1.3 both ways; after rotation $g0 -> $(generation) HAProxy" \
        "encrypts with the fleet's current key $cur"
    ;;
fleet_nginx)
    fleet_serve s1 --session-context "$NGINX_CTX"
    ports=()
    for n in ng1 ng2; do
        mkdir -p "$KEYS/$n"
        port=$(free_port)
        nginx_conf "$n" "$port" "$KEYS/$n" 5
        # nginx reloads asynchronously: give its new workers a moment before acknowledging.
        start_sync "sync_$n" --format nginx80 --out "$KEYS/$n" --slots 5 \
            --reload "nginx -s reload -p $NGINX_DIR -c $NGINX_DIR/nginx.conf && sleep 0.5"
        start_nginx "$n" "$port" "$KEYS/$n" 5
        ports+=("$port")
    done
    lb=$(free_port)
    start_balancer "$lb" "${ports[0]}" "$PORT_s1" "${ports[1]}"
    fleet_load load "$lb" 6
    ;;
fleet_nginx_control)
    # The same fleet, but each nginx keeps a key of its own (no keys sync): resumptions that
    # cross servers are lost, which is what keys sync prevents.
    fleet_serve s1 --session-context "$NGINX_CTX"
    ports=()
    for n in ng1 ng2; do
        mkdir -p "$KEYS/$n"
        head -c 80 /dev/urandom >"$KEYS/$n/0.key"
        port=$(free_port)
        start_nginx "$n" "$port" "$KEYS/$n" 1
        ports+=("$port")
    done
    lb=$(free_port)
    start_balancer "$lb" "${ports[0]}" "$PORT_s1" "${ports[1]}"
    fleet_load load "$lb" 6 control
    ;;
fleet_haproxy)
    fleet_serve s1 --session-context haproxy
    cat "$WORK/cert.pem" "$WORK/key.pem" >"$WORK/combined.pem"
    "$TLSR" keys export "${FLEET[@]}" --format haproxy --out "$KEYS/hp.keys" 2>/dev/null ||
        fail "export haproxy"
    ports=()
    for n in hp1 hp2; do
        port=$(free_port)
        start_haproxy "$n" "$port" "$KEYS/hp.keys"
        ports+=("$port")
    done
    start_sync sync_hp --haproxy-socket "$WORK/hp1.sock" --haproxy-socket "$WORK/hp2.sock" \
        --haproxy-ref "$KEYS/hp.keys"
    lb=$(free_port)
    start_balancer "$lb" "${ports[0]}" "$PORT_s1" "${ports[1]}"
    # HAProxy holds one key before the encrypting one: old sessions are tried within a period.
    fleet_load load "$lb" 2
    ;;
import)
    # An nginx that has run with its own 48-byte key (AES-128) issues tickets...
    mkdir -p "$KEYS/legacy"
    head -c 48 /dev/urandom >"$KEYS/legacy/0.key"
    port=$(free_port)
    start_nginx legacy "$port" "$KEYS/legacy" 1
    fleet_serve s1 --session-context "$NGINX_CTX"
    for v in 1_2 1_3; do
        [ "$(cross "before$v" "$port" "$PORT_s1" "$v")" = New ] ||
            fail "control: serve resumed an nginx ticket before the import"
    done
    # ... its key joins the fleet as decrypt-only, and serve resumes what nginx issued.
    "$TLSR" keys import "${FLEET[@]}" --format nginx48 --in "$KEYS/legacy/0.key" --keep 10m \
        2>"$WORK/import.log" || fail "import"
    for _ in $(seq 1 30); do
        [ "$(curl -s "http://127.0.0.1:$ADMIN_s1/metrics" | grep -c 'origin="fleet"')" -ge 3 ] && break
        sleep 0.1
    done
    for v in 1_2 1_3; do
        [ "$(cross "after$v" "$port" "$PORT_s1" "$v")" = Reused ] ||
            fail "TLS $v: the imported key did not resume nginx's ticket"
    done
    "$TLSR" keys status "${FLEET[@]}" >"$WORK/status.out" 2>/dev/null || fail "status"
    grep -qE '^0 +[0-9a-f]{8} imported +48' "$WORK/status.out" || fail "status lacks the import"
    echo "import: nginx's own 48-byte key imported; its TLS 1.2 and 1.3 tickets resume on serve" \
        "(control: not before)"
    ;;
node_stream)
    # Node resumes its own tickets with any key, so the test also checks that the key Node
    # seals under is the fleet's: its tickets' key name is the one the stream delivered last,
    # before and after a rotation.
    fleet_serve s1
    port=$(free_port)
    start_node_stream node "$port"
    [ "$(pycross "$port" "$port" 1_3)" = Reused ] || fail "node: no resumption"
    [ "$(ticket_name "$port")" = "$(streamed_name)" ] || fail "node's tickets are not under the streamed key"
    first=$(streamed_name)
    "$TLSR" keys rotate --wait "${FLEET[@]}" --timeout 30 2>/dev/null || fail "rotate"
    wait_until 5 count_ge "$WORK/node.out" '^keys' 2 || true
    [ "$(grep -c '^keys' "$WORK/node.out")" -ge 2 ] || fail "node got no new key after rotation"
    [ "$(pycross "$port" "$port" 1_2)" = Reused ] || fail "node: no resumption after rotation"
    [ "$(streamed_name)" != "$first" ] || fail "the stream sent the same key after the rotation"
    [ "$(ticket_name "$port")" = "$(streamed_name)" ] || fail "after the rotation node seals under another key"
    # The control: a Node server on a key of its own resumes too, but under another name.
    head -c 48 /dev/urandom >"$WORK/own.key"
    own=$(free_port)
    node "$SRC_DIR/tests/integration/lib/nodeserver.js" "$own" "$WORK/cert.pem" "$WORK/key.pem" \
        "$WORK/own.key" >"$WORK/own.out" 2>&1 &
    PIDS+=("$!")
    wait_port "$own"
    [ "$(pycross "$own" "$own" 1_2)" = Reused ] || fail "control: node on its own key"
    [ "$(ticket_name "$own")" != "$(streamed_name)" ] || fail "control: the check cannot tell keys apart"
    echo "node_stream: Node took $(grep -c '^keys' "$WORK/node.out") keys from the stream and" \
        "resumed before and after a rotation"
    ;;
status)
    fleet_serve s1
    fleet_serve s2
    for _ in $(seq 1 5); do
        timeout 10 openssl s_client -connect "127.0.0.1:$PORT_s1" -tls1_3 </dev/null \
            >/dev/null 2>&1 || true
    done
    sleep 1.5 # one poll of each server reports its use (bounded by --fleet-poll-ms 200)
    "$TLSR" keys status --json "${FLEET[@]}" >"$WORK/status.out" 2>"$WORK/status.log" ||
        fail "status"
    python3 - "$WORK/status.out" <<'PY' || fail "status: $(cat "$WORK/status.out")"
import json, sys
s = json.load(open(sys.argv[1]))
assert s["members"] == 2, s
states = [k["state"] for k in s["keys"]]
assert states[:2] == ["next", "current"], states
cur = s["keys"][1]
assert cur["issued"] >= 5, cur
assert s["keys"][0]["acks"] == 2, s["keys"][0]
assert all(len(k["name"]) == 8 for k in s["keys"])
PY
    # No key bytes in what status prints: the keys' full names are not in it.
    "$TLSR" keys export "${FLEET[@]}" --format raw --out "$KEYS/raw" 2>/dev/null || fail "export"
    name=$(od -An -tx1 -N16 "$KEYS/raw" | tr -d ' \n')
    ! grep -q "$name" "$WORK/status.out" || fail "status printed a whole key name"
    "$TLSR" keys rotate --wait "${FLEET[@]}" --timeout 30 2>"$WORK/rotate.log" || fail "rotate"
    grep -q "event=rotated" "$WORK/rotate.log" || fail "rotate: $(cat "$WORK/rotate.log")"
    "$TLSR" keys status "${FLEET[@]}" >"$WORK/status2.out" 2>/dev/null || fail "status"
    grep -q "decrypt-only" "$WORK/status2.out" || fail "no decrypt-only key after rotation"
    echo "status: 2 members, next key acknowledged by 2, current key issued $(python3 -c \
        'import json,sys; print(json.load(open(sys.argv[1]))["keys"][1]["issued"])' \
        "$WORK/status.out") tickets; rotate --wait promoted the next key"
    ;;
apache)
    command -v apache2 >/dev/null || fail "apache2 is not installed (scripts/deps.sh test)"
    fleet_serve s1
    "$TLSR" keys export "${FLEET[@]}" --format apache --out "$KEYS/apache.key" 2>/dev/null ||
        fail "export apache"
    head -c 48 /dev/urandom >"$KEYS/other.key"
    pa=$(free_port)
    pb=$(free_port)
    pc=$(free_port)
    pn=$(free_port)
    start_apache apa "$pa" "$KEYS/apache.key"
    start_apache apb "$pb" "$KEYS/apache.key"
    start_apache apc "$pc" "$KEYS/other.key"
    # Node on the same bytes: the same layout, and a MAC under the key's HMAC half.
    node "$SRC_DIR/tests/integration/lib/nodeserver.js" "$pn" "$WORK/cert.pem" "$WORK/key.pem" \
        "$KEYS/apache.key" >"$WORK/node.out" 2>&1 &
    PIDS+=("$!")
    wait_port "$pn"
    reused=0
    for v in 1_2 1_3; do
        for who in a b c n; do
            port=$(eval echo "\$p$who")
            session_from "$port" "$v" "$WORK/$who.$v.sess"
        done
        for who in a b; do
            [ "$(ticket_under "$WORK/$who.$v.sess" "$KEYS/apache.key")" = "name=yes opens=yes mac=no" ] ||
                fail "TLS $v Apache $who: $(ticket_under "$WORK/$who.$v.sess" "$KEYS/apache.key") (docs/KEYS.md's apache cells say name=yes opens=yes mac=no)"
        done
        [ "$(ticket_under "$WORK/c.$v.sess" "$KEYS/apache.key")" = "name=no opens=no mac=no" ] ||
            fail "control: TLS $v Apache on its own key: $(ticket_under "$WORK/c.$v.sess" "$KEYS/apache.key")"
        [ "$(ticket_under "$WORK/n.$v.sess" "$KEYS/apache.key")" = "name=yes opens=yes mac=yes" ] ||
            fail "TLS $v Node on the same key: $(ticket_under "$WORK/n.$v.sess" "$KEYS/apache.key")"
        # Whether Apache b resumes a's ticket depends on what mod_ssl's MAC key happens to be:
        # reported, not asserted.
        [ "$(cross "ab$v" "$pa" "$pb" "$v")" = Reused ] && reused=$((reused + 1))
    done
    echo "apache: TLS 1.2 and 1.3 tickets of two Apache servers are sealed under the exported key" \
        "(its name, its AES half); their MAC is not under its HMAC half, Node's is; a third" \
        "Apache on its own key is not; a ticket from a resumed on b in $reused of 2 versions"
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
