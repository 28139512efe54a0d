#!/usr/bin/env python3
"""A/B of launcher builds: start->exit over bare qemu, every variant alternated in one loop.

Usage (root, cpuset v1): bench/ab.py [--runs N] [--vcpus 2] [--floor F] LAUNCHER [LAUNCHER...]
Prints, per launcher, the median of its paired differences against bare qemu (wall and CPU of
the whole run). With --floor (bench/floor.c built) two more variants run in the same rounds: the
floor with no cpusets (one more exec, qemu -S and its QMP start-up: what any launcher that pins
before the guest runs pays) and the floor with the launcher's cpuset layout and moves. A
measurement, not a test: it asserts nothing about the figures. The guest exits at once through
isa-debug-exit (status 11); every vCPU is pinned to host CPU 1 in a delegated cpuset subtree
/sys/fs/cgroup/cpuset/qlab-<pid>, removed at the end with everything in it.
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import CPUSET_ROOT, QEMU, definition, rotated, write_bios  # noqa: E402

EXIT_STATUS = 11


def once(argv, env):
    t = time.perf_counter_ns()
    pid = os.posix_spawnp("timeout", ["timeout", "-s", "KILL", "30"] + argv, env,
                          file_actions=[(os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                                        (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, st, ru = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(st) != EXIT_STATUS:
        sys.exit(f"ab: {argv[0]} exited {os.waitstatus_to_exitcode(st)}, not {EXIT_STATUS}")
    return (time.perf_counter_ns() - t) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--vcpus", type=int, default=2)
    ap.add_argument("--floor", help="bench/floor.c built: the prototype floors, same rounds")
    ap.add_argument("launchers", nargs="+")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("ab: needs root (cpuset v1)")
    scratch = tempfile.mkdtemp(prefix="ql-ab.")
    os.chmod(scratch, 0o755)
    cs = f"{CPUSET_ROOT}/qlab-{os.getpid()}"
    try:
        write_bios(f"{scratch}/exit.bin", b"\xb0\x05\xe6\xf4\xf4\xeb\xfe")
        n = args.vcpus
        with open(f"{scratch}/ab.yml", "w") as f:
            f.write(definition("ab", f"{scratch}/exit.bin", n, [1] * n))
        os.mkdir(cs)
        for name in ("cpuset.cpus", "cpuset.mems"):
            with open(f"{CPUSET_ROOT}/{name}") as src, open(f"{cs}/{name}", "w") as dst:
                dst.write(src.read())
        env = dict(os.environ, QEMU_LAUNCHER_CONFIG_DIR=scratch,
                   QEMU_LAUNCHER_CPUSET_MOUNT_PATH=cs)
        bare = [QEMU, "-machine", "pc,accel=tcg", "-nodefaults", "-display", "none", "-m", "16",
                "-bios", f"{scratch}/exit.bin", "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
                "-smp", f"{n},sockets=1,cores={n},threads=1"]
        variants = [("bare", bare)]
        if args.floor:
            qmp = bare + ["-chardev", "socket,id=q,fd=3", "-mon", "chardev=q,mode=control", "-S"]
            floor = os.path.abspath(args.floor)
            variants += [("floor, QMP only", [floor, "-", "1"] + qmp),
                         ("floor, cpusets", [floor, cs, "1"] + qmp)]
        variants += [(ql, [os.path.abspath(ql), "ab"]) for ql in args.launchers]
        res = {k: [] for k, _ in variants}
        for i in range(args.warmup + args.runs):
            for k, argv in rotated(variants, i):
                r = once(argv, env)
                if i >= args.warmup:
                    res[k].append(r)
    finally:
        for root, dirs, _ in os.walk(cs, topdown=False):
            for d in dirs:
                os.rmdir(os.path.join(root, d))
        if os.path.isdir(cs):
            os.rmdir(cs)
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"# {args.runs} alternated rounds, {n} vCPUs on CPU 1, load average "
          f"{os.getloadavg()[0]:.2f}; bare qemu median "
          f"{statistics.median(x[0] for x in res['bare']):.2f} ms")
    for k, _ in variants[1:]:
        d = sorted(x[0] - y[0] for x, y in zip(res[k], res["bare"]))
        q = statistics.quantiles(d, n=10)
        cpu = statistics.median(x[1] - y[1] for x, y in zip(res[k], res["bare"]))
        # the mean too: a stall in a few launches in ten (the reap's, bench/RESULTS.md) moves
        # it and the p90, hardly the median
        print(f"{k}: paired over bare qemu {statistics.median(d):.2f} ms wall "
              f"[p10 {q[0]:.2f} .. p90 {q[8]:.2f}, mean {statistics.fmean(d):.2f}], "
              f"{cpu:.2f} ms CPU")
    print("cpusets left behind: " + ("none" if not os.path.exists(cs) else cs))


if __name__ == "__main__":
    main()
