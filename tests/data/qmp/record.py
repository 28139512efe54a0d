#!/usr/bin/env python3
"""Records real QMP transcripts from qemu (QEMU 7.2 here) for tests/unit/test_qmp.c.

Usage: record.py OUT.txt "QEMU EXTRA ARGS" CMD [CMD...]
Each CMD is a QMP command name (sent as the client sends it: {"execute":"NAME","id":N}, N counting
from 1), or "raw:TEXT" to send TEXT verbatim. Transcript lines:
  <- LINE   qemu wrote LINE          -> LINE   the client sent LINE
  => LINE   sent raw (something qmp.c never sends; the test player skips it)
  == EOF    qemu closed the channel  # ...     comment
Everything after `quit` is read until EOF. qemu ends every line with CRLF (the monitor turns
"\n" into "\r\n" on every chardev); the transcript drops the CR and the test player adds it back.
"""
import os, select, shlex, subprocess, sys, time

out, extra, cmds = sys.argv[1], sys.argv[2], sys.argv[3:]
accel = [] if "-accel" in extra else ["-accel", "tcg"]
argv = ["timeout", "10", "qemu-system-x86_64"] + accel + ["-nodefaults", "-display", "none",
        "-S", "-m", "64"] + shlex.split(extra) + ["-qmp", "stdio"]
p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
lines = ["# " + " ".join(argv[2:]),
         "# recorded by record.py; " + subprocess.run(["qemu-system-x86_64", "--version"],
         capture_output=True, text=True).stdout.splitlines()[0]]
buf = b""

def read_until(pred, timeout=5.0):
    """Reads lines until pred(line) is true for one of them (or EOF)."""
    global buf
    end = time.monotonic() + timeout
    while True:
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode().rstrip("\r")  # the stdio chardev writes CRLF
            lines.append("<- " + text)
            if pred(text):
                return True
        r, _, _ = select.select([p.stdout], [], [], max(0, end - time.monotonic()))
        if not r:
            raise SystemExit("timeout waiting for qemu: %r %r" % (lines, buf))
        data = os.read(p.stdout.fileno(), 65536)
        if not data:
            lines.append("== EOF")
            return False
        buf += data

read_until(lambda t: '"QMP"' in t)
n = 0
for c in cmds:
    if c.startswith("raw:"):
        text = c[4:]
        wait = lambda t: '"error"' in t or '"return"' in t
    else:
        n += 1
        text = '{"execute":"%s","id":%d}' % (c, n)
        wait = (lambda want: lambda t: ('"id": %d' % want) in t)(n)
    lines.append(("=> " if c.startswith("raw:") else "-> ") + text)
    p.stdin.write(text.encode() + b"\n")
    p.stdin.flush()
    read_until(wait)
    if c == "quit":
        if read_until(lambda t: False):
            pass
p.stdin.close()
p.wait()
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
