"""The speed benchmark's markdown page.

Per task, two tables with one row per size: the first leads with skval/raw (skval's s/epoch
over the raw torch loop's, the floor) and skval/plain, then each variant's s/epoch, peak
memory and 30-epoch fit time; the second has each variant's CPU time per epoch and time per
step.
"""

from __future__ import annotations

import math
import os
import platform

import numpy as np

from benchmarks._report import format_duration, markdown_table
from benchmarks._tasks import SPEED_N_FEATURES

NAMES = {"skval": "skval", "plain": "plain", "raw": "raw", "ref": "skval(ref)"}
# (column title, numerator, denominator) of the s/epoch ratios that lead each table
RATIOS = [("skval/raw", "skval", "raw"), ("skval/plain", "skval", "plain"),
          ("ref/new", "ref", "skval")]

LEGEND = (
    "`skval/raw`: skval s/epoch / raw s/epoch, what skval costs over the floor a user could "
    "write by hand (`raw`: the same network in a bare torch loop, fused Adam, batches "
    "indexed out of tensors); `skval/plain`: the same against plain skorch; `ref/new`: "
    "skval(ref) s/epoch / skval s/epoch. "
    "`s/epoch`: mean epoch duration, wall clock (skorch's for skval and plain, the epoch "
    "loop's for raw; without the first epoch when >= 3 ran). `mem`: peak RSS of the fitting "
    "process minus the RSS after importing python+numpy+torch+skorch+POT+skval (so it "
    "includes the loaded float32 X), in MiB; target 3 x X(float32) + 500 MiB. "
    "`fit@30`: wall time of a 30-epoch fit (including building the network and optimizer); "
    "**(extrapolated) where fewer epochs ran**: fit + (30 - epochs run) x s/epoch. "
    "Second table: `cpu/ep`: CPU seconds of the process per epoch, all threads; "
    "`ms/step`: s/epoch / steps per epoch.")


def loglog_slope(ns, ts):
    """Least-squares slope of log(t) against log(n); NaN for fewer than 2 points."""
    if len(ns) < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns), np.log(ts), 1)[0])


def _ratios(variants):
    """The ratios that apply to ``variants``: (title, numerator, denominator) each."""
    return [ratio for ratio in RATIOS if {ratio[1], ratio[2]} <= set(variants)]


def _steps(r):
    """Optimizer steps per epoch of one table row."""
    return math.ceil(r["n"] / r["batch_size"])


def _header(variants):
    """Titles of the main table: ratios first, then s/epoch, memory and fit@30 of each."""
    head = ["n"] + [title for title, _, _ in _ratios(variants)]
    head += [f"{NAMES[v]} s/epoch" for v in variants]
    head += [f"{NAMES[v]} mem" for v in variants]
    head += [f"{NAMES[v]} fit@30" for v in variants]
    return head + ["batch", "epochs run", "steps/epoch", "mem target"]


def _cells(r, variants):
    """One row of the main table: the figures of every variant at one size."""
    xmib = r["n"] * SPEED_N_FEATURES * 4 / 2**20
    ext = " (extrapolated)" if r["skval"]["extrapolated"] else ""
    batch = str(r["batch_size"])
    if "ref" in r and r["ref"]["batch_size"] != r["batch_size"]:
        batch += f" (ref {r['ref']['batch_size']})"
    cells = [f"{r['n']:,}"]
    cells += [f"{r[a]['s_per_epoch'] / r[b]['s_per_epoch']:.2f}" for _, a, b in _ratios(variants)]
    cells += [f"{r[v]['s_per_epoch']:.3f}" for v in variants]
    cells += [f"{r[v]['peak_rss_mib'] - r[v]['base_rss_mib']:.0f}" for v in variants]
    cells += [format_duration(r[v]["fit30_s"]) + ext for v in variants]
    return cells + [batch, str(r["skval"]["epochs"]), str(_steps(r)), f"{3 * xmib + 500:.0f}"]


def _detail_header(variants):
    """Titles of the second table: CPU seconds per epoch and ms per step of each variant."""
    return (["n"] + [f"{NAMES[v]} cpu/ep" for v in variants]
            + [f"{NAMES[v]} ms/step" for v in variants])


def _detail_cells(r, variants):
    """One row of the second table."""
    return ([f"{r['n']:,}"] + [f"{r[v]['cpu_per_epoch']:.3f}" for v in variants]
            + [f"{1e3 * r[v]['s_per_epoch'] / _steps(r):.2f}" for v in variants])


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


def _raw_adam(rows, variants):
    """The sentence on whether the raw loop's Adam was fused, or "" without a raw variant."""
    if "raw" not in variants:
        return ""
    fused = {r["raw"]["fused"] for r in rows}
    kind = "fused" if fused == {True} else "unfused" if fused == {False} else "fused in some fits"
    return f" The raw loop's Adam: {kind}."


def speed_page(rows, variants, command, ref_src, loads):
    """The whole report of a speed run.

    Parameters
    ----------
    rows : list of dict
        One per (task, size): ``task``, ``n``, ``batch_size`` and one result dict per
        variant (see :func:`_timing.run_fit`).
    variants : list of str
        "skval", "plain", "raw" and maybe "ref", in the order they ran.
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
               f"average at the start and end of the run: {loads[0]:.2f}, {loads[1]:.2f}."
               + _raw_adam(rows, variants))
    lines = ["# skval fit speed and memory", "", f"Command: `{command}`", "", machine, ""]
    if ref_src:
        lines += [f"`skval(ref)`: skval imported from `{ref_src}` (the code before a change).", ""]
    lines += [LEGEND, ""]
    for task in ("classification", "regression"):
        task_rows = [r for r in rows if r["task"] == task]
        if not task_rows:
            continue
        table = markdown_table(_header(variants), [_cells(r, variants) for r in task_rows])
        detail = markdown_table(_detail_header(variants),
                                [_detail_cells(r, variants) for r in task_rows])
        lines += [f"## {task}", "", table, "", detail]
        lines += _slopes(task_rows, variants)
        lines.append("")
    lines += ["Raw per-fit numbers are in the `.json` file next to this one.", ""]
    return "\n".join(lines)
