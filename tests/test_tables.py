"""Tables as users have them (text, category, boolean columns, missing values), X_val checked
as X is, values that do not depend on the features' units, and no silently flat fit."""

import warnings

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from sklearn.datasets import make_classification  # noqa: E402

from skval import LossValClassifier, LossValRegressor  # noqa: E402
from skval._tabular import MIN_CATEGORY_ROWS, TableEncoder  # noqa: E402
from skval.evaluation import auroc  # noqa: E402


def table(n=300, seed=0):
    """A table with every kind of column, missing values, and a label that follows it."""
    rng = np.random.RandomState(seed)
    age = rng.randint(18, 70, n).astype(float)
    job = rng.choice(["clerk", "engineer", "nurse"], n).astype(object)
    signal = (age - 44) / 15 + (job == "engineer") * 1.5 - (job == "nurse") * 1.0
    frame = pd.DataFrame({
        "age": age,
        "job": job,
        "city": pd.Categorical(rng.choice(["north", "south"], n)),
        "owner": rng.rand(n) > 0.5,
        "name": pd.array([f"p{i}" for i in range(n)], dtype="string"),  # an identifier
    })
    frame.loc[::9, "age"] = np.nan
    frame.loc[::13, "job"] = None
    clean = np.where(signal > 0, "high", "low")
    flipped = np.zeros(n, bool)
    flipped[rng.choice(n, n // 8, replace=False)] = True
    label = np.where(flipped, np.where(clean == "high", "low", "high"), clean)
    return frame, label, flipped


def quiet_fit(est, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Columns left out")
        return est.fit(*args, **kwargs)


@pytest.fixture(scope="module")
def fitted():
    frame, label, flipped = table()
    clf = quiet_fit(LossValClassifier(max_epochs=15, random_state=0), frame, label)
    return clf, frame, label, flipped


def test_fit_predict_and_reports_on_a_raw_table(fitted):
    clf, frame, label, flipped = fitted
    assert list(clf.feature_names_in_) == ["age", "job", "city", "owner", "name"]
    assert clf.n_features_in_ == 5
    assert clf.predict(frame).shape == (300,) and set(clf.predict(frame)) <= {"high", "low"}
    np.testing.assert_allclose(clf.predict_proba(frame).sum(axis=1), 1.0)
    assert clf.score(frame, np.where(flipped, "x", label)) > 0.6  # the unflipped rows learnt
    report = clf.get_issues(frame, label)
    assert len(report) == 300 and report["flagged"].dtype == bool
    worst = clf.worst_rows(frame, label, k=5)
    assert list(worst.columns[:5]) == list(frame.columns) and len(worst) == 5
    assert auroc(clf.data_values_, flipped) > 0.9  # the flipped labels are found (0.95)


def test_the_warning_names_identifier_columns_left_out():
    frame, label, _ = table(60)
    with pytest.warns(UserWarning, match=r"Columns left out of the features: 'name': an identifier"):
        LossValClassifier(max_epochs=1, random_state=0).fit(frame, label)


def test_predict_takes_reordered_columns_and_names_missing_ones(fitted):
    clf, frame, _, _ = fitted
    np.testing.assert_array_equal(clf.predict_proba(frame[frame.columns[::-1]]),
                                  clf.predict_proba(frame))
    with pytest.raises(ValueError, match=r"missing: \['job'\], not in X: \['jobs'\]"):
        clf.predict(frame.rename(columns={"job": "jobs"}))
    with pytest.raises(ValueError, match="X must be a DataFrame with the same columns"):
        clf.predict(frame.to_numpy())


def test_unseen_categories_and_missing_values_at_predict_time(fitted):
    clf, frame, _, _ = fitted
    new = frame.iloc[:3].copy()
    new["job"] = ["astronaut", None, "clerk"]
    new["age"] = [np.nan, 30.0, 200.0]
    new["city"] = pd.Categorical(["east", "north", "south"])
    assert np.isfinite(clf.predict_proba(new)).all()


def test_encoding_rules():
    frame = pd.DataFrame({
        "x": [1.0, np.nan, 3.0, 4.0] * 5,
        "kind": ["a"] * 12 + ["b"] * 6 + ["c", "d"],          # c and d are rare
        "empty": [np.nan] * 20,
    })
    with pytest.warns(UserWarning, match="'empty': no value in any training row"):
        encoder = TableEncoder().fit(frame)
    X = encoder.transform(frame)
    # x (median for the missing), its missing indicator, a, b, one column for the rare ones
    assert X.shape == (20, 5)
    np.testing.assert_array_equal(X[:4, 0], [1, 3, 3, 4])
    np.testing.assert_array_equal(X[:4, 1], [0, 1, 0, 0])
    assert MIN_CATEGORY_ROWS > 2
    np.testing.assert_array_equal(X[-2:, 2:], [[0, 0, 1], [0, 0, 1]])


def test_unusable_columns_are_named():
    frame, label, _ = table(40)
    dated = frame.assign(joined=pd.date_range("2020-01-01", periods=40))
    with pytest.raises(ValueError, match=r"Column 'joined' holds dates or durations"):
        quiet_fit(LossValClassifier(max_epochs=1), dated, label)
    with pytest.raises(ValueError, match=r"No column of X can be used: 'a': no value"):
        LossValClassifier(max_epochs=1).fit(pd.DataFrame({"a": [np.nan] * 40}), label)


def test_numeric_frame_with_missing_values_is_encoded_arrays_keep_their_path():
    X, y = make_classification(80, 4, random_state=0)
    frame = pd.DataFrame(X, columns=list("abcd"))
    assert LossValClassifier(max_epochs=1, random_state=0).fit(frame, y)._table is None
    assert LossValClassifier(max_epochs=1, random_state=0).fit(X, y)._table is None
    with pytest.raises(ValueError, match="NaN"):  # arrays: scikit-learn's validation, unchanged
        LossValClassifier(max_epochs=1).fit(np.where(X > 2, np.nan, X), y)
    holes = frame.mask(frame > 2)
    clf = LossValClassifier(max_epochs=1, random_state=0).fit(holes, y)
    assert clf._table is not None and list(clf.feature_names_in_) == list("abcd")
    assert np.isfinite(clf.predict_proba(holes)).all()


def test_regressor_on_a_raw_table():
    frame, _, _ = table(120)
    target = frame["age"].fillna(40).to_numpy() * 2 + (frame["job"] == "engineer") * 10
    # learns from the job column: R^2 0.09 on the rank-normal targets (default), 0.1 or more on
    # the standardised ones, whose squared loss the R^2 shares
    for scaling, least in (("quantile", 0.05), ("standard", 0.1)):
        reg = quiet_fit(LossValRegressor(target_scaling=scaling, max_epochs=30, random_state=0),
                        frame.drop(columns="age"), target)
        assert reg.score(frame.drop(columns="age"), target) > least


# ---------------------------------------------------------------- X_val checked as X is
def test_X_val_columns_are_matched_to_X():
    frame, label, _ = table(100)
    frame = frame.drop(columns="name")
    ordered = LossValClassifier(max_epochs=3, random_state=0).fit(frame, label, X_val=frame[:50])
    reversed_ = LossValClassifier(max_epochs=3, random_state=0).fit(
        frame, label, X_val=frame[:50][frame.columns[::-1]])
    np.testing.assert_array_equal(ordered.data_values_, reversed_.data_values_)
    with pytest.raises(ValueError, match=r"X_val must have the columns.*missing: \['city'\], "
                                         r"not in X: \['town'\]"):
        LossValClassifier(max_epochs=1).fit(frame, label,
                                            X_val=frame[:50].rename(columns={"city": "town"}))


def test_numeric_X_val_frame_is_reordered_too():
    X, y = make_classification(80, 4, random_state=0)
    frame = pd.DataFrame(X, columns=list("abcd"))
    ordered = LossValClassifier(max_epochs=3, random_state=0).fit(frame, y, X_val=frame[:40])
    reversed_ = LossValClassifier(max_epochs=3, random_state=0).fit(
        frame, y, X_val=frame[:40][list("dcba")])
    np.testing.assert_array_equal(ordered.data_values_, reversed_.data_values_)
    with pytest.raises(ValueError, match=r"missing: \['d'\], not in X: \['e'\]"):
        LossValClassifier(max_epochs=1).fit(frame, y, X_val=frame[:40].rename(columns={"d": "e"}))


def test_too_small_a_reference_and_label_weight_without_y_val():
    X, y = make_classification(60, 4, random_state=0)
    with pytest.raises(ValueError, match="X_val has 1 row; the OT term .* needs at least 2"):
        LossValClassifier(max_epochs=1).fit(X, y, X_val=X[:1])
    with pytest.warns(UserWarning, match="X_val has only 5 rows.*Pass at least 10"):
        LossValClassifier(max_epochs=1).fit(X, y, X_val=X[:5])
    with pytest.warns(UserWarning, match="label_weight=1.0 has no effect without y_val"):
        LossValClassifier(max_epochs=1, label_weight=1.0).fit(X, y, X_val=X[:20])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LossValClassifier(max_epochs=1, label_weight=1.0).fit(X, y, X_val=X[:20], y_val=y[:20])


# ---------------------------------------------------------------- scale-free, never silently flat
@pytest.fixture(scope="module")
def unscaled():
    X, y = make_classification(120, 5, random_state=0)
    return X, y, {scaling: LossValClassifier(max_epochs=3, random_state=0, ot_scaling=scaling)
                  .fit(X, y).data_values_ for scaling in ("quantile", "standard")}


@pytest.mark.parametrize("ot_scaling", ["quantile", "standard"])
@pytest.mark.parametrize("factor", [1e-12, 1e-8, 1e-4, 1e4, 1e12])
@pytest.mark.parametrize("columns", ["one", "all"])
def test_values_do_not_depend_on_the_units_of_a_feature(unscaled, ot_scaling, factor, columns):
    X, y, values = unscaled
    scaled = X.copy()
    scaled[:, 1 if columns == "one" else slice(None)] *= factor
    got = LossValClassifier(max_epochs=3, random_state=0, ot_scaling=ot_scaling).fit(scaled, y)
    assert np.ptp(values[ot_scaling]) > 0.1
    np.testing.assert_allclose(got.data_values_, values[ot_scaling], rtol=0, atol=1e-6)


def test_a_fit_whose_loss_vanishes_warns():
    X, y = make_classification(60, 4, random_state=0)
    # one batch of all rows against the same rows as reference: OT(batch, reference) = 0
    clf = LossValClassifier(max_epochs=2, batch_size=60, n_reference=60, random_state=0)
    with pytest.warns(RuntimeWarning, match=r"Every data value is the same \(1\): train_loss "
                                            r"was about 0 in every epoch"):
        clf.fit(X, y, X_val=X)
    assert np.ptp(clf.data_values_) == 0


def test_weights_that_cannot_move_warn():
    X, y = make_classification(60, 4, random_state=0)
    with pytest.warns(RuntimeWarning, match="did not move although the loss did not vanish"):
        LossValClassifier(max_epochs=1, weight_lr=1e-14, random_state=0).fit(X, y)
