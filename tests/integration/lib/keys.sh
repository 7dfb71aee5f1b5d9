# The fleet and the servers that follow its keys, for test_keys.sh and test_mixed.sh (sourced
# after SCENARIO is read): a real Redis, tlsresume serve members, keys sync, nginx, Apache,
# HAProxy and a balancer on loopback; cross and pycross offer one server's session to another.
. "$(dirname "$0")/lib/common.sh"
. "$SRC_DIR/scripts/conf.sh"
TLSR="$BUILD_DIR/tlsresume"
for cmd in redis-server nginx haproxy node; do
    command -v "$cmd" >/dev/null || fail "$cmd is not installed (scripts/deps.sh test)"
done
NGINX_STREAM=/usr/lib/nginx/modules/ngx_stream_module.so
[ -f "$NGINX_STREAM" ] || fail "nginx has no stream module (apt-get install libnginx-mod-stream)"
# Ticket keys go to a memory-backed directory, as keys export and sync require.
KEYS=$(mktemp -d /dev/shm/tlsr-keys.XXXXXX)
trap 'cleanup; rm -rf "$KEYS"' EXIT
make_cert
start_backend echo

start_local_redis
# Short periods so that tests see rotations: a key a 10 s period, tickets valid 60 s.
FLEET=(--redis "redis://127.0.0.1:$REDIS_PORT" --fleet-key "$WORK/fleet.key" --ticket-rotate 10s
    --ticket-lifetime 60s --fleet-poll-ms 200 --fleet-ack-wait 20s)
# nginx's stream module sets its session ID context to SHA-1("STREAM" | SHA-1(certificate)).
NGINX_CTX=hex:$(python3 -c '
import hashlib, ssl, sys
der = ssl.PEM_cert_to_DER_cert(open(sys.argv[1]).read())
print(hashlib.sha1(b"STREAM" + hashlib.sha1(der).digest()).hexdigest())' "$WORK/cert.pem")
# The same TLS 1.3 suites everywhere: a PSK resumes only under a suite of the same hash.
SUITES=TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256

# fleet_serve NAME ARGS...: tlsresume serve in the fleet; sets PORT_<NAME> and ADMIN_<NAME>.
fleet_serve() {
    local name=$1 port admin
    shift
    port=$(free_port)
    admin=$(free_port)
    "$TLSR" serve --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" --workers 1 \
        --backend "127.0.0.1:$BACKEND_PORT" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
        --ciphersuites "$SUITES" --fleet-member "$name" "${FLEET[@]}" "$@" \
        >"$WORK/$name.out" 2>"$WORK/$name.log" &
    PIDS+=("$!")
    printf -v "PORT_$name" %s "$port"
    printf -v "ADMIN_$name" %s "$admin"
    wait_grep "$WORK/$name.log" "event=joined_fleet_ring" "$name never joined the fleet ring" "$!"
}

# start_node_stream NAME PORT [CONTEXT]: a Node server fed by keys sync --format node --stdout,
# the stream also kept in $WORK/NAME.b64; each process started apart (through FIFOs) so that
# every one is stopped by its PID. Waits for the first key.
start_node_stream() {
    local name=$1 port=$2
    mkfifo "$WORK/$name.sync.fifo" "$WORK/$name.node.fifo"
    "$TLSR" keys sync --fleet-member "$name" "${FLEET[@]}" --format node --stdout \
        >"$WORK/$name.sync.fifo" 2>"$WORK/sync_$name.log" &
    PIDS+=("$!")
    tee "$WORK/$name.b64" <"$WORK/$name.sync.fifo" >"$WORK/$name.node.fifo" &
    PIDS+=("$!")
    node "$SRC_DIR/tests/integration/lib/nodeserver.js" "$port" "$WORK/cert.pem" \
        "$WORK/key.pem" - ${3:+"$3"} <"$WORK/$name.node.fifo" >"$WORK/$name.out" 2>&1 &
    PIDS+=("$!")
    wait_until 10 has_line "$WORK/$name.out" '^keys' || true
    grep -q '^keys' "$WORK/$name.out" || fail "$name never got keys"
}

# start_sync NAME ARGS...: keys sync in the background, waiting until it has applied keys.
start_sync() {
    local name=$1
    shift
    "$TLSR" keys sync --fleet-member "$name" "${FLEET[@]}" "$@" >"$WORK/$name.out" \
        2>"$WORK/$name.log" &
    PIDS+=("$!")
    wait_grep "$WORK/$name.log" "event=\(keys_written\|haproxy_updated\)" \
        "$name never applied keys" "$!"
}

# nginx_conf NAME PORT KEYDIR SLOTS: an nginx stream server whose ticket keys are the slot
# files of KEYDIR; sets NGINX_DIR.
nginx_conf() {
    NGINX_DIR="$WORK/$1"
    local keys="" i
    for i in $(seq 0 $(($4 - 1))); do keys="$keys ssl_session_ticket_key $3/$i.key;"; done
    nginx_stream_conf "$NGINX_DIR" "$2" "$BACKEND_PORT" "$WORK/cert.pem" "$WORK/key.pem" 1 \
        "ssl_conf_command Ciphersuites $SUITES; $keys"
}

# start_nginx NAME PORT KEYDIR SLOTS: sets NGINX_PID_<NAME>.
start_nginx() {
    nginx_conf "$@"
    nginx -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -g 'daemon off;' >"$WORK/$1.log" 2>&1 &
    PIDS+=("$!")
    printf -v "NGINX_PID_$1" %s "$!"
    wait_port "$2"
}

# start_apache NAME PORT [KEYFILE]: Apache httpd with mod_ssl, tickets from KEYFILE (without
# one, a key mod_ssl makes at each start), no session cache (so only tickets resume). The same ServerName everywhere: mod_ssl derives its session
# ID context from it.
start_apache() {
    local d="$WORK/$1" m=/usr/lib/apache2/modules
    mkdir -p "$d/htdocs"
    cat >"$d/httpd.conf" <<CONF
LoadModule mpm_event_module $m/mod_mpm_event.so
LoadModule authz_core_module $m/mod_authz_core.so
LoadModule socache_shmcb_module $m/mod_socache_shmcb.so
LoadModule ssl_module $m/mod_ssl.so
ServerName localhost:443
Listen 127.0.0.1:$2
PidFile $d/httpd.pid
DefaultRuntimeDir $d
Mutex file:$d default
ErrorLog $d/error.log
LogLevel warn
User www-data
Group www-data
DocumentRoot $d/htdocs
SSLEngine on
SSLProtocol -all +TLSv1.2 +TLSv1.3
SSLCipherSuite TLSv1.3 $SUITES
SSLCertificateFile $WORK/cert.pem
SSLCertificateKeyFile $WORK/key.pem
SSLSessionCache none
SSLSessionTickets on
${3:+SSLSessionTicketKeyFile $3}
CONF
    apache2 -f "$d/httpd.conf" -DFOREGROUND >"$WORK/$1.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$2"
}

# start_haproxy NAME PORT KEYFILE: HAProxy terminating TLS with tls-ticket-keys KEYFILE and a
# runtime API socket at $WORK/NAME.sock.
start_haproxy() {
    haproxy_tls_conf "$WORK/$1.cfg" "$2" "$BACKEND_PORT" "$WORK/combined.pem" \
        "    stats socket $WORK/$1.sock mode 600 level admin
    ssl-default-bind-ciphersuites $SUITES" "tls-ticket-keys $3"
    haproxy -f "$WORK/$1.cfg" -db >"$WORK/$1.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$2"
}

# start_balancer PORT [NAME=]BACKEND_PORT...: HAProxy in TCP mode, round robin, no TLS; each
# connection is logged to $WORK/balancer.log with the server it went to (be/NAME_I, or be/s_I).
start_balancer() {
    local port=$1 i=0 servers="" b
    shift
    for b in "$@"; do
        case "$b" in
        *=*) servers="$servers    server ${b%%=*}_$i 127.0.0.1:${b#*=}
" ;;
        *) servers="$servers    server s_$i 127.0.0.1:$b
" ;;
        esac
        i=$((i + 1))
    done
    cat >"$WORK/balancer.cfg" <<CONF
global
    log stdout format raw local0 info
$(haproxy_defaults)
    log global
    option tcplog
frontend fe
    bind 127.0.0.1:$port
    default_backend be
backend be
    balance roundrobin
$servers
CONF
    haproxy -f "$WORK/balancer.cfg" -db >"$WORK/balancer.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$port"
}

# cross OUT FROM_PORT TO_PORT VERSION: a session from one server offered to the other; prints
# Reused or New.
cross() {
    local out=$1
    # Data first, and a moment: TLS 1.3 tickets come after the handshake.
    { printf 'ping\n'; sleep 0.3; } | timeout 20 openssl s_client -connect "127.0.0.1:$2" \
        "-tls$4" -sess_out "$WORK/$out.sess" >"$WORK/$out.1.out" 2>&1 || true
    grep -q '^New' "$WORK/$out.1.out" || fail "$out: no handshake with $2"
    timeout 20 openssl s_client -connect "127.0.0.1:$3" "-tls$4" -sess_in "$WORK/$out.sess" \
        </dev/null >"$WORK/$out.2.out" 2>&1 || true
    grep -oE '^(Reused|New)' "$WORK/$out.2.out" | head -n 1
}

# ticket_name PORT: the key name (hex, the first 16 bytes) of the TLS 1.2 ticket a server issues.
ticket_name() {
    echo ping | timeout 10 openssl s_client -connect "127.0.0.1:$1" -tls1_2 \
        -sess_out "$WORK/tn.pem" >/dev/null 2>&1 || true
    ticket_name_of "$WORK/tn.pem"
}

# ticket_name_of SESSION: the key name (hex) of the ticket in an s_client session file.
ticket_name_of() {
    openssl sess_id -in "$1" -noout -text 2>/dev/null |
        awk '/TLS session ticket:/ { getline; sub(/^ *0000 - /, ""); print substr($0, 1, 47) }' |
        tr -d ' -'
}

# session_from PORT VERSION FILE: a full handshake with a request, its session in FILE.
session_from() {
    { printf 'GET / HTTP/1.0\r\n\r\n'; sleep 0.4; } | timeout 20 openssl s_client \
        -connect "127.0.0.1:$1" -servername localhost "-tls$2" -sess_out "$3" >"$3.out" 2>&1 ||
        true
    [ -s "$3" ] || fail "the server on $1 gave no TLS $2 session"
}

# ticket_under SESSION KEYFILE48: what the 48-byte key says of the session's ticket
# ("name=yes|no opens=yes|no mac=yes|no", lib/ticket.py).
ticket_under() {
    python3 "$SRC_DIR/tests/integration/lib/ticket.py" "$1" "$2" || fail "ticket.py $1"
}

# streamed_name: the key name of the last key `keys sync --stdout` gave Node (hex).
streamed_name() {
    tail -n 1 "$WORK/node.b64" | base64 -d | head -c 16 | od -An -tx1 | tr -d ' \n'
}

# pycross FROM_PORT TO_PORT VERSION: as cross, with Python's ssl, which exchanges data first
# (Node sends its TLS 1.3 tickets only then).
pycross() {
    python3 - "$@" <<'PY'
import socket, ssl, sys
a, b, v = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ver = ssl.TLSVersion.TLSv1_2 if v == "1_2" else ssl.TLSVersion.TLSv1_3
ctx.minimum_version = ctx.maximum_version = ver
def once(port, session=None):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(b"ping\n")
            s.recv(64)
            return s.session, s.session_reused
sess, _ = once(a)
_, reused = once(b, sess)
print("Reused" if reused else "New")
PY
}

# rotations N EVERY_S: asks the fleet to rotate N times.
rotations() {
    local i
    for i in $(seq 1 "$1"); do
        sleep "$2"
        "$TLSR" keys rotate "${FLEET[@]}" 2>>"$WORK/rotate.log" || fail "keys rotate"
    done
}

generation() {
    "$TLSR" keys status --json "${FLEET[@]}" 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["generation"])'
}

# fleet_load OUT BALANCER_PORT OLD_AFTER: fleet_client through the balancer for 16 s while the
# fleet rotates 4 times; asserts every resumption resumed.
fleet_load() {
    local g0 g1 want=all
    [ "${4:-}" = control ] && want=loss
    g0=$(generation)
    rotations 4 3 &
    local rot=$!
    PIDS+=("$rot")
    python3 "$SRC_DIR/tests/integration/lib/fleet_client.py" --connect "127.0.0.1:$2" \
        --duration 16 --pause 0.05 --kinds tls12_ticket,tls13 --old-after "$3" \
        >"$WORK/$1.out" 2>"$WORK/$1.log" || fail "fleet client"
    wait "$rot" || fail "rotations"
    g1=$(generation)
    [ "$g1" -ge $((g0 + 3)) ] || fail "only $((g1 - g0)) rotations (generation $g0 -> $g1)"
    python3 - "$WORK/$1.out" "$1" "$((g1 - g0))" "$want" <<'PY' || fail "$1: not what $want expects"
import json, sys
r = json.load(open(sys.argv[1]))["kinds"]
if sys.argv[4] == "loss":
    for kind, s in r.items():
        print("%s %s: %d/%d resumed" % (sys.argv[2], kind, s["resumed"], s["attempts"]))
    # Without keys sync, tickets that cross servers do not resume.
    sys.exit(0 if all(s["resumed"] < 0.8 * s["attempts"] for s in r.values()) else 1)
bad = False
for kind, s in r.items():
    print("%s %s: %d/%d resumed, old %d/%d, %d failed connections, %s rotations" % (
        sys.argv[2], kind, s["resumed"], s["attempts"], s["old_resumed"], s["old_attempts"],
        s["failed"], sys.argv[3]))
    bad |= s["attempts"] < 30 or s["resumed"] != s["attempts"] or s["failed"] > 0
    bad |= s["old_attempts"] < 10 or s["old_resumed"] != s["old_attempts"]
sys.exit(1 if bad else 0)
PY
}

