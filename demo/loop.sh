#!/bin/sh
# The demo guest's CPU-bound loop: shell arithmetic only (no forks), one line a second saying how
# many iterations this vCPU managed, so the guest itself shows when its vCPU loses the host CPU.
while :; do
	read -r up _ </proc/uptime
	s=$((${up%.*} * 100 + 1${up#*.} - 100)) # centiseconds
	n=0
	while :; do
		i=0
		while [ $i -lt 200 ]; do i=$((i + 1)); done
		n=$((n + 200))
		read -r up _ </proc/uptime
		t=$((${up%.*} * 100 + 1${up#*.} - 100))
		[ $((t - s)) -ge 100 ] && break
	done
	echo "guest: loop on vCPU 0: $((n * 100 / (t - s))) iterations/s"
done
