#!/usr/bin/python3
# Stand-in qemu for faults.sh and load.sh: speaks QMP on fd 3 like qemu 7.2, has vCPU threads of
# its own, and acts on cue (-fake ACTION@PHASE,...; see faults.sh). With -fakemark DIR it writes
# its pid, a log of the QMP commands, and at cont the placement (cpuset, allowed CPUs) of its
# main and vCPU threads, so a test can check what the launcher did before the guest "ran".
# An `-object iothread,id=ID` gets a thread of its own, reported by query-iothreads.
# retire@cpus and respawn@cpus (tid-reuse.sh) answer query-cpus-fast once MARK/answer-cpus
# exists (MARK/at-cpus says the question came), truthfully, then, once the
# test creates MARK/retire-now, end the thread named by -fakeretire (vcpu0, the default, or an
# I/O thread's id) and write its id to MARK/retired; respawn then starts a new thread of its own
# under that very id (through ns_last_pid: run it in a pid namespace of its own) and writes
# "OLD NEW" to MARK/respawned. On quit or a stop signal every thread's scheduling and placement
# goes to MARK/final.
import json, os, signal, socket, sys, threading, time

args = sys.argv[1:]
def opt(name, default=""):
    return args[args.index("-" + name) + 1] if "-" + name in args else default

actions = {}
for item in filter(None, opt("fake").split(",")):
    action, phase = item.split("@")
    actions[phase] = action
mark = opt("fakemark")
# -fakelinger S: on quit and exit:N, close QMP and live on for S seconds before exiting, the way a
# qemu tearing down a big guest does (release-faults.sh acts in that gap)
linger = float(opt("fakelinger", "0"))
pause_s = float(opt("fakepause", "1.5"))
ncpus = int(opt("fakecpus", "2"))
def dump_final():
    """Each thread as "TID POLICY PRIORITY CPUSET ALLOWED" in MARK/final, for a test to check
    what the launcher left on threads that ended with us."""
    if not mark:
        return
    lines = []
    for tid in sorted(int(t) for t in os.listdir("/proc/self/task")):
        try:
            pol = os.sched_getscheduler(tid)
            prio = os.sched_getparam(tid).sched_priority
            cs = open("/proc/self/task/%d/cpuset" % tid).read().strip()
            allowed = [l.split()[1] for l in open("/proc/self/task/%d/status" % tid)
                       if l.startswith("Cpus_allowed_list:")][0]
        except OSError:
            continue
        lines.append("%d %d %d %s %s\n" % (tid, pol, prio, cs, allowed))
    open(os.path.join(mark, "final"), "w").write("".join(lines))
def quit_now(*a):
    dump_final()
    os._exit(0)
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, quit_now)  # qemu ends cleanly on these
if mark:
    open(os.path.join(mark, "pid"), "w").write(str(os.getpid()))
if opt("fakecomm"):
    # a hostile qemu names its threads as it likes (status.sh: escapes in --status)
    open("/proc/self/comm", "w").write(opt("fakecomm").encode().decode("unicode_escape"))

# A stop signal must interrupt the main thread wherever it waits (a pause, recv): the kernel
# hands a process's signal to any thread that does not block it, and a Python handler only runs
# in the main thread, so a signal that landed on another thread left a paused stand-in running
# on for its whole pause. Every other thread blocks them.
STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
def thread(target, *args):
    def quiet():
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
        target(*args)
    return threading.Thread(target=quiet, daemon=True)

stop = threading.Event()
iothread_ids = [a.split(",")[1][3:] for a in args if a.startswith("iothread,id=")]
tids = [None] * ncpus
io_tids = [None] * len(iothread_ids)
# vcpu0, io0, ...: an event that ends just that thread
ends = {name: threading.Event() for name in ["vcpu%d" % i for i in range(ncpus)] + iothread_ids}
# -fakenames true|swap: vCPU threads named as qemu names them with debug-threads=on ("CPU 0/TCG"),
# or with vCPU 0's and 1's names swapped (names that lie: query-cpus-fast is the truth)
names = opt("fakenames")
def vcpu(i):
    tids[i] = threading.get_native_id()
    if names:
        k = (1 - i if i < 2 else i) if names == "swap" else i
        with open("/proc/self/task/%d/comm" % tids[i], "w") as f:
            f.write("CPU %d/TCG" % k)
    ends["vcpu%d" % i].wait()
def extra_vcpu(i):
    """A vCPU thread named like qemu's that query-cpus-fast does not list."""
    with open("/proc/self/task/%d/comm" % threading.get_native_id(), "w") as f:
        f.write("CPU %d/TCG" % i)
    open(os.path.join(mark, "extra-vcpu"), "w").close()
    stop.wait()
def iothread(i):
    io_tids[i] = threading.get_native_id()
    ends[iothread_ids[i]].wait()
threads = [thread(vcpu, i) for i in range(ncpus)]
threads += [thread(iothread, i) for i in range(len(io_tids))]
for t in threads:
    t.start()
while None in tids or None in io_tids:
    time.sleep(0.001)

def end_vcpus():
    for i in range(ncpus):
        ends["vcpu%d" % i].set()
    for t in threads[:ncpus]:
        t.join()

def retire(respawn):
    """Ends one thread once the test says so; with respawn, a new thread gets its id."""
    which = opt("fakeretire", "vcpu0")
    while not os.path.exists(os.path.join(mark, "retire-now")):
        time.sleep(0.01)
    tid = tids[0] if which == "vcpu0" else io_tids[iothread_ids.index(which)]
    ends[which].set()
    while os.path.exists("/proc/self/task/%d" % tid):
        time.sleep(0.001)  # released: the id is free again
    open(os.path.join(mark, "retired"), "w").write("%d\n" % tid)
    if not respawn:
        return
    # Another process of the namespace (the test's shell) may fork in between and take the id:
    # end that thread and try again once the id is free.
    for attempt in range(50):
        new, done = [], threading.Event()
        open("/proc/sys/kernel/ns_last_pid", "w").write(str(tid - 1))
        t = thread(lambda: (new.append(threading.get_native_id()), done.wait()))
        t.start()
        while not new:
            time.sleep(0.001)
        if new[0] == tid:
            break
        done.set()
        t.join()
        while os.path.exists("/proc/%d" % tid):
            time.sleep(0.01)
    open(os.path.join(mark, "respawned"), "w").write("%d %d\n" % (tid, new[0]))

sock = socket.socket(fileno=3)
def hang_up():
    """Closes QMP for good: shutdown first, so a recv blocked in the main thread ends too (a mere
    close from another thread would leave the socket open while that recv runs)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
def leave(status):
    if linger:
        hang_up()
        time.sleep(linger)
    os._exit(status)
def send(obj):
    sock.sendall(json.dumps(obj).encode() + b"\r\n")
def log(what):
    if mark:
        with open(os.path.join(mark, "log"), "a") as f:
            f.write(what + "\n")

def at(phase):
    """Runs the cue for PHASE; returns the action if the caller must act on it."""
    a = actions.get(phase)
    if not a:
        return None
    log("phase " + phase)
    if a.startswith("exit:"):
        leave(int(a[5:]))
    if a == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if a == "hang":
        while True:
            time.sleep(60)
    if a == "close":
        # a hostile or broken qemu: the QMP channel goes away, the process stays
        hang_up()
        while True:
            time.sleep(60)
    if a == "pause":
        open(os.path.join(mark, "at-" + phase), "w").close()
        time.sleep(pause_s)
    if a == "resume":
        # another monitor let the guest run: qemu tells every negotiated monitor
        send({"event": "RESUME", "timestamp": {"seconds": 0, "microseconds": 0}})
    return a

at("start")
send({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"},
              "capabilities": ["oob"]}})
buf = b""
dec = json.JSONDecoder()
while True:
    try:
        data = sock.recv(65536)
    except OSError:
        data = b""  # reset by the peer, or hung up by a cue in another thread
    if not data:
        # qemu does not notice its QMP peer going away: keep running (PDEATHSIG must end us).
        while True:
            time.sleep(60)
    buf += data
    while True:
        text = buf.decode().lstrip()
        try:
            cmd, end = dec.raw_decode(text)
        except ValueError:
            break
        buf = text[end:].encode()
        name, cid = cmd.get("execute"), cmd.get("id")
        unknown = sorted(set(cmd) - {"execute", "exec-oob", "arguments", "id"})
        if unknown:
            # qemu refuses a member it does not know and runs nothing: the launcher voids a
            # command it staged that way (qmp_stage)
            log("refused " + str(name))
            send({"id": cid, "error": {"class": "GenericError",
                                       "desc": "QMP input member '%s' is unexpected" % unknown[0]}})
            continue
        log("cmd " + str(name))
        reply = {}
        if name == "qmp_capabilities":
            a = at("caps")
            if a in ("vanish", "newvcpu"):
                # the machine build (a pause) ends with the vCPU threads gone, or with one
                # more vCPU thread than -smp gave (as a -device cpu adds one)
                time.sleep(pause_s)
                if a == "vanish":
                    end_vcpus()
                else:
                    thread(extra_vcpu, ncpus).start()
                    while not os.path.exists(os.path.join(mark, "extra-vcpu")):
                        time.sleep(0.001)
        elif name == "query-status":
            reply = {"status": "prelaunch", "singlestep": False, "running": False}
        elif name == "query-cpus-fast":
            a = at("cpus")
            listed = list(tids)
            if a == "lie":
                listed[0] = int(opt("fakelie"))
            elif a == "vanish":
                end_vcpus()
            elif a in ("retire", "respawn"):
                # the launcher prepares its sets meanwhile (under the lock): the test takes the
                # lock once that is done, then lets this answer go
                open(os.path.join(mark, "at-cpus"), "w").close()
                while not os.path.exists(os.path.join(mark, "answer-cpus")):
                    time.sleep(0.01)
                thread(retire, a == "respawn").start()
            reply = [{"thread-id": tid, "cpu-index": i, "target": "x86_64",
                      "qom-path": "/machine/unattached/device[%d]" % i,
                      "props": {"socket-id": 0, "core-id": i, "thread-id": 0}}
                     for i, tid in enumerate(listed)]
        elif name == "cont":
            if mark:
                lines = []
                for label, tid in [("main", os.getpid())] + [("vcpu%d" % i, t) for i, t in enumerate(tids)]:
                    cs = open("/proc/self/task/%d/cpuset" % tid).read().strip()
                    allowed = [l.split()[1] for l in open("/proc/self/task/%d/status" % tid)
                               if l.startswith("Cpus_allowed_list:")][0]
                    lines.append("%s %s %s\n" % (label, cs, allowed))
                open(os.path.join(mark, "placement"), "w").write("".join(lines))
            at("cont")
            send({"event": "RESUME", "timestamp": {"seconds": 0, "microseconds": 0}})
            at("resumed")  # the guest runs: its end can come before the reply to cont
            if "running" in actions:
                thread(lambda: (time.sleep(0.3), at("running"))).start()
        elif name == "query-iothreads":
            reply = [{"id": i, "thread-id": t, "poll-max-ns": 0, "poll-grow": 0,
                      "poll-shrink": 0, "aio-max-batch": 0}
                     for i, t in zip(iothread_ids, io_tids)]
        elif name == "quit":
            dump_final()
            send({"return": {}, "id": cid})
            leave(0)
        elif name in ("system_powerdown", "stop"):
            pass  # no ACPI in this guest: powerdown does nothing, as with the idle BIOS
        else:
            send({"error": {"class": "CommandNotFound", "desc": "fake"}, "id": cid})
            continue
        if name == "query-cpus-fast" and actions.get("answered") == "resume":
            # another monitor's RESUME right after the answer, in the same write: a launcher
            # that checks what qemu wrote before cont reads it (written apart, a loaded host
            # could hold it back until after the check)
            log("phase answered")
            sock.sendall(json.dumps({"return": reply, "id": cid}).encode() + b"\r\n" +
                         json.dumps({"event": "RESUME", "timestamp": {"seconds": 0,
                                     "microseconds": 0}}).encode() + b"\r\n")
            continue
        send({"return": reply, "id": cid})
        if name == "query-cpus-fast":
            at("answered")  # the launcher pins the threads now
