#!/bin/bash
# What isolation buys a vCPU under host load: a spinning 1-vCPU TCG guest pinned to CPU 1 against
# busy loops this script starts in its delegated cpuset subtree, per configuration (unpinned,
# affinity, cpuset, cpuset + FIFO): the vCPU thread's run-queue wait share and involuntary
# switches/s. Same harness as bench/run.sh (which runs this section too); args go to bench.py
# (--iso-rounds N, --iso-loops N, --iso-window S). Chart: bench/charts/isolation.svg.
# Then the whole-host rows, housekeeping included, which only a TCG guest may measure (its own
# IRQs and kernel threads, never this machine's): bench/isolation-guest.sh (WINDOW, ROUNDS).
"$(dirname "$0")/run.sh" --only isolation "$@" || exit
exec "$(dirname "$0")/isolation-guest.sh"
