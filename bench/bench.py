#!/usr/bin/env python3
"""qemu-launcher benchmark: start overhead against bare qemu, memory, idle wake-ups, the
query-cpus-fast -> cont interval with 64 vCPUs, and what isolation buys a spinning vCPU under
host load. A measurement, not a test: it asserts nothing about timing, it prints figures beside
their targets (and with --charts DIR, the raw samples as JSON for bench/charts.py).

Runs as root on a host with a writable cpuset v1 hierarchy; works in a delegated cpuset subtree
it creates (and removes), so the launcher only ever moves tasks this script put there. Every
process it starts runs under timeout(1) and is killed by pid on the way out.
"""
import argparse
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import tracer as bpftrace  # noqa: E402  (bench/tracer.py)
from tracer import children  # noqa: E402  (a process's child pids)

CPUSET_ROOT = "/sys/fs/cgroup/cpuset"
QEMU = "qemu-system-x86_64"
PIN_CPU = 1  # vCPUs go here; CPU 0 stays with the pool
EXIT_STATUS = 11  # isa-debug-exit with 5: (5 << 1) | 1
TIMEOUT = ["timeout", "-s", "KILL"]

started_pids = []  # every pid we spawned (timeout(1) wrappers and helpers), killed on exit


def log(*a):
    print("#", *a, file=sys.stderr, flush=True)


def rotated(variants, i):
    """The variants in the order of round i, each round starting with the next one: in a fixed
    order the first always ran right after the last, whose cgroup work the kernel may still be
    finishing, a confound (bench/RESULTS.md: the order of variants)."""
    k = i % len(variants)
    return variants[k:] + variants[:k]


# --- scratch: guests, definitions, cpuset ----------------------------------------------------

def write_bios(path, code):
    with open(path, "wb") as f:
        f.write(bytes(65536 - 16) + code.ljust(16, b"\0"))
    os.chmod(path, 0o644)


def definition(name, bios, ncpu, pins, mem=16, extra_launcher="", names=True):
    pin_list = ", ".join(str(p) for p in pins)
    return f"""launcher:
  binary: {QEMU}
  shutdown_timeout: 1
  vcpu_pinning: [ {pin_list} ]
{extra_launcher}qemu:
- machine: [ pc, accel: tcg ]
- nodefaults
- display: none
- m: {mem}
- bios: {bios}
- device: [ isa-debug-exit, iobase: 0xf4, iosize: 0x04 ]
- smp: [ {ncpu}, sockets: 1, cores: {ncpu}, threads: 1 ]
- name: [ {name}{", debug-threads: on" if names else ""} ]
"""


class Cpuset:
    """A delegated cpuset v1 subtree: cpus/mems copied from the root, removed at the end."""

    def __init__(self):
        self.path = f"{CPUSET_ROOT}/qlbench-{os.getpid()}"
        os.mkdir(self.path)
        for f in ("cpuset.cpus", "cpuset.mems"):
            with open(f"{CPUSET_ROOT}/{f}") as src, open(f"{self.path}/{f}", "w") as dst:
                dst.write(src.read())

    def leftovers(self):
        out = []
        for root, dirs, _ in os.walk(self.path):
            out += [os.path.relpath(os.path.join(root, d), self.path) for d in dirs]
        return sorted(out)

    def remove(self):
        if not os.path.isdir(self.path):
            return
        dirs = [r for r, _, _ in os.walk(self.path)]
        for d in sorted(dirs, key=len, reverse=True):  # bottom-up
            try:
                with open(f"{d}/tasks") as f:
                    tids = f.read().split()
            except OSError:
                tids = []
            for t in tids:  # only tasks we started can be here
                try:
                    with open(f"{CPUSET_ROOT}/tasks", "w") as f:
                        f.write(t)
                except OSError:
                    pass
            for _ in range(20):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.1)


# --- processes ---------------------------------------------------------------------------------

def spawn(argv, env, stdout=os.devnull, stderr=os.devnull, fd3=None):
    """posix_spawn (cheap and identical for every variant) with stdio redirected; fd3 becomes
    fd 3 of the child (qemu's QMP channel)."""
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, stdout, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
        (os.POSIX_SPAWN_OPEN, 2, stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644),
    ]
    if fd3 is not None:
        actions.append((os.POSIX_SPAWN_DUP2, fd3, 3))
    pid = os.posix_spawnp(argv[0], argv, env, file_actions=actions)
    started_pids.append(pid)
    return pid


def reap(pid):
    _, status = os.waitpid(pid, 0)
    if pid in started_pids:
        started_pids.remove(pid)
    return os.waitstatus_to_exitcode(status)


def wait_for(pred, secs, step=0.01):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return None


def kill_tree(pid):
    """SIGKILL to a pid we spawned and what runs under it (the launcher under timeout(1), and
    its qemu), children first: killed alone, timeout(1) would leave its child running. Reaped."""
    for c in children(pid):
        for cc in children(c):
            try:
                os.kill(cc, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.kill(c, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    if pid in started_pids:
        started_pids.remove(pid)


def kill_all():
    for pid in list(started_pids):
        kill_tree(pid)


# --- 1. start -> exit overhead -------------------------------------------------------------

class QmpDriver:
    """Does what the launcher does over QMP (capabilities, query-cpus-fast, cont) from this
    process, a round trip each: gives qemu's own share of the launcher's -S + QMP steps."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise EOFError
            self.buf += d
        l, self.buf = self.buf.split(b"\n", 1)
        return l

    def cmd(self, name, i):
        self.s.sendall(b'{"execute":"%s","id":%d}\n' % (name.encode(), i))
        while b'"id": %d' % i not in self.line():
            pass

    def run(self):
        self.line()  # greeting
        for i, c in enumerate(("qmp_capabilities", "query-cpus-fast", "cont")):
            self.cmd(c, i + 1)


def time_run(kind, argv, env):
    """One run, start -> exit: (wall ms, CPU ms of every process of the run); checks the guest's
    exit status."""
    if kind == "qmp":
        a, b = socket.socketpair()
        t0 = time.perf_counter_ns()
        pid = spawn(argv, env, fd3=b.fileno())
        b.close()
        try:
            QmpDriver(a).run()
        except (EOFError, OSError):
            pass
    else:
        t0 = time.perf_counter_ns()
        pid = spawn(argv, env)
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    started_pids.remove(pid)
    if kind == "qmp":
        a.close()
    rc = os.waitstatus_to_exitcode(status)
    if rc != EXIT_STATUS:
        raise RuntimeError(f"{kind} run of {argv} exited {rc}, expected {EXIT_STATUS}")
    # timeout(1) reaps its child, so the rusage covers launcher and qemu (or qemu alone).
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1000


def qemu_argv_of(ql, name, env):
    """(bare, private): the qemu command line `ql --dry-run name` prints, and the private QMP
    channel options the launcher adds to it."""
    dry = subprocess.run(TIMEOUT + ["20", ql, "--dry-run", name], env=env, check=True,
                         capture_output=True, text=True).stdout.splitlines()
    m = re.search(r"adds its private QMP channel: (.*)$", "\n".join(dry), re.M)
    return shlex.split(dry[0]), shlex.split(m.group(1)) if m else []


def bench_overhead(ql, name, env, runs, warmup, floor=None, cpuset=None):
    bare, private = qemu_argv_of(ql, name, env)
    with_qmp = bare + private
    variants = {
        "launcher": TIMEOUT + ["30", ql, name],
        "bare": TIMEOUT + ["30"] + bare,
        "qmp": TIMEOUT + ["30"] + with_qmp,
    }
    if floor:  # bench/floor.c: the same layout and moves, nothing else (see its header)
        variants["floor"] = TIMEOUT + ["30", floor, cpuset, str(PIN_CPU)] + with_qmp
        # and with no cpusets: one more exec, qemu -S and its QMP start-up, nothing else
        variants["floor_qmp"] = TIMEOUT + ["30", floor, "-", str(PIN_CPU)] + with_qmp
    samples = {k: [] for k in variants}
    cpu = {k: [] for k in variants}
    for i in range(warmup + runs):
        # alternate launcher / bare / bare+QMP / floors
        for k, argv in rotated(list(variants.items()), i):
            wall, c = time_run(k, argv, env)
            if i >= warmup:
                samples[k].append(wall)
                cpu[k].append(c)
    return bare, samples, cpu


# --- 2./3. memory and idle wake-ups --------------------------------------------------------

def smaps_rollup(pid):
    v = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                v[m.group(1)] = int(m.group(2))
    return {"pss": v["Pss"], "rss": v["Rss"], "dirty": v["Private_Dirty"], "anon": v["Anonymous"],
            "private": v["Private_Clean"] + v["Private_Dirty"]}


def top_private_mappings(pid, n=6):
    """The mappings holding the most private memory: the evidence for a memory miss."""
    out, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
                parts = line.split()
                cur = {"name": parts[5] if len(parts) > 5 else "[anon]", "Clean": 0, "Dirty": 0}
                out.append(cur)
            else:
                m = re.match(r"Private_(Clean|Dirty):\s+(\d+) kB", line)
                if m:
                    cur[m.group(1)] += int(m.group(2))
    agg = {}
    for o in out:
        c, d = agg.get(o["name"], (0, 0))
        agg[o["name"]] = (c + o["Clean"], d + o["Dirty"])
    return sorted(agg.items(), key=lambda kv: -sum(kv[1]))[:n]


def ctxt(pid):
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                    total += int(line.split()[1])
    return total


def bench_idle(ql, name, env, scratch, settle, window):
    """Starts an idle pinned VM; memory after it settles, context switches over `window` s."""
    res = {}
    sp = spawn(["sleep", "60"], env)
    time.sleep(0.3)
    res["sleep"] = smaps_rollup(sp)
    os.kill(sp, signal.SIGKILL)
    reap(sp)

    t_start = time.monotonic()
    tp = spawn(TIMEOUT + ["90", ql, name], env, stderr=f"{scratch}/idle.err")
    lp = wait_for(lambda: (children(tp) or [None])[0], 10)
    qp = lp and wait_for(lambda: (children(lp) or [None])[0], 10)
    if not qp:
        raise RuntimeError("idle VM did not start: " + open(f"{scratch}/idle.err").read())
    time.sleep(max(0, t_start + settle - time.monotonic()))
    res["threads"] = len(os.listdir(f"/proc/{lp}/task"))
    res["mem"] = smaps_rollup(lp)
    res["top"] = top_private_mappings(lp)
    res["qemu_running"] = os.path.exists(f"/proc/{qp}")
    # File pages count as private only while no other process maps the file: say who else does.
    res["sharers"] = {}
    for lib in ("libfyaml.so", "libjson-c.so", ql):
        n = 0
        for p in os.listdir("/proc"):
            if p.isdigit() and int(p) != lp:
                try:
                    with open(f"/proc/{p}/maps") as f:
                        n += any(lib in line for line in f)
                except OSError:
                    pass
        res["sharers"][lib] = n

    perf = shutil.which("perf")
    pp = None
    if perf:
        pp = spawn(TIMEOUT + [str(window + 20), perf, "stat", "-x,", "-e",
                              "context-switches,raw_syscalls:sys_enter", "-p", str(lp), "--",
                              "sleep", str(window)],
                   env, stderr=f"{scratch}/perf-idle.txt")
    c0, t0 = ctxt(lp), time.monotonic()
    time.sleep(window)
    c1, t1 = ctxt(lp), time.monotonic()
    res["wakeups"] = (c1 - c0) / (t1 - t0)
    res["ctxt_delta"] = c1 - c0
    res["window"] = t1 - t0
    res["mem_end"] = smaps_rollup(lp)
    if pp:
        reap(pp)
        res["perf"] = {}
        for line in open(f"{scratch}/perf-idle.txt"):
            f = line.strip().split(",")
            if len(f) > 3 and f[0].isdigit():
                res["perf"][f[2]] = f[0]
            elif len(f) > 3 and f[0] == "<not counted>":  # the task never ran in the window
                res["perf"][f[2]] = "0 (not counted: never scheduled)"

    os.kill(lp, signal.SIGTERM)  # the launcher's own shutdown path: powerdown, then quit
    res["stop_status"] = reap(tp)
    return res


# --- 4. query-cpus-fast -> cont with 64 vCPUs ---------------------------------------------

def bench_qmp_round_trips(bare, env, runs):
    """qemu's own price per QMP command: one qemu -S with its QMP channel, capabilities
    negotiated, then RUNS round trips each of query-status, query-cpus-fast and (after them) a
    query-status and query-cpus-fast written at once, as the launcher pipelines them, and the price
    of one byte of a command ("byte"). Returns medians in ms."""
    a, b = socket.socketpair()
    pid = spawn(TIMEOUT + ["30"] + bare + ["-chardev", "socket,id=q,fd=3", "-mon",
                                           "chardev=q,mode=control", "-S"], env, fd3=b.fileno())
    b.close()
    d = QmpDriver(a)
    out = {}
    try:
        d.line()  # greeting
        d.cmd("qmp_capabilities", 1)
        i = 10

        def round_trips(request, ids=1):
            """Median ms from writing request(last id) to reading the reply with that id."""
            nonlocal i
            ts = []
            for _ in range(runs):
                i += ids
                t = time.perf_counter_ns()
                a.sendall(request(i))
                while b'"id": %d' % i not in d.line():
                    pass
                ts.append((time.perf_counter_ns() - t) / 1e6)
            return med(ts)

        for name in ("query-status", "query-cpus-fast"):
            out[name] = round_trips(
                lambda i, n=name: b'{"execute":"%s","id":%d}\n' % (n.encode(), i))
        out["both, written at once"] = round_trips(
            lambda i: b'{"execute":"query-cpus-fast","id":%d}\n{"execute":"query-status",'
                      b'"id":%d}\n' % (i - 1, i), ids=2)
        # QEMU 7.2's monitor reads its socket one byte per event-loop turn (monitor_can_read
        # returns 1): the same query-status with 200 blanks inside shows the price of a byte
        padded = round_trips(
            lambda i: b'{"execute":"query-status",%s"id":%d}\n' % (b" " * 200, i))
        out["byte"] = (padded - out["query-status"]) / 200
    finally:
        a.close()
        kill_tree(pid)  # qemu -S runs on without its QMP peer
    return out


def bench_attach_floor(cs, env, runs):
    """The kernel's price of a cgroup v1 task move, which any cpuset pinning pays: the first
    write to `tasks` after an idle spell waits for an RCU grace period (percpu_down_write ->
    rcu_sync_enter -> synchronize_rcu_expedited on cgroup_threadgroup_rwsem); writes that follow
    within a grace period do not. Returns (first, second) write times in ms."""
    d = f"{cs.path}/attach-floor"
    os.mkdir(d)
    for f in ("cpuset.cpus", "cpuset.mems"):
        with open(f"{cs.path}/{f}") as src, open(f"{d}/{f}", "w") as dst:
            dst.write(src.read())
    sp = spawn(["sleep", "120"], env)
    first, second = [], []
    try:
        for _ in range(runs):
            time.sleep(0.5)
            for dst, out in ((d, first), (cs.path, second)):
                fd = os.open(f"{dst}/tasks", os.O_WRONLY)
                t0 = time.perf_counter_ns()
                os.write(fd, str(sp).encode())
                out.append((time.perf_counter_ns() - t0) / 1e6)
                os.close(fd)
    finally:
        os.kill(sp, signal.SIGKILL)
        reap(sp)
        os.rmdir(d)
    return first, second


def run_breakdown(ql, floor, name, env, cs, runs, trace_out, others=(), costs=False):
    """bench/breakdown.py on definition `name`: launcher and floor alternated under bpftrace
    (tracepoints: no ptrace stop perturbs qemu or the QMP timing), and the launcher builds in
    `others` too, each in its column. Returns its markdown."""
    qemu_argv = shlex.join(sum(qemu_argv_of(ql, name, env), []))
    here = os.path.dirname(os.path.abspath(__file__))
    builds = sum((["--launcher", b] for b in [ql, *others]), []) + (["--costs"] if costs else [])
    # the floor without cpusets too: what the cpuset work itself costs, phase by phase
    builds.append("--floor-qmp")
    out = subprocess.run([sys.executable, f"{here}/breakdown.py", *builds,
                          "--floor", floor, "--qemu-argv", qemu_argv, "--name", name,
                          "--cpuset", cs.path, "--cpu", str(PIN_CPU), "--runs", str(runs),
                          "--trace-out", trace_out],
                         env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"breakdown.py failed: {out.stderr.strip()[-300:]}")
    return out.stdout


@contextlib.contextmanager
def tracing(script, script_args, out):
    """bench/SCRIPT under bpftrace, writing to `out`, for the body of the with: attached
    before it starts, stopped (its END run, its output whole) when it ends."""
    here = os.path.dirname(os.path.abspath(__file__))
    tracer = bpftrace.start(f"{here}/{script}", script_args, out, 900)
    try:
        yield
        time.sleep(0.5)
    finally:
        bpftrace.stop(tracer)


def run_traced(script, script_args, ql, floor, name, env, cs, runs):
    """The bpftrace script bench/SCRIPT over `runs` alternated launches each of launcher and
    floor; returns its output lines."""
    floor_argv = TIMEOUT + ["60", floor, cs.path, str(PIN_CPU)] + \
        sum(qemu_argv_of(ql, name, env), [])
    out = f"/tmp/ql-{script}.{os.getpid()}.txt"
    pair = [TIMEOUT + ["60", ql, name], floor_argv]
    with tracing(script, script_args, out):
        for i in range(runs):
            for argv in rotated(pair, i):
                subprocess.run(argv, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(out) as f:
        lines = f.read().splitlines()
    os.unlink(out)
    return lines


def run_window(ql, floor, name, env, cs, runs, min_answer=0):
    """bench/window.bt over `runs` alternated launches each of launcher and floor: the spawn,
    place (with min_answer > 0: the query-cpus-fast answer is the first read longer than that)
    and teardown spans, a few probes and one line per span. Returns {span: (launcher ms list,
    floor ms list)}."""
    who = {"qemu-launcher": 0, "ql-floor": 1}
    spans = {k: ([], []) for k in ("spawn", "place", "teardown")}
    for line in run_traced("window.bt", [str(min_answer)], ql, floor, name, env, cs, runs):
        parts = line.split()
        if len(parts) == 4 and parts[0] in who and parts[2] in spans and parts[3].isdigit():
            spans[parts[2]][who[parts[0]]].append(int(parts[3]) / 1000)
    return spans


def startup_line(line):
    """(comm, pid, {field: value}) of a bench/startup.bt line, times in ms; None for others."""
    parts = line.split()
    if len(parts) != 12 or parts[2] != "startup":
        return None
    return parts[0], parts[1], {
        key: int(val) if key in ("own_faults", "own_syscalls") else int(val) / 1000
        for key, val in zip(parts[2::2], parts[3::2])}


def run_startup(ql, floor, name, env, cs, runs):
    """bench/startup.bt over `runs` alternated launches each: qemu's exec -> greeting, and what
    qemu and the launcher (or floor) did on the CPUs meanwhile. Returns ({field: [values]} of the
    launcher, of the floor); times in ms."""
    who = {"qemu-launcher": 0, "ql-floor": 1}
    res = ({}, {})
    for line in run_traced("startup.bt", [], ql, floor, name, env, cs, runs):
        got = startup_line(line)
        if got and got[0] in who:
            for key, v in got[2].items():
                res[who[got[0]]].setdefault(key, []).append(v)
    return res


def breakdown_row(text, label):
    """(launcher, floor) medians of the breakdown row starting with `label`."""
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0].startswith(label):
            return float(cells[1]), float(cells[2])
    return float("nan"), float("nan")


# --- 5. isolation under host load ---------------------------------------------------------------

# Each configuration runs the same spinning 1-vCPU guest (jmp $ at the reset vector: the TCG
# vCPU thread wants its CPU all the time) while busy loops this script started compete.
ISOLATION_CONFIGS = [
    ("unpinned", ""),
    ("affinity", "  vcpu_pinning: [ {pin} ]\n  isolate_cpus: false\n"),
    ("cpuset", "  vcpu_pinning: [ {pin} ]\n  isolate_cpus: true\n"),
    ("cpuset + FIFO", "  vcpu_pinning: [ {pin} ]\n  isolate_cpus: true\n  scheduler: fifo\n"
                      "  priority: 1\n"),
]


def isolation_definition(bios, launcher_keys):
    return f"""launcher:
  binary: {QEMU}
  shutdown_timeout: 1
{launcher_keys}qemu:
- name: [ spin, debug-threads: on ]
- machine: [ pc, accel: tcg ]
- nodefaults
- display: none
- m: 16
- bios: {bios}
"""


def thread_stats(pid, tid):
    """(run ns, run-queue wait ns, involuntary switches) of one thread, from the kernel."""
    with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
        run, wait = (int(x) for x in f.read().split()[:2])
    with open(f"/proc/{pid}/task/{tid}/status") as f:
        inv = int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", f.read(), re.M).group(1))
    return run, wait, inv


def last_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(") ", 1)[1].split()[36])  # field 39


def others_running_on(cpu, exclude):
    """How many threads outside `exclude` (pids) are running or runnable on `cpu` right now:
    the host's other users, which a delegated subtree does not move."""
    n = 0
    for p in os.listdir("/proc"):
        if not p.isdigit() or int(p) in exclude:
            continue
        try:
            tids = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tids:
            try:
                with open(f"/proc/{p}/task/{t}/stat") as f:
                    st = f.read().rsplit(") ", 1)[1].split()
            except (OSError, IndexError):
                continue
            n += st[0] == "R" and int(st[36]) == cpu
    return n


def bench_isolation_one(ql, conf, env, scratch, label, keys, nloops, settle, window):
    """One configuration: busy loops in the delegated subtree, the VM, then the vCPU thread's
    schedstat and involuntary switches over `window` s."""
    with open(f"{conf}/spin.yml", "w") as f:
        f.write(isolation_definition(f"{scratch}/spin.bin", keys.format(pin=PIN_CPU)))
    loops = [spawn(TIMEOUT + ["120", "sh", "-c", "while :; do :; done"], env)
             for _ in range(nloops)]
    try:
        for lp in loops:  # timeout(1) and its sh: both tasks of the subtree
            for t in [lp] + (wait_for(lambda: children(lp), 5) or []):
                with open(f"{env['QEMU_LAUNCHER_CPUSET_MOUNT_PATH']}/tasks", "w") as f:
                    f.write(str(t))
        err = f"{scratch}/spin.err"
        tp = spawn(TIMEOUT + ["120", ql, "spin"], env, stderr=err)
        lpid = wait_for(lambda: (children(tp) or [None])[0], 10)
        qp = lpid and wait_for(lambda: (children(lpid) or [None])[0], 10)
        tid = qp and wait_for(lambda: next(
            (t for t in os.listdir(f"/proc/{qp}/task")
             if open(f"/proc/{qp}/task/{t}/comm").read().strip() == "CPU 0/TCG"), None), 10)
        if not tid:
            raise RuntimeError(f"{label}: VM did not start: " + open(err).read())
        time.sleep(settle)
        sh = [children(lp)[0] for lp in loops if children(lp)]
        r0, w0, i0 = thread_stats(qp, tid)
        t0 = time.monotonic()
        on_pin = samples = others = polls = 0
        ours = set(sh) | set(loops) | {qp, lpid, tp, os.getpid()}
        while time.monotonic() < t0 + window:  # who else is on the vCPU's CPU, 5 samples/s
            for p in sh:
                try:
                    on_pin += last_cpu(p) == PIN_CPU
                    samples += 1
                except OSError:
                    pass
            others += others_running_on(PIN_CPU, ours)
            polls += 1
            time.sleep(0.2)
        r1, w1, i1 = thread_stats(qp, tid)
        t1 = time.monotonic()
        os.kill(lpid, signal.SIGTERM)
        status = reap(tp)
    finally:
        for lp in loops:
            for c in children(lp):
                try:
                    os.kill(c, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.kill(lp, signal.SIGKILL)
            except ProcessLookupError:
                pass
            reap(lp)
    run, wait = r1 - r0, w1 - w0
    return {"config": label, "window_s": t1 - t0, "run_ms": run / 1e6, "wait_ms": wait / 1e6,
            "wait_share": wait / (run + wait) if run + wait else 0.0,
            "run_share": run / ((t1 - t0) * 1e9),
            "involuntary_per_s": (i1 - i0) / (t1 - t0),
            "loops_on_pin_cpu": on_pin / samples if samples else 0.0,
            "others_on_pin_cpu": others / polls if polls else 0.0,
            "stop_status": status}


def bench_isolation(ql, conf, env, scratch, rounds, nloops, settle, window):
    write_bios(f"{scratch}/spin.bin", b"\xeb\xfe")  # jmp $
    res = []
    for r in range(rounds):  # configurations alternate, so a change in host load hits all
        for label, keys in ISOLATION_CONFIGS:
            res.append(dict(bench_isolation_one(ql, conf, env, scratch, label, keys, nloops,
                                                settle, window), round=r))
            res[-1]["loadavg"] = open("/proc/loadavg").read().split()[0]
    return res


# --- report ------------------------------------------------------------------------------------

def med(xs):
    return statistics.median(xs)


def q25(xs):
    return statistics.quantiles(xs, n=4)[0]


def q75(xs):
    return statistics.quantiles(xs, n=4)[2]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--launcher", required=True)
    ap.add_argument("--floor", help="bench/floor.c built: the prototype floor, same runs")
    ap.add_argument("--machine", help="bench/machine.c built: what process work costs here")
    ap.add_argument("--runs", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--cont-runs", type=int, default=10)
    ap.add_argument("--settle", type=float, default=6.5)
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--breakdown-runs", type=int, default=20)
    ap.add_argument("--breakdown-costs", action="store_true",
                    help="the 2-vCPU breakdown also counts each phase's CPU time, system calls "
                         "and page faults (a trace line per system call: slower phases)")
    ap.add_argument("--against", action="append", default=[], metavar="BUILD",
                    help="another launcher build (a file named qemu-launcher), alternated with "
                         "the launcher and the floor in the 2-vCPU breakdown: an A/B of a change")
    ap.add_argument("--only", default="machine,overhead,qmp,idle,cont,breakdown,isolation",
                    help="comma-separated sections: machine (a page fault, a fork, an exec "
                    "here), overhead, qmp (qemu's price per QMP "
                    "command, one more exec), idle (memory, wake-ups), cont, "
                    "breakdown (bpftrace phases, launcher beside the floor), isolation")
    ap.add_argument("--iso-rounds", type=int, default=3,
                    help="isolation: rounds over the 4 configurations")
    ap.add_argument("--iso-loops", type=int, default=2 * (os.cpu_count() or 2),
                    help="isolation: busy loops (default: 2 per host CPU)")
    ap.add_argument("--iso-window", type=float, default=6.0,
                    help="isolation: seconds measured per configuration")
    ap.add_argument("--charts", metavar="DIR",
                    help="write the raw samples as DIR/startup.json and DIR/isolation.json")
    args = ap.parse_args()
    ql = os.path.abspath(args.launcher)

    if os.geteuid() != 0:
        sys.exit("bench: needs root (cpuset v1)")
    if os.cpu_count() < 2:
        sys.exit("bench: needs 2 host CPUs")

    scratch = tempfile.mkdtemp(prefix="ql-bench.")
    os.chmod(scratch, 0o755)
    conf = f"{scratch}/conf"
    os.mkdir(conf)
    write_bios(f"{scratch}/exit.bin", b"\xb0\x05\xe6\xf4\xf4\xeb\xfe")
    write_bios(f"{scratch}/idle.bin", b"\xfa\xf4\xeb\xfd")
    defs = {
        "exit2": definition("exit2", f"{scratch}/exit.bin", 2, [PIN_CPU] * 2),
        "exit4": definition("exit4", f"{scratch}/exit.bin", 4, [PIN_CPU] * 4),
        "idle2": definition("idle2", f"{scratch}/idle.bin", 2, [PIN_CPU] * 2),
        # without thread names: the 64-vCPU target is about qemu's answer -> cont
        "exit64": definition("exit64", f"{scratch}/exit.bin", 64, [PIN_CPU] * 64, mem=64,
                             names=False),
    }
    for n, text in defs.items():
        with open(f"{conf}/{n}.yml", "w") as f:
            f.write(text)

    cs = Cpuset()
    env = dict(os.environ, QEMU_LAUNCHER_CONFIG_DIR=conf, QEMU_LAUNCHER_CPUSET_MOUNT_PATH=cs.path)
    env.pop("QEMU_LAUNCHER_CPUSET_PREFIX", None)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rows, details = [], []
    data = {}

    def machine():
        if not args.machine:
            log("machine: skipped (needs --machine)")
            return
        log("machine: a page fault, a fresh page-table page, a system call, a fork, an exec "
            "(medians of 101)")
        out = subprocess.run([args.machine], check=True, capture_output=True, text=True).stdout
        m = dict((k, float(v)) for k, v in (line.split() for line in out.splitlines()))
        for key, what in (("fault", "first touch of an anonymous page (page fault)"),
                          ("region", "first touch of a fresh 2 MiB (its page-table page too)"),
                          ("syscall", "getppid(2), a system call"),
                          ("fork", "fork + _exit + waitpid of a small process"),
                          ("spawn", "posix_spawn + waitpid of /bin/true")):
            rows.append((f"this machine: {what} (bench/machine.c)", f"{m[key]:.2f} us", "-",
                         None))

    def overhead():
        for n in (2, 4):
            log(f"overhead, {n} vCPUs: {args.warmup} warm-up + {args.runs} runs per variant")
            bare, s, cpu = bench_overhead(ql, f"exit{n}", env, args.runs, args.warmup,
                                          args.floor, cs.path)
            data.setdefault("startup", {})[f"{n} vCPUs"] = s
            L, B, Q = med(s["launcher"]), med(s["bare"]), med(s["qmp"])
            pair = med([x - y for x, y in zip(s["launcher"], s["bare"])])
            ov = L - B
            rows.append((f"start->exit overhead, {n} vCPUs pinned (median launcher - bare)",
                         f"{ov:.2f} ms", "<= 2 ms", ov <= 2.0))
            rows.append((f"  launcher / bare qemu, {n} vCPUs (medians {L:.1f} / {B:.1f} ms)",
                         f"{L / B:.3f}", "-", None))
            details.append(
                f"{n} vCPUs, {args.runs} runs of each variant, alternating. Wall ms median "
                f"[p25..p75]: launcher {L:.2f} [{q25(s['launcher']):.1f}..{q75(s['launcher']):.1f}]"
                f", bare qemu {B:.2f} [{q25(s['bare']):.1f}..{q75(s['bare']):.1f}], ratio "
                f"{L / B:.3f}; median of paired differences {pair:.2f}. Bare qemu + -S + the "
                f"launcher's 3 QMP commands sent by the harness, one at a time: {Q:.2f} ms -> "
                f"qemu's -S/QMP share {Q - B:.2f} ms, the launcher's own share {L - Q:.2f} ms. "
                f"CPU ms (user+sys, "
                f"all processes) median: launcher run {med(cpu['launcher']):.1f}, bare "
                f"{med(cpu['bare']):.1f}, bare+QMP {med(cpu['qmp']):.1f}")
            rows.append((f"  median of the paired differences, {n} vCPUs", f"{pair:.2f} ms",
                         "-", None))
            if "floor" in s:
                F = med(s["floor"])
                for k, what in (("floor_qmp", "QMP only"), ("floor", "cpusets")):
                    fp = med([x - y for x, y in zip(s[k], s["bare"])])
                    rows.append((f"  prototype floor ({what}) - bare, paired, {n} vCPUs",
                                 f"{fp:.2f} ms", "-", None))
                lf = med([x - y for x, y in zip(s["launcher"], s["floor"])])
                rows.append((f"  launcher - prototype floor (cpusets), paired, {n} vCPUs",
                             f"{lf:.2f} ms", "-", None))
                details.append(
                    f"{n} vCPUs, prototype floor (same layout and moves, pipelined QMP): "
                    f"{F:.2f} [{q25(s['floor']):.1f}..{q75(s['floor']):.1f}] ms, ratio to bare "
                    f"{F / B:.3f}; median of paired differences launcher - floor {lf:.2f} ms")
            if n == 2:
                details.append("bare command: " + shlex.join(bare))

    def idle():
        log(f"idle VM: settle {args.settle} s, count for {args.window} s")
        r = bench_idle(ql, "idle2", env, scratch, args.settle, args.window)
        m, sl = r["mem"], r["sleep"]
        rows.append(("launcher PSS while a VM runs", f"{m['pss']} KiB", "<= 1024 KiB",
                     m["pss"] <= 1024))
        rows.append(("launcher private (Private_Clean+Private_Dirty)", f"{m['private']} KiB",
                     "<= 200 KiB", m["private"] <= 200))
        rows.append(("  sleep(1), the floor of a glibc program: PSS / private",
                     f"{sl['pss']} / {sl['private']} KiB", "-", None))
        rows.append((f"launcher wake-ups/s while idle ({r['window']:.1f} s window, "
                     f"after {args.settle} s)", f"{r['wakeups']:.2f}/s", "0/s",
                     r["wakeups"] == 0))
        details.append(f"launcher RSS {m['rss']} KiB, threads {r['threads']}; at the end of the "
                       f"window PSS {r['mem_end']['pss']} KiB, private {r['mem_end']['private']} KiB")
        details.append("other processes mapping the same files (their pages then count as "
                       "shared): " + ", ".join(f"{k} {v}" for k, v in r["sharers"].items()))
        details.append(f"launcher Private_Dirty {m['dirty']} KiB, Anonymous {m['anon']} KiB "
                       f"(sleep: {sl['dirty']} / {sl['anon']} KiB)")
        details.append("launcher private KiB by mapping (clean+dirty): " +
                       ", ".join(f"{os.path.basename(k)} {c}+{d}" for k, (c, d) in r["top"]))
        if "perf" in r:
            details.append("perf stat over the window: " +
                           ", ".join(f"{k} {v}" for k, v in r["perf"].items()))
        details.append(f"context switches in window: {r['ctxt_delta']}; launcher exit status "
                       f"after SIGTERM: {r['stop_status']}")

    def cont():
        if not args.floor or not shutil.which("bpftrace"):
            log("cont: skipped (needs --floor and bpftrace)")
            return
        log(f"64 vCPUs: {args.cont_runs} runs each of launcher and floor, light trace")
        own_l, fl_l = run_window(ql, args.floor, "exit64", env, cs, args.cont_runs,
                                 min_answer=3000)["place"]
        if not own_l or not fl_l:
            raise RuntimeError("bench/window.bt timed no 64-vCPU placement")
        own, fl = med(own_l), med(fl_l)
        rows.append(("query-cpus-fast answer read -> cont sent, 64 vCPUs on CPU 1 (median)",
                     f"{own:.2f} ms", "<= 2 ms", own <= 2))
        rows.append(("  the prototype floor, same 64 vCPUs", f"{fl:.2f} ms", "-", None))
        details.append(f"64 vCPUs, answer -> cont under bench/window.bt ({len(own_l)} / "
                       f"{len(fl_l)} launches): launcher p25..p75 {q25(own_l):.2f}.."
                       f"{q75(own_l):.2f} ms, floor {q25(fl_l):.2f}..{q75(fl_l):.2f} ms")
        log(f"64 vCPUs: {args.cont_runs} runs each of launcher and floor under bpftrace")
        text = run_breakdown(ql, args.floor, "exit64", env, cs, args.cont_runs,
                             "/tmp/ql-breakdown-64.txt")
        own_b, fl_b = breakdown_row(text, "answers -> cont sent")
        details.append(f"64 vCPUs under the full breakdown trace (breakdown.bt, its lines "
                       f"inside the window): launcher {own_b:.2f} ms, floor {fl_b:.2f} ms")
        details.append("64 vCPUs: the start-up questions and cont but for its closing brace go "
                       "out in one write right after the spawn, before qemu greets, so the span "
                       "that is the launcher's is from its read of the query-cpus-fast answer "
                       "(its last read) to its cont (the brace)")
        breakdown_text.append(("64 vCPUs", text))
        first, second = bench_attach_floor(cs, env, 10)
        details.append(f"kernel floor, one cgroup v1 task move (write to `tasks`), median of 10: "
                       f"first after 0.5 s idle {med(first):.2f} ms (max {max(first):.2f}), "
                       f"the next one at once {med(second):.3f} ms")
        details.append(f"load average at the end: {open('/proc/loadavg').read().strip()}")

    breakdown_text = []

    def breakdown():
        if not args.floor or not shutil.which("bpftrace"):
            log("breakdown: skipped (needs --floor and bpftrace)")
            return
        log(f"breakdown: {args.breakdown_runs} runs each of launcher and floor, light trace")
        spans = run_window(ql, args.floor, "exit2", env, cs, args.breakdown_runs)
        for span, what in (("spawn", "exec of the launcher -> its fork of qemu"),
                           ("teardown", "qemu's exit -> the launcher's exit told to its parent")):
            own_l, fl_l = spans[span]
            if own_l and fl_l:
                rows.append((f"2 vCPUs, {what} (light trace, median)",
                             f"{med(own_l):.2f} ms", "-", None))
                rows.append(("  the prototype floor, the same span", f"{med(fl_l):.2f} ms", "-",
                             None))
        log(f"breakdown: {args.breakdown_runs} runs each of launcher and floor, qemu's start-up")
        own, fl = run_startup(ql, args.floor, "exit2", env, cs, args.breakdown_runs)
        if own.get("startup") and fl.get("startup"):
            rows.append(("2 vCPUs, qemu's exec -> its QMP greeting (median)",
                         f"{med(own['startup']):.2f} ms", "-", None))
            rows.append(("  the prototype floor, the same span", f"{med(fl['startup']):.2f} ms",
                         "-", None))
            details.append(
                "qemu's start-up (exec -> greeting, bench/startup.bt), launcher / floor, "
                f"medians of {len(own['startup'])} / {len(fl['startup'])}: qemu's threads on a "
                f"CPU {med(own['qemu_cpu']):.2f} / {med(fl['qemu_cpu']):.2f} ms; meanwhile the "
                f"launcher (with its guardian) / floor on a CPU {med(own['own_cpu']):.2f} / "
                f"{med(fl['own_cpu']):.2f} ms, page faults {med(own['own_faults']):.0f} / "
                f"{med(fl['own_faults']):.0f}, system calls {med(own['own_syscalls']):.0f} / "
                f"{med(fl['own_syscalls']):.0f}")
        log(f"breakdown: {args.breakdown_runs} runs each of launcher and floor under bpftrace")
        breakdown_text.insert(0, ("2 vCPUs", run_breakdown(
            ql, args.floor, "exit2", env, cs, args.breakdown_runs, "/tmp/ql-breakdown-last.txt",
            args.against, args.breakdown_costs)))

    def isolation():
        log(f"isolation: {args.iso_rounds} rounds x {len(ISOLATION_CONFIGS)} configurations, "
            f"{args.iso_loops} busy loops, {args.iso_window} s each")
        res = bench_isolation(ql, conf, env, scratch, args.iso_rounds, args.iso_loops, 1.0,
                              args.iso_window)
        rt = [open(f"/proc/sys/kernel/sched_rt_{k}_us").read().strip() for k in ("runtime", "period")]
        details.append(f"isolation: RT throttling (sched_rt_runtime_us / sched_rt_period_us) "
                       f"{rt[0]} / {rt[1]}: the most a FIFO thread that never sleeps can run")
        data["isolation"] = {"pin_cpu": PIN_CPU, "loops": args.iso_loops,
                             "window_s": args.iso_window, "samples": res}
        for label, _ in ISOLATION_CONFIGS:
            rs = [r for r in res if r["config"] == label]
            ws = [100 * r["wait_share"] for r in rs]
            inv = [r["involuntary_per_s"] for r in rs]
            rows.append((f"vCPU run-queue wait share, {label} (median of {len(rs)})",
                         f"{med(ws):.1f} %", "-", None))
            rows.append((f"  involuntary switches/s, {label}", f"{med(inv):.0f}/s", "-", None))
            details.append(
                f"isolation, {label}: wait share % per round " +
                ", ".join(f"{w:.1f}" for w in ws) + "; involuntary switches/s " +
                ", ".join(f"{x:.0f}" for x in inv) + "; the vCPU ran " +
                ", ".join(f"{100 * r['run_share']:.0f}" for r in rs) +
                " % of wall time; busy loops seen on CPU " + str(PIN_CPU) + " in " +
                ", ".join(f"{100 * r['loops_on_pin_cpu']:.0f}" for r in rs) +
                " % of samples; other runnable threads on CPU " + str(PIN_CPU) + " (not this "
                "benchmark's, outside its subtree) " +
                ", ".join(f"{r['others_on_pin_cpu']:.2f}" for r in rs) +
                " on average; load average " + ", ".join(r["loadavg"] for r in rs) +
                "; launcher exit status " + ", ".join(str(r["stop_status"]) for r in rs))

    def qmp():
        bare, _ = qemu_argv_of(ql, "exit2", env)
        log("qmp: qemu's own round trip per QMP command, 200 each")
        rt = bench_qmp_round_trips(bare, env, 200)
        byte = rt.pop("byte")
        for k, v in rt.items():
            rows.append((f"  qemu -S, one QMP round trip: {k} (median of 200)", f"{v:.3f} ms",
                         "-", None))
        rows.append(("  qemu -S, each byte of a command (200 blanks more in query-status)",
                     f"{byte * 1000:.1f} us", "-", None))
        # One more exec in the chain (what any wrapper costs): bare qemu through env(1).
        log("qmp: bare qemu directly and through env(1), 40 alternated runs each")
        direct, via = [], []
        for i in range(43):
            a = time_run("bare", TIMEOUT + ["30"] + bare, env)[0]
            b = time_run("bare", TIMEOUT + ["30", "/usr/bin/env"] + bare, env)[0]
            if i >= 3:
                direct.append(a)
                via.append(b)
        rows.append(("  one more exec in the chain (bare qemu through env(1), paired median)",
                     f"{med([y - x for x, y in zip(direct, via)]):.2f} ms", "-", None))

    try:
        for name, fn in (("machine", machine), ("overhead", overhead), ("qmp", qmp),
                         ("idle", idle), ("cont", cont), ("breakdown", breakdown),
                         ("isolation", isolation)):
            if name not in args.only.split(","):
                continue
            try:
                fn()
            except Exception as e:  # report the others anyway
                log(f"{name}: {e!r}")
                rows.append((f"{name}: FAILED ({e})"[:100], "-", "-", False))
                kill_all()
    finally:
        kill_all()
        left = cs.leftovers()
        cs.remove()
        shutil.rmtree(scratch, ignore_errors=True)
        if left:
            log("the launcher left cpusets behind: " + ", ".join(left))

    if args.charts:
        os.makedirs(args.charts, exist_ok=True)
        for k, v in data.items():
            with open(f"{args.charts}/{k}.json", "w") as f:
                json.dump(v, f, indent=1)
    if not rows and not breakdown_text:
        return
    w = max([len(r[0]) for r in rows] + [8])
    print(f"| {'measure'.ljust(w)} | {'result':>16} | {'target':>12} | pass |")
    print(f"|{'-' * (w + 2)}|{'-' * 18}|{'-' * 14}|------|")
    for name, val, tgt, ok in rows:
        v = "-" if ok is None else ("pass" if ok else "MISS")
        print(f"| {name.ljust(w)} | {val:>16} | {tgt:>12} | {v:<4} |")
    print()
    for d in details:
        print("- " + d)
    print(f"- cpusets left behind: {', '.join(left) if left else 'none'}")
    for what, text in breakdown_text:
        print(f"\n### Breakdown of one launch ({what}, bpftrace tracepoints; bench/breakdown.py)\n")
        print(text)


if __name__ == "__main__":
    main()
