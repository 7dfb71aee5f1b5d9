#!/usr/bin/env bash
# Soak: `tlsresume serve` (2 workers) under mixed full and resumed TLS 1.2 and 1.3 handshakes
# at high concurrency, in rounds; after each round the workers' RSS and open descriptors are
# read. Fails when either grows past the first round (after warm-up) beyond a margin, or when a
# handshake fails. Always bounded.
# usage: bench/soak.sh [SECONDS] [--write]   (default 600; rounds of 10 s, or 5 s under 60 s;
#        --write puts the table into docs/RELIABILITY.md between its soak markers)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${TLSR_BUILD_DIR:-build}
TOTAL=${1:-600}
WRITE=0
[ "${2:-}" = --write ] && WRITE=1
case "$TOTAL" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [--write]" >&2; exit 2 ;; esac
[ "$TOTAL" -ge 10 ] && [ "$TOTAL" -le 7200 ] || { echo "error soak: 10 to 7200 s" >&2; exit 2; }
ROUND=10
[ "$TOTAL" -lt 60 ] && ROUND=5
ROUNDS=$((TOTAL / ROUND))

. bench/lib.sh
bench_init soak
make_cert
start_echo_backend
PORT=$(free_port)
"$BUILD/tlsresume" serve --listen "127.0.0.1:$PORT" --backend "127.0.0.1:$BACKEND" --workers 2 \
    --cert "$WORK/cert.pem" --key "$WORK/key.pem" --admin off --cache-size 1m \
    --log-level warn 2>"$WORK/serve.log" &
SERVE=$!
PIDS+=("$SERVE")
wait_port "$PORT" serve

# usage: the workers' total RSS (KiB) and open descriptors.
usage() {
    local rss=0 fds=0 w
    for w in $(pgrep -P "$SERVE"); do
        rss=$((rss + $(awk '/^VmRSS/ { print $2 }' "/proc/$w/status")))
        fds=$((fds + $(find "/proc/$w/fd" -mindepth 1 -maxdepth 1 | wc -l)))
    done
    echo "$rss $fds"
}

: >"$WORK/rounds.txt"
for r in $(seq 1 "$ROUNDS"); do
    version=--tls1_3
    [ $((r % 2)) = 0 ] && version=--tls1_2
    timeout $((ROUND + 30)) "$BUILD/tlsresume" bench "127.0.0.1:$PORT" "$version" --mode mixed:70 \
        --duration "$ROUND" -C 64 --data 1024 --json >"$WORK/r.json" 2>>"$WORK/bench.log" || true
    read -r rss fds < <(usage)
    python3 - "$WORK/r.json" "$r" "$version" "$rss" "$fds" >>"$WORK/rounds.txt" <<'PY'
import json, sys
path, r, version, rss, fds = sys.argv[1:]
try:
    j = json.load(open(path))
    n, errors = j["handshakes"], sum(j["errors"].values())
except (OSError, ValueError, KeyError):
    n, errors = 0, -1
print(r, version.lstrip("-"), n, errors, rss, fds)
PY
done
kill -0 "$SERVE" 2>/dev/null || { echo "error soak: serve died" >&2; exit 1; }

status=0
python3 - "$WORK/rounds.txt" "$TOTAL" "$ROUND" >"$WORK/table.md" <<'PY' || status=1
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
total, rnd = sys.argv[2], sys.argv[3]
base = rows[0]
hs = sum(int(r[2]) for r in rows)
errors = sum(int(r[3]) for r in rows)
rss0, fd0 = int(base[4]), int(base[5])
rss_max = max(int(r[4]) for r in rows)
fd_max = max(int(r[5]) for r in rows)
print("Run with `bench/soak.sh %s`: %d rounds of %s s, 64 connections, 70%% resumed, 1 KiB each "
      "way, TLS 1.2 and 1.3 in turn, 2 workers, a 1 MiB cache (so it evicts all along)." % (total, len(rows), rnd))
print()
print("| handshakes | errors | workers' RSS after round 1 | largest RSS after | descriptors after round 1 | most after |")
print("|---|---|---|---|---|---|")
print("| %d | %d | %d KiB | %d KiB | %d | %d |" % (hs, errors, rss0, rss_max, fd0, fd_max))
ok = errors == 0 and hs > 0 and rss_max <= rss0 * 1.10 + 2048 and fd_max <= fd0 + 4
print()
print("result: %s" % ("flat" if ok else "NOT FLAT or errors"))
sys.exit(0 if ok else 1)
PY
cat "$WORK/table.md"
if [ "$WRITE" -eq 1 ] && [ "$status" -eq 0 ]; then
    python3 scripts/doc_section.py docs/RELIABILITY.md soak "$WORK/table.md"
fi
exit "$status"
