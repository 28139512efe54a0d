#!/usr/bin/env python3
"""Draws the benchmark's SVG charts from the raw samples bench.py --charts DIR wrote:
DIR/startup.svg (start->exit wall time, launcher vs bare qemu) from startup.json and
DIR/isolation.svg (the vCPU's run-queue wait share and involuntary switches per configuration)
from isolation.json. Needs python3-matplotlib (bench/run.sh installs it)."""
import json
import os
import random
import statistics
import sys

import matplotlib

matplotlib.use("svg")
import matplotlib.pyplot as plt  # noqa: E402

plt.rcParams["svg.hashsalt"] = "qemu-launcher"  # stable ids: a re-run only changes the data
plt.rcParams["svg.fonttype"] = "none"  # text stays text (small, greppable files)

VARIANTS = [("bare", "bare qemu"), ("qmp", "bare qemu\n+ -S + QMP"), ("launcher", "qemu-launcher")]


def startup(d, out):
    groups = list(d)  # "2 vCPUs", "4 vCPUs"
    fig, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 4), sharey=True)
    axes = axes if len(groups) > 1 else [axes]
    rnd = random.Random(1)
    for ax, g in zip(axes, groups):
        data = [d[g][k] for k, _ in VARIANTS if k in d[g]]
        names = [n for k, n in VARIANTS if k in d[g]]
        ax.boxplot(data, labels=names, showfliers=False, widths=0.5)
        for i, ys in enumerate(data, 1):
            ax.scatter([i + rnd.uniform(-0.15, 0.15) for _ in ys], ys, s=6, alpha=0.5)
            ax.annotate(f"median {statistics.median(ys):.1f}", (i, statistics.median(ys)),
                        xytext=(28, 0), textcoords="offset points", va="center", fontsize=8)
        ax.set_xlim(0.5, len(data) + 0.9)  # room for the last median's label
        ax.set_title(f"start -> exit, {g} pinned ({len(data[0])} runs each)")
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("wall time (ms)")
    fig.tight_layout()
    fig.savefig(out)


def isolation(d, out):
    configs = []
    for s in d["samples"]:
        if s["config"] not in configs:
            configs.append(s["config"])
    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    pin = d["pin_cpu"]
    for ax, key, scale, fmt, label in (
            (axes[0][0], "wait_share", 100, "%.1f",
             "vCPU run-queue wait (% of the time it wanted its CPU)"),
            (axes[0][1], "involuntary_per_s", 1, "%.0f", "vCPU involuntary context switches / s"),
            (axes[1][0], "loops_on_pin_cpu", 100, "%.0f",
             f"this benchmark's busy loops seen on CPU {pin} (% of samples)"),
            (axes[1][1], "others_on_pin_cpu", 1, "%.2f",
             f"other runnable threads on CPU {pin} (outside the subtree; mean)")):
        meds = []
        for i, c in enumerate(configs):
            ys = sorted(s.get(key, 0) * scale for s in d["samples"] if s["config"] == c)
            meds.append(statistics.median(ys))
            ax.scatter([i] * len(ys), ys, color="black", s=10, zorder=3)
        bars = ax.bar(range(len(configs)), meds, color="#7aa6d6")
        ax.bar_label(bars, fmt=fmt)
        ax.set_xticks(range(len(configs)), configs)
        ax.set_title(label, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"a spinning TCG vCPU (pinned to CPU {pin} unless unpinned) against "
                 f"{d['loops']} busy loops in the benchmark's cpuset subtree,\n"
                 f"{d['window_s']:g} s per run (bars: median, dots: runs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: charts.py DIR")
    d = sys.argv[1]
    for name, fn in (("startup", startup), ("isolation", isolation)):
        src = f"{d}/{name}.json"
        if os.path.exists(src):
            with open(src) as f:
                fn(json.load(f), f"{d}/{name}.svg")
            print(f"# wrote {d}/{name}.svg")


if __name__ == "__main__":
    main()
