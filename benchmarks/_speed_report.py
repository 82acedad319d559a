"""The speed benchmark's markdown page: per task, one table row per size."""

from __future__ import annotations

import math
import os
import platform

import numpy as np

from _report import format_duration, markdown_table
from _tasks import SPEED_N_FEATURES

NAMES = {"skval": "skval", "plain": "plain", "ref": "skval(ref)"}

LEGEND = (
    "`s/epoch`: mean skorch epoch duration, wall clock (without the first epoch when >= 3 "
    "ran); `cpu/ep`: CPU seconds of the process per epoch, all threads. "
    "`ratio`: skval s/epoch / plain s/epoch. `ms/step`: s/epoch / steps per epoch. "
    "`fit@30`: wall time of a 30-epoch fit; **(extrapolated) where fewer epochs ran**: "
    "fit + (30 - epochs run) x s/epoch. `mem`: peak RSS of the fitting process minus "
    "the RSS after importing python+numpy+torch+skorch+POT+skval (so it includes the "
    "loaded float32 X), in MiB; target 3 x X(float32) + 500 MiB.")


def loglog_slope(ns, ts):
    """Least-squares slope of log(t) against log(n); NaN for fewer than 2 points."""
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def _header(variants):
    head = ["n", "batch", "epochs run", "steps/epoch"]
    for v in variants:
        head += [f"{NAMES[v]} s/epoch", f"{NAMES[v]} cpu/ep"]
    head += ["ratio"] + (["ref/new"] if "ref" in variants else [])
    head += [f"{NAMES[v]} ms/step" for v in variants]
    head += [f"{NAMES[v]} fit@30" for v in variants]
    head += [f"{NAMES[v]} mem" for v in variants] + ["mem target"]
    return head


def _cells(r, variants):
    """One table row: the figures of every variant at one size."""
    bs = r["batch_size"]
    steps = math.ceil(r["n"] / bs)
    xmib = r["n"] * SPEED_N_FEATURES * 4 / 2**20
    ext = " (extrapolated)" if r["skval"]["extrapolated"] else ""
    batch = str(bs)
    if "ref" in r and r["ref"]["batch_size"] != bs:
        batch += f" (ref {r['ref']['batch_size']})"
    cells = [f"{r['n']:,}", batch, str(r["skval"]["epochs"]), str(steps)]
    for v in variants:
        cells += [f"{r[v]['s_per_epoch']:.3f}", f"{r[v]['cpu_per_epoch']:.3f}"]
    cells.append(f"{r['skval']['s_per_epoch'] / r['plain']['s_per_epoch']:.2f}")
    if "ref" in variants:
        cells.append(f"{r['ref']['s_per_epoch'] / r['skval']['s_per_epoch']:.2f}")
    cells += [f"{1e3 * r[v]['s_per_epoch'] / steps:.2f}" for v in variants]
    cells += [format_duration(r[v]["fit30_s"]) + ext for v in variants]
    cells += [f"{r[v]['peak_rss_mib'] - r[v]['base_rss_mib']:.0f}" for v in variants]
    cells.append(f"{3 * xmib + 500:.0f}")
    return cells


def _slopes(task_rows, variants):
    """The sentence on how s/epoch grows with n (n >= 10k), or [] with fewer than 2 sizes."""
    big = [r for r in task_rows if r["n"] >= 10_000]
    if len(big) < 2:
        return []
    ns = [r["n"] for r in big]
    slopes = ", ".join(
        f"{NAMES[v]} {loglog_slope(ns, [r[v]['s_per_epoch'] for r in big]):.2f} "
        f"(cpu {loglog_slope(ns, [r[v]['cpu_per_epoch'] for r in big]):.2f})" for v in variants)
    return ["", f"Log-log slope of s/epoch in n (n >= 10k; 1 = linear time): {slopes}."]


def speed_page(rows, variants, command, ref_src, loads):
    """The whole report of a speed run.

    Parameters
    ----------
    rows : list of dict
        One per (task, size): ``task``, ``n``, ``batch_size`` and one result dict per
        variant (see :func:`_timing.run_fit`).
    variants : list of str
        "skval", "plain" and maybe "ref", in the order they ran.
    command : str
        The command line that ran the benchmark.
    ref_src : str or None
        The source tree of "ref".
    loads : tuple of float
        The 1-minute load average at the start and end of the run.

    Returns
    -------
    str
        Markdown, ending in a newline.
    """
    threads = ", ".join(f"{NAMES[v]} {rows[0][v]['threads']}" for v in variants)
    machine = (f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
               f"Python {platform.python_version()}, torch threads per fit: {threads}. "
               "Each fit ran in a fresh process, the variants alternately "
               f"({', '.join(NAMES[v] for v in variants)}). Other jobs may have shared the CPUs: "
               "compare the variants of one row rather than absolute times. 1-minute load "
               f"average at the start and end of the run: {loads[0]:.2f}, {loads[1]:.2f}.")
    lines = ["# skval fit speed and memory", "", f"Command: `{command}`", "", machine, ""]
    if ref_src:
        lines += [f"`skval(ref)`: skval imported from `{ref_src}` (the code before a change).", ""]
    lines += [LEGEND, ""]
    for task in ("classification", "regression"):
        task_rows = [r for r in rows if r["task"] == task]
        table = markdown_table(_header(variants), [_cells(r, variants) for r in task_rows])
        lines += [f"## {task}", "", table]
        lines += _slopes(task_rows, variants)
        lines.append("")
    lines += ["Raw per-fit numbers are in the `.json` file next to this one.", ""]
    return "\n".join(lines)
