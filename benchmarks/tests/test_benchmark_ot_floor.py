"""benchmarks/ot_floor.py: the simplex timed inside a real fit, the floor it implies."""

import numpy as np

from benchmarks import ot_floor
from skval import _ot


def test_floor_row_times_the_simplex_of_a_real_fit_and_restores_it():
    solve = _ot._emd
    row = ot_floor.floor_row(400, 2)
    assert _ot._emd is solve  # unwrapped again
    assert row["batch"] == 32
    # default reference of 256 rows: 4 blocks a full batch, 1 problem for a short last one
    assert 1 < row["simplex_calls"] <= 4
    assert 0 < row["simplex_ms"] < row["skval_ms"]
    assert row["floor"] == (row["raw_ms"] + row["simplex_ms"]) / row["raw_ms"] > 1


def test_timed_simplex_counts_calls_and_seconds():
    class Module:
        @staticmethod
        def _emd(a, b, M):
            return float(np.sum(M))
    clock, solve = ot_floor.timed_simplex(Module)
    assert Module._emd(None, None, np.ones((2, 2))) == 4.0
    assert clock[1] == 1 and clock[0] >= 0
    assert solve(None, None, np.ones(3)) == 3.0


def test_page_lists_each_size():
    rows = [{"n": 20000, "batch": 200, "raw_ms": 1.0, "simplex_ms": 0.6, "simplex_calls": 7.1,
             "floor": 1.6, "skval_ms": 2.5, "skval_ratio": 2.5}]
    text = ot_floor.page(rows, "cmd")
    assert text.startswith("Command: `cmd`")
    assert "| 20,000 | 200 | 1.000 | 0.600 (7.1) | 1.60x | 2.500 | 2.50x |" in text
