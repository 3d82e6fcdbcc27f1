#!/usr/bin/env bash
# Where the runner's CPU goes in a live run: `perf record` of one kafka-workload test run, split
# by thread (the scheduler `kafka-workload`, each node's reader `nN-stdout`) and by phase (main,
# recovery, final, and "after": the checker and the files, on the main thread), with each
# group's top leaf frames and top own functions (the nearest kafka_workload frame that is not
# inlined). The phases come from the run's results.json `timeline-seconds`.
#
#   perf/runner-profile.sh                       # this tree's release build, the issue's run
#   BIN=/path/to/kafka-workload perf/runner-profile.sh
#   ARGS="--node-count 3 --concurrency 64 --rate 100000 --time-limit 20" perf/runner-profile.sh
#
# Settings (environment): BIN or NEW_BIN (default this tree's release kafka-workload), NODE (default this
# tree's release maelstrom-kafka), ARGS (default `--node-count 1 --concurrency 64 --rate 100000
# --time-limit 10 --recovery-sleep 1`), FREQ (samples a second, 499), TOP (frames shown, 10).
# Samples are `cpu-clock` at FREQ Hz with DWARF call stacks, so samples ÷ FREQ ≈ CPU seconds.
set -euo pipefail
source "$(dirname "$0")/common.sh"

ARGS="${ARGS:---node-count 1 --concurrency 64 --rate 100000 --time-limit 10 --recovery-sleep 1}"
FREQ="${FREQ:-499}"
TOP="${TOP:-10}"
# BIN is this script's older name for NEW_BIN: either skips building this tree's runner.
NEW_BIN="${NEW_BIN:-${BIN:-}}"
runner_bins
BIN="$NEW"
out="$WORK/runner-profile"
rm -rf "$out" && mkdir -p "$out"

header
echo "# args: $ARGS; runner $BIN; node $NODE"
# shellcheck disable=SC2086 # ARGS is a list of options
perf record -q -e cpu-clock -F "$FREQ" --call-graph dwarf,8192 -o "$out/perf.data" -- \
    "$BIN" test -w kafka --bin "$NODE" $ARGS --store "$out/store" --no-progress >"$out/run.log" 2>&1 || true
perf script -i "$out/perf.data" -F comm,tid,time,ip,sym 2>/dev/null >"$out/script.txt"
python3 - "$out" "$FREQ" "$TOP" <<'PY'
import collections, json, re, sys
out, freq, top = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = json.load(open(out + "/store/latest/results.json"))
tl = r["timeline-seconds"]
ops = sum(v.get("count", 0) for v in r["stats"]["by-f"].values())
print(f"# {ops} operations, {r['throughput']['ops-per-sec']} ops/s, runner CPU "
      f"{r['cpu']['runner-seconds']} s (spawn to teardown), node CPU {r['cpu']['node-seconds']}")
samples, cur = [], None
for line in open(out + "/script.txt"):
    if line.strip() and not line.startswith("\t"):
        m = re.match(r"\s*(.+?)\s+(\d+)\s+([\d.]+):", line)
        cur = [m.group(1), float(m.group(3)), []]
        samples.append(cur)
    elif line.strip() and cur is not None:
        parts = line.strip().split(None, 1)
        cur[2].append(parts[1] if len(parts) > 1 else "?")
# The runner's threads only (the node's are named reader, writer, worker-N).
mine = [s for s in samples if s[0] == "kafka-workload" or re.match(r".+-std(out|err)$", s[0])]
t0 = min(s[1] for s in mine)  # the run's origin, to within the first sample
def phase(t):
    t -= t0
    if t < tl["main-end"]: return "main"
    if t < tl["final-start"]: return "recovery"
    if t < tl["final-end"]: return "final"
    return "after"
order = ["main", "recovery", "final", "after"]
groups = collections.defaultdict(list)
for s in mine:
    groups[(phase(s[1]), s[0])].append(s)
for key in sorted(groups, key=lambda k: (order.index(k[0]), -len(groups[k]))):
    ss = groups[key]
    leaf, own = collections.Counter(), collections.Counter()
    for s in ss:
        leaf[re.sub(r"\s*\(inlined\)", "", s[2][0]) if s[2] else "?"] += 1
        f = next((f for f in s[2] if "kafka_workload" in f and "(inlined)" not in f), "-")
        own[re.sub(r"<.*?>", "", f)[:100]] += 1
    print(f"{key[0]:8} {key[1]:16} {len(ss):6} samples  ~{len(ss) / freq:.2f} s")
    print("    leaf: " + "; ".join(f"{n} {k[:60]}" for k, n in leaf.most_common(top)))
    print("    own:  " + "; ".join(f"{n} {k}" for k, n in own.most_common(top)))
PY
