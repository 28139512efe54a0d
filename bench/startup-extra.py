#!/usr/bin/env python3
"""What work in the launcher's process costs qemu's start-up: bench/floor.c with one extra piece
of work right after the spawn (QL_FLOOR_EXTRA: none, fork, faults:N, spin:US), the variants
alternated, qemu's exec -> QMP greeting and its threads' time on a CPU from bench/startup.bt.
The variant `nocpusets` is the floor without its cpuset work (QMP and -S only): against `none`,
what the cpusets themselves cost qemu's start-up.

Usage (root, cpuset v1): bench/startup-extra.py [--runs 80] [--launcher build-bench/qemu-launcher]
    [EXTRA...]   (default: none fork faults:400 spin:4000; nocpusets: the floor without cpusets)
The launcher only prints the qemu command line (--dry-run). A measurement, not a test: it asserts
nothing. Runs in a delegated cpuset subtree it creates and removes.
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import (PIN_CPU, Cpuset, definition, qemu_argv_of, rotated,  # noqa: E402
                   startup_line, tracing, write_bios)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=80)
    ap.add_argument("--launcher", default="build-bench/qemu-launcher")
    ap.add_argument("extra", nargs="*", default=["none", "fork", "faults:400", "spin:4000"])
    args = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    scratch = tempfile.mkdtemp(prefix="ql-extra.")
    os.chmod(scratch, 0o755)
    floor = f"{scratch}/ql-floor"  # the name startup.bt traces
    subprocess.run(["cc", "-O2", "-Wall", "-o", floor, f"{here}/floor.c"], check=True)
    os.mkdir(f"{scratch}/conf")
    write_bios(f"{scratch}/exit.bin", b"\xb0\x05\xe6\xf4\xf4\xeb\xfe")
    with open(f"{scratch}/conf/exit2.yml", "w") as f:
        f.write(definition("exit2", f"{scratch}/exit.bin", 2, [PIN_CPU] * 2))
    cs = Cpuset()
    out = f"{scratch}/trace.txt"
    pids = {x: set() for x in args.extra}
    try:
        env = dict(os.environ, QEMU_LAUNCHER_CONFIG_DIR=f"{scratch}/conf",
                   QEMU_LAUNCHER_CPUSET_MOUNT_PATH=cs.path)
        env.pop("QEMU_LAUNCHER_CPUSET_PREFIX", None)
        argv = [floor, cs.path, str(PIN_CPU)] + sum(qemu_argv_of(args.launcher, "exit2", env), [])
        with tracing("startup.bt", [], out):
            for i in range(args.runs):
                for x in rotated(args.extra, i):
                    e = dict(env, QL_FLOOR_EXTRA="none" if x == "nocpusets" else x)
                    p = subprocess.Popen([floor, "-"] + argv[2:] if x == "nocpusets" else argv,
                                         env=e,
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
                    pids[x].add(str(p.pid))
                    try:
                        p.wait(timeout=60)
                    except subprocess.TimeoutExpired:  # qemu first: it outlives the floor
                        with open(f"/proc/{p.pid}/task/{p.pid}/children") as c:
                            for child in c.read().split():
                                os.kill(int(child), signal.SIGKILL)
                        p.kill()
                        p.wait()
        rows = {x: [] for x in args.extra}
        whole = {x: [] for x in args.extra}  # qemu's whole run: its time on a CPU, its faults
        with open(out) as f:
            for line in f:
                got = startup_line(line)
                parts = line.split()
                for x in args.extra:
                    if got and got[1] in pids[x]:
                        rows[x].append((got[2]["startup"], got[2]["qemu_cpu"]))
                    elif len(parts) == 7 and parts[2] == "whole" and parts[1] in pids[x]:
                        whole[x].append((int(parts[4]) / 1000, int(parts[6])))
        print(f"# {args.runs} alternated runs of bench/floor.c per variant, "
              f"load average {os.getloadavg()[0]:.2f}")
        print("| QL_FLOOR_EXTRA | qemu exec -> greeting (median) | qemu's threads on a CPU | "
              "the same, qemu's whole run | qemu's page faults |")
        print("|---|---:|---:|---:|---:|")
        for x in args.extra:
            r, w = rows[x], whole[x] or [(float("nan"), float("nan"))]
            print(f"| {x} | {statistics.median(a for a, _ in r):.2f} ms | "
                  f"{statistics.median(b for _, b in r):.2f} ms | "
                  f"{statistics.median(a for a, _ in w):.2f} ms | "
                  f"{statistics.median(b for _, b in w):.0f} |")
    finally:
        cs.remove()
        subprocess.run(["rm", "-rf", scratch])


if __name__ == "__main__":
    main()
