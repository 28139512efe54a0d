"""bpftrace for the benchmarks: started with every probe attached, stopped with its output whole.

Every bench/*.bt prints READY from its BEGIN probe, which bpftrace runs once all the probes are
attached. Waiting for the output file to appear was not enough: attaching takes 1.1-2.4 s on a
slow 2-CPU machine, and the file is created before that. The output goes to bpftrace's stdout
redirected to the file (a line is written as it is printed; `-o FILE` buffers until the exit), so
READY can be seen while it runs.
"""
import os
import signal
import subprocess
import time

READY = "# probes attached"


def start(script, args, out, limit_s=1800):
    """bpftrace on `script` (with its positional `args`) writing to `out`, under `timeout`
    (`limit_s`) so that it never outlives a benchmark that dies. Returns the Popen once the
    probes are attached."""
    with open(out, "w") as f, open(out + ".err", "w") as err:
        tracer = subprocess.Popen(["timeout", "-s", "INT", str(limit_s), "bpftrace", "-q",
                                   script] + list(args), stdout=f, stderr=err)
    tracer.err_path = out + ".err"
    deadline = time.monotonic() + 60
    while True:
        with open(out, errors="replace") as f:
            if f.readline().startswith(READY):
                return tracer
        if tracer.poll() is not None or time.monotonic() > deadline:
            with open(tracer.err_path, errors="replace") as err:
                why = err.read()[-500:]
            stop(tracer)
            raise RuntimeError(f"bpftrace {os.path.basename(script)} did not start: {why}")
        time.sleep(0.05)


def stop(tracer, grace_s=10):
    """SIGINT, so that bpftrace runs its END probe and exits: `timeout` passes it on. If
    bpftrace still runs `grace_s` later (seen with bpftrace 0.17 after 80 traced launches: it
    kept running until a SIGINT was sent to it straight), it gets one from here, then SIGKILL.
    Its stderr file is removed."""
    for sig, to_bpftrace in ((signal.SIGINT, False), (signal.SIGINT, True),
                             (signal.SIGKILL, True)):
        pids = children(tracer.pid) if to_bpftrace else [tracer.pid]
        for pid in pids + ([tracer.pid] if sig == signal.SIGKILL else []):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            tracer.wait(timeout=grace_s)
            break
        except subprocess.TimeoutExpired:
            continue
    try:
        os.unlink(tracer.err_path)
    except OSError:
        pass


def children(pid):
    """The pids of `pid`'s children (here: bpftrace, under its `timeout`)."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []
