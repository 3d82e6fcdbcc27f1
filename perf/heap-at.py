#!/usr/bin/env python3
"""The live heap of a heaptrack recording at chosen moments, by allocation site.

heaptrack_print reports the heap at its peak only; a run's memory has two moments of
interest, the end of the main phase (what the history holds) and the final phase's height.
This replays the recording's allocations and frees (its `+` and `-` records, timestamps `c`)
and prints, at each moment given, the bytes still allocated, grouped by the innermost three
frames in workload/src (file:line), and the heap and RSS every second.

    heaptrack -o run kafka-workload test ...     # built with the system allocator
    perf/heap-at.py run.zst 25,36.5              # seconds since the process started
"""
import collections
import re
import subprocess
import sys

path = sys.argv[1]
moments = [float(x) for x in sys.argv[2].split(",") if x] if len(sys.argv) > 2 else []
proc = subprocess.Popen(["zstd", "-dc", path], stdout=subprocess.PIPE, text=True, bufsize=1 << 20)
strings, ips, traces, infos, live = [None], [None], [(0, 0)], [], []
total, t, peak, timeline, taken = 0, 0.0, (0, 0.0), [], {}
for line in proc.stdout:
    c = line[0]
    if c == "+":
        i = int(line[2:], 16)
        live[i] += infos[i][0]
        total += infos[i][0]
        if total > peak[0]:
            peak = (total, t)
    elif c == "-":
        i = int(line[2:], 16)
        live[i] -= infos[i][0]
        total -= infos[i][0]
    elif c == "c":
        t = int(line[2:], 16) / 1000.0
        for m in moments:
            if m not in taken and t >= m:
                taken[m] = (total, list(live))
        timeline.append([t, total, None])
    elif c == "R" and timeline:
        timeline[-1][2] = int(line[2:], 16) * 4096
    elif c == "a":
        size, trace = line[2:].split()
        infos.append((int(size, 16), int(trace, 16)))
        live.append(0)
    elif c == "s":
        strings.append(line[2:].rstrip("\n").split(" ", 1)[1] if " " in line[2:] else "")
    elif c == "i":
        # ip, module, then (function, file, line) of the innermost frame and of each
        # frame inlined into it, innermost first.
        f = [int(x, 16) for x in line[2:].split()[2:]]
        ips.append([(f[k], f[k + 1], f[k + 2]) for k in range(0, len(f) - 2, 3)])
    elif c == "t":
        ip, parent = line[2:].split()
        traces.append((int(ip, 16), int(parent, 16)))


def site(trace, depth=3):
    frames = []
    while trace and len(frames) < depth:
        ip, trace = traces[trace]
        for _, file, ln in ips[ip]:
            name = strings[file] if file else ""
            if "workload/src/" in name:
                frames.append("%s:%d" % (re.sub(r".*workload/src/", "", name), ln))
    return " <- ".join(frames[:depth]) or "(outside workload/src)"


print("peak heap %.1f MB at %.1f s" % (peak[0] / 1e6, peak[1]))
last = -10.0
for s, heap, rss in timeline:
    if s - last >= 1.0:
        print("t=%6.1f s heap %7.1f MB rss %s" % (s, heap / 1e6, "%.1f MB" % (rss / 1e6) if rss else "-"))
        last = s
for m, (heap, at) in sorted(taken.items()):
    by_site = collections.Counter()
    for i, n in enumerate(at):
        if n:
            by_site[site(infos[i][1])] += n
    print("--- at %.1f s: heap %.1f MB" % (m, heap / 1e6))
    for k, n in by_site.most_common(30):
        print("%8.1f MB  %s" % (n / 1e6, k))
