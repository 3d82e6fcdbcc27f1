#!/usr/bin/env bash
# The runner's cost in a live run: CPU per operation (results.json `cpu`), peak RSS per
# operation (GNU time), throughput and the verdict, for one or more kafka-workload binaries
# run in turn (interleaved: A B A B ...), so a before/after pair shares the machine's load.
#
#   perf/runner-live.sh                         # this tree's release build alone
#   BASE=/path/to/old/kafka-workload perf/runner-live.sh      # old and new, interleaved
#   RUNS=3 ARGS="--rate 100000 --time-limit 60" perf/runner-live.sh
#   ARGS="--node-count 3 --concurrency 64 --rate 100000 --time-limit 20" perf/runner-live.sh
#
# Settings (environment): RUNS (2), ARGS (the test options; default the issue's
# `--node-count 1 --concurrency 64 --rate 100000 --time-limit 10`), NODE (the node binary;
# default this tree's release maelstrom-kafka), BASE (an older kafka-workload to interleave),
# NEW_BIN (the new kafka-workload, if not this tree's: e.g. one built before a rebase).
# Prints one line per run and the medians per binary; `final_s` is the final phase's length.
# `cpu` counts the runner from spawn to teardown (main, recovery, final phase), not the
# checker that follows; `rss/op` is the whole process's peak, the checker's included, over
# the operations run.
set -euo pipefail
source "$(dirname "$0")/common.sh"
need_time

RUNS="${RUNS:-2}"
ARGS="${ARGS:---node-count 1 --concurrency 64 --rate 100000 --time-limit 10}"
runner_bins

header
echo "# args: $ARGS; node $NODE"
printf '%-8s %-4s %9s %9s %9s %10s %9s %9s %8s %8s %s\n' \
    bin run ops ops/s cpu_s us/op rss_MiB B/op node_cpu final_s verdict
declare -A US RSSOP
for run in $(seq 1 "$RUNS"); do
    for i in "${!BINS[@]}"; do
        bin="${BINS[$i]}"
        label=$([[ -n "${BASE:-}" && $i == 0 ]] && echo base || echo new)
        store="$WORK/runner-live-store"
        rm -rf "$store"
        # shellcheck disable=SC2086 # ARGS is a list of options
        /usr/bin/time -f '%M' -o "$WORK/rss.$$" "$bin" test -w kafka --bin "$NODE" $ARGS \
            --store "$store" --no-progress >"$WORK/out.$$" 2>&1 || true
        verdict=$(grep -Eo 'Everything looks good|Analysis invalid|Errors occurred' "$WORK/out.$$" | head -n1)
        read -r ops opss cpu node final < <(python3 - "$store/latest/results.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
ops = sum(v.get("count", 0) for v in r["stats"]["by-f"].values())
node = sum(r["cpu"]["node-seconds"].values())
tl = r["timeline-seconds"]
final = "%.3f" % (tl["final-end"] - tl["final-start"])
print(ops, r["throughput"]["ops-per-sec"], r["cpu"]["runner-seconds"], node, final)
EOF
)
        rss=$(tail -n1 "$WORK/rss.$$")
        us=$(awk -v c="$cpu" -v n="$ops" 'BEGIN { printf "%.2f", c * 1e6 / n }')
        bop=$(awk -v r="$rss" -v n="$ops" 'BEGIN { printf "%.0f", r * 1024 / n }')
        printf '%-8s %-4s %9s %9s %9s %10s %9.1f %9s %8s %8s %s\n' "$label" "$run" "$ops" "$opss" \
            "$cpu" "$us" "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')" "$bop" "$node" "$final" "$verdict"
        US[$label]+="$us "
        RSSOP[$label]+="$bop "
    done
done
for label in "${!US[@]}"; do
    # shellcheck disable=SC2086 # one value a word
    echo "median $label: $(printf '%s\n' ${US[$label]} | median) us/op runner CPU, $(printf '%s\n' ${RSSOP[$label]} | median) B/op peak RSS"
done
rm -f "$WORK/rss.$$" "$WORK/out.$$"
