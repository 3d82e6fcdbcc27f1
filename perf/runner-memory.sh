#!/usr/bin/env bash
# The runner's memory in long runs: for the issue's three live runs (10 s and 60 s at
# 100k ops/s on one node, 20 s on three nodes), the whole process's peak RSS per operation
# (GNU time: the checker and the files included), the RSS it holds once the main phase is
# over (sampled from /proc in the recovery sleep: the main phase's history), its peak
# before the checker starts (the final phase's), and the verdict. One or two
# kafka-workload binaries, interleaved (A B A B ...) so a before/after pair shares the load.
#
#   perf/runner-memory.sh                          # this tree's release build, all three runs
#   BASE=/path/to/old/kafka-workload perf/runner-memory.sh     # old and new, interleaved
#   SHAPES="60s" RUNS=2 perf/runner-memory.sh      # some of: 10s 60s 3node 600s
#
# Settings (environment): SHAPES ("10s 60s 3node"), RUNS (1 per shape and binary), NODE (the
# node binary; default this tree's release maelstrom-kafka), BASE (an older kafka-workload),
# NEW_BIN (the new kafka-workload, if not this tree's).
# Columns: ops (every invocation, crashes included), held_MiB (RSS 5 s into the recovery
# sleep), run_MiB (the highest RSS sampled, every 0.5 s, until the final phase ended), peak_MiB
# and B/op (GNU time's maximum, over the operations), the verdict.
set -euo pipefail
# Before common.sh, whose default is 5 (replays).
RUNS="${RUNS:-1}"
source "$(dirname "$0")/common.sh"
need_time

SHAPES="${SHAPES:-10s 60s 3node}"
runner_bins

args_of() {
    case "$1" in
        10s) echo "--node-count 1 --concurrency 64 --rate 100000 --time-limit 10" ;;
        60s) echo "--node-count 1 --concurrency 64 --rate 100000 --time-limit 60" ;;
        3node) echo "--node-count 3 --concurrency 64 --rate 100000 --time-limit 20" ;;
        # The issue's long run: 60M operations, 12 minutes with its judging, a 15 GB history;
        # on one node it ends invalid, its final phase too slow (BENCHMARKS.md, the ten-minute run).
        600s) echo "--node-count 1 --concurrency 64 --rate 100000 --time-limit 600" ;;
        *) echo "unknown shape $1 (10s 60s 3node 600s)" >&2; exit 2 ;;
    esac
}

header
echo "# node $NODE"
printf '%-6s %-5s %-4s %9s %9s %9s %9s %9s %6s %s\n' \
    shape bin run ops ops/s held_MiB run_MiB peak_MiB B/op verdict
declare -A BOP
for shape in $SHAPES; do
    args=$(args_of "$shape")
    limit=$(sed -E 's/.*--time-limit ([0-9]+).*/\1/' <<<"$args")
    for run in $(seq 1 "$RUNS"); do
        for i in "${!BINS[@]}"; do
            bin="${BINS[$i]}"
            label=$([[ -n "${BASE:-}" && $i == 0 ]] && echo base || echo new)
            store="$WORK/runner-memory-store"
            rm -rf "$store"
            # shellcheck disable=SC2086 # args is a list of options
            /usr/bin/time -f '%M' -o "$WORK/rss.$$" "$bin" test -w kafka --bin "$NODE" $args \
                --store "$store" --no-progress >"$WORK/out.$$" 2>&1 &
            timer=$!
            pid=""
            while [[ -z "$pid" ]] && kill -0 "$timer" 2>/dev/null; do
                pid=$(pgrep -P "$timer" | head -n1 || true)
                sleep 0.05
            done
            start=$(date +%s%N)
            held=0 run_max=0
            # Until the run writes its history (the checker then starts), sample VmRSS.
            while [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && [[ ! -e "$store/latest" ]]; do
                rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
                secs=$((($(date +%s%N) - start) / 1000000000))
                [[ -n "$rss" ]] || rss=0
                ((rss > run_max)) && run_max=$rss
                # The recovery sleep is 10 s from the end of the main phase (plus init).
                ((secs >= limit + 5 && secs < limit + 8 && held == 0)) && held=$rss
                if [[ -n $(find "$store" -name history.jsonl -print -quit 2>/dev/null) ]]; then
                    break
                fi
                sleep 0.5
            done
            wait "$timer" || true
            verdict=$(grep -Eo 'Everything looks good|Analysis invalid|Errors occurred' "$WORK/out.$$" | head -n1)
            read -r ops opss < <(python3 - "$store/latest/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(v.get("count", 0) for v in r["stats"]["by-f"].values()), r["throughput"]["ops-per-sec"])
EOF
)
            peak=$(tail -n1 "$WORK/rss.$$")
            bop=$(awk -v r="$peak" -v n="$ops" 'BEGIN { printf "%.0f", r * 1024 / n }')
            mib() { awk -v r="$1" 'BEGIN { printf "%.1f", r / 1024 }'; }
            printf '%-6s %-5s %-4s %9s %9s %9s %9s %9s %6s %s\n' "$shape" "$label" "$run" "$ops" \
                "$opss" "$(mib "$held")" "$(mib "$run_max")" "$(mib "$peak")" "$bop" "$verdict"
            BOP["$shape $label"]+="$bop "
        done
    done
done
for k in "${!BOP[@]}"; do
    # shellcheck disable=SC2086 # one value a word
    echo "median $k: $(printf '%s\n' ${BOP[$k]} | median) B/op peak RSS"
done
rm -f "$WORK/rss.$$" "$WORK/out.$$"
