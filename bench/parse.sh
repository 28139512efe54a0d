#!/bin/bash
# Parse cost: median wall time of `qemu-launcher --check` on generated definitions of 1,000 and
# 10,000 `qemu:` entries (drives, devices, netdevs written with key: value parts), minus the
# median of /bin/true, runs alternated so load drifts hit both alike. With a BASELINE binary
# (another build, e.g. of the previous commit) it runs in the same alternation and gets its own
# rows. A measurement, never a test: nothing asserts on the figures.
# Usage: bench/parse.sh [QL-BINARY] [RUNS] [BASELINE-QL-BINARY]
set -eu
QL=${1:-build/qemu-launcher}
RUNS=${2:-200}
BASE=${3:-}
DIR=$(mktemp -d /tmp/ql-parse-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
python3 - "$QL" "$RUNS" "$DIR" "$BASE" <<'PY'
import os, statistics, subprocess, sys, time
ql, runs, d = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
bins = [ql] + ([os.path.abspath(sys.argv[4])] if sys.argv[4] else [])

def gen(n, path):
    # Three parts per entry keeps 10,000 entries under the 100,000-node bound.
    out = ["launcher:\n  binary: /bin/true\nqemu:\n"]
    for i in range(n):
        k = i % 3
        if k == 0:
            out.append(f"- drive: {{file: /var/lib/vm/disk{i}.img, id: d{i}, format: raw}}\n")
        elif k == 1:
            out.append(f"- device: [virtio-blk-pci, drive: d{i - 1}, bus: pci.0]\n")
        else:
            out.append(f"- netdev: {{type: user, id: n{i}, hostfwd: 'tcp::{2000 + i}-:22'}}\n")
    with open(path, "w") as f:
        f.write("".join(out))

def once(argv):
    t = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, {"PATH": "/usr/bin:/bin"},
                         file_actions=[(os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0)])
    _, st, ru = os.wait4(pid, 0)
    dt = time.perf_counter_ns() - t
    if st != 0:
        sys.exit(f"{argv} failed with status {st}")
    return dt / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3

print(f"# {', '.join(bins)}: {runs} alternated runs each, {os.cpu_count()} CPUs, "
      f"load {os.getloadavg()[0]:.2f}")
# Wall time is what a user waits for, but on a loaded host it also counts time spent waiting
# for a CPU; the CPU time (user + system, from wait4) of the same runs does not.
print("| binary | entries | --check median | /bin/true median | over /bin/true | per entry | CPU over /bin/true | CPU per entry |")
print("|---|--------:|---------------:|-----------------:|---------------:|----------:|-------------------:|--------------:|")
for n in (0, 1000, 10000):
    gen(n, f"{d}/e{n}.yml")
    a = {b: [] for b in bins}
    t = []
    for _ in range(runs):
        for b in bins:
            a[b].append(once([b, "--config-dir", d, "--check", f"e{n}"]))
        t.append(once(["/bin/true"]))
    mb = statistics.median(x[0] for x in t)
    cb = statistics.median(x[1] for x in t)
    for b in bins:
        ma = statistics.median(x[0] for x in a[b])
        ca = statistics.median(x[1] for x in a[b])
        per = f"{(ma - mb) * 1000 / n:.2f} us" if n else "-"
        cper = f"{(ca - cb) * 1000 / n:.2f} us" if n else "-"
        name = "baseline" if b != ql else "this"
        print(f"| {name} | {n:7d} | {ma:11.3f} ms | {mb:13.3f} ms | {ma - mb:11.3f} ms | {per:>9} "
              f"| {ca - cb:15.3f} ms | {cper:>13} |")
PY
