# systemd integration: the sd_notify messages (READY=1 after the guest runs, STOPPING=1 on stop)
# received on a socket this test listens on, and the unit template meson installs.
. "$(dirname "$0")/lib.sh"
plan 11
LISTEN=$QL_BUILD_DIR/tests/notify-listen

{
	printf 'launcher:\n  binary: %s\n  shutdown_timeout: 1\nqemu:\n' "$QEMU"
	guest_opts idle
} | def svc

SOCK=$SCRATCH/notify.sock
"$LISTEN" "$SOCK" STOPPING=1 30 >"$SCRATCH/notify.log" &
listener=$!
register_pid $listener
wait_until 5 grep -q listening "$SCRATCH/notify.log"
NOTIFY_SOCKET=$SOCK ql_start svc -v
wait_until 20 grep -q READY=1 "$SCRATCH/notify.log"
check "READY=1 received" grep -q "^READY=1|STATUS=VM running$" "$SCRATCH/notify.log"
L=$(launcher_of $LPID)
Q=$(child_of "$L")
check "NOTIFY_SOCKET ready while qemu runs" test -n "$Q"
kill -TERM "$L"
wait "$LPID"
expect_eq "stopped by SIGTERM: status 0" 0 $?
wait_until 5 grep -q STOPPING=1 "$SCRATCH/notify.log"
check "STOPPING=1 received on SIGTERM" grep -q "^STOPPING=1|" "$SCRATCH/notify.log"
wait $listener

# A notify socket nobody listens on (abstract name, as systemd may use) is not fatal.
NOTIFY_SOCKET=@ql-test-$$-nobody-listens ql_start svc
wait_until 20 grep -q "could not notify" "$LERR"
L=$(launcher_of $LPID)
check "an unreachable notify socket is reported as a warning" grep -q "could not notify the service manager" "$LERR"
kill -TERM "$L"
wait "$LPID"
expect_eq "an unreachable notify socket does not stop the VM (status 0 after SIGTERM)" 0 $?

# The unit template, as meson installs it.
DEST=$SCRATCH/destdir
meson install -C "$QL_BUILD_DIR" --destdir "$DEST" >/dev/null 2>&1
UNIT=$(find "$DEST" -name 'qemu-launcher@.service' | head -n1)
check "meson installs qemu-launcher@.service" test -f "$UNIT"
check "the unit is Type=notify" grep -qx "Type=notify" "$UNIT"
check "the unit uses KillMode=mixed (SIGTERM to the launcher only)" grep -qx "KillMode=mixed" "$UNIT"
stop=$(sed -n 's/^TimeoutStopSec=//p' "$UNIT")
check "TimeoutStopSec ($stop) is above the default shutdown_timeout (60) plus quit grace" test "${stop:-0}" -gt 65
bin=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$UNIT")
check "ExecStart runs the installed binary ($bin)" test -x "$DEST$bin"
