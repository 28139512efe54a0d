#!/usr/bin/python3
# Stand-in qemu for faults.sh and load.sh: speaks QMP on fd 3 like qemu 7.2, has vCPU threads of
# its own, and acts on cue (-fake ACTION@PHASE,...; see faults.sh). With -fakemark DIR it writes
# its pid, a log of the QMP commands, and at cont the placement (cpuset, allowed CPUs) of its
# main and vCPU threads, so a test can check what the launcher did before the guest "ran".
import json, os, signal, socket, sys, threading, time

args = sys.argv[1:]
def opt(name, default=""):
    return args[args.index("-" + name) + 1] if "-" + name in args else default

actions = {}
for item in filter(None, opt("fake").split(",")):
    action, phase = item.split("@")
    actions[phase] = action
mark = opt("fakemark")
pause_s = float(opt("fakepause", "1.5"))
ncpus = int(opt("fakecpus", "2"))
for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(s, lambda *a: os._exit(0))  # qemu ends cleanly on these
if mark:
    open(os.path.join(mark, "pid"), "w").write(str(os.getpid()))

stop = threading.Event()
tids = [None] * ncpus
def vcpu(i):
    tids[i] = threading.get_native_id()
    stop.wait()
threads = [threading.Thread(target=vcpu, args=(i,), daemon=True) for i in range(ncpus)]
for t in threads:
    t.start()
while None in tids:
    time.sleep(0.001)

sock = socket.socket(fileno=3)
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
        os._exit(int(a[5:]))
    if a == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if a == "hang":
        while True:
            time.sleep(60)
    if a == "close":
        # a hostile or broken qemu: the QMP channel goes away, the process stays
        sock.close()
        while True:
            time.sleep(60)
    if a == "pause":
        open(os.path.join(mark, "at-" + phase), "w").close()
        time.sleep(pause_s)
    return a

at("start")
send({"QMP": {"version": {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fake"},
              "capabilities": ["oob"]}})
buf = b""
dec = json.JSONDecoder()
while True:
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        data = b""
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
        log("cmd " + str(name))
        reply = {}
        if name == "qmp_capabilities":
            at("caps")
        elif name == "query-status":
            state = "running" if at("status") == "notprelaunch" else "prelaunch"
            reply = {"status": state, "singlestep": False, "running": state == "running"}
        elif name == "query-cpus-fast":
            a = at("cpus")
            listed = list(tids)
            if a == "lie":
                listed[0] = int(opt("fakelie"))
            elif a == "vanish":
                stop.set()
                for t in threads:
                    t.join()
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
            if "running" in actions:
                threading.Timer(0.3, at, args=("running",)).start()
        elif name == "quit":
            send({"return": {}, "id": cid})
            os._exit(0)
        elif name in ("system_powerdown", "stop"):
            pass  # no ACPI in this guest: powerdown does nothing, as with the idle BIOS
        else:
            send({"error": {"class": "CommandNotFound", "desc": "fake"}, "id": cid})
            continue
        send({"return": reply, "id": cid})
