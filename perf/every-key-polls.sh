#!/usr/bin/env bash
# The node's CPU and peak RSS on Maelstrom's final phase at its largest: KEYS sends (default
# 180,000), each to a key of its own, then POLLS polls (default 64) that each name every key from
# offset 0. Runs the release node RUNS times (default 3); with SENDS_ONLY=1, the sends alone.
#
#   perf/every-key-polls.sh
#   SENDS_ONLY=1 perf/every-key-polls.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
KEYS="${KEYS:-180000}"
POLLS="${POLLS:-64}"
RUNS="${RUNS:-3}"
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time" >&2; exit 1; }
cargo build --release -q -p maelstrom-kafka
file="$(mktemp)"
trap 'rm -f "$file"' EXIT
awk -v keys="$KEYS" -v polls="$POLLS" -v sends_only="${SENDS_ONLY:-0}" 'BEGIN {
    print "{\"src\":\"c0\",\"dest\":\"n0\",\"body\":{\"type\":\"init\",\"msg_id\":1,\"node_id\":\"n0\",\"node_ids\":[\"n0\"]}}"
    for (k = 0; k < keys; k++)
        printf "{\"src\":\"c1\",\"dest\":\"n0\",\"body\":{\"type\":\"send\",\"msg_id\":%d,\"key\":\"%d\",\"msg\":%d}}\n", k + 2, k, k
    if (sends_only) exit
    offsets = ""
    for (k = 0; k < keys; k++) offsets = offsets (k ? "," : "") "\"" k "\":0"
    for (p = 0; p < polls; p++)
        printf "{\"src\":\"c%d\",\"dest\":\"n0\",\"body\":{\"type\":\"poll\",\"msg_id\":1,\"offsets\":{%s}}}\n", p + 2, offsets
}' >"$file"
echo "$(wc -l <"$file") lines, $(($(wc -c <"$file") >> 20)) MiB; commit $(git rev-parse --short HEAD)"
for _ in $(seq "$RUNS"); do
    /usr/bin/time -f 'node CPU %U s user + %S s system, peak RSS %M KiB, wall %e s' \
        target/release/maelstrom-kafka <"$file" 2>&1 >/dev/null | tail -n1
done
