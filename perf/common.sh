# Shared helpers for the perf/ scripts: building, generating replay files, timing runs.
# Sourced, not run. Expects `set -euo pipefail` in the caller.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REQUESTS="${REQUESTS:-1000000}"
RUNS="${RUNS:-5}"
SEED="${SEED:-1}"
WORK="${PERF_WORK:-${TMPDIR:-/tmp}/kafka-perf}"
mkdir -p "$WORK"

need_time() {
    if [[ ! -x /usr/bin/time ]]; then
        echo "installing GNU time for peak-RSS figures" >&2
        apt-get install -y time >/dev/null || { apt-get update >/dev/null && apt-get install -y time >/dev/null; }
    fi
}

# build PROFILE: builds the node, the floor and the generator with cargo profile PROFILE.
build() {
    local profile="$1"
    (cd "$ROOT" && cargo build --quiet --profile "$profile" --bin maelstrom-kafka \
        && cargo build --quiet --profile "$profile" -p kafka-perf --bin floor --bin gen-requests)
}

# bin PROFILE NAME: path of a built binary.
bin() {
    local dir="$1"
    [[ "$dir" == dev ]] && dir=debug
    echo "$TARGET_DIR/$dir/$2"
}

# replay_file PROFILE_NAME: generates (once per request count and seed) and prints the path.
replay_file() {
    local file="$WORK/$1-$REQUESTS-$SEED.jsonl"
    if [[ ! -s "$file" ]]; then
        "$(bin release gen-requests)" --profile "$1" --requests "$REQUESTS" --seed "$SEED" >"$file.tmp"
        mv "$file.tmp" "$file"
    fi
    echo "$file"
}

# time_run FILE CMD...: runs CMD with FILE on stdin and stdout to /dev/null; prints
# "seconds peak_rss_kib".
time_run() {
    local file="$1"; shift
    local stats="$WORK/time.$$"
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f '%M' -o "$stats" "$@" <"$file" >/dev/null 2>"$WORK/stderr.$$" || {
        echo "failed: $*" >&2; cat "$WORK/stderr.$$" >&2; return 1; }
    end=$(date +%s%N)
    printf '%s %s\n' "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.4f", ns / 1e9 }')" "$(tail -n1 "$stats")"
}

# median: the median of the numbers on stdin, one per line.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# rate SECONDS: requests/s for $REQUESTS requests.
rate() {
    awk -v s="$1" -v n="$REQUESTS" 'BEGIN { printf "%.0f", n / s }'
}
