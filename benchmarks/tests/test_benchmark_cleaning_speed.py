"""benchmarks/cleaning_speed.py: its table of fastest and median seconds, and the ratio."""

import importlib.util

import pytest

from benchmarks import cleaning_speed


def test_page_reports_fastest_median_and_ratio():
    times = {("rare_generated", "skval"): [4.0, 3.0, 5.0],
             ("rare_generated", "cleanlab"): [2.0, 1.5, 1.6]}
    text = cleaning_speed.page(times, "cmd")
    assert text.startswith("Command: `cmd`")
    assert "| rare_generated | 3.00 / 4.00 | 1.50 / 1.60 | **2.00x** |" in text


@pytest.mark.skipif(importlib.util.find_spec("cleanlab") is None,
                    reason="cleanlab not installed (the benchmarks extra)")
def test_one_fit_of_each_in_a_fresh_process():
    for variant in cleaning_speed.VARIANTS:
        seconds = cleaning_speed.time_fit("wine", variant)
        assert 0 < seconds < 60
