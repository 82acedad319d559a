"""The quality benchmark's markdown page: mean F1 / AUROC tables, per-task detail, run times."""

from __future__ import annotations

import platform

import numpy as np

from _peers import label
from _report import best_of, format_score, markdown_table, mean_by, present
from _tasks import CLF, NOISE_KINDS, REG, TASKS


def aggregate_table(rows, metric, methods):
    """Methods x (task kind, noise kind): mean of ``metric``, best per column in bold.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``method``, ``kind``, ``noise`` and ``metric``.
    metric : {"f1", "auroc"}
        The score to average.
    methods : list of str
        The table's rows, in order.

    Returns
    -------
    str
        A markdown table.
    """
    means = mean_by(rows, ["method", "kind", "noise"], metric)
    columns = [(k, n) for k in present(rows, "kind", (CLF, REG))
               for n in present(rows, "noise", NOISE_KINDS)]
    columns = [c for c in columns if any((m, *c) in means for m in methods)]
    best = {c: best_of([means.get((m, *c), np.nan) for m in methods]) for c in columns}
    header = ["method"] + [f"{'clf' if k == CLF else 'reg'} {n}" for k, n in columns]
    lines = [[label(m)] + [format_score(means.get((m, *c), np.nan), best[c]) for c in columns]
             for m in methods]
    return markdown_table(header, lines)


def detail_table(rows, methods):
    """(task, noise kind) x methods: mean F1 / mean AUROC, best of each in bold.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``task``, ``noise``, ``method``, ``f1`` and ``auroc``.
    methods : list of str
        The table's columns, in order.

    Returns
    -------
    str
        A markdown table; (task, noise) pairs where no method has a value are left out.
    """
    f1 = mean_by(rows, ["task", "noise", "method"], "f1")
    auc = mean_by(rows, ["task", "noise", "method"], "auroc")
    lines = []
    for task in present(rows, "task", TASKS):
        for noise in present(rows, "noise", NOISE_KINDS):
            cells = [(f1.get((task, noise, m), np.nan), auc.get((task, noise, m), np.nan))
                     for m in methods]
            if all(np.isnan(c[0]) for c in cells):
                continue
            best_f1, best_auc = best_of([c[0] for c in cells]), best_of([c[1] for c in cells])
            lines.append([task, noise] + [
                "n/a" if np.isnan(a)
                else f"{format_score(f, best_f1)} / {format_score(a, best_auc)}"
                for f, a in cells])
    return markdown_table(["task", "noise"] + [label(m) for m in methods], lines)


def seconds_table(rows, methods):
    """Methods x task kind: mean seconds per fit.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``method``, ``kind`` and ``seconds``.
    methods : list of str
        The table's rows, in order.

    Returns
    -------
    str
        A markdown table.
    """
    secs = mean_by(rows, ["method", "kind"], "seconds")
    kinds = present(rows, "kind", (CLF, REG))
    lines = [[label(m)] + [format_score(secs.get((m, k), np.nan)) for k in kinds] for m in methods]
    return markdown_table(["method"] + [f"{k} (s)" for k in kinds], lines)


def quality_page(rows, methods, *, command, max_epochs, threads, wall, versions):
    """The whole report of a quality run.

    Parameters
    ----------
    rows : list of dict
        Result rows, one per (task, noise, rate, seed, method).
    methods : list of str
        The methods run, in order.
    command : str
        The command line that ran the benchmark.
    max_epochs : int or None
        skval's ``max_epochs``; None for its default.
    threads : int
        torch / BLAS threads.
    wall : float
        Seconds the run took.
    versions : str
        The libraries' versions, one sentence.

    Returns
    -------
    str
        Markdown, ending in a newline.
    """
    tasks = present(rows, "task", TASKS)
    rates = sorted({row["rate"] for row in rows})
    seeds = sorted({row["seed"] for row in rows})
    parts = [
        "# Noisy-row detection quality",
        f"Command: `{command}`",
        (f"Tasks: {', '.join(tasks)}. Noise: {', '.join(present(rows, 'noise', NOISE_KINDS))} "
         f"at rates {', '.join(map(str, rates))}; seeds {', '.join(map(str, seeds))}. "
         f"skval max_epochs={max_epochs or 'default (30)'}. Values are averaged over "
         "tasks, rates and seeds; the best method per column is in bold. Higher is better "
         "for both metrics; random is 0.5 AUROC."),
        (f"Total run time: {wall / 60:.1f} min on {threads} thread(s) "
         f"({platform.processor() or platform.machine()}). {versions}."),
        "## Mean 2-means F1", aggregate_table(rows, "f1", methods),
        "## Mean AUROC", aggregate_table(rows, "auroc", methods),
        "## Per task (F1 / AUROC, mean over rates and seeds)", detail_table(rows, methods),
        "## Mean seconds per fit", seconds_table(rows, methods),
        ("Methods: see the docstring of `benchmarks/quality.py`. \"(reimpl.)\" marks methods "
         "implemented in the script from their paper."),
    ]
    return "\n\n".join(parts) + "\n"
