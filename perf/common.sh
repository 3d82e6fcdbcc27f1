# Shared helpers for the perf/ scripts: building, generating replay files, timing runs.
# Sourced, not run. Expects `set -euo pipefail` in the caller.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
REQUESTS="${REQUESTS:-1000000}"
RUNS="${RUNS:-5}"
SEED="${SEED:-1}"
WORK="${PERF_WORK:-${TMPDIR:-/tmp}/kafka-perf}"
mkdir -p "$WORK"

# header: a comment line with the date, commit, toolchain, machine and how busy it is.
header() {
    echo "# $(date -u +%FT%TZ) commit ${COMMIT:-$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)}, $(rustc --version)"
    echo "# $(lscpu | sed -n 's/^Model name: *//p' | head -n1), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "# requests=$REQUESTS runs=$RUNS seed=$SEED workers=${MAELSTROM_KAFKA_WORKERS:-default}"
}

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

# runner_bins: sets NEW (this tree's release runner, or $NEW_BIN if given, a runner built
# elsewhere), NODE (the node every run drives: $NODE if given, else this tree's) and BINS
# (BASE, an older runner to interleave, if given, then NEW), building only the ones of this
# tree it uses. For the perf/runner-*.sh scripts.
runner_bins() {
    [[ -n "${NEW_BIN:-}" ]] || (cd "$ROOT" \
        && cargo build --quiet --release -p kafka-workload --bin kafka-workload)
    [[ -n "${NODE:-}" ]] || (cd "$ROOT" && cargo build --quiet --release --bin maelstrom-kafka)
    NEW="${NEW_BIN:-$TARGET_DIR/release/kafka-workload}"
    NODE="${NODE:-$TARGET_DIR/release/maelstrom-kafka}"
    BINS=()
    [[ -n "${BASE:-}" ]] && BINS+=("$BASE")
    BINS+=("$NEW")
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
# "wall_seconds peak_rss_kib cpu_seconds" (cpu = user + system, over all threads).
time_run() {
    local file="$1"; shift
    local stats="$WORK/time.$$"
    local start end
    start=$(date +%s%N)
    /usr/bin/time -f '%M %U %S' -o "$stats" "$@" <"$file" >/dev/null 2>"$WORK/stderr.$$" || {
        echo "failed: $*" >&2; cat "$WORK/stderr.$$" >&2; return 1; }
    end=$(date +%s%N)
    awk -v ns=$((end - start)) '{ printf "%.4f %s %.2f\n", ns / 1e9, $1, $2 + $3 }' <(tail -n1 "$stats")
}

# median: the median of the numbers on stdin, one per line.
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else printf "%.4f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# rate SECONDS: requests/s for $REQUESTS requests.
rate() {
    awk -v s="$1" -v n="$REQUESTS" 'BEGIN { printf "%.0f", n / s }'
}
