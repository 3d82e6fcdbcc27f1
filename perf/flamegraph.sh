#!/usr/bin/env bash
# Profiles a replay of REQUESTS (default 1M) requests of PROFILE (default maelstrom) through the
# release node with perf (software cpu-clock sampling, DWARF call graphs) and draws
# perf/flamegraph-$PROFILE.svg with inferno; prints the top frames by self time and the split
# of samples between threads.
#
#   perf/flamegraph.sh                    # maelstrom profile
#   PROFILE=long-log perf/flamegraph.sh
#   CARGO_PROFILE=release-lto perf/flamegraph.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PROFILE="${PROFILE:-maelstrom}"
CARGO_PROFILE="${CARGO_PROFILE:-release}"
FREQ="${FREQ:-999}"
OUT="${OUT:-$ROOT/perf/flamegraph-$PROFILE.svg}"
TOP="${TOP:-25}"

command -v perf >/dev/null || { echo "perf not found (apt-get install linux-perf)" >&2; exit 1; }
if ! command -v inferno-flamegraph >/dev/null || ! command -v inferno-collapse-perf >/dev/null; then
    echo "installing inferno (cargo install inferno)" >&2
    cargo install --quiet --locked inferno
fi
build release
[[ "$CARGO_PROFILE" == release ]] || build "$CARGO_PROFILE"
file="$(replay_file "$PROFILE")"
data="$WORK/perf-$PROFILE.data"
folded="$WORK/perf-$PROFILE.folded"

# cpu-clock: a software event, so it works in VMs without PMU access. DWARF unwinding needs no
# frame pointers; the release profile's line tables (debug = 1) give it symbols.
perf record --quiet -F "$FREQ" -e cpu-clock --call-graph dwarf,16384 -o "$data" -- \
    "$(bin "$CARGO_PROFILE" maelstrom-kafka)" <"$file" >/dev/null 2>"$WORK/perf-stderr"
perf script -i "$data" 2>/dev/null | inferno-collapse-perf >"$folded"
inferno-flamegraph --title "maelstrom-kafka, $PROFILE replay of $REQUESTS requests ($CARGO_PROFILE)" \
    <"$folded" >"$OUT"
echo "wrote $OUT"

total=$(awk '{ s += $NF } END { print s }' "$folded")
echo
echo "samples per thread (of $total):"
awk '{ n = $NF; split($1, f, ";"); t[f[1]] += n } END { for (k in t) printf "%6.1f%%  %s\n", 100 * t[k] / tot, k }' \
    tot="$total" "$folded" | sort -rn
echo
echo "top $TOP frames by self time:"
# The leaf of each folded stack is the frame that was running.
awk '{ n = $NF; $NF = ""; sub(/ $/, ""); k = split($0, f, ";"); s[f[k]] += n }
     END { for (k in s) printf "%6.2f%%  %s\n", 100 * s[k] / tot, k }' tot="$total" "$folded" |
    sort -rn | head -n "$TOP"
