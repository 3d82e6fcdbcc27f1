#!/usr/bin/env bash
# The node's cost per request when requests arrive a few at a time, as in a live run, without a
# workload runner sharing the machine: `pace` writes the replay file LINES lines per write with a
# PAUSE_US pause between writes, and `perf stat` counts the node's CPU, context switches and
# system calls; the floor (one thread: read and parse) gets the same input. RUNS interleaved runs
# each, every run printed; per request figures.
#
#   perf/paced.sh                                  # 100,000 maelstrom requests, 4 lines a write
#   LINES=16 PAUSE_US=100 RUNS=5 perf/paced.sh
#   NODES="old/maelstrom-kafka target/release/maelstrom-kafka" perf/paced.sh   # before and after
set -euo pipefail
REQUESTS="${REQUESTS:-100000}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

LINES="${LINES:-4}"
PAUSE_US="${PAUSE_US:-40}"
RUNS="${RUNS:-3}"

command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
build release
(cd "$ROOT" && cargo build --quiet --release -p kafka-perf --bin pace)
NODES="${NODES:-$(bin release maelstrom-kafka)}"
file="$(replay_file maelstrom)"
stats="$WORK/paced.$$"

# one NAME BINARY: one paced run through BINARY, its counts per request on one line.
one() {
    "$(bin release pace)" "$file" "$LINES" "$PAUSE_US" |
        perf stat -x, -o "$stats" -e task-clock,context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_read,syscalls:sys_enter_write \
            "$2" >/dev/null 2>"$WORK/paced-stderr.$$"
    awk -F, -v n="$REQUESTS" -v name="$1" '
        /task-clock/ { cpu = $1 } /context-switches/ { cs = $1 } /sys_enter_futex/ { fx = $1 }
        /sys_enter_read/ { rd = $1 } /sys_enter_write/ { wr = $1 }
        END { printf "%-40s %8.2f %8.3f %8.3f %8.3f %8.3f\n", name, cpu * 1000 / n, cs / n, fx / n, rd / n, wr / n }' "$stats"
}

header
echo "# lines per write=$LINES pause=${PAUSE_US}us"
printf '%-40s %8s %8s %8s %8s %8s\n' binary cpu_us cs futex read write
for _ in $(seq "$RUNS"); do
    one floor "$(bin release floor)"
    for node in $NODES; do one "$node" "$node"; done
done
