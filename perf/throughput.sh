#!/usr/bin/env bash
# Replays REQUESTS (default 1M) generated requests per profile through the release node and
# through the single-threaded parse-only floor, RUNS (default 5) times each, interleaved, and
# prints median requests/s, the node/floor time ratio and peak RSS.
#
#   perf/throughput.sh                       # release profile
#   CARGO_PROFILES="release release-lto" perf/throughput.sh
#   PROFILES=long-log REQUESTS=200000 RUNS=3 perf/throughput.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CARGO_PROFILES="${CARGO_PROFILES:-release}"
PROFILES="${PROFILES:-maelstrom long-log}"
need_time
build release
for cp in $CARGO_PROFILES; do build "$cp"; done

header
printf '%-10s %-12s %12s %12s %7s %12s %12s %9s %9s\n' profile cargo floor_req/s node_req/s ratio floor_cpu_s node_cpu_s floor_MiB node_MiB
for profile in $PROFILES; do
    file="$(replay_file "$profile")"
    for cp in $CARGO_PROFILES; do
        : >"$WORK/floor.runs"; : >"$WORK/node.runs"
        for _ in $(seq "$RUNS"); do
            time_run "$file" "$(bin "$cp" floor)" >>"$WORK/floor.runs"
            time_run "$file" "$(bin "$cp" maelstrom-kafka)" >>"$WORK/node.runs"
        done
        floor_s=$(cut -d' ' -f1 "$WORK/floor.runs" | median)
        node_s=$(cut -d' ' -f1 "$WORK/node.runs" | median)
        floor_rss=$(cut -d' ' -f2 "$WORK/floor.runs" | sort -g | tail -n1)
        node_rss=$(cut -d' ' -f2 "$WORK/node.runs" | sort -g | tail -n1)
        printf '%-10s %-12s %12s %12s %7s %12s %12s %9s %9s\n' "$profile" "$cp" \
            "$(rate "$floor_s")" "$(rate "$node_s")" \
            "$(awk -v a="$node_s" -v b="$floor_s" 'BEGIN { printf "%.2f", a / b }')" \
            "$(cut -d' ' -f3 "$WORK/floor.runs" | median)" "$(cut -d' ' -f3 "$WORK/node.runs" | median)" \
            "$(awk -v k="$floor_rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
            "$(awk -v k="$node_rss" 'BEGIN { printf "%.1f", k / 1024 }')"
        echo "#   wall per run, node (s): $(cut -d' ' -f1 "$WORK/node.runs" | tr '\n' ' ') floor (s): $(cut -d' ' -f1 "$WORK/floor.runs" | tr '\n' ' ')"
    done
done
