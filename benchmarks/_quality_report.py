"""The quality benchmark's markdown page: per-cell tables of F1, AUROC and refit gain, skval
against the best peer, minority harm, per-task detail and seconds per method and task."""

from __future__ import annotations

import platform

import numpy as np
from benchmarks._metrics import REFIT_MODELS
from benchmarks._peers import label
from benchmarks._report import best_of, format_score, markdown_table, mean_by, present
from benchmarks._tasks import CLF, CLF_NOISE_KINDS, CONFIRM_TASKS, DEV_TASKS, REG, TASKS
from benchmarks._tasks import NOISE_KINDS as _BASE_KINDS
from benchmarks._tasks import REG_NOISE_KINDS
# every kind a row of the results may have
NOISE_KINDS = _BASE_KINDS + CLF_NOISE_KINDS + REG_NOISE_KINDS

SKVAL = ("skval", "skval+val")
MIN_ORACLE_GAIN = 0.005  # the share of the oracle's gain is shown only above this gain


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


def _cells(rows, methods):
    cells = [(k, n) for k in present(rows, "kind", (CLF, REG))
             for n in present(rows, "noise", NOISE_KINDS)]
    return [c for c in cells if any(r["kind"] == c[0] and r["noise"] == c[1]
                                    and r["method"] in methods for r in rows)]


def _cell_name(cell):
    return f"{'clf' if cell[0] == CLF else 'reg'} {cell[1]}"


def gain_table(rows, model, methods):
    """Methods x (task kind, noise kind): mean refit gain of ``model``, and its share of the
    oracle's mean gain in parentheses (where the oracle gains at least 0.005); best gain per
    column in bold, the oracle last.

    Parameters
    ----------
    rows : list of dict
        Result rows with ``{model}_gain`` and ``{model}_oracle_gain``.
    model : {"hgb", "linear"}
    methods : list of str

    Returns
    -------
    str
        A markdown table.
    """
    gain = mean_by(rows, ["method", "kind", "noise"], f"{model}_gain")
    oracle = mean_by(rows, ["kind", "noise"], f"{model}_oracle_gain")
    cells = _cells(rows, methods)
    best = {c: best_of([gain.get((m, *c), np.nan) for m in methods]) for c in cells}

    def fmt(value, cell, bold):
        if np.isnan(value):
            return "n/a"
        text = f"{value:+.4f}"
        if bold is not None and np.isclose(value, bold):
            text = f"**{text}**"
        share = oracle.get(cell, np.nan)
        return f"{text} ({value / share:.0%})" if share >= MIN_ORACLE_GAIN else text

    lines = [[label(m)] + [fmt(gain.get((m, *c), np.nan), c, best[c]) for c in cells]
             for m in methods]
    lines.append(["oracle (drops the noisy rows)"]
                 + [fmt(oracle.get(c, np.nan), c, None) for c in cells])
    return markdown_table(["method"] + [_cell_name(c) for c in cells], lines)


def cut_table(rows, methods):
    """Per method with a decision of its own and cell: what dropping its cut's rows does.

    Columns: the share of rows the cut removes, the share of them that are noisy, the mean
    HistGradientBoosting and linear gains, and the worst task's mean gain of each model
    (the targets: no cell's mean below 0, no task's below -0.005).

    Parameters
    ----------
    rows : list of dict
        Result rows; those with ``n_cut`` (not NaN) count.
    methods : list of str

    Returns
    -------
    str
        A markdown table, or "" when no row has a cut.
    """
    rows = [{**r, "cut_share": r["n_cut"] / r["n_train"],
             "cut_precision": r["noisy_cut"] / r["n_cut"] if r["n_cut"] else np.nan}
            for r in rows if not np.isnan(r.get("n_cut", np.nan)) and r["method"] in methods]
    if not rows:
        return ""
    cell = ["method", "kind", "noise"]
    means = {key: mean_by(rows, cell, key) for key in
             ("cut_share", "cut_precision", "hgb_cut_gain", "linear_cut_gain")}
    per_task = {m: mean_by(rows, cell + ["task"], f"{m}_cut_gain") for m in REFIT_MODELS}
    lines = []
    for method in methods:
        for c in _cells(rows, [method]):
            key = (method, *c)
            worst = {m: min(((v, k[-1]) for k, v in per_task[m].items() if k[:3] == key),
                            default=(np.nan, "")) for m in REFIT_MODELS}
            lines.append([label(method), _cell_name(c), f"{means['cut_share'][key]:.1%}",
                          f"{means['cut_precision'].get(key, np.nan):.0%}",
                          format_gain(means["hgb_cut_gain"][key]),
                          format_gain(means["linear_cut_gain"][key]),
                          *(f"{format_gain(worst[m][0])} {worst[m][1]}" for m in REFIT_MODELS)])
    return markdown_table(["method", "cell", "removed", "of them noisy", "HGB gain",
                           "linear gain", "worst task HGB", "worst task linear"], lines)


def headline_table(rows, methods):
    """Per cell: skval's figures against the best peer's (F1, AUROC, HGB and linear gain),
    and which skval variants are at least as good ("both", one name, or "no").

    Parameters
    ----------
    rows : list of dict
        Result rows.
    methods : list of str
        Methods run; the peers are those that are not skval's (nor its evidence sides) and not ``random``.

    Returns
    -------
    str
        A markdown table, or "" when skval or every peer is missing.
    """
    ours = [m for m in SKVAL if m in methods]
    peers = [m for m in methods if not m.startswith("skval") and m != "random"]
    if not ours or not peers:
        return ""
    metrics = [("f1", "F1"), ("auroc", "AUROC"), ("hgb_gain", "HGB gain"),
               ("linear_gain", "linear gain")]
    means = {key: mean_by(rows, ["method", "kind", "noise"], key) for key, _ in metrics}
    lines = []
    for cell in _cells(rows, methods):
        for key, title in metrics:
            peer_values = {m: means[key].get((m, *cell), np.nan) for m in peers}
            finite = {m: v for m, v in peer_values.items() if not np.isnan(v)}
            if not finite:
                continue
            best_peer = max(finite, key=finite.get)
            ours_values = [means[key].get((m, *cell), np.nan) for m in ours]
            digits = 4 if "gain" in key else 3
            leaders = [m for m, v in zip(ours, ours_values)
                       if not np.isnan(v) and v >= finite[best_peer]]
            lead = ("both" if len(leaders) == 2 else leaders[0] if leaders else "no")
            lines.append([_cell_name(cell), title]
                         + [f"{v:.{digits}f}" if not np.isnan(v) else "n/a" for v in ours_values]
                         + [f"{finite[best_peer]:.{digits}f} ({label(best_peer)})", lead])
    return markdown_table(["cell", "metric", *ours, "best peer", "leads the best peer"], lines)


def gaps_table(rows, methods, top=12):
    """The (task, noise) pairs where skval trails the best peer most on AUROC.

    Parameters
    ----------
    rows : list of dict
    methods : list of str
    top : int, default=12
        Lines shown.

    Returns
    -------
    str
        A markdown table, largest gap first, or "" without skval or peers.
    """
    ours = [m for m in SKVAL if m in methods]
    peers = [m for m in methods if not m.startswith("skval") and m != "random"]
    if not ours or not peers:
        return ""
    auc = mean_by(rows, ["task", "noise", "method"], "auroc")
    f1 = mean_by(rows, ["task", "noise", "method"], "f1")
    found = []
    for task in present(rows, "task", TASKS):
        for noise in present(rows, "noise", NOISE_KINDS):
            peer = {m: auc.get((task, noise, m), np.nan) for m in peers}
            peer = {m: v for m, v in peer.items() if not np.isnan(v)}
            mine = [auc.get((task, noise, m), np.nan) for m in ours]
            if not peer or all(np.isnan(mine)):
                continue
            best = max(peer, key=peer.get)
            found.append((peer[best] - np.nanmax(mine), task, noise, best, mine))
    found.sort(key=lambda item: -item[0])
    lines = [[task, noise]
             + [f"{auc.get((task, noise, m), np.nan):.3f} / {f1.get((task, noise, m), np.nan):.3f}"
                for m in ours]
             + [f"{auc[(task, noise, best)]:.3f} / {f1[(task, noise, best)]:.3f} ({label(best)})",
                f"{gap:+.3f}"]
             for gap, task, noise, best, _ in found[:top]]
    return markdown_table(["task", "noise"] + [f"{m} AUROC / F1" for m in ours]
                          + ["best peer AUROC / F1", "AUROC gap"], lines)


def harm_table(rows, methods):
    """Task x methods: minority harm on the imbalanced tasks without injected noise.

    Parameters
    ----------
    rows : list of dict
        Result rows; those with noise "none" carry ``minority_harm``.
    methods : list of str

    Returns
    -------
    str
        A markdown table (lowest per task in bold), or "" without such rows.
    """
    none = [r for r in rows if r["noise"] == "none"]
    if not none:
        return ""
    harm = mean_by(none, ["task", "method"], "minority_harm")
    lines = []
    for task in present(none, "task", TASKS):
        values = [harm.get((task, m), np.nan) for m in methods]
        finite = [v for v in values if not np.isnan(v)]
        low = min(finite) if finite else None
        lines.append([task] + ["n/a" if np.isnan(v) else
                               (f"**{v:.2f}**" if np.isclose(v, low) else f"{v:.2f}")
                               for v in values])
    return markdown_table(["task"] + [label(m) for m in methods], lines)


def task_gain_table(rows, methods, model="hgb"):
    """Task x methods: mean refit gain of ``model`` over noise kinds, rates and seeds.

    Parameters
    ----------
    rows : list of dict
    methods : list of str
    model : {"hgb", "linear"}, default="hgb"

    Returns
    -------
    str
        A markdown table, the oracle's gain in the last column.
    """
    noisy = [r for r in rows if r["noise"] in NOISE_KINDS]
    gain = mean_by(noisy, ["task", "method"], f"{model}_gain")
    oracle = mean_by(noisy, ["task"], f"{model}_oracle_gain")
    base = mean_by(noisy, ["task"], f"{model}_base")
    score = {r["task"]: r["score"] for r in noisy if isinstance(r.get("score"), str)}
    lines = []
    for task in present(noisy, "task", TASKS):
        values = [gain.get((task, m), np.nan) for m in methods]
        best = best_of(values)
        lines.append([task, f"{score.get(task, '?')} {base.get((task,), np.nan):.3f}"]
                     + [format_gain(v, best) for v in values]
                     + [format_gain(oracle.get((task,), np.nan))])
    return markdown_table(["task", "score, no drop"] + [label(m) for m in methods]
                          + ["oracle"], lines)


def format_gain(value, best=None):
    """A gain with its sign, 4 decimals, bold when (close to) ``best``; NaN is "n/a"."""
    if np.isnan(value):
        return "n/a"
    text = f"{value:+.4f}"
    return f"**{text}**" if best is not None and np.isclose(value, best) else text


def task_seconds_table(rows, methods):
    """Task x methods: mean seconds per fit (the shared work a method reuses included)."""
    secs = mean_by(rows, ["task", "method"], "seconds")
    lines = [[task] + [format_score(secs.get((task, m), np.nan)) for m in methods]
             for task in present(rows, "task", TASKS)]
    return markdown_table(["task"] + [label(m) for m in methods], lines)


def tasks_table(rows):
    """The tasks run: set, source, training rows, noisy rows, what makes each hard."""
    n_train = {r["task"]: r["n_train"] for r in rows}
    lines = []
    for task in present(rows, "task", TASKS):
        t = TASKS[task]
        which = "dev" if task in DEV_TASKS else "confirm" if task in CONFIRM_TASKS else "-"
        lines.append([task, which, "classification" if t.kind == CLF else "regression",
                      t.source, str(n_train[task]), t.traits])
    return markdown_table(["task", "set", "kind", "source", "training rows", "what is hard"],
                          lines)


def quality_page(rows, methods, *, command, max_epochs, threads, wall, versions,
                 task_set=None):
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
    task_set : str, optional
        The task set's name, for the title.

    Returns
    -------
    str
        Markdown, ending in a newline.
    """
    cuts = cut_table(rows, methods)
    rates = sorted({row["rate"] for row in rows if row["noise"] in NOISE_KINDS})
    seeds = sorted({row["seed"] for row in rows})
    val_noise = sorted({row["val_noise"] for row in rows if row["noise"] in NOISE_KINDS})
    title = "# Noisy-row detection quality" + (f": {task_set} set" if task_set else "")
    parts = [
        title,
        f"Command: `{command}`",
        (f"Noise: {', '.join(present(rows, 'noise', NOISE_KINDS))} at rates "
         f"{', '.join(map(str, rates))}; the reference (validation) rows get the same "
         f"kind of noise at rate {', '.join(map(str, val_noise))}; seeds "
         f"{', '.join(map(str, seeds))}. skval max_epochs={max_epochs or 'default (30)'}. "
         "Values are averaged over tasks, rates and seeds; the best method per column is in "
         "bold. Higher is better for F1, AUROC and gain; random is 0.5 AUROC."),
        (f"Total run time: {wall / 60:.1f} min on {threads} thread(s) "
         f"({platform.processor() or platform.machine()}). {versions}."
         if not np.isnan(wall) else f"Figures from an earlier run; libraries now: {versions}."),
        "## Tasks", tasks_table(rows),
        "## skval against the best peer per cell", headline_table(rows, methods),
        ("## Where skval trails most\n\nThe (task, noise) pairs with the largest AUROC gap "
         "between the best peer and the better skval variant (mean over rates and seeds)."),
        gaps_table(rows, methods),
        "## Mean 2-means F1", aggregate_table(rows, "f1", methods),
        "## Mean AUROC", aggregate_table(rows, "auroc", methods),
        ("## Clean and refit: HistGradientBoosting\n\nMean gain of the test score (ROC AUC "
         "binary, balanced accuracy multiclass, R^2 regression) when the k lowest-valued "
         "training rows are dropped (k = the noisy rows), and in parentheses its share of the "
         "oracle's mean gain (dropping exactly the noisy rows), shown where the oracle gains at "
         "least 0.005."),
        gain_table(rows, "hgb", methods),
        "## Clean and refit: linear model (LogisticRegression / Ridge)",
        gain_table(rows, "linear", methods),
        ("## The default cut: refit without the rows it flags\n\nskval's guarded default "
         "cut (`get_issues(X, y)[\"flagged\"]`), the rows dropped and both models refitted; "
         "means over tasks and seeds, and the task with the lowest mean gain.")
        if cuts else "",
        cuts,
        ("## Minority harm\n\nImbalanced tasks (smallest class at most 10 %) without "
         "injected noise: the smallest class's share among the 10 % lowest values over its "
         "share of the rows (1 = no different; lower is better; lowest in bold)."),
        harm_table(rows, methods),
        "## Per task (F1 / AUROC, mean over rates and seeds)", detail_table(rows, methods),
        ("## Per task: HistGradientBoosting refit gain (mean over noise kinds, rates and "
         "seeds)"), task_gain_table(rows, methods, "hgb"),
        "## Per task: linear refit gain", task_gain_table(rows, methods, "linear"),
        "## Mean seconds per fit", seconds_table(rows, methods),
        "## Seconds per fit, per task", task_seconds_table(rows, methods),
        ("Methods: see the docstring of `benchmarks/quality.py`. \"(reimpl.)\" marks methods "
         "implemented in the benchmark from their paper."),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"
