#!/bin/bash
# Parse cost: median wall time of `qemu-launcher --check` on generated definitions of 1,000 and
# 10,000 `qemu:` entries (drives, devices, netdevs written with key: value parts), minus the
# median of /bin/true, runs alternated so load drifts hit both alike. A measurement, never a
# test: nothing asserts on the figures. Usage: bench/parse.sh [QL-BINARY] [RUNS]
set -eu
QL=${1:-build/qemu-launcher}
RUNS=${2:-200}
DIR=$(mktemp -d /tmp/ql-parse-bench.XXXXXX)
trap 'rm -rf "$DIR"' EXIT
python3 - "$QL" "$RUNS" "$DIR" <<'PY'
import os, statistics, subprocess, sys, time
ql, runs, d = os.path.abspath(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

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

print(f"# {ql}, {runs} alternated runs each, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
# Wall time is what a user waits for, but on a loaded host it also counts time spent waiting
# for a CPU; the CPU time (user + system, from wait4) of the same runs does not.
print("| entries | --check median | /bin/true median | over /bin/true | per entry | CPU over /bin/true | CPU per entry |")
print("|--------:|---------------:|-----------------:|---------------:|----------:|-------------------:|--------------:|")
for n in (0, 1000, 10000):
    gen(n, f"{d}/e{n}.yml")
    check = [ql, "--config-dir", d, "--check", f"e{n}"]
    a, b = [], []
    for _ in range(runs):
        a.append(once(check))
        b.append(once(["/bin/true"]))
    ma, mb = statistics.median(x[0] for x in a), statistics.median(x[0] for x in b)
    ca, cb = statistics.median(x[1] for x in a), statistics.median(x[1] for x in b)
    per = f"{(ma - mb) * 1000 / n:.2f} us" if n else "-"
    cper = f"{(ca - cb) * 1000 / n:.2f} us" if n else "-"
    print(f"| {n:7d} | {ma:11.3f} ms | {mb:13.3f} ms | {ma - mb:11.3f} ms | {per:>9} "
          f"| {ca - cb:15.3f} ms | {cper:>13} |")
PY
