# Shared helpers of the integration tests. Each test gets its own temp dir, starts only its
# own processes, stops them by PID, and dumps their logs when it fails.
set -euo pipefail

BUILD_DIR=${TLSR_BUILD_DIR:?TLSR_BUILD_DIR must name the build directory}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlsr-it.XXXXXX")
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# skip WHY: the test cannot run here (exit 77, counted as skipped). Where the environment is
# meant to run everything (CI sets TLSR_NO_SKIP=1: root, network namespaces, IPv6, a release
# build), a skip is a failure.
skip() {
    if [ "${TLSR_NO_SKIP:-0}" = 1 ]; then
        fail "cannot run here, and TLSR_NO_SKIP=1 forbids skipping: $*"
    fi
    echo "SKIP: $*" >&2
    exit 77
}

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$WORK"/*.log "$WORK"/*.out; do
        [ -f "$f" ] || continue
        echo "---- $f" >&2
        tail -n 40 "$f" >&2
    done
    exit 1
}

. "$(dirname "${BASH_SOURCE[0]}")/../../../scripts/ports.sh"

# wait_until SECONDS COMMAND [ARGS...]: runs COMMAND every 0.1 s until it succeeds (returns 0)
# or SECONDS have passed (returns 1): the tests' one poll loop. Conditions are commands:
# has_line, count_ge, metric_is, metric_ge, test, or a function of the test's own.
wait_until() {
    local tries=$(($1 * 10)) i
    shift
    for ((i = 0; i < tries; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    return 1
}

# has_line FILE PATTERN: FILE exists and a line of it matches PATTERN.
has_line() {
    grep -q -- "$2" "$1" 2>/dev/null
}

# count_ge FILE PATTERN N: at least N lines of FILE match PATTERN.
count_ge() {
    [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ]
}

# wait_port PORT: waits (bounded) until something accepts on 127.0.0.1:PORT.
wait_port() {
    port_listening "$1" || fail "nothing listens on $1"
}

make_cert() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=localhost -addext subjectAltName=DNS:localhost \
        -keyout "$WORK/key.pem" -out "$WORK/cert.pem" >/dev/null 2>&1 || fail "openssl req"
}

# mk_cert NAME CN SAN [CA]: $WORK/NAME.pem and NAME.key, a P-256 certificate for CN with the
# subjectAltName SAN, signed by $WORK/CA.pem; without CA, a self-signed CA certificate.
mk_cert() {
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$2" \
        -keyout "$WORK/$1.key" -out "$WORK/$1.csr" 2>/dev/null || fail "req $1"
    if [ -z "${4:-}" ]; then
        openssl x509 -req -days 2 -in "$WORK/$1.csr" -signkey "$WORK/$1.key" \
            -extfile <(printf 'basicConstraints=critical,CA:TRUE\nkeyUsage=keyCertSign,cRLSign\n') \
            -out "$WORK/$1.pem" 2>/dev/null || fail "x509 $1"
    else
        openssl x509 -req -days 2 -in "$WORK/$1.csr" -CA "$WORK/$4.pem" -CAkey "$WORK/$4.key" \
            -CAcreateserial -extfile <(printf 'subjectAltName=%s\n' "$3") \
            -out "$WORK/$1.pem" 2>/dev/null || fail "x509 $1"
    fi
}

# start_tserver ARGS...: starts the test server on two fresh ports (PORT_A, PORT_B).
start_tserver() {
    PORT_A=$(free_port)
    PORT_B=$(free_port)
    : >"$WORK/tserver.out" # not left to the child's redirection (see start_serve)
    "$BUILD_DIR/tserver" --cert "$WORK/cert.pem" --key "$WORK/key.pem" \
        --port-a "$PORT_A" --port-b "$PORT_B" "$@" >"$WORK/tserver.out" 2>"$WORK/tserver.log" &
    TSERVER_PID=$!
    PIDS+=("$TSERVER_PID")
    local i
    for i in $(seq 1 100); do
        grep -q '^ready' "$WORK/tserver.out" 2>/dev/null && return 0
        kill -0 "$TSERVER_PID" 2>/dev/null || fail "tserver exited at start"
        sleep 0.1
    done
    fail "tserver did not become ready"
}

# stop_tserver: SIGTERM, wait, then the counters are in $WORK/tserver.out.
stop_tserver() {
    kill -TERM "$TSERVER_PID"
    wait "$TSERVER_PID" || fail "tserver exited with an error"
}

# tstat NAME: a counter the server printed when it stopped.
tstat() {
    sed -n "s/^$1=//p" "$WORK/tserver.out"
}

# wait_grep FILE PATTERN WHAT [PID]: waits (bounded, 15 s) until FILE shows PATTERN (a basic
# regular expression); fails saying WHAT when it never does, or when PID exits first.
wait_grep() {
    local i
    for i in $(seq 1 150); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        [ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || fail "$3 (the process exited)"
        sleep 0.1
    done
    fail "$3"
}

# wait_log PATTERN: waits (bounded) until the server log shows PATTERN.
wait_log() {
    wait_grep "$WORK/tserver.log" "$1" "server log never showed: $1"
}

# client PORT OUT ARGS...: one s_client connection; keeps its output in $WORK/OUT.out.
# Stdin stays open until the server's line arrives, so TLS 1.3 tickets are read first.
client() {
    local port=$1 out=$2
    shift 2
    (
        for _ in $(seq 1 50); do
            grep -q 'resumed=' "$WORK/$out.out" 2>/dev/null && break
            sleep 0.1
        done
    ) | timeout 20 openssl s_client -connect "127.0.0.1:$port" -servername localhost "$@" \
        >"$WORK/$out.out" 2>&1 || true
    grep -q 'resumed=' "$WORK/$out.out" || fail "client $out got no answer"
}

# field OUT EXPR: a value of the JSON in $WORK/OUT.out, by a Python expression on `r`.
field() {
    python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print($2)" "$WORK/$1.out"
}

expect_field() {
    local got
    got=$(field "$1" "$2")
    [ "$got" = "$3" ] || fail "$1: $2 = '$got', expected '$3'"
}

expect() {
    local file=$1 pattern=$2
    grep -q -- "$pattern" "$WORK/$file.out" || fail "$file: expected '$pattern'"
}

# start_local_redis: a Redis of the test's own on 127.0.0.1:REDIS_PORT (no persistence), and a
# fleet key in $WORK/fleet.key.
start_local_redis() {
    command -v redis-server >/dev/null || fail "redis-server is not installed (scripts/deps.sh test)"
    REDIS_PORT=$(free_port)
    redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --dir "$WORK" --appendonly no \
        >"$WORK/redis.log" 2>&1 &
    PIDS+=("$!")
    wait_port "$REDIS_PORT"
    fleet_key
}

# fleet_key: makes $WORK/fleet.key unless there is one.
fleet_key() {
    [ -f "$WORK/fleet.key" ] ||
        "$BUILD_DIR/tlsresume" keys init --out "$WORK/fleet.key" 2>/dev/null || fail "keys init"
}

# start_sentinel_redis [HOST [PREFIX...]]: a Redis master, a replica and three sentinels
# monitoring them as "fleet" (down after 1 s), all of the test's own, on HOST (default
# 127.0.0.1; every command run through PREFIX, e.g. `ip netns exec NS`). Sets MASTER_PORT,
# MASTER_PID, REPLICA_PORT, SENTINELS (HOST:PORT each) and SENTINEL_URL (sentinel://.../fleet);
# makes $WORK/fleet.key unless there is one.
start_sentinel_redis() {
    command -v redis-sentinel >/dev/null || fail "redis-sentinel is not installed (scripts/deps.sh test)"
    SENTINEL_HOST=${1:-127.0.0.1}
    shift || true
    SENTINEL_PREFIX=("$@")
    MASTER_PORT=$(free_port)
    REPLICA_PORT=$(free_port)
    # Not protected mode: the test's own addresses (loopback, or a namespace of the test's).
    "$@" redis-server --port "$MASTER_PORT" --bind "$SENTINEL_HOST" --save '' --dir "$WORK" \
        --appendonly no --protected-mode no >"$WORK/master.log" 2>&1 &
    MASTER_PID=$!
    PIDS+=("$MASTER_PID")
    "$@" redis-server --port "$REPLICA_PORT" --bind "$SENTINEL_HOST" --save '' --dir "$WORK" \
        --appendonly no --protected-mode no --replicaof "$SENTINEL_HOST" "$MASTER_PORT" >"$WORK/replica.log" 2>&1 &
    PIDS+=("$!")
    local n sp ports=()
    # The replica linked to its master before the sentinels start: they learn of replicas
    # from the master, and only every 10 s after their first look.
    for n in $(seq 1 101); do
        "$@" redis-cli -h "$SENTINEL_HOST" -p "$REPLICA_PORT" INFO replication 2>/dev/null |
            grep -q '^master_link_status:up' && break
        [ "$n" = 101 ] && fail "the replica on $SENTINEL_HOST:$REPLICA_PORT never linked to its master"
        sleep 0.1
    done
    SENTINELS=()
    for n in 1 2 3; do
        sp=$(free_port)
        printf 'port %s\nbind %s\nprotected-mode no\ndir %s\nsentinel monitor fleet %s %s 2\n' \
            "$sp" "$SENTINEL_HOST" "$WORK" "$SENTINEL_HOST" "$MASTER_PORT" >"$WORK/sentinel$n.conf"
        printf 'sentinel down-after-milliseconds fleet 1000\nsentinel failover-timeout fleet 5000\n' \
            >>"$WORK/sentinel$n.conf"
        "$@" redis-sentinel "$WORK/sentinel$n.conf" >"$WORK/sentinel$n.log" 2>&1 &
        PIDS+=("$!")
        SENTINELS+=("$SENTINEL_HOST:$sp")
        ports+=("$sp")
    done
    for sp in "${ports[@]}"; do
        for n in $(seq 1 101); do
            "$@" redis-cli -h "$SENTINEL_HOST" -p "$sp" PING 2>/dev/null | grep -q PONG && break
            [ "$n" = 101 ] && fail "nothing answers on $SENTINEL_HOST:$sp (sentinel setup)"
            sleep 0.1
        done
    done
    SENTINEL_URL="sentinel://$(IFS=,; echo "${SENTINELS[*]}")/fleet"
    fleet_key
}

# start_cluster_redis [HOST [PREFIX...]]: a Redis Cluster of the test's own on HOST (default
# 127.0.0.1; every command run through PREFIX, e.g. `ip netns exec NS`): 3 masters and a replica
# each, made with redis-cli --cluster create (node timeout 1 s). Sets CLUSTER_PORTS and
# CLUSTER_PIDS (masters first, then replicas, as created) and CLUSTER_URL (redis-cluster://,
# two seeds); makes $WORK/fleet.key unless there is one. With CLUSTER_TLS set to a directory
# holding ca.pem, redis.pem and redis.key (mk_cert), the nodes speak TLS only (clients, the
# cluster bus and replication), CLUSTER_URL is rediss-cluster://, and REDIS_CLI_TLS holds the
# options redis-cli needs to reach them.
start_cluster_redis() {
    command -v redis-server >/dev/null || fail "redis-server is not installed (scripts/deps.sh test)"
    local host=${1:-127.0.0.1}
    shift || true
    CLUSTER_PORTS=()
    CLUSTER_PIDS=()
    REDIS_CLI_TLS=()
    local n p k ok listen=(--port) scheme=redis-cluster
    if [ -n "${CLUSTER_TLS:-}" ]; then
        listen=(--port 0 --tls-cluster yes --tls-replication yes --tls-auth-clients optional
            --tls-cert-file "$CLUSTER_TLS/redis.pem" --tls-key-file "$CLUSTER_TLS/redis.key"
            --tls-ca-cert-file "$CLUSTER_TLS/ca.pem" --tls-port)
        REDIS_CLI_TLS=(--tls --cacert "$CLUSTER_TLS/ca.pem")
        scheme=rediss-cluster
    fi
    for n in 1 2 3 4 5 6; do
        p=$(free_port 10000) # a node also listens on its port + 10000 (the cluster bus)
        mkdir -p "$WORK/cluster$n"
        "$@" redis-server "${listen[@]}" "$p" --bind "$host" --save '' --appendonly no \
            --protected-mode no --dir "$WORK/cluster$n" --cluster-enabled yes \
            --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
            >"$WORK/cluster$n.log" 2>&1 &
        PIDS+=("$!")
        CLUSTER_PIDS+=("$!")
        CLUSTER_PORTS+=("$p")
    done
    for p in "${CLUSTER_PORTS[@]}"; do
        for k in $(seq 1 101); do
            "$@" redis-cli "${REDIS_CLI_TLS[@]}" -h "$host" -p "$p" PING 2>/dev/null | grep -q PONG && break
            [ "$k" = 101 ] && fail "cluster node $host:$p did not start"
            sleep 0.1
        done
    done
    # shellcheck disable=SC2046
    "$@" redis-cli "${REDIS_CLI_TLS[@]}" --cluster create $(printf "$host:%s " "${CLUSTER_PORTS[@]}") \
        --cluster-replicas 1 --cluster-yes >"$WORK/cluster_create.log" 2>&1 ||
        fail "redis-cli --cluster create failed: $(tail -3 "$WORK/cluster_create.log")"
    for k in $(seq 1 100); do
        ok=0
        for p in "${CLUSTER_PORTS[@]}"; do
            "$@" redis-cli "${REDIS_CLI_TLS[@]}" -h "$host" -p "$p" CLUSTER INFO | grep -q '^cluster_state:ok' &&
                ok=$((ok + 1))
        done
        [ "$ok" -eq 6 ] && break
        sleep 0.1
    done
    [ "$ok" -eq 6 ] || fail "the cluster never reached cluster_state:ok on every node"
    CLUSTER_URL="$scheme://$host:${CLUSTER_PORTS[0]},$host:${CLUSTER_PORTS[1]}"
    fleet_key
}

# cluster_master_of KEY HOST [PREFIX...]: the port of the master serving KEY's slot, as the
# first node that answers sees it (empty when none does).
cluster_master_of() {
    local key=$1 host=$2 p slot
    shift 2
    for p in "${CLUSTER_PORTS[@]}"; do
        slot=$("$@" redis-cli "${REDIS_CLI_TLS[@]}" -h "$host" -p "$p" CLUSTER KEYSLOT "$key" 2>/dev/null) || continue
        [ -n "$slot" ] || continue
        "$@" redis-cli "${REDIS_CLI_TLS[@]}" -h "$host" -p "$p" CLUSTER NODES | awk -v s="$slot" '
            $3 ~ /master/ && $3 !~ /fail/ {
                for (i = 9; i <= NF; i++) {
                    n = split($i, r, "-")
                    if (s + 0 >= r[1] + 0 && s + 0 <= r[n] + 0) {
                        split($2, a, "[:@]")
                        print a[2]
                        exit
                    }
                }
            }'
        return 0
    done
}

# wait_failover: kills the master and waits (bounded) until the sentinels name the replica.
wait_failover() {
    kill -KILL "$MASTER_PID"
    local k at=""
    for k in $(seq 1 200); do
        at=$("${SENTINEL_PREFIX[@]}" redis-cli -h "$SENTINEL_HOST" -p "${SENTINELS[0]##*:}" \
            SENTINEL get-master-addr-by-name fleet | tail -1)
        [ "$at" = "$REPLICA_PORT" ] && return 0
        sleep 0.1
    done
    fail "the sentinels did not promote the replica (they name port ${at:-none})"
}

# wait_register_trusted RECORD_S CLI...: waits until the fleet's 0-RTT register is past its
# refusal period after its last loss of records (a new fleet's Redis counts as one): RECORD_S
# (how long Redis keeps a strike record) after the loss, by Redis's clock. CLI is how to run
# redis-cli against the fleet's Redis.
wait_register_trusted() {
    local record_s=$1 k lost now
    shift
    for k in $(seq 1 $((record_s * 10 + 100))); do
        lost=$("$@" HGET tlsr:early lost_at </dev/null)
        now=$("$@" TIME </dev/null | head -1)
        if [ -n "$lost" ] && [ $((now * 1000)) -ge $((lost + record_s * 1000 + 1000)) ]; then
            return 0
        fi
        sleep 0.1
    done
    fail "the fleet's 0-RTT register was never trusted (lost_at=${lost:-none})"
}

# stop_servers PID...: stops serve processes the test started by hand (SIGTERM, bounded wait);
# a crash or a sanitizer report in their logs ($WORK/s*.log) fails the test.
stop_servers() {
    local pid
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "$@"; do
        timeout 30 tail --pid="$pid" -f /dev/null || fail "serve $pid did not stop"
    done
    if grep -lE "event=worker_died|AddressSanitizer|runtime error|LeakSanitizer" "$WORK"/s*.log; then
        fail "a server log shows a crash or a sanitizer report"
    fi
}

# ---- `tlsresume serve` helpers -------------------------------------------------------------
SRC_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

# start_backend MODE [--proxy-protocol]: the Python backend on a fresh port (BACKEND_PORT).
start_backend() {
    BACKEND_PORT=$(free_port)
    python3 "$SRC_DIR/scripts/backend.py" --listen "127.0.0.1:$BACKEND_PORT" --mode "$@" \
        >"$WORK/backend.out" 2>"$WORK/backend.log" &
    BACKEND_PID=$!
    PIDS+=("$BACKEND_PID")
    local i
    for i in $(seq 1 100); do
        grep -q '^listening' "$WORK/backend.out" 2>/dev/null && return 0
        sleep 0.1
    done
    fail "backend did not start"
}

# TLSR_VALGRIND=1 (make valgrind) runs serve under valgrind's memcheck; stop_serve fails on any
# error or definite leak it reports, in the master or a worker. Valgrind does not know
# memfd_secret (it warns at each call), so serve uses locked key memory there.
SERVE_WRAP=()
SERVE_EXTRA=()
if [ "${TLSR_VALGRIND:-0}" = 1 ]; then
    SERVE_WRAP=(valgrind -q --leak-check=full --errors-for-leak-kinds=definite
        --log-file="$WORK/valgrind.%p.txt")
    SERVE_EXTRA=(--key-memory locked)
fi

# start_serve ARGS...: tlsresume serve on a fresh port (PORT) with its admin on ADMIN_PORT.
start_serve() {
    PORT=$(free_port)
    ADMIN_PORT=$(free_port)
    # Emptied here, not by the redirection below: that runs in the child, maybe after the
    # wait below has read an earlier serve's "event=started".
    : >"$WORK/serve.out"
    : >"$WORK/serve.log"
    "${SERVE_WRAP[@]}" "$BUILD_DIR/tlsresume" serve --listen "127.0.0.1:$PORT" --admin "127.0.0.1:$ADMIN_PORT" \
        --backend "127.0.0.1:${BACKEND_PORT:-1}" --workers 2 --access-log "${SERVE_EXTRA[@]}" "$@" \
        >"$WORK/serve.out" 2>"$WORK/serve.log" &
    SERVE_PID=$!
    PIDS+=("$SERVE_PID")
    wait_serve_log "event=started"
}

wait_serve_log() {
    wait_grep "$WORK/serve.log" "$1" "serve log never showed: $1" "$SERVE_PID"
}

# sum_metric NAME: the sum of every sample of a metric family in $WORK/metrics.out.
sum_metric() {
    awk -v k="$1" 'index($1, k "{") == 1 || $1 == k { s += $2 } END { print s + 0 }' \
        "$WORK/metrics.out"
}

# accounting_holds: serve's resumption accounting adds up: every finished handshake whose client
# offered a session resumed or has exactly one reason, never "other" (offered = resumed +
# failures). Sets OFFERED, RESUMED and FAILURES. Read again (bounded) while a handshake that is
# finishing right now has counted one side and not yet the other.
accounting_holds() {
    local i other
    for i in 1 2 3 4 5; do
        metric x >/dev/null || true
        OFFERED=$(sum_metric tlsresume_resumption_offered_total)
        FAILURES=$(sum_metric tlsresume_resumption_failures_total)
        RESUMED=$(awk '$1 ~ /^tlsresume_handshakes_total\{/ && $1 !~ /resumed="full"/ { s += $2 }
            END { print s + 0 }' "$WORK/metrics.out")
        [ "$OFFERED" -eq $((RESUMED + FAILURES)) ] && break
        sleep 0.2
    done
    [ "$OFFERED" -eq $((RESUMED + FAILURES)) ] ||
        fail "accounting: offered $OFFERED != resumed $RESUMED + failures $FAILURES"
    other=$(awk '$1 == "tlsresume_resumption_failures_total{reason=\"other\"}" { print $2 }' \
        "$WORK/metrics.out")
    [ "${other:-0}" -eq 0 ] || fail "accounting: $other failures without a reason"
}

stop_serve() {
    grep -q 'event=started.* admin=off ' "$WORK/serve.log" || accounting_holds
    kill -TERM "$SERVE_PID"
    wait "$SERVE_PID" || fail "serve exited with status $?"
    # A worker that crashed (or a sanitizer report) fails the test even if clients were served.
    if grep -qE "event=worker_died|AddressSanitizer|runtime error|LeakSanitizer" "$WORK/serve.log"; then
        fail "serve log shows a crash or a sanitizer report"
    fi
    local v
    for v in "$WORK"/valgrind.*.txt; do
        [ -s "$v" ] || continue
        cat "$v" >&2
        fail "valgrind reported errors ($v)"
    done
}

# metric 'NAME{labels}': one value from /metrics.
metric() {
    curl -s --max-time 5 "http://127.0.0.1:$ADMIN_PORT/metrics" >"$WORK/metrics.out" ||
        fail "admin endpoint unreachable"
    awk -v k="$1" '$1 == k { print $2 }' "$WORK/metrics.out"
}

# metric_is NAME VALUE, metric_ge NAME MIN: serve's metric NAME is VALUE, or at least MIN.
metric_is() {
    [ "$(metric "$1")" = "$2" ]
}

metric_ge() {
    local v
    v=$(metric "$1")
    [ -n "$v" ] && [ "$v" -ge "$2" ]
}

# expect_metric_ge NAME MIN
expect_metric_ge() {
    local v
    v=$(metric "$1")
    [ -n "$v" ] && [ "$v" -ge "$2" ] || fail "metric $1 = '${v}', expected >= $2"
}

# sclient OUT ARGS...: one s_client connection to serve that sends one HTTP request.
sclient() {
    local out=$1
    shift
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout 20 openssl s_client -connect "127.0.0.1:$PORT" \
        -servername localhost -ign_eof "$@" >"$WORK/$out.out" 2>&1 || true
    grep -q 'hello from the backend' "$WORK/$out.out" || fail "$out: no answer from the backend"
}
