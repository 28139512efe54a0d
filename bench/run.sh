#!/bin/bash
# Benchmark of qemu-launcher against bare qemu (not a test: it prints figures beside targets and
# never fails on a miss). Builds a release build in build-bench if needed, then runs bench.py as
# root (cpuset v1 through a delegated subtree it creates and removes). Extra args go to bench.py
# (--runs N, --cont-runs N, --window S, --only isolation, ...). The raw samples and their SVG
# charts go to bench/charts/ (python3-matplotlib, installed here if missing).
set -eu
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	exec sudo --preserve-env=PATH "$0" "$@"
fi
B=${QL_BENCH_BUILD:-build-bench}
if [ ! -f "$B/build.ninja" ]; then
	meson setup "$B" --buildtype=release >/dev/null
fi
if ! out=$(ninja -C "$B" qemu-launcher 2>&1); then
	printf '%s\n' "$out" >&2
	[ -x "$B/qemu-launcher" ] || { echo "bench: build failed" >&2; exit 1; }
	echo "bench: WARNING: build failed; measuring the previous $B/qemu-launcher" >&2
fi
cc -O2 -Wall -o "$B/ql-floor" bench/floor.c # the prototype floor, run in the same alternation
cc -O2 -Wall -o "$B/ql-machine" bench/machine.c # what a fault, a fork, an exec cost here
sync "$B/qemu-launcher" # a freshly linked binary's pages are dirty until written back: smaps would call them Private_Dirty
# Debian's python3 (and its matplotlib) draws the charts, whatever python3 comes first in PATH.
if ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
	echo "bench: installing python3-matplotlib for the charts" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends python3-matplotlib >/dev/null
fi
# The breakdown and cont sections trace with bpftrace, on tracepoints (tracefs: a fresh machine
# may not have it mounted).
if ! command -v bpftrace >/dev/null; then
	echo "bench: installing bpftrace for the breakdown" >&2
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends bpftrace >/dev/null
fi
if [ ! -d /sys/kernel/tracing/events ]; then
	mount -t tracefs tracefs /sys/kernel/tracing
fi
for t in qemu-system-x86_64 timeout python3; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing" >&2; exit 1; }
done
echo "# qemu-launcher $(git describe --always --dirty 2>/dev/null || echo '?'), $(nproc) CPUs," \
	"$(uname -r), $(qemu-system-x86_64 --version | head -n1)"
echo "# load average before: $(cat /proc/loadavg)"
python3 bench/bench.py --launcher "$B/qemu-launcher" --floor "$B/ql-floor" \
	--machine "$B/ql-machine" --charts bench/charts "$@"
/usr/bin/python3 bench/charts.py bench/charts
