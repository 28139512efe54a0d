#!/usr/bin/env python3
"""Whole-host start with cpuset v1: what each task the launcher moves costs (issue 11 target:
<= 10 us per task moved). A measurement, not a test: it prints figures, it asserts nothing on
timing.

With isolation, cpuset v1 moves every task of its mount path M into M/<prefix>/pool at prepare
(one write per thread id into pool/tasks through one open fd) and back into M/tasks at teardown.
Here M is a delegated subtree (/sys/fs/cgroup/cpuset/qlbench-<pid>, cpus and mems copied from
the root) holding only this script's sleepers: N tasks (N in --counts), about a fifth of them
threads of multi-threaded sleepers, since `tasks` lists threads. The launcher runs a 2-vCPU TCG
guest pinned to host CPU 1 that exits by itself (isa-debug-exit), N alternating between runs.

Three passes, N alternated in each (bpftrace, syscall and sched tracepoints only):
- light (bench/hostmove-light.bt, the headline figures): nothing printed while a launcher runs;
  a burst is timed from the open of its tasks file to its close, and the launcher's time off its
  CPU within it is split into blocked (the first move waiting for an RCU grace period when the
  kernel's migration lock is cold) and preempted. Per burst: span / tasks moved, the first
  move's wait, and (span - that wait) / the other tasks.
- full (bench/hostmove.bt): each write timed from entry to exit, for the time inside write(2)
  and the first write; its line per write costs the launcher ~9 us each (the calibration below),
  so its spans are not used.
- untraced: the launcher's start->exit wall time.
A calibration in each pass (a Python loop of writes run as `qemu-launcher`) gives what the trace
adds to each write of a traced process. --why adds bench/hostmove-why.bt over all passes: the
kernel stacks the launcher blocks in and the cadence of its task attaches.

Run as root:  bench/hostmove.py --launcher build-bench/qemu-launcher [--runs 10] [--why]
Every process it starts is killed by pid on the way out (the sleepers also end by themselves
after 600 s); the subtree is removed also on failure ("cpusets left behind: none").
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tracer as bpftrace  # noqa: E402  (bench/tracer.py)
import bench as b  # noqa: E402  (the guest, the definition, the subtree, spawn and kill_all)

THREADED_TASKS = 5  # a multi-threaded sleeper: its main thread and 4 more
SETTLE = 0.5  # s between placing the sleepers and a launch: longer than an RCU grace period

sleepers = []  # pids of the sleepers, killed by pid on the way out


def log(*a):
    print("#", *a, file=sys.stderr, flush=True)


# --- sleepers ----------------------------------------------------------------------------------

def start_sleepers(ntasks):
    """About ntasks/5 tasks as threads of multi-threaded sleepers (5 tasks each), the rest
    `sleep 600` processes; returns their pids once every thread exists."""
    nthreaded = ntasks // (THREADED_TASKS * THREADED_TASKS)
    nsleep = ntasks - nthreaded * THREADED_TASKS
    code = ("import threading, time\n"
            f"for _ in range({THREADED_TASKS - 1}):\n"
            "    threading.Thread(target=time.sleep, args=(600,), daemon=True).start()\n"
            "time.sleep(600)\n")
    pids = []
    for i in range(nthreaded + nsleep):
        argv = [sys.executable, "-c", code] if i < nthreaded else ["sleep", "600"]
        pid = os.posix_spawnp(argv[0], argv, os.environ, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0)])
        sleepers.append(pid)
        pids.append(pid)
    for pid in pids[:nthreaded]:
        ok = b.wait_for(lambda: len(os.listdir(f"/proc/{pid}/task")) >= THREADED_TASKS, 20)
        if not ok:
            raise RuntimeError(f"sleeper {pid} did not start its threads")
    return pids


def move_procs(pids, procs_file):
    """Whole processes (every thread) into a cgroup, one write of a pid each."""
    fd = os.open(procs_file, os.O_WRONLY)
    try:
        for pid in pids:
            os.write(fd, str(pid).encode())
    finally:
        os.close(fd)


def stop_sleepers():
    for pid in list(sleepers):
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        sleepers.remove(pid)


def count_tasks(path):
    with open(f"{path}/tasks") as f:
        return len(f.read().split())


# --- trace ------------------------------------------------------------------------------------

def start_tracer(bt, out, args=()):
    tracer = bpftrace.start(bt, args, out)
    b.started_pids.append(tracer.pid)
    return tracer


def stop_tracer(tracer):
    bpftrace.stop(tracer)
    b.started_pids.remove(tracer.pid)


def calibrate(scratch):
    """What a write costs a process the trace follows: a Python loop of 20000 one-byte writes to
    /dev/null run as `qemu-launcher` (a symlink to the interpreter, so the trace's exec probe
    takes it for a launcher), in ns per write. The difference between the modes is the probe
    cost each of the launcher's moves carries in that mode."""
    link = f"{scratch}/cal/qemu-launcher"
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(sys.executable, link)
    code = ("import os, time\nfd = os.open('/dev/null', os.O_WRONLY)\nbest = None\n"
            "for _ in range(5):\n    t = time.perf_counter_ns()\n"
            "    for _ in range(20000): os.write(fd, b'1')\n"
            "    d = (time.perf_counter_ns() - t) / 20000\n"
            "    best = d if best is None else min(best, d)\nprint(best)\n")
    out = subprocess.run(b.TIMEOUT + ["60", link, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    return float(out.split()[0])


def runs_of(lines, binary):
    """One record per launcher process exec'd from `binary` (other sessions' launchers may run
    meanwhile): every open of a file with its fd, writes and close (full trace), or the light
    trace's summary line."""
    runs, by_pid, pending, fds = [], {}, {}, {}
    for line in lines:
        parts = line.rstrip("\n").split(" ", 3)
        if len(parts) < 3 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        ns, ev, pid = int(parts[0]), parts[1], int(parts[2])
        detail = parts[3] if len(parts) > 3 else ""
        if ev == "exec":
            if os.path.realpath(detail) == binary:
                by_pid[pid] = {"pid": pid, "start": ns, "files": []}
                runs.append(by_pid[pid])
                fds[pid] = {}
            continue
        r = by_pid.get(pid)
        if not r:
            continue
        if ev == "open":
            pending[pid] = detail
        elif ev == "fd":
            fd = int(detail)
            if fd >= 0 and pid in pending:
                f = {"path": pending[pid], "fd": fd, "open": ns, "close": None, "writes": []}
                r["files"].append(f)
                fds[pid][fd] = f
            pending.pop(pid, None)
        elif ev == "close":
            f = fds[pid].pop(int(detail), None)
            if f:
                f["close"] = ns
        elif ev == "w":
            fd, t0, ret = (int(x) for x in detail.split())
            f = fds[pid].get(fd)
            if f:
                f["writes"].append({"t0": t0, "t1": ns, "ret": ret})
        elif ev == "sum":  # the light trace's one line, at the launcher's exit
            r["sum"] = [int(x) for x in detail.split()]
            r["end"] = ns
            del by_pid[pid]
        elif ev == "exit":
            r["end"] = ns
            del by_pid[pid]
    return runs


def light_burst(v, n):
    """One burst from the light trace's summary: open, close, blocked, first blocked interval
    (length, when it began), preempted."""
    a, z, blocked, first, first_at, preempted = v
    if not a or not z:
        return None
    span = z - a
    # the first move's wait: the launcher blocked right at the burst's start
    wait = first if first and first_at - a < 100e3 else 0
    return {"n": n, "span_us": span / 1e3, "per_task_us": span / 1e3 / n,
            "first_wait_us": wait / 1e3,
            "rest_per_task_us": (span - wait) / 1e3 / (n - 1) if n > 1 else float("nan"),
            "blocked_us": blocked / 1e3, "preempted_us": preempted / 1e3}


def full_burst(f):
    """One burst from the full trace: the writes on one open of a tasks file. Its span is the
    trace's own (a printed line per write), so only the writes' own times are kept."""
    ws = f["writes"]
    if not ws:
        return None
    n = sum(1 for w in ws if w["ret"] > 0)
    span = f["close"] - f["open"]
    return {"n": n, "span_us": span / 1e3, "first_us": (ws[0]["t1"] - ws[0]["t0"]) / 1e3,
            "in_write_rest_us": sum(w["t1"] - w["t0"] for w in ws[1:]) / 1e3 /
            max(len(ws) - 1, 1),
            "slowest_rest_us": max((w["t1"] - w["t0"] for w in ws[1:]), default=0) / 1e3}


def analyse(r, n):
    """The start burst (into pool/tasks at prepare), the end burst (into the mount path's
    `tasks` at teardown) and, in the full trace, the pool's last cpuset.cpus write (it shrinks
    the pool: every pool task's affinity changes)."""
    out = {"wall_ms": (r["end"] - r["start"]) / 1e6 if "end" in r else None}
    if "sum" in r:
        v = r["sum"][1:]
        for k, part in (("start", v[0:6]), ("end", v[6:12])):
            x = light_burst(part, n) if n else None
            if x:
                out[k] = x
        return out
    # move_all_tasks reads the source's `tasks` (open, read, close) and then opens the
    # destination for its writes: the start burst is an open of pool/tasks right after one of
    # the mount path's `tasks`, the end burst the other way round
    files = r["files"]
    for prev, f in zip(files, files[1:]):
        if not f["close"]:
            continue
        k = {("tasks", "pool/tasks"): "start", ("pool/tasks", "tasks"): "end"}.get(
            (prev["path"], f["path"]))
        if k and k not in out and full_burst(f):
            out[k] = full_burst(f)
    cpus = [f for f in r["files"] if f["path"] == "pool/cpuset.cpus" and f["writes"]]
    if cpus:
        w = cpus[-1]["writes"][-1]
        out["pool_cpus_us"] = (w["t1"] - w["t0"]) / 1e3
    return out


# --- the bench --------------------------------------------------------------------------------

def arrange(groups, want, cs):
    """Puts the sleeper groups needed for `want` tasks into M, the others back into the root."""
    total = 0
    for size, pids in groups:
        inside = total + size <= want
        move_procs(pids, f"{cs.path if inside else b.CPUSET_ROOT}/cgroup.procs")
        total += size if inside else 0
    n = count_tasks(cs.path)
    if n != want:
        raise RuntimeError(f"{cs.path} holds {n} tasks, wanted {want}")


def one_launch(argv, env, cs, n):
    wall, _ = b.time_run("launcher", argv, env)
    left = cs.leftovers()
    back = count_tasks(cs.path)
    if left or back != n:
        raise RuntimeError(f"after a run: {back} tasks in M (wanted {n}), sets left: {left}")
    return wall


def med(xs):
    xs = [x for x in xs if x == x]
    return statistics.median(xs) if xs else float("nan")


MODES = ("light", "full", "untraced")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launcher", required=True)
    ap.add_argument("--runs", type=int, default=10, help="runs per N in each of the 3 passes")
    ap.add_argument("--counts", default="0,100,300", help="tasks in M per run, alternated")
    ap.add_argument("--passes", default=",".join(MODES),
                    help="light (the headline figures), full (each write timed), untraced "
                    "(wall time)")
    ap.add_argument("--why", action="store_true",
                    help="also run bench/hostmove-why.bt over all passes: the kernel stacks the "
                    "launcher blocks in and the cadence of its task attaches")
    ap.add_argument("--trace-out", help="keep the raw traces as PREFIX-light.txt, -full.txt")
    args = ap.parse_args()
    ql = os.path.realpath(args.launcher)
    counts = [int(x) for x in args.counts.split(",")]
    passes = [m for m in MODES if m in args.passes.split(",")]
    if os.geteuid() != 0:
        sys.exit("hostmove: needs root (cpuset v1)")
    if not shutil.which("bpftrace"):
        sys.exit("hostmove: needs bpftrace")

    here = os.path.dirname(os.path.abspath(__file__))
    scratch = tempfile.mkdtemp(prefix="ql-hostmove.")
    os.chmod(scratch, 0o755)
    conf = f"{scratch}/conf"
    os.mkdir(conf)
    b.write_bios(f"{scratch}/exit.bin", b"\xb0\x05\xe6\xf4\xf4\xeb\xfe")
    with open(f"{conf}/exit2.yml", "w") as f:
        f.write(b.definition("exit2", f"{scratch}/exit.bin", 2, [b.PIN_CPU] * 2))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cs = b.Cpuset()
    env = dict(os.environ, QEMU_LAUNCHER_CONFIG_DIR=conf, QEMU_LAUNCHER_CPUSET_MOUNT_PATH=cs.path)
    env.pop("QEMU_LAUNCHER_CPUSET_PREFIX", None)
    argv = b.TIMEOUT + ["30", ql, "exit2"]
    walls = {m: {n: [] for n in counts} for m in MODES}
    traced = {m: {n: [] for n in counts} for m in MODES}
    cal = {}  # pass -> ns per write of a traced process
    load = [("before", open("/proc/loadavg").read().strip())]
    left, groups, why_text = [], [], None
    try:
        prev = 0
        for n in sorted(set(counts)):  # nested groups: N tasks = the first groups together
            if n > prev:
                groups.append((n - prev, start_sleepers(n - prev)))
            prev = n
        why = None
        if args.why:
            why_out = f"{scratch}/why.txt"
            why = start_tracer(f"{here}/hostmove-why.bt", why_out, [ql])
        for mode in passes:
            tracer, out = None, None
            if mode != "untraced":
                out = (f"{args.trace_out}-{mode}.txt" if args.trace_out
                       else f"{scratch}/trace-{mode}.txt")
                bt = f"{here}/hostmove-light.bt" if mode == "light" else f"{here}/hostmove.bt"
                tracer = start_tracer(bt, out)
            cal[mode] = calibrate(scratch)
            log(f"{mode}: {args.runs} runs per N in {counts}, alternated; a traced write "
                f"costs {cal[mode]:.0f} ns")
            for i in range(args.runs):
                for n in counts:
                    arrange(groups, n, cs)
                    time.sleep(SETTLE)
                    walls[mode][n].append(one_launch(argv, env, cs, n))
            if tracer:
                time.sleep(1)
                stop_tracer(tracer)
                with open(out, errors="replace") as f:
                    runs = runs_of(f, ql)
                if len(runs) != args.runs * len(counts):
                    raise RuntimeError(f"{mode} trace: {len(runs)} launcher runs, expected "
                                       f"{args.runs * len(counts)}")
                for i, r in enumerate(runs):  # launch order: N alternated as in `counts`
                    n = counts[i % len(counts)]
                    a = analyse(r, n)
                    if n and a.get("start", {}).get("n") != n:
                        raise RuntimeError(f"{mode} trace, run {i}: start burst {a.get('start')}"
                                           f", expected {n} tasks")
                    traced[mode][n].append(a)
            load.append((f"after the {mode} pass", open("/proc/loadavg").read().strip()))
        if why:
            stop_tracer(why)
            with open(why_out, errors="replace") as f:
                why_text = "".join(line for line in f
                                   if not line.startswith(bpftrace.READY)).strip()
    finally:
        b.kill_all()  # the tracer and any launcher still running
        if os.path.isdir(cs.path):  # the sleepers out of the subtree, then ended
            for _, pids in groups:
                try:
                    move_procs(pids, f"{b.CPUSET_ROOT}/cgroup.procs")
                except OSError:
                    pass
        stop_sleepers()
        left = cs.leftovers()
        cs.remove()
        if os.path.isdir(cs.path):
            left.append(os.path.basename(cs.path))
        shutil.rmtree(scratch, ignore_errors=True)
    report(args, counts, walls, traced, cal, load, left)
    if why_text:
        print("\n### Why (bench/hostmove-why.bt over all passes)\n\n```\n" + why_text + "\n```")


def report(args, counts, walls, traced, cal, load, left):
    def col(mode, n, k, key, fmt):
        xs = [r[k][key] for r in traced[mode][n] if k in r and key in r[k]]
        return fmt.format(med(xs)) if xs else "-"

    print(f"| tasks in M | move | per task: span / tasks | first move's wait | per task after "
          f"the first | full trace: first write | full trace: in write(2) per task after the "
          f"first |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n in counts:
        if not n:
            continue
        for k, what in (("start", "into the pool (prepare)"), ("end", "back to M (teardown)")):
            print(f"| {n} | {what} | {col('light', n, k, 'per_task_us', '{:.2f} us')} | "
                  f"{col('light', n, k, 'first_wait_us', '{:.0f} us')} | "
                  f"{col('light', n, k, 'rest_per_task_us', '{:.2f} us')} | "
                  f"{col('full', n, k, 'first_us', '{:.0f} us')} | "
                  f"{col('full', n, k, 'in_write_rest_us', '{:.2f} us')} |")
    print()
    print("| tasks in M | launcher start->exit, untraced (median) | light trace | full trace | "
          "pool shrink write (full trace) |")
    print("|---:|---:|---:|---:|---:|")
    for n in counts:
        print(f"| {n} | {med(walls['untraced'][n]):.1f} ms | {med(walls['light'][n]):.1f} ms | "
              f"{med(walls['full'][n]):.1f} ms | "
              f"{med([r['pool_cpus_us'] for r in traced['full'][n] if 'pool_cpus_us' in r]):.0f}"
              f" us |")
    print()
    print(f"- {args.runs} runs per N and pass, N alternated {counts}; medians. The light trace "
          f"has no write probe: a burst is its tasks file's open -> close; the full trace times "
          f"each write. A write of a traced process costs (calibration, Python loop to "
          f"/dev/null): " + ", ".join(f"{m} {v:.0f} ns" for m, v in cal.items()) + ".")
    for mode in ("light", "full"):
        for n in counts:
            for k in ("start", "end"):
                bs = [r[k] for r in traced[mode][n] if k in r]
                if not bs:
                    continue
                line = (f"- {mode} trace, N={n}, {k} burst per run: span ms " +
                        ", ".join(f"{x['span_us'] / 1e3:.2f}" for x in bs))
                if mode == "light":
                    line += ("; first move's wait us " +
                             ", ".join(f"{x['first_wait_us']:.0f}" for x in bs) +
                             "; blocked in all us " +
                             ", ".join(f"{x['blocked_us']:.0f}" for x in bs) +
                             "; preempted us " + ", ".join(f"{x['preempted_us']:.0f}" for x in bs))
                else:
                    line += ("; first write us " + ", ".join(f"{x['first_us']:.0f}" for x in bs) +
                             "; in write(2) per later task us " +
                             ", ".join(f"{x['in_write_rest_us']:.2f}" for x in bs) +
                             "; slowest later write us " +
                             ", ".join(f"{x['slowest_rest_us']:.0f}" for x in bs))
                print(line)
    for n in counts:
        print(f"- N={n}, launcher start->exit ms, untraced: " +
              ", ".join(f"{x:.1f}" for x in walls["untraced"][n]))
    print("- load average: " + "; ".join(f"{k} {v}" for k, v in load))
    print(f"- cpusets left behind: {', '.join(left) if left else 'none'}")


if __name__ == "__main__":
    main()
