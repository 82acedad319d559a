"""The speed benchmark: the raw torch loop's timed fit, the variants' command line and the
report that leads with skval/raw."""

import math

import numpy as np
import pytest

from benchmarks import speed
from benchmarks._speed_report import speed_page
from benchmarks._tasks import save_speed_data
from benchmarks._timing import mean_after_warmup, run_fit

VARIANTS = ["skval", "plain", "raw"]


def test_raw_child_fits_the_asked_epochs_and_batch(tmp_path):
    n, epochs, batch = 200, 2, 64
    paths = save_speed_data("classification", n, tmp_path)
    res = run_fit("raw", "classification", n, epochs, paths, threads=1, timeout=120,
                  batch_size=batch)
    assert {"fit_s", "epoch_durs", "epoch_cpus", "base_rss_mib", "peak_rss_mib", "threads",
            "batch_size", "fused", "steps_per_epoch", "skval_file", "s_per_epoch",
            "cpu_per_epoch", "fit30_s", "extrapolated", "epochs"} <= res.keys()
    assert len(res["epoch_durs"]) == len(res["epoch_cpus"]) == epochs
    assert res["batch_size"] == batch
    assert res["steps_per_epoch"] == math.ceil(n / batch)
    assert res["threads"] == 1
    assert isinstance(res["fused"], bool)
    # fewer than 3 epochs: the mean keeps the first one
    assert res["s_per_epoch"] == pytest.approx(np.mean(res["epoch_durs"]))
    assert res["fit_s"] >= sum(res["epoch_durs"])
    assert res["fit30_s"] == pytest.approx(res["fit_s"] + 28 * res["s_per_epoch"])
    assert res["extrapolated"]
    assert res["peak_rss_mib"] >= res["base_rss_mib"] > 0


def test_the_first_epoch_is_left_out_of_the_mean_from_three_epochs_on():
    assert mean_after_warmup([9.0, 1.0]) == 5.0
    assert mean_after_warmup([9.0, 1.0, 3.0]) == 2.0


def test_threads_take_one_number_or_one_per_variant():
    assert speed.parse_args(["--threads", "1"]).threads == dict.fromkeys(VARIANTS, 1)
    args = speed.parse_args(["--threads", "4,2,1"])
    assert args.variants == VARIANTS
    assert args.threads == {"skval": 4, "plain": 2, "raw": 1}
    args = speed.parse_args(["--threads", "4,2,1,3", "--compare-src", "/tmp"])
    assert args.threads["ref"] == 3
    for wrong in ("4,2", "4,2,1,3"):
        with pytest.raises(SystemExit):
            speed.parse_args(["--threads", wrong])


def fake_result(s_per_epoch, peak):
    return {"s_per_epoch": s_per_epoch, "cpu_per_epoch": s_per_epoch, "fit_s": 1.0,
            "fit30_s": 30 * s_per_epoch, "extrapolated": False, "epochs": 30, "batch_size": 32,
            "peak_rss_mib": peak, "base_rss_mib": 100.0, "threads": 1, "fused": True}


def table_rows(page, task):
    """The cells of the first table under ``## task``, header first."""
    lines = page.split(f"## {task}\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines if "---" not in line]


def test_report_leads_with_skval_over_raw_then_skval_over_plain():
    rows = [{"task": "classification", "n": 1000, "batch_size": 32,
             "skval": fake_result(0.3, 400.0), "plain": fake_result(0.15, 300.0),
             "raw": fake_result(0.1, 200.0)}]
    page = speed_page(rows, VARIANTS, "python benchmarks/speed.py", None, (0.0, 0.0))
    header, cells = table_rows(page, "classification")
    assert header[:3] == ["n", "skval/raw", "skval/plain"]
    row = dict(zip(header, cells))
    assert row["skval/raw"] == "3.00"
    assert row["skval/plain"] == "2.00"
    assert [row[f"{v} s/epoch"] for v in VARIANTS] == ["0.300", "0.150", "0.100"]
    assert [row[f"{v} mem"] for v in VARIANTS] == ["300", "200", "100"]
    assert row["raw fit@30"] == "3.00 s"
    assert "The raw loop's Adam: fused." in page
    assert "## regression" not in page  # no rows, no table
