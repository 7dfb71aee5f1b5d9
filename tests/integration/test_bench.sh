#!/usr/bin/env bash
# `tlsresume bench` and the benchmark suite on a tiny bounded load: they run and count right.
# (Performance is measured by `make bench`, never asserted here.) usage: test_bench.sh SCENARIO
. "$(dirname "$0")/lib/common.sh"

scenario=${1:?scenario}
make_cert
TLSR="$BUILD_DIR/tlsresume"

case "$scenario" in
command)
    start_backend echo
    start_serve --cert "$WORK/cert.pem" --key "$WORK/key.pem"
    for v in --tls1_2 --tls1_3; do
        timeout 60 "$TLSR" bench "127.0.0.1:$PORT" $v --mode full --count 40 -C 4 --json \
            >"$WORK/full.out" || fail "bench full $v"
        [ "$(field full "r['handshakes']")" -eq 40 ] || fail "full: not 40 handshakes"
        [ "$(field full "r['resumed_fraction']")" = "0.0" ] || fail "full: resumed some"
        timeout 60 "$TLSR" bench "127.0.0.1:$PORT" $v --mode resume --count 40 -C 4 -T 2 \
            --data 2000 --json >"$WORK/resume.out" || fail "bench resume $v"
        [ "$(field resume "r['resumed_fraction']")" = "1.0" ] || fail "resume: not all resumed"
        [ "$(field resume "r['latency_us']['resumed']['count']")" -eq 40 ] || fail "resume count"
    done
    # Against a server that resumes nothing, a resumed run reports failed resumptions (exit 1).
    port=$(free_port)
    openssl s_server -accept "127.0.0.1:$port" -cert "$WORK/cert.pem" -key "$WORK/key.pem" \
        -quiet -no_cache -no_ticket </dev/null >/dev/null 2>&1 &
    PIDS+=("$!")
    wait_port "$port"
    set +e
    timeout 60 "$TLSR" bench "127.0.0.1:$port" --tls1_2 --mode resume --count 10 -C 1 --json \
        >"$WORK/nores.out" 2>&1
    rc=$?
    set -e
    [ "$rc" -eq 1 ] || fail "bench against a non-resuming server exited $rc"
    [ "$(field nores "r['resume_failed']")" -eq 10 ] || fail "failed resumptions not counted"
    set +e
    "$TLSR" bench "127.0.0.1:$port" --count 0 >/dev/null 2>"$WORK/args.log"
    rc=$?
    set -e
    [ "$rc" -eq 2 ] && grep -q -- "--count: 0 is outside 1 to 100000000" "$WORK/args.log" ||
        fail "bad arguments"
    # Durations take units, as check's do; an unknown option is named, with what it may mean.
    timeout 60 "$TLSR" bench "127.0.0.1:$port" --duration 1s -C 2 --json >"$WORK/dur.out" \
        2>"$WORK/dur.log" || fail "bench --duration 1s"
    [ "$(field dur "r['handshakes']")" -ge 1 ] || fail "bench --duration 1s made no handshake"
    set +e
    "$TLSR" bench "127.0.0.1:$port" --durration 3 >/dev/null 2>"$WORK/typo.log"
    rc=$?
    set -e
    [ "$rc" -eq 2 ] && grep -q -- "--durration: unknown option; did you mean --duration?" \
        "$WORK/typo.log" || fail "a misspelt option: $(cat "$WORK/typo.log")"
    # A flag that is not yes/no takes no value; a bad mode names what it expects.
    set +e
    "$TLSR" bench "127.0.0.1:$port" --tls1_3=yes >/dev/null 2>"$WORK/flag.log"
    rc=$?
    "$TLSR" bench "127.0.0.1:$port" --mode half >/dev/null 2>"$WORK/mode.log"
    rc2=$?
    set -e
    [ "$rc" -eq 2 ] && grep -q -- "--tls1_3: takes no value" "$WORK/flag.log" ||
        fail "a value given to a flag: $(cat "$WORK/flag.log")"
    [ "$rc2" -eq 2 ] && grep -q -- "--mode: expected full|resume|mixed:P, got 'half'" "$WORK/mode.log" ||
        fail "a bad mode: $(cat "$WORK/mode.log")"
    stop_serve
    ;;
suite)
    out=$(TLSR_BUILD_DIR="$BUILD_DIR" timeout 600 bash "$SRC_DIR/bench/suite.sh" --quick 2>"$WORK/suite.log") ||
        { cat "$WORK/suite.log" >&2; fail "suite failed"; }
    echo "$out" >"$WORK/suite.out"
    for s in tlsresume nginx haproxy hitch stunnel "in-process ceiling"; do
        grep -q "^| $s |" "$WORK/suite.out" || fail "suite table lacks $s"
    done
    grep -q "^| tlsresume | 50 | .* | [0-9]* |$" "$WORK/suite.out" || fail "idle/bulk row of tlsresume"
    grep -q "^| TLSv1.3 server CPU per resumed connection, bench: best peer / ours | 1.2x | " \
        "$WORK/suite.out" || fail "no goals table"
    # Both load generators measured every server, and s_time's resumptions did resume.
    for v in TLSv1.2 TLSv1.3; do
        grep -q "^### $v, client \`openssl s_time" "$WORK/suite.out" || fail "no s_time table for $v"
        grep -q "^### $v, client \`tlsresume bench\`" "$WORK/suite.out" || fail "no bench table for $v"
    done
    [ "$(grep -c '^| tlsresume | [0-9]* ([0-9-]*) | [0-9]* ([0-9-]*) | 100% |' "$WORK/suite.out")" = 4 ] ||
        fail "tlsresume did not resume every offered session with both clients and both versions"
    grep -q "^| TLSv1.2 serial resumed connections/s (1 s_time): ours / best peer | 1.0x | " \
        "$WORK/suite.out" || fail "no serial latency goal"
    # The no-TLS floor: both plain proxies measured, and the TLS share computed from it.
    grep -q "^| nginx_plain | [1-9][0-9]* " "$WORK/suite.out" || fail "no nginx floor"
    grep -q "^| haproxy_plain | [1-9][0-9]* " "$WORK/suite.out" || fail "no HAProxy floor"
    grep -q "^| TLSv1.2 TLS share (resumed CPU above the floor) / ceiling | at most 1.5x | [0-9.]*x | " \
        "$WORK/suite.out" || fail "no TLS share goal"
    # Every server on all cores (two of them and no floor, to stay short): the layout is reported.
    out=$(TLSR_SUITE_SERVERS="tlsresume nginx" TLSR_SUITE_FLOORS="" TLSR_BUILD_DIR="$BUILD_DIR" timeout 600 \
        bash "$SRC_DIR/bench/suite.sh" --quick --all-cores 2>"$WORK/suite_all.log") ||
        { cat "$WORK/suite_all.log" >&2; fail "suite --all-cores failed"; }
    echo "$out" >"$WORK/suite_all.out"
    grep -q "$(nproc) workers (or threads) per server, unpinned" "$WORK/suite_all.out" ||
        fail "suite --all-cores: the layout is not reported"
    grep -q "^| nginx |" "$WORK/suite_all.out" || fail "suite --all-cores: no nginx row"
    ;;
fleet)
    # bench/fleet.sh on a tiny load: both fleets measured; ours resumes every check attempt
    # through the balancer, nginx with per-host keys does not.
    out=$(TLSR_BUILD_DIR="$BUILD_DIR" timeout 300 bash "$SRC_DIR/bench/fleet.sh" --quick 2>"$WORK/fleet.log") ||
        { cat "$WORK/fleet.log" >&2; fail "fleet bench failed"; }
    echo "$out" >"$WORK/fleet.out"
    grep -q "^| tlsresume + Redis | 5/5 | 5/5 | 5/5 | 100% " "$WORK/fleet.out" ||
        fail "tlsresume fleet row: not 100%"
    grep -q "^| nginx, per-host keys | " "$WORK/fleet.out" || fail "no nginx fleet row"
    grep -q "^| nginx, per-host keys | 5/5 | 5/5 | 5/5 |" "$WORK/fleet.out" &&
        fail "nginx with per-host keys resumed everything: the comparison measures nothing"
    ;;
upstream)
    # bench/upstream.sh on a tiny load: every proxy measured with upstream reuse on and off, the
    # backend's own log says all (on) and none (off) of the upstream handshakes resumed.
    out=$(TLSR_BUILD_DIR="$BUILD_DIR" timeout 600 bash "$SRC_DIR/bench/upstream.sh" --quick 2>"$WORK/upstream.log") ||
        { cat "$WORK/upstream.log" >&2; fail "upstream bench failed"; }
    echo "$out" >"$WORK/upstream.out"
    # Ours resumes all but the first wave of concurrent connections (each full before a ticket
    # exists; a second of load holds a few hundred), the peers some (nginx stores a TLS 1.3
    # session only once its ticket arrives, and connections opened meanwhile are full); none
    # without reuse.
    n=$(grep -cE "^\| tlsresume \| on \| [1-9][0-9]* \| [0-9]* us \| (9[0-9]|100)% \|" "$WORK/upstream.out" || true)
    [ "$n" -eq 4 ] || fail "tlsresume with reuse: $n of 4 tables show 90% or more resumed upstream"
    for proxy in tlsresume HAProxy nginx; do
        n=$(grep -c "^| $proxy | on | [1-9][0-9]* | [0-9]* us | [1-9][0-9]*% |" "$WORK/upstream.out" || true)
        [ "$n" -eq 4 ] || fail "$proxy with reuse: $n of 4 tables show upstream resumption"
        n=$(grep -c "^| $proxy | off | [1-9][0-9]* | [0-9]* us | 0% |" "$WORK/upstream.out" || true)
        [ "$n" -eq 4 ] || fail "$proxy without reuse: $n of 4 tables show 0% resumed upstream"
    done
    ;;
redis_ops)
    # bench/redis_ops.sh on 100 pairs: every pair resumed; session IDs cost Redis a SET and a
    # GET, stateless TLS 1.3 tickets nothing, a 0-RTT flight one strike script (counted by Redis
    # itself).
    out=$(TLSR_BUILD_DIR="$BUILD_DIR" timeout 300 bash "$SRC_DIR/bench/redis_ops.sh" --count 100 \
        2>"$WORK/ops.log") || { cat "$WORK/ops.log" >&2; fail "redis_ops bench failed"; }
    echo "$out" >"$WORK/ops.out"
    # Stateless tickets cost nothing per handshake; what shows is the ring's polls, which the
    # bench takes out only as an average (noise of a few hundredths on 100 pairs).
    awk -F'|' '$2 == " TLS 1.3 stateless tickets " && $4 == " 100/100 " && $6 + 0 < 0.2 { ok = 1 }
        END { exit !ok }' "$WORK/ops.out" || fail "stateless tickets: not resumed, or Redis commands counted"
    grep -q "^| TLS 1.2 session IDs | 100 | 100/100 | .*SET 1.00" "$WORK/ops.out" ||
        fail "session IDs: not resumed, or not one SET per session"
    grep -q "^| TLS 1.3 stateful tickets (single use) | 100 | 100/100 | .*GETDEL 1.00" \
        "$WORK/ops.out" || fail "stateful tickets: not resumed, or not one GETDEL per resumption"
    # Each 0-RTT resumption is one strike script (EVAL) that records its flight with one SET.
    # (The ring's own EVALs are taken out as an average: a few hundredths of noise.)
    python3 - "$WORK/ops.out" <<'PY' || fail "0-RTT: not every flight accepted, or not one strike script and record each"
import re, sys
row = next(l for l in open(sys.argv[1]) if l.startswith("| 0-RTT resumptions"))
cells = [c.strip() for c in row.split("|")]
ops = dict((k, float(v)) for k, v in re.findall(r"([A-Z]+) ([0-9.-]+)", cells[4]))
sys.exit(0 if cells[3] == "12/12" and 0.85 <= ops.get("EVAL", 0) <= 1.15
         and 0.85 <= ops.get("SET", 0) <= 1.15 else 1)
PY
    ;;
*)
    fail "unknown scenario $scenario"
    ;;
esac
echo "PASS: $scenario"
