"""How much to remove: CleanedEstimator's inner cross-validation and the guards of the cut."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skval import CleanedEstimator, LossValClassifier, LossValCleaner, LossValRegressor
from skval import _removal
from skval._guard import class_floor, rows_past_cut, tail_floor
from skval._removal import candidate_counts, choose_count, gain_t_statistic, score_counts
from skval._veto import (agrees_with_label, agrees_with_target, checked_gross, doubts_label,
                         doubts_target, gross_targets, paired_gross, spared_rows)


class FirstFeatureValuer(RegressorMixin, BaseEstimator):
    """Values every row by its first feature (no predictions: no veto)."""

    def fit(self, X, y):
        self.data_values_ = np.asarray(X, dtype=float)[:, 0].copy()
        return self


class FirstFeatureClassValuer(ClassifierMixin, FirstFeatureValuer):
    pass


def blobs(n=120, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % 2
    return rng.normal(size=(n, 3)) + 4 * y[:, None], y


# ----------------------------------------------------------------------------- the inner CV

def test_removes_nothing_when_the_cut_holds_needed_rows():
    """The lowest values fall on the largest x: without them the model cannot predict there."""
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, size=(200, 1))
    y = X[:, 0] ** 3
    model = CleanedEstimator(KNeighborsRegressor(5), valuer=FirstFeatureValuer(), cut=0.3,
                             random_state=0).fit(-X, y)  # value = -x: the largest x lowest
    assert model.n_removed_ == 0 and len(model.sample_indices_) == 200
    scores = model.removal_scores_
    # the default shares 0, 0.5, 1, 1.5, 2 of the 60-row cut; past it, the cap (half the rows)
    np.testing.assert_array_equal(scores["n_removed"], [0, 30, 60, 90, 100])
    # every candidate loses its first 3 folds and stops there: 5 + 4 x 3 fits, not 25
    assert scores["fold_scores"].shape == (5, 5) and model.n_inner_fits_ == 17
    assert np.isnan(scores["fold_scores"][1:, 3:]).all()
    assert np.isfinite(scores["fold_scores"][0]).all() and np.argmax(scores["mean_score"]) == 0


def test_removes_nothing_on_clean_separable_data():
    X, y = blobs()
    model = CleanedEstimator(LogisticRegression(), valuer=LossValClassifier(max_epochs=3,
                             random_state=0), cut=0.2, random_state=0).fit(X, y)
    assert model.n_removed_ == 0 and len(model.sample_indices_) == len(y)


def test_removes_rows_under_heavy_label_noise(flipped_cancer):
    X, y_noisy, flipped, _ = flipped_cancer
    base = make_pipeline(StandardScaler(), LogisticRegression())
    model = CleanedEstimator(base, valuer=LossValClassifier(max_epochs=10, random_state=0),
                             random_state=0).fit(X, y_noisy)
    scores = model.removal_scores_
    assert model.n_removed_ > 0 and model.n_removed_ in scores["n_removed"]
    chosen = list(scores["n_removed"]).index(model.n_removed_)
    assert scores["mean_score"][chosen] == scores["mean_score"].max()
    assert len(model.sample_indices_) == len(y_noisy) - model.n_removed_
    assert flipped[model.sample_indices_].mean() < flipped.mean()


class RowCounter(RegressorMixin, BaseEstimator):
    """Remembers how many rows it was fitted on."""

    def fit(self, X, y):
        self.n_rows_ = len(X)
        return self


def test_a_candidate_stops_once_it_cannot_win_most_folds_and_the_choice_is_unchanged():
    X, y = np.arange(100.0)[:, None], np.zeros(100)
    order = np.arange(100).reshape(5, 20).T.ravel()  # each 5 rows: one of every fold's block
    counts = np.array([0, 10, 20, 30])  # drop 0, 8, 16, 24 rows of each fold's 80 training rows
    splits = list(KFold(5).split(X))  # fold j holds out rows 20j to 20j + 19
    rng = np.random.RandomState(0)
    for _ in range(30):
        table = rng.choice([0.7, 0.8, 0.9], size=(4, 5))  # few values: ties are common

        def scorer(model, X_test, y_test, table=table):
            return table[(80 - model.n_rows_) // 8, int(X_test[0, 0]) // 20]

        scores = score_counts(RowCounter(), X, y, order, counts, splits, scorer)
        scored = np.isfinite(scores)
        np.testing.assert_array_equal(scores[scored], table[scored])
        assert scored[0].all() and choose_count(scores) == choose_count(table)
        for row, table_row, done in zip(scores[1:], table[1:], scored[1:]):
            if not done.all():  # stopped: 3 folds not won, the last of them where it stopped
                n = done.sum()
                assert (row[:n] <= table[0, :n]).sum() == 3 and row[n - 1] <= table[0, n - 1]


class FixedValuer(RegressorMixin, BaseEstimator):
    """Gives the rows the values it was made with (no predictions: no veto)."""

    def __init__(self, values=None):
        self.values = values

    def fit(self, X, y):
        self.data_values_ = np.asarray(self.values, dtype=float).copy()
        return self


def test_shares_above_one_reach_past_the_cut():
    """The cut holds 20 of the 40 wrong targets; a share of 2 takes the other 20 too."""
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = 2 * X[:, 0] + X[:, 1] + rng.normal(scale=0.1, size=200)
    y[:40] = rng.normal(scale=10, size=40)  # wrong targets, the 40 lowest values
    values = np.concatenate([np.arange(40.0) - 100, np.arange(160.0)])
    model = CleanedEstimator(LinearRegression(), valuer=FixedValuer(values), cut=20,
                             removal_fractions=(0.0, 1.0, 2.0), random_state=0).fit(X, y)
    scores = model.removal_scores_
    np.testing.assert_array_equal(scores["n_removed"], [0, 20, 40])
    np.testing.assert_allclose(scores["fraction"], [0.0, 1.0, 2.0])
    assert model.n_removed_ == 40
    np.testing.assert_array_equal(model.sample_indices_, np.arange(40, 200))
    assert np.all(np.diff(scores["mean_score"]) > 0)  # each wrong row removed helps


def test_rows_past_the_cut_keep_the_guards():
    X, y = blobs(40)  # class 0's first feature is about 4 lower: its rows have the lowest values
    cleaner = LossValCleaner(FirstFeatureClassValuer(), cut=5).fit(X, y)
    order = cleaner.removal_order(X, y, past_cut=15)
    np.testing.assert_array_equal(order[:5], cleaner.removal_order())  # the cut's rows first
    assert len(set(order)) == len(order)
    assert (y[order] == 0).sum() <= 10  # the cap: at most half of class 0's 20 rows
    values = cleaner.data_values_
    assert np.all(np.diff(values[order[5:]]) >= 0)  # past the cut, lowest value first
    with pytest.raises(ValueError, match="needs the X and y"):
        cleaner.removal_order(past_cut=3)


class MarkedVetoValuer(ClassifierMixin, BaseEstimator):
    """Values by the first feature; confidently predicts the given label (column 1) where column 2 is 1."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.data_values_ = np.asarray(X, dtype=float)[:, 0].copy()
        return self

    def predict_proba(self, X):
        X = np.asarray(X)
        proba = np.full((len(X), 2), 0.5)
        sure = X[:, 2] == 1
        proba[sure] = 0.0
        proba[sure, X[sure, 1].astype(int)] = 1.0
        return proba


def test_rows_past_the_cut_skip_the_vetoed_ones():
    y = np.arange(40) % 2
    X = np.column_stack([np.arange(40.0), y, np.isin(np.arange(40), [6, 7, 8])])
    cleaner = LossValCleaner(MarkedVetoValuer(), cut=5, veto="agree").fit(X, y)
    np.testing.assert_array_equal(cleaner.removal_order(), np.arange(5))
    # 6 more rows: 5, then 9-13; the network vouches for 6-8, and they do not use up the count
    np.testing.assert_array_equal(cleaner.removal_order(X, y, past_cut=6),
                                  [0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13])


def test_removal_cut_keeps_the_old_behaviour():
    X, y = blobs(40)
    X[:5, 0] = -10.0
    model = CleanedEstimator(LogisticRegression(), valuer=FirstFeatureClassValuer(), cut=5,
                             removal="cut").fit(X, y)
    np.testing.assert_array_equal(model.sample_indices_, np.arange(5, 40))
    assert model.n_removed_ == 5 and model.removal_scores_ is None and model.n_inner_fits_ == 0


@pytest.mark.parametrize("params, name", [
    ({"removal": "best"}, "removal"),
    ({"removal_fractions": [0.5, 3.5]}, "removal_fractions"),
    ({"removal_fractions": [-0.5, 1.0]}, "removal_fractions"),
    ({"removal_fractions": []}, "removal_fractions"),
    ({"cv": 1}, "cv"),
    ({"cv": "five"}, "cv"),
])
def test_bad_parameters_name_themselves(params, name):
    X, y = blobs(40)
    model = CleanedEstimator(LogisticRegression(), valuer=FirstFeatureClassValuer(), **params)
    with pytest.raises(ValueError, match=name):
        model.fit(X, y)


def test_candidates_and_choice():
    np.testing.assert_array_equal(candidate_counts(10, (0.0, 0.5, 1.0)), [0, 5, 10])
    np.testing.assert_array_equal(candidate_counts(0, (0.5, 1.0)), [0])
    np.testing.assert_array_equal(candidate_counts(10, (1.0, 2.0), n_available=16), [0, 10, 16])
    assert choose_count(np.array([[0.8, 0.9], [0.85, 0.85], [0.7, 0.7]])) == 0  # tie: less
    assert choose_count(np.array([[0.8, 0.8], [0.9, 0.9], [0.7, 0.7]])) == 1
    # a better mean carried by one fold (ties elsewhere) does not remove: most folds must gain
    assert choose_count(np.array([[0.8] * 5, [0.9, 0.8, 0.8, 0.8, 0.8]])) == 0
    assert choose_count(np.array([[0.8] * 5, [0.81, 0.81, 0.81, 0.7, 0.8]])) == 0  # mean lower
    consistent = np.array([[0.8] * 5, [0.81, 0.81, 0.81, 0.8, 0.8], [0.9, 0.9, 0.79, 0.79, 0.79]])
    assert choose_count(consistent) == 1  # the best mean (row 2) wins only 2 of 5 folds


def test_a_regressors_candidate_must_gain_a_standard_error():
    # wins 3 folds of 5 by a little and loses two: t = 0.83 (a clean table of skew 6)
    scores = np.array([[0.5] * 5, [0.5035, 0.4913, 0.5149, 0.4971, 0.5113], [0.6] * 5])
    t = gain_t_statistic(scores)
    assert t[0] == 0 and t[2] == np.inf
    gains = [0.0035, -0.0087, 0.0149, -0.0029, 0.0113]
    assert t[1] == pytest.approx(np.mean(gains) / (np.std(gains, ddof=1) / np.sqrt(5)))
    assert 0.8 < t[1] < 0.9
    assert choose_count(scores[:2]) == 1 and choose_count(scores[:2], min_gain_se=1.0) == 0
    assert choose_count(scores, min_gain_se=1.0) == 2
    assert np.isnan(gain_t_statistic(np.array([[0.5, 0.5], [0.6, np.nan]]))[1])


def test_the_standard_error_rule_applies_to_a_regressor_only(monkeypatch):
    seen = []
    real = _removal.choose_count
    monkeypatch.setattr(_removal, "choose_count",
                        lambda scores, min_gain_se=0.0: seen.append(min_gain_se) or real(
                            scores, min_gain_se))
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    for estimator, y in ((LinearRegression(), X[:, 0] + rng.normal(size=60)),
                         (LogisticRegression(), (X[:, 0] > 0).astype(int))):
        _removal.choose_removal(estimator, X, y, np.arange(10), (0.0, 0.5, 1.0), 3, None, 0)
    assert seen == [_removal.MIN_GAIN_SE, 0.0] and _removal.MIN_GAIN_SE == 1.0


# ----------------------------------------------------------------------------- the guards

def test_class_floor_never_empties_or_more_than_halves_a_class():
    groups = np.array([0] * 30 + [1] * 7 + [2])
    values = np.arange(38.0)
    removed = class_floor(values, np.ones(38, bool), groups)
    assert removed[:30].sum() == 15 and removed[30:37].sum() == 3 and not removed[37]
    np.testing.assert_array_equal(np.flatnonzero(removed)[:15], np.arange(15))  # lowest first


def test_tail_floor_keeps_95_percent_of_each_tail_of_the_targets():
    y = np.arange(200.0)  # tails of 10 rows: 0-9 and 190-199; one of each may go
    values = -np.arange(200.0)  # the highest targets have the lowest values
    removed = tail_floor(values, np.ones(200, bool), y)
    assert removed[:10].sum() == 0  # floor(0.05 * 10) = 0
    assert removed[190:].sum() == 0 and removed[10:190].all()
    y = np.arange(400.0)  # tails of 20 rows: one each
    removed = tail_floor(-y, np.ones(400, bool), y)
    assert removed[380:].sum() == 1 and removed[399]  # the lowest-valued of the top tail
    assert removed[:20].sum() == 1 and removed[19]
    two = tail_floor(-y, np.ones(400, bool), np.column_stack([y, -y]))  # both targets' tails
    np.testing.assert_array_equal(two, removed)


def test_a_regressors_wide_cut_keeps_its_top_targets():
    rng = np.random.RandomState(0)
    y = rng.normal(size=400)
    top = np.argsort(y)[-20:]  # the top 5 %: the lowest values, predicted below the median
    values = np.linspace(1, 2, 400)
    values[top] = np.linspace(-2, -1, 20)
    prediction = np.where(np.isin(np.arange(400), top), -1.0, y)
    X = np.column_stack([values, prediction])
    removed = {veto: np.setdiff1d(np.arange(400), LossValCleaner(
        FixedPredictionValuer(), cut=20, veto=veto).fit(X, y).sample_indices_)
        for veto in ("agree", "doubt", None)}
    assert len(removed["agree"]) == 1 and np.isin(removed["agree"], top).all()
    assert len(removed["doubt"]) == 0  # the strict veto spares the tails entirely
    assert sorted(removed[None]) == sorted(top)  # no veto: no floor


def test_rows_past_a_wide_regression_cut_respect_the_tail_floor_after_the_cut():
    rng = np.random.RandomState(1)
    y = rng.normal(size=400)
    top = np.argsort(y)[-20:]  # a tail of 20 rows: one may go
    values = np.linspace(1, 2, 400)
    values[top] = np.linspace(-2, -1, 20)  # the top tail holds the lowest values
    X = np.column_stack([values, np.full(400, -1.0)])  # predicted below every top target
    valuer = FixedPredictionValuer().fit(X, y)
    removed = np.zeros(400, bool)
    removed[top[-1]] = True  # the cut already took the tail's one row (the highest value)
    added = rows_past_cut(valuer, X, y, values, np.zeros(400), removed, 30, veto="agree")
    assert not np.isin(added, top).any()  # no tail row past the cut
    # the 31 lowest allowed rows less the 19 the floor keeps (fewer than asked: no refill)
    assert len(added) == 31 - 1 - 19 and np.all(values[added] >= 1)
    strict = rows_past_cut(valuer, X, y, values, np.zeros(400), removed, 30, veto=None)
    assert np.isin(top[:-1], strict).all()  # without the veto no floor: the tail goes first


def test_cleaner_keeps_half_of_every_class():
    X, y = blobs(60)
    X[:, 0] = np.where(y == 1, -5.0, 5.0) + np.arange(60) * 0.01  # class 1: all the lowest
    cleaner = LossValCleaner(FirstFeatureClassValuer(), cut=40, max_class_share=0.9).fit(X, y)
    kept = y[cleaner.sample_indices_]
    assert (kept == 1).sum() == 15 and (kept == 0).sum() == 20  # 30 -> 15: half at most


def test_veto_rules():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05]])
    labels = np.array([0, 0, 0, 0])  # class 0's usual confidence: mean 0.6625
    np.testing.assert_array_equal(agrees_with_label(proba, labels), [True, False, False, True])
    y = np.array([10.0, 0.0, 5.0, 6.0, 4.0])  # median 5
    pred = np.array([8.0, 2.0, 5.0, 9.0, 6.0])
    np.testing.assert_array_equal(agrees_with_target(pred, y),
                                  [True, True, True, False, False])


def test_doubt_rules():
    proba = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.8], [0.95, 0.05], [0.3, 0.7]])
    labels = np.array([0, 0, 0, 0, 1])
    # class 0: mean 0.6625, share 0.8 -> bar 0.6625; class 1: mean 0.7, share 0.2 -> bar 0.2
    np.testing.assert_array_equal(doubts_label(proba, labels), [False, True, True, False, False])
    # a network that learned only the class counts doubts nobody, whatever the rounding
    flat = np.tile([0.8, 0.2], (10, 1)) + np.r_[0, 1e-12, -1e-12, 0, 0, 0, 0, 0, 0, 0][:, None]
    assert not doubts_label(flat, np.array([0] * 8 + [1] * 2)).any()
    y = np.r_[np.arange(20.0), 100.0]
    pred = y + np.tile([0.5, -0.5], 11)[:21]  # the usual residual: +-0.5
    pred[[3, 10]] += [9.0, -1.0]  # row 3: a residual outlier; row 10: within 3 SD
    pred[20] = 50.0  # an extreme target, beyond the central 90 %: never doubted
    np.testing.assert_array_equal(np.flatnonzero(doubts_target(pred, y)), [3])
    two = doubts_target(np.column_stack([pred, y]), np.column_stack([y, y]))  # any target
    np.testing.assert_array_equal(np.flatnonzero(two), [3])


def test_the_strict_veto_removes_only_doubted_rows():
    y = np.arange(40) % 2
    X = np.column_stack([np.arange(40.0), y, np.isin(np.arange(40), [2, 3])])
    # every row gets 0.5 on its label (no doubt) but rows 2-3, sure of their label: none doubted
    assert len(LossValCleaner(MarkedVetoValuer(), cut=5).fit(X, y).sample_indices_) == 40
    flipped = np.column_stack([X[:, 0], 1 - y, X[:, 2]])  # rows 2-3 sure of the other label
    kept = LossValCleaner(MarkedVetoValuer(), cut=5).fit(flipped, y).sample_indices_
    np.testing.assert_array_equal(np.setdiff1d(np.arange(40), kept), [2, 3])
    with pytest.raises(ValueError, match="veto must be one of"):
        LossValCleaner(MarkedVetoValuer(), veto=True).fit(X, y)


def test_the_inner_cv_draws_from_the_wide_cut_and_a_blind_cut_is_strict():
    y = np.arange(40) % 2
    sure = np.isin(np.arange(40), [2, 3])
    X = np.column_stack([np.arange(40.0), np.where(sure, 1 - y, y), sure])  # 2-3: sure of the
    # other label (doubted); the rest 0.5 / 0.5
    blind = CleanedEstimator(LogisticRegression(), valuer=MarkedVetoValuer(), cut=5,
                             removal="cut").fit(X, y)
    np.testing.assert_array_equal(np.setdiff1d(np.arange(40), blind.sample_indices_), [2, 3])
    checked = CleanedEstimator(LogisticRegression(), valuer=MarkedVetoValuer(), cut=5,
                               removal_fractions=(0.0, 1.0), random_state=0).fit(X, y)
    # the wide cut: rows 0-4 less the class-0 ones the network agrees with (a 0.5 / 0.5 tie is
    # predicted as class 0, above the class's mean probability, 0.475): 1, 2 and 3
    assert checked.removal_scores_["n_removed"].tolist() == [0, 3]


def test_the_inner_cv_removes_nothing_when_the_network_doubts_no_row():
    y = np.arange(40) % 2
    X = np.column_stack([np.arange(40.0), y, np.zeros(40)])  # 0.5 / 0.5 everywhere
    model = CleanedEstimator(LogisticRegression(), valuer=MarkedVetoValuer(), cut=5,
                             random_state=0).fit(X, y)
    # the wide cut would offer row 1 (predicted as class 0), but no label is doubted: the
    # candidates are not cross-validated
    assert model.n_removed_ == 0 and model.n_inner_fits_ == 0
    assert model.removal_scores_["n_removed"].tolist() == [0]
    assert LossValCleaner(MarkedVetoValuer(), cut=5, veto="agree").fit(X, y).removal_order(
    ).tolist() == [1, 3]


class FixedPredictionValuer(RegressorMixin, BaseEstimator):
    """Values rows by its first feature and predicts its second."""

    def fit(self, X, y):
        self.data_values_ = np.asarray(X, dtype=float)[:, 0].copy()
        return self

    def predict(self, X):
        return np.asarray(X, dtype=float)[:, 1]


def test_the_strict_veto_on_a_regression_target():
    y = np.arange(40.0)
    prediction = y + np.tile([0.5, -0.5], 20)  # the usual residual: +-0.5
    prediction[5] = 25.0  # a residual outlier on a central target: doubted
    prediction[6] = 5.6  # beyond its target, away from the median: not agreed with, not doubted
    values = np.where(np.isin(np.arange(40), [5, 6]), -1.0, np.arange(40.0))
    X = np.column_stack([values, prediction])
    removed = {veto: np.setdiff1d(np.arange(40), LossValCleaner(
        FixedPredictionValuer(), cut=2, veto=veto).fit(X, y).sample_indices_).tolist()
        for veto in ("doubt", "agree", None)}
    assert removed == {"doubt": [5], "agree": [5, 6], None: [5, 6]}



def test_gross_targets_lie_far_outside_the_targets_of_rows_predicted_alike():
    rng = np.random.RandomState(0)
    y = rng.lognormal(0.0, 1.0, size=600)  # skewed: a long tail of genuine extremes
    prediction = y * np.exp(rng.normal(scale=0.2, size=600))  # errors grow with the target
    prediction[:6] = 1.0  # typical rows, whose targets were moved far off
    y[:6] = [60.0, 80.0, 100.0, -20.0, -40.0, -60.0]
    gross = gross_targets(prediction, y)
    assert np.flatnonzero(gross).tolist() == [0, 1, 2, 3, 4, 5]
    top = 6 + np.argsort(y[6:])[-30:]  # the genuine top 5 %, up to 15x the median
    assert y[top].max() > 15 * np.median(y) and not gross[top].any()
    # the wide veto keeps no gross target; the strict one spares them (its cut lets them
    # go in pairs: ``paired_gross``)
    X = np.column_stack([np.zeros(600), prediction])
    wide = spared_rows(FixedPredictionValuer(), X, y, "agree", prediction)
    np.testing.assert_array_equal(wide, agrees_with_target(prediction, y) & ~gross)
    strict = spared_rows(FixedPredictionValuer(), X, y, "doubt", prediction)
    assert strict[:6].all() and not doubts_target(prediction, y)[:6].any()
    # a row is gross when any of its targets is
    both = gross_targets(np.column_stack([prediction, prediction]),
                         np.column_stack([y, prediction]))
    np.testing.assert_array_equal(both, gross)
    assert not gross_targets(prediction[6:], y[6:]).any()  # without them: none


def test_gross_targets_judged_against_trusted_rows_see_errors_that_crowd_a_bin():
    rng = np.random.RandomState(1)
    y = rng.normal(size=600)
    prediction = y + rng.normal(scale=0.1, size=600)
    # 20 errors the network followed: predicted among the highest, with targets far above
    y[:20] = 30.0 + rng.normal(size=20)
    prediction[:20] = 2.5 + 0.1 * rng.normal(size=20)
    assert gross_targets(prediction, y)[:20].sum() == 0  # they fill the top bin: its spread
    trusted = np.arange(600) >= 20
    assert gross_targets(prediction, y, trusted=trusted)[:20].all()
    assert not gross_targets(prediction, y, trusted=trusted)[20:].any()


def test_the_wide_veto_keeps_no_gross_pair_the_network_followed():
    rng = np.random.RandomState(2)
    y = rng.normal(size=600)
    prediction = y + rng.normal(scale=0.1, size=600)
    # 30 errors up and down, which the network followed into its outermost predictions:
    # half of each outer bin's 30 rows, their spread hides them there
    y[:15], prediction[:15] = rng.uniform(10, 40, 15), 2.6 + 0.05 * rng.normal(size=15)
    y[15:30], prediction[15:30] = -rng.uniform(10, 40, 15), -2.6 + 0.05 * rng.normal(size=15)
    values = np.r_[np.full(30, -5.0), rng.uniform(0.0, 1.0, 570)]  # the run found them
    assert not checked_gross(prediction, y).any()
    gross = checked_gross(prediction, y, values)  # against the rows outside the 2-means cut
    assert gross[:30].all() and not gross[30:].any()
    X = np.column_stack([values, prediction])
    wide = spared_rows(FixedPredictionValuer(), X, y, "agree", prediction, gross)
    assert agrees_with_target(prediction, y)[:30].all() and not wide[:30].any()


def test_paired_gross_lets_gross_targets_go_as_many_above_as_below():
    rng = np.random.RandomState(0)
    y = rng.normal(10.0, 1.0, size=300)
    prediction = y + rng.normal(scale=0.3, size=300)
    y[:8] += [40.0, 50.0, 60.0, 70.0, -40.0, -50.0, -60.0, 30.0]  # rows 0-3, 7 up; 4-6 down
    values = np.arange(300.0)
    values[[3, 2]] = [-2.0, -1.0]  # the lowest-valued rows above their predictions: 3, 2, 0
    everything = np.ones(300, bool)
    assert np.flatnonzero(paired_gross(values, everything, prediction, y)).tolist() == [
        0, 2, 3, 4, 5, 6]
    # one below among the candidates: one of each sign, the lowest-valued one above
    candidates = np.isin(np.arange(300), [0, 1, 2, 3, 5, 10, 11])
    assert np.flatnonzero(paired_gross(values, candidates, prediction, y)).tolist() == [3, 5]
    # one-sided gross targets (a skewed table's far-off extremes) all stay
    assert not paired_gross(values, np.isin(np.arange(300), [0, 1, 2, 3, 7]),
                            prediction, y).any()
    # rows that are not gross never go, whatever the candidates
    assert not paired_gross(values, np.arange(300) >= 8, prediction, y).any()


def test_rows_past_a_strict_regression_cut_let_gross_targets_go_in_pairs():
    rng = np.random.RandomState(0)
    y = rng.normal(10.0, 1.0, size=300)
    prediction = y + rng.normal(scale=0.3, size=300)
    y[:8] += [40.0, 50.0, -40.0, -50.0, 60.0, -60.0, 70.0, -70.0]  # 0, 1, 4, 6 up; the rest down
    values = np.linspace(1.0, 2.0, 300)
    values[[0, 2, 1, 4, 3, 6, 5, 7]] = np.linspace(-8.0, -1.0, 8)  # the gross rows lowest
    X = np.column_stack([values, prediction])
    cleaner = LossValCleaner(FixedPredictionValuer(), cut=2, veto="doubt").fit(X, y)
    assert cleaner.removal_order().tolist() == [0, 2]  # a pair: one up, one down
    # four rows past it reach rows 1, 4, 6 (up) and 3 (down): one more pair, lowest value
    # first; the strict veto keeps rows 4 and 6 (one-sided), as the cut itself would, and
    # every row it does not doubt (before, it kept every gross row past the cut)
    assert cleaner.removal_order(X, y, past_cut=4).tolist() == [0, 2, 1, 3]
    # the wide veto keeps no gross target
    wide = LossValCleaner(FixedPredictionValuer(), cut=2, veto="agree").fit(X, y)
    assert wide.removal_order(X, y, past_cut=4).tolist() == [0, 2, 1, 4, 3, 6]


def _followed_gross_table(moved):
    """400 rows; rows 0-3 get the target shifts ``moved`` (0: none); rows 4 and 5 are gross
    errors the network followed (targets 5 standard deviations up, predicted 4 up): the
    wide veto agrees with them and the top tail holds them. The six hold the lowest values,
    rows 0 and 2 first."""
    rng = np.random.RandomState(0)
    y = rng.normal(10.0, 1.0, size=400)
    prediction = y + rng.normal(scale=0.3, size=400)
    y[:4] += moved
    y[4:6], prediction[4:6] = [15.0, 15.5], [14.0, 14.5]
    values = np.linspace(1.0, 2.0, 400)
    values[[0, 2, 1, 3, 4, 5]] = np.linspace(-6.0, -1.0, 6)
    return np.column_stack([values, prediction]), y


def test_past_a_wide_cut_gross_pairs_lift_the_veto_and_the_tail_floor():
    # two gross pairs (rows 0-3, two up and two down): a table with gross errors, so the
    # rows past the cut are the lowest-valued, the followed errors 4 and 5 included
    X, y = _followed_gross_table([40.0, 50.0, -40.0, -50.0])
    cleaner = LossValCleaner(FixedPredictionValuer(), cut=2, veto="agree").fit(X, y)
    assert cleaner.removal_order().tolist() == [0, 2]
    assert cleaner.removal_order(X, y, past_cut=4).tolist() == [0, 2, 1, 3, 4, 5]
    # one pair only (rows 0 and 2): the veto still spares the rows it agrees with
    X, y = _followed_gross_table([40.0, 0.0, -40.0, 0.0])
    cleaner = LossValCleaner(FixedPredictionValuer(), cut=2, veto="agree").fit(X, y)
    order = cleaner.removal_order(X, y, past_cut=4)
    assert order[:2].tolist() == [0, 2] and not np.isin([4, 5], order).any()


def test_the_default_cut_removes_gross_errors_up_and_down():
    # 20 % of the targets moved by 5-10 standard deviations, up or down: the strict veto
    # had kept the outward-moved and extreme ones, most of the errors the cut held
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import HistGradientBoostingRegressor
    from sklearn.linear_model import Ridge

    from skval.evaluation import inject_noise

    X, y = make_friedman1(800, noise=1.0, random_state=0)
    train, test = np.arange(560), np.arange(560, 800)
    _, y_noisy, noisy = inject_noise(X[train], y[train], kind="gross", rate=0.2,
                                     task="regression", random_state=0)
    valuer = LossValRegressor(random_state=0).fit(X[train], y_noisy)
    flagged = valuer.get_issues(X[train], y_noisy)["flagged"].to_numpy(dtype=bool)
    # 95 of the 112 errors flagged (47 moved up, 48 down) and no clean row; 25 before
    assert (flagged & noisy).sum() >= 85 and (flagged & ~noisy).sum() <= 2
    moved_up = y_noisy > y[train]
    assert abs(int((flagged & moved_up).sum()) - int((flagged & noisy & ~moved_up).sum())) <= 4
    # R^2 on the true targets, every row / before / now: HGB -1.57 / -1.20 / 0.46,
    # a linear model 0.561 / 0.610 / 0.714
    def refit(model, kept):
        return model.fit(X[train][kept], y_noisy[kept]).score(X[test], y[test])
    every_row = np.ones(len(train), bool)
    hgb = HistGradientBoostingRegressor(random_state=0)
    assert refit(hgb, ~flagged) > refit(hgb, every_row) + 1.5
    assert refit(Ridge(), ~flagged) > refit(Ridge(), every_row) + 0.1


def test_the_tail_floor_lets_a_tail_full_of_exempt_rows_go():
    y = np.arange(400.0)  # tails of 20 rows
    exempt = np.zeros(400, bool)
    exempt[390:] = True  # 10 gross targets in the top tail
    removed = tail_floor(-y, np.ones(400, bool), y, exempt=exempt)
    assert removed[390:].all()  # removable whatever the floor
    # the floor keeps the top tail of the other rows' targets: 370-389, one of 20 may go
    assert removed[370:390].sum() == 1 and removed[389]
    assert removed[:20].sum() == 1  # the bottom tail as before
    exempt[:] = False
    exempt[399] = True  # one far-off target: within what the floor lets go, counted as usual
    removed = tail_floor(-y, np.ones(400, bool), y, exempt=exempt)
    assert removed[380:].sum() == 1 and removed[399]


def test_cleaned_estimator_removes_gross_target_errors():
    # 10 % of diabetes's targets moved by 5-10 standard deviations: the tails are gross
    # errors, not genuine extremes, and a linear model gains from their removal
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score

    X, y = load_diabetes(return_X_y=True)
    rng = np.random.RandomState(0)
    gross = rng.choice(len(y), len(y) // 10, replace=False)
    y_noisy = y.copy()
    y_noisy[gross] += rng.choice([-1, 1], len(gross)) * rng.uniform(5, 10, len(gross)) * y.std()
    train, test = np.arange(350), np.arange(350, len(y))
    plain = Ridge().fit(X[train], y_noisy[train])
    model = CleanedEstimator(Ridge(), valuer=LossValRegressor(random_state=0),
                             random_state=0).fit(X[train], y_noisy[train])
    removed = np.setdiff1d(train, model.sample_indices_)
    assert np.isin(removed, gross).sum() >= 15  # 20 of 31; none when the guards kept them all
    # R^2 on the true targets: 0.369 plain, 0.428 cleaned
    cleaned_r2, plain_r2 = (r2_score(y[test], m.predict(X[test])) for m in (model, plain))
    assert cleaned_r2 > plain_r2 + 0.03

def test_the_swapped_target_share_follows_the_swapped_rows():
    from skval._canary import swapped_target_share

    rng = np.random.RandomState(0)
    fit = rng.lognormal(size=2000)  # a skewed target the network fits up to a small error
    y = fit + 0.05 * rng.normal(size=2000)
    assert swapped_target_share(fit, y) < 0.02
    for share in (0.1, 0.3):
        swapped = y.copy()
        rows = rng.choice(2000, int(share * 2000), replace=False)
        swapped[rows] = y[rng.permutation(rows)]
        assert abs(swapped_target_share(fit, swapped) - share) < 0.04
        # several targets: the largest estimate
        two = swapped_target_share(np.column_stack([fit, fit]), np.column_stack([y, swapped]))
        assert two == swapped_target_share(fit, swapped)
    assert swapped_target_share(np.zeros(50), np.ones(50)) == 0.0  # a constant target


def test_a_regressor_cut_keeps_at_most_the_swapped_share():
    from skval._canary import swapped_target_share
    from skval._guard import noise_estimate

    rng = np.random.RandomState(0)
    y = rng.normal(size=400)
    prediction = y.copy()
    prediction[:20] = rng.normal(size=20)  # 5 % of the targets do not fit their rows
    values = np.r_[np.linspace(-2, -1, 60), np.linspace(1, 2, 340)]  # 2-means: the 60 lowest
    X = np.column_stack([values, prediction])
    share = swapped_target_share(prediction, y)
    assert 0.03 < share < 0.08
    valuer = FixedPredictionValuer().fit(X, y)
    # the estimate also counts gross targets in pairs: a prediction that fits every other
    # row exactly makes 2 of the 20 gross, one above and one below
    estimate = noise_estimate(valuer, y, prediction, values)
    assert estimate == pytest.approx(share + 2 / 400)
    assert noise_estimate(valuer, y, prediction) == share
    removed = np.setdiff1d(np.arange(400), LossValCleaner(
        FixedPredictionValuer(), veto=None).fit(X, y).sample_indices_)
    np.testing.assert_array_equal(removed, np.arange(round(400 * estimate)))  # the lowest values
    by_count = np.setdiff1d(np.arange(400), LossValCleaner(
        FixedPredictionValuer(), veto=None, cut=60).fit(X, y).sample_indices_)
    assert len(by_count) == 60  # the user's own count: not capped


def test_extreme_targets_keep_their_rows_on_a_clean_skewed_table():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(600, 6))
    y = 100 * np.exp(0.6 * X @ np.array([1.0, 0.8, -0.6, 0.4, 0.0, 0.0]) + 0.2 * rng.normal(size=600))
    top = np.flatnonzero(y >= np.quantile(y, 0.95))
    valuer = LossValRegressor(max_epochs=15, random_state=0)
    guarded = LossValCleaner(valuer).fit(X, y)
    assert np.isin(top, guarded.sample_indices_).mean() >= 0.95
    assert len(guarded.sample_indices_) >= 594  # no wrong target: at most 1 % removed (1 row)
    # the lowest 5 % of the weights (no canaries), unguarded: the standardised targets'
    # squared loss puts most of the largest targets there (60 %), the quantile targets fewer
    kept = {scaling: np.isin(top, LossValCleaner(
        valuer.set_params(target_scaling=scaling, canaries=0), cut=0.05, veto=None).fit(
            X, y).sample_indices_).mean() for scaling in ("quantile", "standard")}
    assert kept["standard"] < 0.6 and kept["quantile"] > kept["standard"] + 0.2


# ----------------------------------------------------------------------------- the inner score

def test_prediction_correlation_ignores_shrinkage_and_is_zero_for_a_constant():
    from skval._removal import prediction_correlation

    class Fixed(RegressorMixin, BaseEstimator):
        def __init__(self, pred=None):
            self.pred = pred

        def predict(self, X):
            return self.pred

    y = np.array([1.0, 2.0, 4.0, 3.0, 0.0])
    exact = prediction_correlation(Fixed(y), None, y)
    shrunk = prediction_correlation(Fixed(0.3 * y + 1.7), None, y)  # towards the mean
    assert exact == pytest.approx(1.0) and shrunk == pytest.approx(1.0)
    assert prediction_correlation(Fixed(-y), None, y) == pytest.approx(-1.0)
    assert prediction_correlation(Fixed(np.full(5, 2.0)), None, y) == 0.0


def test_regressor_inner_folds_scored_by_correlation_unless_scoring_given():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(150, 2))
    y = X[:, 0] + 0.1 * rng.normal(size=150)
    base = make_pipeline(StandardScaler(), KNeighborsRegressor(5))
    default = CleanedEstimator(base, valuer=FirstFeatureValuer(), cut=0.1, random_state=0).fit(X, y)
    r2 = CleanedEstimator(base, valuer=FirstFeatureValuer(), cut=0.1, scoring="r2",
                          random_state=0).fit(X, y)
    # the same folds and fits, two scores: correlation is at most 1 and above R^2 here
    assert np.all(default.removal_scores_["mean_score"] <= 1.0)
    assert np.all(default.removal_scores_["mean_score"] > r2.removal_scores_["mean_score"])
    assert default.removal_scores_["fold_scores"].shape == r2.removal_scores_["fold_scores"].shape


class EstimateValuer(FixedPredictionValuer):
    """FixedPredictionValuer whose canaries estimate ``share`` of the rows corrupted."""

    def __init__(self, share=0.05):
        self.share = share

    def fit(self, X, y):
        self.noise_shares_ = np.array([self.share, 0.0])
        return super().fit(X, y)


def test_a_regressions_candidates_are_its_wide_cut_capped_at_the_noise_estimate():
    y = np.arange(40.0)
    # even rows below the median and odd rows above it lie beyond their predictions, on the
    # predictions' side of the median: the wide veto keeps them
    prediction = y + np.tile([0.5, -0.5], 20)
    prediction[5] = 25.0  # a target the network doubts
    prediction[6] = 5.6  # not doubted (a small residual), but not kept either
    values = np.arange(40.0) + 100  # the 2-means cut: the four rows below
    values[[5, 6, 9, 39]] = [-1.0, -1.0, -0.9, -1.0]  # row 39 is kept by the veto
    X = np.column_stack([values, prediction])

    def wide_cut(share):
        return LossValCleaner(EstimateValuer(share), veto="agree").fit(X, y).removal_order()

    assert wide_cut(0.2).tolist() == [5, 6, 9]  # at most 8 rows: the 2-means cut less row 39
    assert wide_cut(0.1).tolist() == [5, 6, 9]  # the 4 lowest values, 39 among them
    assert wide_cut(0.05).tolist() == [5, 6]  # the 2 lowest
    model = CleanedEstimator(LinearRegression(), valuer=EstimateValuer(0.05),
                             removal_fractions=(0.0, 1.0), random_state=0).fit(X, y)
    assert model.removal_scores_["n_removed"].tolist() == [0, 2]  # tried: row 6 too
    strict = CleanedEstimator(LinearRegression(), valuer=EstimateValuer(0.05),
                              removal="cut").fit(X, y)
    np.testing.assert_array_equal(np.setdiff1d(np.arange(40), strict.sample_indices_), [5])
