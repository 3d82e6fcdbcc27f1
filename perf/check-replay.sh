#!/usr/bin/env bash
# The checker's cost, without a live run: `kafka-workload check` re-judges one stored history
# with each binary in turn (interleaved, RUNS rounds), printing wall seconds, CPU seconds (user +
# system) and peak RSS of each, and whether the verdicts and history.jsonl came out the same.
#
#   perf/check-replay.sh HISTORY BASE_BIN [NEW_BIN]   # NEW_BIN defaults to this tree's release
#
# HISTORY is a run directory or its history.jsonl (a 10 s run at 100k ops/s holds about 1.8M
# lines). Settings (environment): RUNS (3).
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_time

HISTORY="$1"
BASE="$2"
RUNS="${RUNS:-3}"
if [[ -z "${3:-}" ]]; then
    (cd "$ROOT" && cargo build --quiet --release -p kafka-workload --bin kafka-workload)
fi
NEW="${3:-$TARGET_DIR/release/kafka-workload}"

header
echo "# history: $HISTORY"
printf '%-5s %-4s %8s %8s %9s %s\n' bin run wall_s cpu_s rss_MiB verdict
declare -A CPU
for run in $(seq 1 "$RUNS"); do
    for label in base new; do
        bin=$BASE
        [[ $label == new ]] && bin=$NEW
        store="$WORK/check-replay-$label"
        rm -rf "$store"
        /usr/bin/time -f '%e %U %S %M' -o "$WORK/time.$$" "$bin" check "$HISTORY" --store "$store" \
            >"$WORK/out.$$" 2>&1 || true
        verdict=$(grep -Eo 'Everything looks good|Analysis invalid|Errors occurred' "$WORK/out.$$" | head -n1)
        read -r wall user sys rss <"$WORK/time.$$"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
        printf '%-5s %-4s %8s %8s %9.0f %s\n' "$label" "$run" "$wall" "$cpu" "$((rss / 1024))" "$verdict"
        CPU[$label]+="$cpu "
    done
done
for label in base new; do
    # shellcheck disable=SC2086 # one value a word
    echo "median $label: $(printf '%s\n' ${CPU[$label]} | median) s CPU"
done
python3 - "$WORK/check-replay-base/latest" "$WORK/check-replay-new/latest" <<'PY'
import json, sys
a, b = (json.load(open(d + "/results.json")) for d in sys.argv[1:])
same = [k for k in ("valid", "verdict", "workload", "stats") if a.get(k) == b.get(k)]
print("results.json valid/verdict/workload/stats the same:", len(same) == 4)
PY
cmp -s "$WORK/check-replay-base/latest/history.jsonl" "$WORK/check-replay-new/latest/history.jsonl" \
    && echo "history.jsonl the same, byte for byte" || echo "history.jsonl DIFFERS"
rm -f "$WORK/time.$$" "$WORK/out.$$"
