#!/usr/bin/python3
# A launcher's stderr that can be made to block it at a chosen message (release-faults.sh):
#   stderr-gate.py FIFO OUT TRIGGER
# reads the named pipe FIFO (shrunk to one page) and copies it to OUT until a line contains
# TRIGGER; then it fills the pipe up and stops reading, so the writer's next message blocks it
# right there (in a locked section, when that is where it writes). It writes FIFO.filled once
# the pipe is full; FIFO.open resumes the copy (the filler bytes are dropped) to the end.
# A writer can only be held this way at a message: with -d the launcher traces every cgroup
# write, so the release is gated between two steps.
import fcntl, os, sys, time

fifo, out, trigger = sys.argv[1], sys.argv[2], sys.argv[3].encode()
F_SETPIPE_SZ = 1031
FILL = b"\0"

rfd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
fcntl.fcntl(rfd, F_SETPIPE_SZ, 4096)
# our own open file description of the same pipe, non-blocking for the fill alone (the writer's
# stays blocking)
wfd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
fcntl.fcntl(rfd, fcntl.F_SETFL, fcntl.fcntl(rfd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
open(fifo + ".ready", "w").close()

with open(out, "ab", buffering=0) as o:
    seen = b""
    while trigger not in seen:
        data = os.read(rfd, 4096)
        if not data:
            break
        o.write(data.replace(FILL, b""))
        seen = (seen + data)[-65536:]
    if trigger in seen:
        for chunk in (4096, 1):
            while True:
                try:
                    os.write(wfd, FILL * chunk)
                except BlockingIOError:
                    break
        open(fifo + ".filled", "w").close()
        while not os.path.exists(fifo + ".open"):
            time.sleep(0.01)
    os.close(wfd)  # EOF once the launcher (and its guardian) are done
    while True:
        data = os.read(rfd, 4096)
        if not data:
            break
        o.write(data.replace(FILL, b""))
