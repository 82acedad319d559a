"""Canary rows (skval._canary): how many, what they are, what they estimate, the value."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import load_breast_cancer, make_classification

from skval import LossValClassifier, LossValRegressor
from skval._canary import calibrated_values, canary_count, make_canaries, noise_shares
from skval.evaluation import auroc, inject_noise


@pytest.mark.parametrize("n_rows, share, expected", [
    (1000, 0.025, 25), (398, 0.025, 10), (200, 0.025, 10), (199, 0.025, 0),
    (10_000, 0.0, 0), (10_000, 0.1, 1000), (1000, 0.5, 500),  # no floor: as asked
])
def test_canary_count(n_rows, share, expected):
    assert canary_count(n_rows, share) == expected


def _nearest(X, rows):
    return np.argmin(((X[None, :, :] - rows[:, None, :]) ** 2).sum(axis=2), axis=1)


def test_label_canaries_change_the_class_and_feature_canaries_the_features():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5)) * [1, 10, 100, 0.1, 1]
    target = rng.randint(0, 3, size=300)
    X_before, target_before = X.copy(), target.copy()
    X_canary, target_canary = make_canaries(X, target, 3, 20, np.random.RandomState(1))
    np.testing.assert_array_equal(X, X_before)  # inputs untouched
    np.testing.assert_array_equal(target, target_before)
    assert X_canary.shape == (40, 5) and target_canary.shape == (40,)
    assert X_canary.dtype == X.dtype and target_canary.dtype == target.dtype
    # label canaries: a jittered copy of a row (a twentieth of each scale), another class
    source = _nearest(X / X.std(0), X_canary[:20] / X.std(0))
    jitter = (X_canary[:20] - X[source]) / X.std(0)
    assert 0.01 < np.abs(jitter).mean() < 0.1
    assert np.all(target_canary[:20] != target[source]) and set(target_canary) <= {0, 1, 2}
    # feature canaries: the row's target, its features moved by about one scale each
    moved = np.abs(X_canary[20:] - X[_nearest(X / X.std(0), X_canary[20:] / X.std(0))]) / X.std(0)
    assert 0.3 < moved.mean() < 1.5


def test_regression_label_canaries_take_other_rows_targets():
    rng = np.random.RandomState(0)
    X, target = rng.normal(size=(200, 3)), rng.normal(size=(200, 2)).astype(np.float32)
    X_canary, target_canary = make_canaries(X, target, None, 10, np.random.RandomState(0))
    assert target_canary.shape == (20, 2) and target_canary.dtype == np.float32
    rows = [np.flatnonzero((target == t).all(axis=1)) for t in target_canary]
    assert all(len(r) == 1 for r in rows)  # every canary target is some row's whole target
    source = _nearest(X, X_canary[:10])
    assert not np.any(np.concatenate(rows[:10]) == source)  # never the row's own


def _synthetic_run(n=4000, label=0.10, feature=0.05, count=100, seed=0):
    """Evidence of rows (clean, label-corrupted, feature-corrupted) and of their canaries:
    clean N(0, 1) on both sides; a wrong label +4 on the label side; corrupted features
    +4 on the feature side and +2 on the label side."""
    rng = np.random.RandomState(seed)

    def draw(k, shift):
        return rng.normal(size=(k, 2)) + shift

    n_label, n_feature = int(label * n), int(feature * n)
    rows = np.vstack([draw(n - n_label - n_feature, [0, 0]), draw(n_label, [4, 0]),
                      draw(n_feature, [2, 4])])
    kind = np.r_[np.zeros(n - n_label - n_feature), np.ones(n_label), 2 * np.ones(n_feature)]
    evidence = np.vstack([rows, draw(count, [4, 0]), draw(count, [2, 4])])
    return evidence, kind


@pytest.mark.parametrize("label, feature", [(0.10, 0.05), (0.2, 0.0), (0.0, 0.15), (0.0, 0.0)])
def test_noise_shares_recover_the_mix(label, feature):
    shares = np.array([noise_shares(_synthetic_run(label=label, feature=feature, seed=seed)[0],
                                    4000, 100) for seed in range(8)])
    np.testing.assert_allclose(shares[:, 0], label, atol=0.03)
    # the feature threshold sits where five feature canaries still reach: their reach
    # there is read from those five, so one run's feature share is rough (0.08-0.30 for
    # 0.15 here), their mean right
    np.testing.assert_allclose(shares[:, 1].mean(), feature, atol=0.03)
    assert shares[:, 1].max() <= 2 * feature + 0.02  # no run far off


def test_the_value_ranks_like_the_side_of_the_noise_present():
    for label, feature, side in [(0.2, 0.0, 0), (0.0, 0.2, 1)]:
        evidence, kind = _synthetic_run(label=label, feature=feature)
        noisy = kind > 0
        values = calibrated_values(evidence, 4000, 100, noise_shares(evidence, 4000, 100))
        assert values.shape == (4000,) and np.isfinite(values).all()
        assert auroc(values, noisy) > auroc(-evidence[:4000, side], noisy) - 0.005
        if side == 0:  # the plain sum of the sides adds the feature side's spread
            assert auroc(values, noisy) > auroc(-evidence[:4000].sum(axis=1), noisy) + 0.01
    evidence, kind = _synthetic_run(label=0.1, feature=0.1)
    values = calibrated_values(evidence, 4000, 100, noise_shares(evidence, 4000, 100))
    assert auroc(values, kind > 0) > 0.97  # a mix: either side's corruption is found


def test_the_feature_share_counts_corrupted_rows_short_of_far_off_canaries():
    # sparse far-off cells: corrupted rows well beyond the clean ones (z about 9), the
    # dense-noise canaries further still; their median is past every corrupted row
    evidence, kind = _synthetic_run(label=0.0, feature=0.15)
    rng = np.random.RandomState(1)
    evidence[:4000][kind == 2, 1] = rng.normal(10, 1, (kind == 2).sum())
    evidence[4000 + 100:, 1] = rng.normal(20, 1, 100)
    shares = noise_shares(evidence, 4000, 100)
    np.testing.assert_allclose(shares, [0.0, 0.15], atol=0.03)  # was 0.0 feature
    values = calibrated_values(evidence, 4000, 100, shares)
    # was 0.937; 0.987 with the share right but the odds read against the far canaries
    assert auroc(values, kind > 0) > 0.995


def test_sparse_cell_corruption_on_one_hot_columns_is_found():
    # categorical columns one-hot encoded: noise on every cell (the feature canaries)
    # knocks many binary cells off their two values, a fifth of the cells moved far
    # (the rows' noise) fewer; the canaries' median lay beyond most corrupted rows
    rng = np.random.RandomState(0)
    X, y = make_classification(600, 4, n_informative=3, n_redundant=0, random_state=0)
    codes = rng.randint(0, 5, size=(600, 6))
    X = np.hstack([X] + [np.eye(5)[codes[:, j]] for j in range(6)])
    Xn, yn, noisy = inject_noise(X, y, kind="outlier", rate=0.2, random_state=0)
    clf = LossValClassifier(random_state=0).fit(Xn, yn)
    assert clf.noise_shares_[1] > 0.1 > clf.noise_shares_[0]  # was 0.03 feature
    assert auroc(clf.data_values_, noisy) > 0.98  # was 0.975


def test_a_regressor_reads_the_feature_tail_where_its_targets_look_clean():
    # the regression twin of the one-hot test above; with targets swapped it keeps the
    # canaries' median, since target noise gives its clean rows a feature tail
    from sklearn.datasets import make_regression

    rng = np.random.RandomState(0)
    X, y = make_regression(600, 4, n_informative=4, noise=10.0, random_state=0)
    codes = rng.randint(0, 5, size=(600, 6))
    X = np.hstack([X] + [np.eye(5)[codes[:, j]] for j in range(6)])
    Xn, yn, noisy = inject_noise(X, y, kind="outlier", rate=0.2, task="regression",
                                 random_state=0)
    reg = LossValRegressor(random_state=0).fit(Xn, yn)
    assert reg.noise_shares_[0] < 0.05 and reg.noise_shares_[1] > 0.1  # was 0.017 feature
    assert auroc(reg.data_values_, noisy) > 0.99  # was 0.946
    assert reg._reads_feature_tail(0.0) and not reg._reads_feature_tail(0.2)


def test_where_neither_sides_canaries_stand_out_the_values_do_not_tie():
    evidence, _ = _synthetic_run(label=0.0, feature=0.0)
    rng = np.random.RandomState(4)
    evidence[4000:] = rng.normal(size=(200, 2)) - 1  # both kinds of canary below the rows
    values = calibrated_values(evidence, 4000, 100, np.array([0.05, 0.0]))
    assert len(np.unique(values)) == 4000  # they all tied at a slope of 0
    # the side with the share orders the rows, as a tie-break
    assert spearmanr(values, -evidence[:4000, 0]).statistic > 0.99


def test_a_side_whose_canaries_do_not_stand_out_orders_nothing():
    evidence, _ = _synthetic_run(label=0.2, feature=0.0)
    evidence[4000 + 100:, 1] = np.random.RandomState(3).normal(size=100) - 1  # below the rows
    values = calibrated_values(evidence, 4000, 100, np.array([0.2, 0.2]))
    # the feature side gets no slope: only the label side orders the rows
    assert spearmanr(values, -evidence[:4000, 0]).statistic > 0.999


@pytest.fixture(scope="module")
def cancer_fits():
    X, y = load_breast_cancer(return_X_y=True)
    fits = {}
    for kind in ("label", "feature"):
        Xn, yn, noisy = inject_noise(X, y, kind=kind, rate=0.2, random_state=0)
        fits[kind] = LossValClassifier(random_state=0).fit(Xn, yn), noisy
    return fits


def test_the_classifier_estimates_the_noise_and_values_like_its_side(cancer_fits):
    for kind, side in (("label", 0), ("feature", 1)):
        clf, noisy = cancer_fits[kind]
        assert clf.data_values_.shape == clf.weights_.shape == (569,)
        assert clf.evidence_.shape == (569, 2) and len(clf.net_.rows_.weights) == 569 + 28
        assert clf.noise_shares_[side] > 0.08 > clf.noise_shares_[1 - side]
        assert auroc(clf.data_values_, noisy) > auroc(-clf.evidence_[:, side], noisy) - 0.01
    clf, noisy = cancer_fits["feature"]
    assert auroc(clf.data_values_, noisy) > auroc(clf.weights_, noisy) + 0.03


def test_without_canaries_the_values_are_the_weights():
    X, y = load_breast_cancer(return_X_y=True)
    clf = LossValClassifier(max_epochs=2, canaries=0, random_state=0).fit(X, y)
    assert clf.noise_shares_ is None and len(clf.net_.rows_.weights) == len(y)
    np.testing.assert_array_equal(clf.data_values_, clf.weights_)
    reg = LossValRegressor(max_epochs=2, canaries=0, random_state=0).fit(X, y.astype(float))
    assert reg.noise_shares_ is None
    np.testing.assert_array_equal(reg.data_values_, reg.weights_)


def test_regression_canaries_and_the_swapped_share():
    from sklearn.datasets import make_friedman1

    from skval._canary import swapped_target_share

    X, y = make_friedman1(600, noise=1.0, random_state=0)
    shares, found = {}, {}
    for kind in ("label", "feature"):
        Xn, yn, noisy = inject_noise(X, y, kind=kind, rate=0.2, task="regression",
                                     random_state=0)
        reg = LossValRegressor(max_epochs=15, random_state=0).fit(Xn, yn)  # canaries by default
        assert len(reg.net_.rows_.weights) == 600 + 2 * 15 and reg.data_values_.shape == (600,)
        shares[kind], found[kind] = reg.noise_shares_, auroc(reg.data_values_, noisy)
        if kind == "label":
            # the label share is the residuals' swapped share, not the label canaries'
            assert shares[kind][0] == pytest.approx(swapped_target_share(
                reg._targets.encode(reg.predict(Xn).reshape(-1, 1)),
                reg._targets.encode(yn.reshape(-1, 1))), abs=0.02)
    # each noise shows on its own side (label 0.058 / feature 0.000; 0.000 / 0.064)
    assert shares["label"][0] > 0.03 > shares["label"][1]
    assert shares["feature"][1] > 0.03 > shares["feature"][0]
    assert found["label"] > 0.72 and found["feature"] > 0.88  # the weights: 0.73, 0.86


def test_canaries_on_a_table_with_categories_and_missing_values():
    rng = np.random.RandomState(0)
    frame = pd.DataFrame({"x": rng.normal(size=300), "city": rng.choice(["a", "b", "c"], 300),
                          "z": np.where(rng.rand(300) < 0.1, np.nan, rng.normal(size=300))},
                         index=pd.RangeIndex(1000, 1300))
    y = (frame["x"] + (frame["city"] == "a") > 0.5).astype(int)
    clf = LossValClassifier(max_epochs=3, random_state=0).fit(frame, y)
    assert len(clf.net_.rows_.weights) == 300 + 2 * 10
    assert clf.values_series().index.equals(frame.index)


@pytest.mark.parametrize("value, error, message", [
    (True, TypeError, "canaries must be a number in [0, 0.5], got True."),
    ("0.1", TypeError, "canaries must be a number in [0, 0.5], got '0.1'."),
    (-0.1, ValueError, "canaries must be a number in [0, 0.5], got -0.1."),
    (0.6, ValueError, "canaries must be a number in [0, 0.5], got 0.6."),
])
def test_bad_canaries_are_refused(value, error, message):
    X, y = load_breast_cancer(return_X_y=True)
    with pytest.raises(error, match=message.replace("[", r"\[").replace(".", r"\.")):
        LossValClassifier(canaries=value).fit(X, y)


class _Estimate:
    """A valuer with nothing but a noise estimate."""

    def __init__(self, shares):
        self.noise_shares_ = None if shares is None else np.asarray(shares)


def test_the_2_means_cut_keeps_at_most_the_estimated_noise():
    from skval._guard import noise_estimate, within_noise_estimate

    values = np.r_[np.linspace(-5, -4, 30), np.linspace(0, 1, 170)]  # 2-means: the 30 lowest
    removed = values < -3
    capped = within_noise_estimate(values, removed, noise_estimate(_Estimate([0.04, 0.06]), None))
    np.testing.assert_array_equal(np.flatnonzero(capped), np.arange(20))  # 10 % of 200, lowest
    assert not within_noise_estimate(values, removed, 0.0).any()  # clean
    np.testing.assert_array_equal(within_noise_estimate(values, removed, 0.5), removed)  # no adding
    # no canaries: no estimate, nothing capped
    assert noise_estimate(_Estimate(None), None) is None
    np.testing.assert_array_equal(within_noise_estimate(values, removed, None), removed)


def test_a_cut_by_share_or_count_is_not_capped(cancer_fits):
    from skval._guard import guarded_cut

    X, y = load_breast_cancer(return_X_y=True)
    Xn, yn, _ = inject_noise(X, y, kind="label", rate=0.2, random_state=0)
    clf = cancer_fits["label"][0]
    groups = np.zeros(len(yn))
    for cut in (0.25, 150):  # the user's own cut (142 or 150 rows), far above the estimate
        removed = guarded_cut(clf, Xn, yn, clf.data_values_, groups, cut=cut,
                              max_class_share=1.0, veto=None)
        assert removed.sum() == (142 if cut == 0.25 else 150)
    assert guarded_cut(clf, Xn, yn, clf.data_values_, groups, max_class_share=1.0,
                       veto=None).sum() <= round(len(yn) * clf.noise_shares_.sum())


def test_the_cleaner_removes_at_most_the_estimated_noise(cancer_fits):
    from skval import LossValCleaner

    X, y = load_breast_cancer(return_X_y=True)
    Xn, yn, flipped = inject_noise(X, y, kind="label", rate=0.2, random_state=0)
    cleaner = LossValCleaner(cancer_fits["label"][0]).fit(Xn, yn)  # the fitted valuer, reused
    removed = np.setdiff1d(np.arange(len(yn)), cleaner.sample_indices_)
    assert 0 < len(removed) <= round(len(yn) * cleaner.estimator_.noise_shares_.sum())
    assert flipped[removed].mean() > 0.9


def test_the_wide_cut_for_a_cross_validation_is_not_capped(cancer_fits):
    import copy

    from skval._guard import guard, guarded_cut
    from skval._selection import class_groups, rows_to_remove
    from skval._veto import spared_rows

    X, y = load_breast_cancer(return_X_y=True)
    Xn, yn, _ = inject_noise(X, y, kind="label", rate=0.2, random_state=0)
    clf = copy.copy(cancer_fits["label"][0])
    clf.noise_shares_ = np.array([0.05, 0.0])  # an estimate below what the cuts take
    values, groups = clf.data_values_, class_groups(yn, True)
    wide = guarded_cut(clf, Xn, yn, values, groups, veto="agree")
    plain = guard(values, rows_to_remove(values, groups), groups,
                  spared_rows(clf, Xn, yn, "agree"))
    np.testing.assert_array_equal(wide, plain)
    assert wide.sum() > 28  # more than 5 % of 569 rows: not capped
    for veto in ("doubt", None):
        strict = guarded_cut(clf, Xn, yn, values, groups, veto=veto)
        assert 0 < strict.sum() <= 28
        assert np.all(values[strict] <= np.sort(values)[27])  # among the 28 lowest


def test_canaries_that_blend_in_are_said_and_give_no_share():
    # three columns (one a category, one with gaps): Gaussian noise on them does not make a
    # row far in the OT's quantile cost, so the feature canaries look like the rows and the
    # estimate (about 80 %) would be meaningless
    rng = np.random.RandomState(0)
    n = 400
    age, job = rng.randint(18, 70, n), rng.choice(["clerk", "engineer", "nurse"], n)
    hours = rng.normal(40, 8, n).round(1)
    hours[::37] = np.nan
    signal = (age - 44) / 15 + (job == "engineer") * 1.5 - (job == "nurse") * 1.0
    y = (signal + rng.normal(0, 0.3, n) > 0).astype(int)
    flipped = np.zeros(n, bool)
    flipped[rng.choice(n, 60, replace=False)] = True
    y = np.where(flipped, 1 - y, y)
    frame = pd.DataFrame({"age": age, "job": job, "hours": hours})
    with pytest.warns(UserWarning, match=r"The feature canaries did not stand out from the "
                                         r"rows \(more than half the rows estimated"):
        clf = LossValClassifier(random_state=0).fit(frame, y)
    assert clf.noise_shares_[1] == 0 and clf.noise_shares_[0] < 0.5
    assert auroc(clf.data_values_, flipped) > 0.9  # the label side ranks the rows


def test_column_std_matches_numpy_without_a_float64_copy():
    from skval._canary import column_std
    rng = np.random.RandomState(0)
    X = (rng.normal(size=(1000, 4)) * [1.0, 10.0, 1e-3, 0.0] + 5).astype(np.float32)
    np.testing.assert_allclose(column_std(X, chunk=64), X.std(axis=0, dtype=np.float64),
                               rtol=1e-10, atol=1e-12)


def test_the_blend_in_warning_has_one_text_so_python_shows_it_once():
    # a cross-validation fits many valuers; a text that varied with the estimate was shown
    # once per fit, a fixed one is shown once per place by Python's default filter
    import warnings

    from skval._run_warnings import warn_if_canaries_blend_in

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for feature_share in (0.77, 0.97):
            estimate = np.array([0.1, feature_share])
            warn_if_canaries_blend_in(estimate, np.array([0.1, 0.0]))
        warn_if_canaries_blend_in(np.array([0.1, 0.2]), np.array([0.1, 0.2]))  # none dropped
    texts = [str(w.message) for w in caught]
    assert len(texts) == 2 and texts[0] == texts[1]
    assert texts[0].startswith("The feature canaries did not stand out") and "%" not in texts[0]
