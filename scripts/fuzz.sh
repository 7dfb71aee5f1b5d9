#!/usr/bin/env bash
# Runs every libFuzzer target (built by `make fuzz` in build-fuzz, clang + ASan + UBSan) for a
# bounded time each, on a copy of its seed corpus, and prints a table of executions and
# coverage. A crash stops the run with the reproducer in build-fuzz/crashes/TARGET/.
# usage: scripts/fuzz.sh [SECONDS] [--write]   (default 60 s per target; --write updates
#        docs/RELIABILITY.md between its fuzz markers)
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
WRITE=0
[ "${2:-}" = --write ] && WRITE=1
case "$SECONDS_EACH" in '' | *[!0-9]*) echo "usage: $0 [SECONDS] [--write]" >&2; exit 2 ;; esac
[ "$SECONDS_EACH" -ge 1 ] && [ "$SECONDS_EACH" -le 86400 ] || { echo "error fuzz: 1 to 86400 s" >&2; exit 2; }
rows=""
for dir in fuzz/corpus/*/; do
    t=$(basename "$dir")
    bin=build-fuzz/fuzz_$t
    [ -x "$bin" ] || { echo "error fuzz: $bin missing (run make fuzz)" >&2; exit 1; }
    work=build-fuzz/corpus-run/$t
    crashes=build-fuzz/crashes/$t
    mkdir -p "$work" "$crashes"
    cp -n "$dir"* "$work"/ 2>/dev/null || true
    log=build-fuzz/fuzz_$t.log
    if ! "$bin" -max_total_time="$SECONDS_EACH" -print_final_stats=1 -artifact_prefix="$crashes/" \
        "$work" >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        echo "error fuzz: $t crashed; reproducer in $crashes/" >&2
        exit 1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
    corpus=$(find "$work" -type f | wc -l)
    echo "fuzz: $t ${SECONDS_EACH}s runs=$runs cov=$cov ft=$ft corpus=$corpus" >&2
    rows="$rows| \`$t\` | $SECONDS_EACH | $runs | $cov | $ft | $corpus |
"
done
table="Run $(date -u +%F) with \`scripts/fuzz.sh $SECONDS_EACH\` (after \`make fuzz\`), clang $(clang --version | head -n1 | sed 's/.*version \([0-9.]*\).*/\1/'), ASan + UBSan, on $(nproc) cores; no crash.

| target | seconds | executions | edges covered (cov) | features (ft) | corpus files |
|---|---|---|---|---|---|
$rows"
printf '%s' "$table"
if [ "$WRITE" -eq 1 ]; then
    tmp=$(mktemp)
    printf '%s' "$table" >"$tmp"
    python3 scripts/doc_section.py docs/RELIABILITY.md fuzz "$tmp"
    rm -f "$tmp"
    echo "info fuzz: docs/RELIABILITY.md updated" >&2
fi
