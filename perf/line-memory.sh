#!/usr/bin/env bash
# The node's peak RSS for one line of the parser's worst shape: a `send` whose `msg` is an array
# of one-digit numbers filling a line of MIB mebibytes (default 16, the default line limit).
# Runs the release node RUNS times (default 5) and prints each run's peak, the median, and the
# median's cost per byte of line.
#
#   perf/line-memory.sh                  # 16 MiB
#   MIB=64 RUNS=3 perf/line-memory.sh    # past the default limit: MAELSTROM_KAFKA_MAX_LINE is raised
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
MIB="${MIB:-16}"
RUNS="${RUNS:-5}"
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time" >&2; exit 1; }
cargo build --release -q -p maelstrom-kafka
file="$(mktemp)"
trap 'rm -f "$file" "$file.out"' EXIT
limit=$((MIB << 20))
prefix='{"src":"c1","dest":"n0","body":{"type":"send","msg_id":2,"key":"k","msg":['
# Elements of two bytes ("1,"); the last one closes the array and the envelope.
n=$(((limit - ${#prefix} - 4) / 2))
{
    echo '{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0"]}}'
    printf '%s' "$prefix"
    (yes '1,' || true) | head -n $((n - 1)) | tr -d '\n'
    printf '1]}}\n'
} >"$file"
line=$(sed -n 2p "$file" | wc -c)
echo "line of $((line - 1)) bytes, $n elements; commit $(git rev-parse --short HEAD)"
runs=()
for _ in $(seq "$RUNS"); do
    # No reply deadline: on a busy machine a 64 MiB line takes seconds to parse, and a dropped
    # reply would not show whether the line was stored.
    kib=$(MAELSTROM_KAFKA_MAX_LINE=$limit MAELSTROM_KAFKA_REPLY_DEADLINE_MS=3600000 /usr/bin/time -f %M target/release/maelstrom-kafka \
        <"$file" 2>&1 >"$file.out" | tail -n1)
    grep -q '"send_ok"' "$file.out" || { echo "no send_ok: $(cut -c1-200 "$file.out")" >&2; exit 1; }
    runs+=("$kib")
    echo "peak RSS: $kib KiB"
done
median=$(printf '%s\n' "${runs[@]}" | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')
awk -v k="$median" -v l="$((line - 1))" \
    'BEGIN { printf "median: %.1f MiB, %.1f bytes per byte of line\n", k / 1024, k * 1024 / l }'
