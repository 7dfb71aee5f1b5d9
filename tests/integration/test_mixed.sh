#!/usr/bin/env bash
# A mixed fleet on one key ring: two `tlsresume serve`, nginx, Apache, Node, h2o, nghttpx and two
# Go servers, each fed by `keys sync` in its own format, all on loopback beside a real Redis.
# usage: test_mixed.sh SCENARIO
#   matrix          every server's TLS 1.2 and 1.3 session offered to every other, before and
#                   after a rotation, checked against the table in docs/KEYS.md (every "yes"
#                   must resume, every "no" must not), then the same through HAProxy round-robin
#   apache_graceful Apache reloaded gracefully (as a daily log rotation does) while keys sync
#                   keeps its key file: the file is not rewritten and Apache seals TLS 1.2 and
#                   1.3 tickets under the same key before and after; the control, Apache on a
#                   key of its own start, has another key after the reload
#   envoy_k8s       the keys of an Envoy SDS file and a Kubernetes Secret, decoded as Envoy
#                   reads them (name | HMAC | AES), given to nginx as 80-byte key files: nginx
#                   resumes serve's TLS 1.2 and 1.3 tickets; the control, the same bytes read
#                   in another order, does not
scenario=${1:?scenario}
. "$(dirname "$0")/lib/keys.sh"
for cmd in apache2 h2o nghttpx go; do
    command -v "$cmd" >/dev/null || fail "$cmd is not installed (scripts/deps.sh test)"
done
# Keys rotate only when asked (keys rotate --wait): h2o reads its file up to 10 s late.
FLEET=(--redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key" --ticket-rotate 1h
    --ticket-lifetime 2h --fleet-poll-ms 200 --fleet-ack-wait 20s)
# One cipher per version on the client side: a session resumes only under a cipher (TLS 1.2) or
# a hash (TLS 1.3) both servers choose.
CIPHER12=ECDHE-ECDSA-AES128-GCM-SHA256
SUITE13=TLS_AES_128_GCM_SHA256
# mod_ssl's session ID context for ServerName localhost:443 (Node is given the same).
APACHE_CTX=$(printf 'localhost:443' | md5sum | cut -c1-32)
SERVE_ARGS=(--session-context nginx-stream --accept-session-context apache:localhost:443
    --accept-session-context nghttpx --accept-session-context none)

# offer OUT FROM_PORT TO_PORT VERSION: a session from one server offered to another; prints
# Reused or New. A request first, and a moment: TLS 1.3 tickets come after the handshake (Node's
# after the first data); then stdin's end closes the connection, as echo servers never do.
offer() {
    local out=$1 v=$4 pin
    pin=(-cipher "$CIPHER12")
    [ "$v" = 1_3 ] && pin=(-ciphersuites "$SUITE13")
    { printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.4; } | timeout 20 openssl s_client -connect \
        "127.0.0.1:$2" -servername localhost "-tls$v" "${pin[@]}" \
        -sess_out "$WORK/$out.sess" >"$WORK/$out.1.out" 2>&1 || true
    grep -q '^New' "$WORK/$out.1.out" || fail "$out: no handshake with $2"
    [ -s "$WORK/$out.sess" ] || fail "$out: the server on $2 gave no session"
    { printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.2; } | timeout 20 openssl s_client -connect \
        "127.0.0.1:$3" -servername localhost "-tls$v" "${pin[@]}" \
        -sess_in "$WORK/$out.sess" >"$WORK/$out.2.out" 2>&1 || true
    grep -oE '^(Reused|New)' "$WORK/$out.2.out" | head -n 1
}

# The fleet's servers; PORTS[kind] and the order of the table's rows and columns.
declare -A PORTS
KINDS=(serve nginx apache node h2o nghttpx go)

start_h2o() {
    local d="$WORK/h2o"
    mkdir -p "$d/htdocs"
    echo "hello from h2o" >"$d/htdocs/index.html"
    cat >"$d/h2o.conf" <<CONF
listen:
  host: 127.0.0.1
  port: $1
  ssl:
    certificate-file: $WORK/cert.pem
    key-file: $WORK/key.pem
    minimum-version: TLSv1.2
ssl-session-resumption:
  mode: ticket
  ticket-store: file
  ticket-file: $2
hosts:
  default:
    paths:
      /:
        file.dir: $d/htdocs
error-log: $d/error.log
user: $(id -un)
CONF
    h2o -c "$d/h2o.conf" >"$WORK/h2o.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$1"
}

start_nghttpx() {
    local d="$WORK/nghttpx" files=() i
    mkdir -p "$d"
    for i in 0 1 2; do files+=("--tls-ticket-key-file=$2/$i.key"); done
    nghttpx "-f127.0.0.1,$1" "-b127.0.0.1,$BACKEND_PORT" "$WORK/key.pem" "$WORK/cert.pem" \
        "${files[@]}" --tls-ticket-key-cipher=aes-256-cbc --no-ocsp --workers=1 --conf=/dev/null \
        --pid-file="$d/nghttpx.pid" --errorlog-file="$d/error.log" >"$WORK/nghttpx.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$1"
}

# start_synced_apache PORT: Apache on the exported key, kept by keys sync (sync_ap), which
# reloads it gracefully at each change.
start_synced_apache() {
    "$TLSR" keys export "${FLEET[@]}" --format apache --out "$KEYS/apache.key" 2>/dev/null ||
        fail "export apache"
    start_apache apache "$1" "$KEYS/apache.key"
    start_sync sync_ap --format apache --out "$KEYS/apache.key" \
        --reload "apache2 -f $WORK/apache/httpd.conf -k graceful && sleep 1"
}

# start_go NAME PORT KEYFILE: the Go server the test builds (lib/goserver).
build_go() {
    GOCACHE="$WORK/gocache" GOPATH="$WORK/gopath" GO111MODULE=off GOFLAGS= \
        go build -o "$WORK/goserver" "$SRC_DIR/tests/integration/lib/goserver/main.go" \
        >"$WORK/go_build.log" 2>&1 || fail "go build: $(tail -3 "$WORK/go_build.log")"
}

start_go() {
    "$WORK/goserver" "$2" "$WORK/cert.pem" "$WORK/key.pem" "$3" >"$WORK/$1.out" 2>"$WORK/$1.log" &
    PIDS+=("$!")
    wait_port "$2"
}

# start_fleet: every server, each on the fleet's keys (exported first, then kept by keys sync).
start_fleet() {
    build_go
    fleet_serve sa "${SERVE_ARGS[@]}"
    fleet_serve sb "${SERVE_ARGS[@]}"
    PORTS[serve]=$PORT_sa
    PORTS[serve2]=$PORT_sb
    local p
    # nginx: three slot files, 80-byte keys, its own session ID context (which serve issues in).
    mkdir -p "$KEYS/ng" "$KEYS/nh"
    p=$(free_port)
    nginx_conf ng "$p" "$KEYS/ng" 3
    local ng_dir=$NGINX_DIR
    start_sync sync_ng --format nginx80 --out "$KEYS/ng" \
        --reload "[ ! -f $ng_dir/nginx.pid ] || nginx -s reload -p $ng_dir -c $ng_dir/nginx.conf"
    start_nginx ng "$p" "$KEYS/ng" 3
    PORTS[nginx]=$p
    # Apache: one 48-byte key (the ring key's variant), reloaded gracefully at each change.
    p=$(free_port)
    start_synced_apache "$p"
    PORTS[apache]=$p
    # Node: the 48-byte key streamed; Apache's session ID context, so the two resume each other.
    p=$(free_port)
    start_node_stream node "$p" "$APACHE_CTX"
    PORTS[node]=$p
    # h2o: its YAML ticket file, read again within 10 s of a change.
    p=$(free_port)
    start_sync sync_h2o --format h2o --out "$KEYS/h2o.yaml"
    start_h2o "$p" "$KEYS/h2o.yaml"
    PORTS[h2o]=$p
    # nghttpx: three slot files of 80-byte keys, in its order; SIGHUP reloads them.
    p=$(free_port)
    start_sync sync_nh --format nghttpx --out "$KEYS/nh" \
        --reload "[ ! -f $WORK/nghttpx/nghttpx.pid ] || kill -HUP \$(cat $WORK/nghttpx/nghttpx.pid)"
    start_nghttpx "$p" "$KEYS/nh"
    PORTS[nghttpx]=$p
    # Go: 32-byte keys derived from the ring's, the encrypting one first; two servers.
    start_sync sync_go --format go --out "$KEYS/go.keys"
    p=$(free_port)
    start_go go1 "$p" "$KEYS/go.keys"
    PORTS[go]=$p
    p=$(free_port)
    start_go go2 "$p" "$KEYS/go.keys"
    PORTS[go2]=$p
}

# The table of docs/KEYS.md as "from to yes|no" lines.
table() {
    python3 - "$SRC_DIR/docs/KEYS.md" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"<!-- cross-table -->\n(.*?)\n<!-- /cross-table -->", text, re.S)
if not m:
    sys.exit("docs/KEYS.md has no cross-table")
rows = [r for r in m.group(1).splitlines() if r.startswith("|")]
head = [c.strip().strip("*`").lower() for c in rows[0].strip("|").split("|")][1:]
for r in rows[2:]:
    cells = [c.strip() for c in r.strip("|").split("|")]
    src = cells[0].strip("*`").lower()
    for dst, cell in zip(head, cells[1:]):
        word = cell.split()[0].strip("*:,.").lower()
        if word not in ("yes", "no", "varies"):
            sys.exit("docs/KEYS.md cross-table: cell %s -> %s is %r" % (src, dst, cell))
        print(src, dst, word)
PY
}

# matrix LABEL: every pair of the table, both versions; the second instance of serve and Go
# stands in for "the same kind" (another server of that kind in the fleet).
matrix() {
    local label=$1 src dst want got to v bad=0 n=0
    while read -r src dst want; do
        to=${PORTS[$dst]}
        [ "$src" = "$dst" ] && [ -n "${PORTS[${dst}2]:-}" ] && to=${PORTS[${dst}2]}
        for v in 1_2 1_3; do
            got=$(offer "$label.$src.$dst.$v" "${PORTS[$src]}" "$to" "$v")
            n=$((n + 1))
            [ "$want" = varies ] && echo "$label TLS $v: $src -> $dst (varies): ${got:-nothing}"
            if { [ "$want" = yes ] && [ "$got" != Reused ]; } ||
                { [ "$want" = no ] && [ "$got" != New ]; }; then
                echo "MISMATCH $label TLS $v: $src -> $dst: the table says $want, got ${got:-nothing}"
                bad=$((bad + 1))
            fi
        done
    done < <(table)
    echo "$label: $n offers, $bad against the table"
    [ "$bad" -eq 0 ] || fail "$label: $bad offers differ from docs/KEYS.md's table"
}

# The balancer: HAProxy round robin over the fleet, an odd number of servers so that pairs of
# connections (a full handshake, then its session offered) land on every adjacent pair in turn;
# each connection's server is read from HAProxy's log, never assumed.
BALANCED=(serve nginx serve2 node serve h2o serve2 nghttpx serve apache go)
start_fleet_balancer() {
    local name targets=()
    for name in "${BALANCED[@]}"; do targets+=("$name=${PORTS[$name]}"); done
    BALANCER=$(free_port)
    start_balancer "$BALANCER" "${targets[@]}"
}

lb_logged() {
    grep -c " be/" "$WORK/balancer.log" || true
}

# lb_server N: the kind of server the N-th logged connection went to (waits for its line).
lb_server() {
    local i
    for i in $(seq 1 100); do
        [ "$(lb_logged)" -ge "$1" ] && break
        sleep 0.1
    done
    [ "$(lb_logged)" -ge "$1" ] || fail "the balancer logged no connection $1"
    grep " be/" "$WORK/balancer.log" | sed -n "${1}p" | sed -E 's|.* be/([a-z0-9]+)_[0-9]+ .*|\1|;s/2$//'
}

# balanced LABEL: as many pairs of connections per version through the balancer as it has
# servers; each pair's result checked against the table for the two servers it reached.
declare -A PAIRS
balanced() {
    local label=$1 v k got from to want bad=0 n=0 logged
    declare -A cell
    while read -r from to want; do cell[$from.$to]=$want; done < <(table)
    for v in 1_2 1_3; do
        for k in $(seq 1 ${#BALANCED[@]}); do
            logged=$(lb_logged)
            got=$(offer "$label.lb.$v.$k" "$BALANCER" "$BALANCER" "$v")
            from=$(lb_server $((logged + 1)))
            to=$(lb_server $((logged + 2)))
            want=${cell[$from.$to]:-}
            [ -n "$want" ] || fail "$label: the balancer reached '$from' and '$to'"
            n=$((n + 1))
            if { [ "$want" = yes ] && [ "$got" != Reused ]; } ||
                { [ "$want" = no ] && [ "$got" != New ]; }; then
                echo "MISMATCH $label balanced TLS $v: $from -> $to: the table says $want, got ${got:-nothing}"
                bad=$((bad + 1))
            fi
            PAIRS["$from.$to.$v"]=1
        done
    done
    echo "$label: $n pairs through the balancer, $bad against the table"
    [ "$bad" -eq 0 ] || fail "$label: $bad balanced pairs differ from docs/KEYS.md's table"
}

# resumed PORT VERSION SESSION_FILE: Reused or New.
resumed() {
    { printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.2; } | timeout 20 openssl s_client \
        -connect "127.0.0.1:$1" -servername localhost "-tls$2" -ign_eof -sess_in "$3" 2>&1 |
        grep -oE '^(Reused|New)' | head -n 1
}

case "$scenario" in
matrix)
    start_fleet
    start_fleet_balancer
    matrix before
    balanced before
    g0=$(generation)
    "$TLSR" keys rotate --wait "${FLEET[@]}" --timeout 60 2>"$WORK/rotate.log" || fail "rotate: $(tail -3 "$WORK/rotate.log")"
    [ "$(generation)" -gt "$g0" ] || fail "no rotation"
    sleep 11 # h2o reads its ticket file again within 10 s
    matrix after
    balanced after
    # Every server on 80-byte keys encrypts with the fleet's current key after the rotation,
    # never with the next one it was given ahead (h2o's in 2100, nghttpx's and nginx's second).
    cur=$(curl -s "http://127.0.0.1:$ADMIN_sa/metrics" |
        sed -n 's/.*key="\([0-9a-f]*\)",state="current".*/\1/p' | head -n 1)
    [ -n "$cur" ] || fail "serve reports no current key"
    for kind in serve nginx h2o nghttpx; do
        ticket=$(sed -n '/TLS session ticket:/{n;p}' "$WORK/after.$kind.$kind.1_2.1.out" |
            head -n 1 | awk '{print $3 $4 $5 $6}')
        [ "$ticket" = "$cur" ] || fail "$kind's ticket names key '$ticket'; the fleet encrypts with '$cur'"
    done
    # The balancer reached every adjacent pair of its order, in both versions.
    [ "${#PAIRS[@]}" -ge $((2 * ${#BALANCED[@]} - 4)) ] ||
        fail "the balancer reached only ${#PAIRS[@]} kinds of pairs: ${!PAIRS[*]}"
    ;;
apache_graceful)
    # Apache on the fleet's key, kept by keys sync, reloaded as log rotation reloads it.
    fleet_serve sa
    p=$(free_port)
    start_synced_apache "$p"
    # The control: Apache without a key file (mod_ssl makes a key at each start).
    pc=$(free_port)
    start_apache own "$pc"
    sum0=$(sha256sum <"$KEYS/apache.key")
    for v in 1_2 1_3; do
        session_from "$p" "$v" "$WORK/apache.$v.sess"
        session_from "$pc" "$v" "$WORK/own.$v.sess"
    done
    apache2 -f "$WORK/apache/httpd.conf" -k graceful || fail "graceful"
    apache2 -f "$WORK/own/httpd.conf" -k graceful || fail "graceful (control)"
    sleep 2
    wait_port "$p"
    wait_port "$pc"
    [ "$(sha256sum <"$KEYS/apache.key")" = "$sum0" ] || fail "the reload rewrote the key file"
    [ "$(grep -c "event=keys_written" "$WORK/sync_ap.log")" -eq 1 ] ||
        fail "keys sync wrote keys $(grep -c event=keys_written "$WORK/sync_ap.log") times"
    reused=0
    for v in 1_2 1_3; do
        session_from "$p" "$v" "$WORK/apache2.$v.sess"
        session_from "$pc" "$v" "$WORK/own2.$v.sess"
        # Before and after the reload Apache seals under the synced key (its name, its AES).
        for f in apache apache2; do
            ticket_under "$WORK/$f.$v.sess" "$KEYS/apache.key" | grep -q '^name=yes opens=yes ' ||
                fail "TLS $v $f: $(ticket_under "$WORK/$f.$v.sess" "$KEYS/apache.key")"
        done
        # The control: mod_ssl's own key is another after the reload.
        [ "$(ticket_name_of "$WORK/own.$v.sess")" != "$(ticket_name_of "$WORK/own2.$v.sess")" ] ||
            fail "control: TLS $v Apache kept its own key across a reload"
        # Whether the old ticket resumes depends on mod_ssl's MAC key (docs/KEYS.md): reported.
        [ "$(resumed "$p" "$v" "$WORK/apache.$v.sess")" = Reused ] && reused=$((reused + 1))
    done
    echo "apache_graceful: after apachectl graceful, Apache seals TLS 1.2 and 1.3 tickets under" \
        "the same synced key (file unchanged, written once); on mod_ssl's own key it changes;" \
        "old tickets resumed in $reused of 2 versions"
    ;;
envoy_k8s)
    fleet_serve sa --session-context nginx-stream
    "$TLSR" keys export "${FLEET[@]}" --format envoy --resource-name edge-keys \
        --out "$KEYS/sds.yaml" 2>"$WORK/export.log" || fail "export envoy: $(cat "$WORK/export.log")"
    "$TLSR" keys export "${FLEET[@]}" --format k8s-secret --out "$KEYS/secret.yaml" \
        2>"$WORK/export.log" || fail "export k8s-secret: $(cat "$WORK/export.log")"
    grep -q '^  name: edge-keys$' "$KEYS/sds.yaml" || fail "the SDS file is not named edge-keys"
    # Envoy's first key and the Secret's tls.sessionticket.key: the same 80 bytes.
    first=$(grep -m1 'inline_bytes:' "$KEYS/sds.yaml" | awk '{print $3}')
    secret=$(awk '$1 == "tls.sessionticket.key:" {print $2}' "$KEYS/secret.yaml")
    { [ -n "$first" ] && [ "$first" = "$secret" ]; } ||
        fail "the SDS file's first key is not the Secret's"
    [ "$(printf %s "$first" | base64 -d | wc -c)" -eq 80 ] || fail "a key is not 80 bytes"
    mkdir -p "$KEYS/ok" "$KEYS/bad"
    printf %s "$first" | base64 -d >"$KEYS/ok/0.key"
    # The control: the same bytes read as name | AES | HMAC.
    { head -c 16 "$KEYS/ok/0.key"; tail -c 32 "$KEYS/ok/0.key"; head -c 48 "$KEYS/ok/0.key" |
        tail -c 32; } >"$KEYS/bad/0.key"
    po=$(free_port)
    pb=$(free_port)
    start_nginx ok "$po" "$KEYS/ok" 1
    start_nginx bad "$pb" "$KEYS/bad" 1
    for v in 1_2 1_3; do
        [ "$(offer "ok.$v" "$PORT_sa" "$po" "$v")" = Reused ] ||
            fail "TLS $v: nginx on the SDS file's key did not resume serve's ticket"
        [ "$(offer "bad.$v" "$PORT_sa" "$pb" "$v")" = New ] ||
            fail "control: TLS $v resumed on the key read in another order"
    done
    echo "envoy_k8s: the SDS file's and the Secret's first key, as Envoy lays them out, resume" \
        "serve's TLS 1.2 and 1.3 tickets on nginx; read in another order they do not"
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
