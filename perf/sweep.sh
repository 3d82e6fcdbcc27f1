#!/usr/bin/env bash
# Worker-count sweep: replays REQUESTS (default 1M) requests per profile through the release
# node with MAELSTROM_KAFKA_WORKERS = 1, 2, 4, 8, RUNS (default 5) times each, beside the
# single-threaded floor; writes the medians to perf/results/sweep.csv and plots them to
# perf/results/sweep.png.
#
#   perf/sweep.sh
#   WORKER_COUNTS="1 2" RUNS=3 OUT_DIR=/tmp/sweep perf/sweep.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PROFILES="${PROFILES:-maelstrom long-log}"
WORKER_COUNTS="${WORKER_COUNTS:-1 2 4 8}"
CARGO_PROFILE="${CARGO_PROFILE:-release}"
OUT_DIR="${OUT_DIR:-$ROOT/perf/results}"
mkdir -p "$OUT_DIR"
csv="$OUT_DIR/sweep.csv"

need_time
build release
[[ "$CARGO_PROFILE" == release ]] || build "$CARGO_PROFILE"
(cd "$ROOT" && cargo build --quiet --release -p kafka-perf --features plot --bin plot-sweep)

summarise() { # NAME WORKERS RUNS_FILE
    local s rss
    s=$(cut -d' ' -f1 "$3" | median)
    rss=$(cut -d' ' -f2 "$3" | sort -g | tail -n1)
    echo "$profile,$1,$2,$s,$(rate "$s"),$rss" | tee -a "$csv"
}

header >&2
echo "profile,binary,workers,median_seconds,requests_per_sec,peak_rss_kib" | tee "$csv"
for profile in $PROFILES; do
    file="$(replay_file "$profile")"
    : >"$WORK/floor.runs"
    for w in $WORKER_COUNTS; do : >"$WORK/node-$w.runs"; done
    # Interleaved, so that a burst of noise from the shared machine spreads over every setting.
    for _ in $(seq "$RUNS"); do
        time_run "$file" "$(bin "$CARGO_PROFILE" floor)" >>"$WORK/floor.runs"
        for w in $WORKER_COUNTS; do
            MAELSTROM_KAFKA_WORKERS="$w" time_run "$file" "$(bin "$CARGO_PROFILE" maelstrom-kafka)" \
                >>"$WORK/node-$w.runs"
        done
    done
    summarise floor 1 "$WORK/floor.runs"
    for w in $WORKER_COUNTS; do summarise node "$w" "$WORK/node-$w.runs"; done
done
"$(bin release plot-sweep)" "$csv" "$OUT_DIR/sweep.png"
echo "wrote $csv and $OUT_DIR/sweep.png" >&2
