#!/usr/bin/env python3
"""Where one launch's time goes, from a bpftrace trace (bench/breakdown.bt; tracepoints, no
ptrace): the launcher and the prototype floor (bench/floor.c) alternated, phase medians side by
side. A measurement, not a test. Run as root through bench/run.sh --breakdown, or:
  bench/breakdown.py --launcher L --floor F --conf DIR --cpuset M --name exit2 --runs 20"""
import argparse
import bisect
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tracer as bpftrace  # noqa: E402  (bench/tracer.py)
from bench import rotated  # noqa: E402

PHASES = [
    ("start", "spawn", "before qemu is spawned (exec of the launcher to its fork)"),
    ("spawn", "qexec", "fork/vfork -> exec of qemu"),
    ("qexec", "qgreet", "qemu starts up, until it sends its QMP greeting"),
    ("qgreet", "answers", "greeting sent -> qemu's last answer before cont read (qemu builds the machine)"),
    ("answers", "cont", "answers -> cont sent (placement, read-backs)"),
    ("cont", "qexit", "cont -> qemu exits (the guest runs)"),
    ("qexit", "end", "qemu exits -> launcher exits (teardown)"),
    ("start", "end", "total"),
    # qemu's own start-up varies by milliseconds from launch to launch: the spans that leave it
    # out compare builds more closely than the total
    ("answers", "qexit", "answers -> qemu exits (placement, cont, the guest)"),
    ("answers", "end", "answers -> launcher exits (all that follows qemu's start-up)"),
    # the same for every launcher, whatever it asks before cont: from qemu's first answer (its
    # main loop runs, the machine is built)
    ("qcaps", "qexit", "qemu answers qmp_capabilities -> qemu exits (cont's wait, the guest)"),
    ("qcaps", "end", "qemu answers qmp_capabilities -> launcher exits"),
]


def runs_of(lines, binaries):
    """Groups trace lines into one record per launcher/floor process started from `binaries`
    (other sessions' launchers may run meanwhile)."""
    runs, by_pid = [], {}
    for line in lines:
        parts = line.rstrip("\n").split(" ", 4)
        # a traced string may hold a newline: keep only well-formed lines
        if len(parts) < 4 or not parts[0].isdigit() or not parts[2].isdigit():
            continue
        ns, ev, pid = int(parts[0]), parts[1], int(parts[2])
        detail = parts[4] if len(parts) > 4 else ""
        words = detail.split(" ", 1)
        if ev == "exec" and words[0] in ("qemu-launcher", "ql-floor") and pid not in by_pid:
            if len(words) < 2 or os.path.realpath(words[1]) not in binaries:
                continue
            r = {"kind": words[0], "bin": os.path.realpath(words[1]), "pid": pid, "start": ns,
                 "ev": []}
            by_pid[pid] = r
            runs.append(r)
            continue
        owner = by_pid.get(pid)
        if ev == "fork" and owner:
            child = int(detail.split()[0])
            owner["ev"].append((ns, "fork", child))
            by_pid.setdefault(child, owner)
            owner.setdefault("children", []).append(child)
            continue
        if owner:
            owner["ev"].append((ns, ev, pid, detail))
    return runs


def phases(r):
    t = {"start": r["start"]}
    kids = r.get("children", [])
    qpid = kids[0] if kids else None
    placing = False  # the launcher opened a file after the greeting: the placement began
    for e in r["ev"]:
        ns, ev = e[0], e[1]
        if ev == "cost":  # on-CPU ns and page faults of one of the run's own processes
            who = "main" if e[2] == r["pid"] else "other"
            cpu, faults = (int(x) for x in e[3].split())
            t["cpu_" + who] = t.get("cpu_" + who, 0) + cpu
            t["pf_" + who] = t.get("pf_" + who, 0) + faults
        elif ev == "clone" and "spawn" not in t and e[2] == r["pid"]:
            t["spawn"] = ns - int(e[3].split()[1])  # when the clone/vfork call began
            t["spawn_call"] = int(e[3].split()[1])
        elif ev == "clone" and e[2] == r["pid"] and "guardian_fork" not in t:
            t["guardian_fork"] = int(e[3].split()[1])
        elif ev == "exec" and e[2] == qpid:
            t["qexec"] = ns
        elif ev == "qsend" and e[2] == qpid and "qgreet" not in t:
            t["qgreet"] = ns
        elif ev == "qsend" and e[2] == qpid and "qcaps" not in t:
            t["qcaps"] = ns  # its answer to qmp_capabilities: the machine is built
        elif ev == "read" and e[2] == r["pid"] and "greet" not in t and '"QMP"' in e[3]:
            t["greet"] = ns
        elif ev == "read" and e[2] == r["pid"] and "greet" in t and "cont" not in t and \
                e[3].startswith("{"):
            # the last QMP read before cont (a file read never starts with a brace): the
            # answer cont waited for, where the span that
            # is the launcher's starts (query-cpus-fast's; with thread names qmp_capabilities',
            # qemu's first once its machine is built, the threads placed by their names then)
            t["answers"] = ns
        elif ev in ("open", "mkdir") and e[2] == r["pid"] and "greet" in t:
            placing = True
        elif ev in ("send", "write") and e[2] == r["pid"] and "cont" not in t and \
                "answers" in t and (e[3].startswith("}") or (placing and '"cont"' in e[3])):
            # cont: both write it ahead but for its closing brace, sent alone once placed
            # (qmp_stage; the floor without cpusets places nothing); a whole one counts too
            t["cont"] = ns
        elif ev == "reap" and e[2] == r["pid"]:
            t["reap"] = int(e[3])
        elif ev == "qwait" and e[2] == qpid and "answers" not in t:
            # qemu kept off its CPU by the launcher (or floor) that woke there, before its
            # machine was built
            t["qwait"] = t.get("qwait", 0) + int(e[3])
            t["qwaits"] = t.get("qwaits", 0) + 1
        elif ev == "exit" and e[2] == qpid:
            t["qexit"] = ns
        elif ev == "exit" and e[2] == r["pid"]:
            t["end"] = ns
    t.setdefault("answers", t.get("greet"))
    # a vCPU moved into its cpuN set before the answer: placed by the threads' names
    moves = [e[0] for e in r["ev"] if e[2] == r["pid"] and e[1] == "open" and
             "/cpu" in e[3] and e[3].endswith("/tasks") and "answers" in t and
             "greet" in t and t["greet"] < e[0] < t["answers"]]
    if moves:
        t["early_ahead"] = t["answers"] - moves[-1]
    # --costs: the main process's (ns, on-CPU ns, faults, system calls) at each of its calls
    t["ctr"] = [(e[0],) + tuple(int(x) for x in e[3].split())
                for e in r["ev"] if e[1] == "ctr" and e[2] == r["pid"]]
    # the launcher prepares the host right after the spawn, before it reads qemu's greeting
    # (vm.c prepare_host); "prep_late": how long after the launcher read qemu's last answer
    # before cont the prepare ended (negative: before it), i.e. whether it was on the critical
    # path
    if r["kind"] == "qemu-launcher" and "qexec" in t and "greet" in t:
        own = [e[0] for e in r["ev"] if e[2] == r["pid"] and e[1] in ("open", "mkdir")
               and t["qexec"] < e[0] < t["greet"]]
        if own:
            t["prep0"], t["prep1"] = own[0], own[-1]
            if "cont" in t:
                t["prep_late"] = own[-1] - t["answers"]
    return t


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def costs_at(t, key):
    """The main process's (on-CPU ns, faults, system calls) at phase boundary `key`: its counters
    at its last system call up to then; at "end", its exit's totals."""
    ctr = t["ctr"]
    if key == "end":
        return (t.get("cpu_main", ctr[-1][1]), t.get("pf_main", ctr[-1][2]), ctr[-1][3])
    if key == "start":
        return (0, 0, 0)
    i = bisect.bisect_right(ctr, t[key], key=lambda c: c[0]) - 1
    return ctr[i][1:] if i >= 0 else (0, 0, 0)


def print_costs(res, cols):
    """The main process's own work in each phase, each launcher beside the floor (--costs)."""
    heads = []
    for what in ("on a CPU, ms", "system calls", "page faults"):
        heads += [f"{c} {what}" for c in cols]
    print("\n| phase (medians; the main process only) | " + " | ".join(heads) + " |")
    print("|---|" + "---:|" * len(heads))
    for a, b, what in PHASES:
        cells = []
        for i, scale in ((0, 1e6), (2, 1), (1, 1)):
            for c in cols:
                xs = [(costs_at(t, b)[i] - costs_at(t, a)[i]) / scale for t in res[c]
                      if t["ctr"] and a in t and b in t]
                cells.append(f"{med(xs):.2f}" if scale > 1 else f"{med(xs):.0f}")
        print(f"| {what} | " + " | ".join(cells) + " |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launcher", required=True, action="append",
                    help="a launcher build (named qemu-launcher); given twice or more, the builds "
                         "are alternated too and each gets its column (an A/B of a change)")
    ap.add_argument("--floor", required=True)
    ap.add_argument("--qemu-argv", required=True, help="the floor's qemu command (with -S, QMP on fd 3)")
    ap.add_argument("--name", required=True)
    ap.add_argument("--cpuset", required=True)
    ap.add_argument("--cpu", default="1")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--trace-out", default=None)
    ap.add_argument("--floor-qmp", action="store_true",
                    help="the floor without cpusets too (QMP and -S only), in the same rounds: "
                         "what the cpuset work itself costs the floor, phase by phase")
    ap.add_argument("--costs", action="store_true",
                    help="also each phase's time on a CPU, system calls and page faults of the "
                         "main process (a trace line per system call: slower phases)")
    args = ap.parse_args()
    bt = os.path.join(os.path.dirname(os.path.abspath(__file__)), "breakdown.bt")
    out = args.trace_out or f"/tmp/ql-breakdown.{os.getpid()}.txt"
    tracer = bpftrace.start(bt, ["1" if args.costs else "0"], out, 600)
    floor_argv = ["timeout", "-s", "KILL", "30", args.floor, args.cpuset, args.cpu] + \
        shlex.split(args.qemu_argv)
    argvs = [["timeout", "-s", "KILL", "30", ql, args.name] for ql in args.launcher]
    argvs.append(floor_argv)
    # the trace tells runs apart by their binary: the floor without cpusets runs from a copy
    # (named ql-floor too, which the trace follows)
    qmp_dir = tempfile.mkdtemp(prefix="ql-floor-qmp.") if args.floor_qmp else None
    floor_qmp = os.path.join(qmp_dir, "ql-floor") if qmp_dir else None
    if floor_qmp:
        shutil.copy(args.floor, floor_qmp)
        argvs.append(floor_argv[:4] + [floor_qmp, "-"] + floor_argv[6:])
    try:
        for i in range(args.runs):
            for argv in rotated(argvs, i):
                subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(1)
    finally:
        bpftrace.stop(tracer)
        if qmp_dir:
            shutil.rmtree(qmp_dir, ignore_errors=True)
    # a column a build: "launcher", or when there are several the folder each is in
    several = len(args.launcher) > 1
    cols = {os.path.realpath(ql): os.path.basename(os.path.dirname(os.path.realpath(ql)))
            if several else "launcher" for ql in args.launcher}
    if len(set(cols.values())) < len(args.launcher):
        sys.exit("breakdown: give each build from a folder of another name")
    cols[os.path.realpath(args.floor)] = "floor"
    if floor_qmp:
        cols[os.path.realpath(floor_qmp)] = "floor QMP"
    with open(out, errors="replace") as f:
        runs = runs_of(f, set(cols))
    if not args.trace_out:
        os.unlink(out)
    res = {c: [] for c in cols.values()}
    for r in runs:
        res[cols[r["bin"]]].append(phases(r))
    own = [c for c in res if not c.startswith("floor")]
    # with --floor-qmp, the last column is what the floor's cpuset work costs it
    diffs = [(c, "floor") for c in own] + ([("floor", "floor QMP")] if floor_qmp else [])
    n = " / ".join(f"{len(res[c])} {c}" for c in res)
    print(f"| phase (median ms, {n} runs, alternated) | " + " | ".join(res) + " | " +
          " | ".join(f"{a} - {b}" for a, b in diffs) + " |")
    print("|---|" + "---:|" * (len(res) + len(diffs)))
    for a, b, what in PHASES:
        vals = {c: med([(t[b] - t[a]) / 1e6 for t in ts if a in t and b in t])
                for c, ts in res.items()}
        print(f"| {what} | " + " | ".join(f"{v:.2f}" for v in vals.values()) + " | " +
              " | ".join(f"{vals[x] - vals[y]:+.2f}" for x, y in diffs) + " |")
    if args.costs:
        print_costs(res, list(res))
    for c in own:
        prefix = f"{c}: " if several else ""
        xs = [(t["prep1"] - t["prep0"]) / 1e6 for t in res[c] if "prep0" in t]
        if xs:
            print(f"- {prefix}the launcher's prepare (sets, pool, qemu into its VM set; right "
                  f"after the spawn, while qemu starts up), first to last cgroup file operation: "
                  f"median {med(xs):.2f} ms")
        late = [t["prep_late"] / 1e6 for t in res[c] if "prep_late" in t]
        if late:
            print(f"- {prefix}the prepare ended after qemu's last answer before cont in "
                  f"{sum(1 for x in late if x > 0)} of {len(late)} launches (on the critical "
                  f"path)")
    for c, ts in res.items():
        ahead = [t["early_ahead"] / 1e6 for t in ts if "early_ahead" in t]
        if ahead:
            print(f"- {c}: vCPU threads placed before qemu's last answer before cont (by "
                  f"their names) in {len(ahead)} of {len(ts)} launches, the last vCPU move that "
                  f"much before the answer was read: median {med(ahead):.2f} ms, least "
                  f"{min(ahead):.2f} ms")
    for c, ts in res.items():
        ts = [t for t in ts if "cpu_main" in t]
        if ts:
            guardian = "" if c.startswith("floor") else ", the guardian"
            print(f"- own cost of one launch, {c} (median of {len(ts)}): its process "
                  f"{med([t['cpu_main'] / 1e6 for t in ts]):.2f} ms on a CPU and "
                  f"{med([t['pf_main'] for t in ts]):.0f} page faults; its other processes "
                  f"(the vfork child until its exec{guardian}) "
                  f"{med([t.get('cpu_other', 0) / 1e6 for t in ts]):.2f} ms and "
                  f"{med([t.get('pf_other', 0) for t in ts]):.0f} page faults")
    for c, ts in res.items():
        if c.startswith("floor"):  # its wait4 blocks: the call holds its wait for qemu's exit
            continue
        xs = sorted(t["reap"] / 1e3 for t in ts if "reap" in t)
        if xs:
            print(f"- {c}: qemu's reap (its wait4 that returns qemu): median {med(xs):.0f} us, "
                  f"p90 {statistics.quantiles(xs, n=10)[8] if len(xs) > 1 else xs[0]:.0f} us, "
                  f"max {xs[-1]:.0f} us; over 1 ms in {sum(1 for x in xs if x > 1000)} of "
                  f"{len(xs)} launches")
    for c, ts in res.items():
        hit = [t["qwait"] / 1e6 for t in ts if "qwait" in t]
        who = "floor" if c.startswith("floor") else "launcher"
        print(f"- {c}: qemu's threads kept off their CPU by the {who} that woke there, before "
              f"qemu's last answer: in {len(hit)} of {len(ts)} launches"
              + (f", {sum(hit) / len(ts):.3f} ms a launch on average, at most {max(hit):.2f} ms"
                 if hit else ""))
    for k, label in (("spawn_call", "the fork/vfork call itself"),
                     ("guardian_fork", "the guardian's fork call (launcher, while qemu initialises)")):
        for c, ts in res.items():
            xs = [t[k] / 1e6 for t in ts if k in t]
            if xs:
                print(f"- {label}, {c}: median {med(xs):.3f} ms")

if __name__ == "__main__":
    main()
