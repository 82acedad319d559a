"""Formatting shared by the benchmark reports: markdown tables, numbers, grouped means, files."""

from __future__ import annotations

import contextlib
import csv
import json
from collections import defaultdict

import numpy as np


def markdown_table(header, lines):
    """A markdown table.

    Parameters
    ----------
    header : list of str
        Column titles.
    lines : list of list of str
        Cells, one list per row.

    Returns
    -------
    str
        The table, without a trailing newline.
    """
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(line) + " |" for line in lines]
    return "\n".join(out)


def best_of(values):
    """The largest of ``values`` that is not NaN, or None when there is none."""
    finite = [v for v in values if not np.isnan(v)]
    return max(finite) if finite else None


def format_score(value, best=None):
    """``value`` to 3 decimals, in bold when it is (close to) ``best``; NaN is "n/a"."""
    if np.isnan(value):
        return "n/a"
    text = f"{value:.3f}"
    return f"**{text}**" if best is not None and np.isclose(value, best) else text


def format_duration(seconds):
    """Seconds as "1.23 s", "4.5 min" or "1.50 h"."""
    if seconds >= 3600:
        return f"{seconds / 3600:.2f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.2f} s"


def mean_by(rows, keys, metric):
    """Mean of ``metric`` over the rows grouped by ``keys`` (NaNs ignored).

    Parameters
    ----------
    rows : list of dict
        Result rows.
    keys : list of str
        The columns that form a group.
    metric : str
        The column to average.

    Returns
    -------
    dict
        ``{tuple of key values: mean}``; NaN where every value of the group is NaN.
    """
    groups = defaultdict(list)
    for row in rows:
        groups[tuple(row[k] for k in keys)].append(row[metric])
    return {key: float(np.nanmean(v)) if not np.isnan(v).all() else np.nan
            for key, v in ((key, np.asarray(v, dtype=np.float64)) for key, v in groups.items())}


def present(rows, key, order):
    """The values of ``order`` that occur in column ``key`` of ``rows``, in that order."""
    seen = {row[key] for row in rows}
    return [x for x in order if x in seen]


@contextlib.contextmanager
def csv_rows(path, fields):
    """Write rows to a CSV file as they come, flushing each, and keep them.

    The rows go to ``path`` with ``.tmp`` appended, renamed to ``path`` when the block
    ends without an error, so an interrupted run leaves its rows but never a complete
    looking file.

    Parameters
    ----------
    path : pathlib.Path
        The final file.
    fields : list of str
        The columns, in order.

    Yields
    ------
    write : callable
        ``write(row)`` writes one dict and appends it to ``write.rows``.
    """
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fields)
        writer.writeheader()

        def write(row):
            write.rows.append(row)
            writer.writerow(row)
            f.flush()

        write.rows = []
        yield write
    tmp.replace(path)


def write_page(path, text):
    """Write the markdown page ``text`` to ``path``, making its folder, and print it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print()
    print(text)


def write_json(path, obj):
    """Write ``obj`` as indented JSON (one space per level) to ``path``."""
    path.write_text(json.dumps(obj, indent=1))
