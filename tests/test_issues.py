"""get_issues: one line per training row, indexed like values_series; worst_rows and the cleaner on it."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_wine

from skval import LossValClassifier, LossValCleaner, LossValRegressor
from skval._selection import SOURCES, evidence_source

pd = pytest.importorskip("pandas")

COMMON = ["value", "rank", "label_evidence", "feature_evidence", "source", "flagged"]


@pytest.fixture(scope="module")
def wine_frame():
    """wine with 20 % of the labels moved to the next class, as a DataFrame with a string index."""
    X, y = load_wine(return_X_y=True)
    rng = np.random.RandomState(0)
    flipped = np.zeros(len(y), bool)
    flipped[rng.choice(len(y), 36, replace=False)] = True
    y = np.where(flipped, (y + 1) % 3, y)
    index = pd.Index([f"bottle-{i}" for i in range(len(y))], name="bottle")
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])], index=index)
    labels = pd.Series(np.array(["red", "rose", "white"])[y], index=index)
    clf = LossValClassifier(max_epochs=8, random_state=0).fit(df, labels)
    return clf, df, labels, flipped


def test_classification_report_columns_dtypes_and_index(wine_frame):
    clf, df, labels, _ = wine_frame
    before = df.copy()
    report = clf.get_issues(df, labels)
    assert list(report.columns) == COMMON + ["given_label", "given_proba", "suggested_label",
                                             "suggested_proba"]
    assert report.index.equals(clf.values_series().index) and report.index.equals(df.index)
    assert report["value"].dtype == np.float64 and report["rank"].dtype == np.int64
    assert report["flagged"].dtype == bool and isinstance(report["source"].dtype,
                                                          pd.CategoricalDtype)
    assert list(report["source"].cat.categories) == list(SOURCES)
    pd.testing.assert_frame_equal(df, before)  # the input is not modified


def test_classification_report_values(wine_frame):
    clf, df, labels, _ = wine_frame
    report = clf.get_issues(df, labels)
    np.testing.assert_array_equal(report["value"], clf.data_values_)
    np.testing.assert_array_equal(report[["label_evidence", "feature_evidence"]], clf.evidence_)
    assert sorted(report["rank"]) == list(range(1, len(df) + 1))
    assert report.sort_values("rank")["value"].is_monotonic_increasing
    np.testing.assert_array_equal(report["suggested_label"], clf.predict(df))
    proba = clf.predict_proba(df)
    np.testing.assert_allclose(report["suggested_proba"], proba.max(axis=1))
    columns = np.searchsorted(clf.classes_, labels.to_numpy())
    np.testing.assert_allclose(report["given_proba"], proba[np.arange(len(df)), columns])
    assert (report["given_label"] == labels).all()


def test_flagged_is_the_cleaners_removal(wine_frame):
    clf, df, labels, flipped = wine_frame
    report = clf.get_issues(df, labels)
    cleaner = LossValCleaner(clone(clf)).fit(df, labels)
    removed = np.ones(len(df), bool)
    removed[cleaner.sample_indices_] = False
    np.testing.assert_array_equal(report["flagged"].to_numpy(), removed)
    assert 0 < removed.sum() and flipped[removed].mean() > 0.5  # mostly the flipped rows
    for veto in ("agree", None):
        wider = LossValCleaner(clone(clf), veto=veto).fit(df, labels)
        flagged = clf.get_issues(df, labels, veto=veto)["flagged"].to_numpy()
        np.testing.assert_array_equal(np.flatnonzero(~flagged), wider.sample_indices_)
        assert flagged.sum() >= removed.sum() and (flagged | ~removed).all()  # a wider cut


def test_source_names_the_side_that_stands_out():
    evidence = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [9.0, 0.5], [0.5, 9.0], [-1, -1.0]])
    assert [SOURCES[i] for i in evidence_source(evidence)] == [
        "none", "label", "feature", "label", "feature", "none"]


def test_without_y_the_flag_is_missing(wine_frame):
    clf, df, _, _ = wine_frame
    report = clf.get_issues(df)
    assert "given_label" not in report.columns and "suggested_label" in report.columns
    assert report["flagged"].isna().all() and report["flagged"].dtype == "boolean"


def test_regression_report_and_row_numbers():
    X, y = load_diabetes(return_X_y=True)
    reg = LossValRegressor(max_epochs=3, random_state=0).fit(X, y)
    report = reg.get_issues(X, y)
    assert list(report.columns) == COMMON + ["target", "prediction"]
    assert report.index.equals(pd.RangeIndex(len(X)))
    np.testing.assert_allclose(report["prediction"], reg.predict(X))
    np.testing.assert_array_equal(report["target"], y)
    two = LossValRegressor(max_epochs=2, random_state=0).fit(X[:100], np.c_[y[:100], -y[:100]])
    assert list(two.get_issues(X[:100]).columns) == COMMON + ["prediction_0", "prediction_1"]


def test_worst_rows_are_the_reports_lowest(wine_frame):
    clf, df, labels, _ = wine_frame
    worst = clf.worst_rows(df, labels, k=5)
    report = clf.get_issues(df, labels)
    lowest = report.sort_values("rank").head(5)
    assert worst.index.equals(lowest.index)
    np.testing.assert_array_equal(worst["data_value"], lowest["value"])


def test_bad_arguments(wine_frame):
    clf, df, labels, _ = wine_frame
    with pytest.raises(ValueError, match="fitted on 178"):
        clf.get_issues(df.iloc[:10])
    with pytest.raises(ValueError, match="y has 10 rows"):
        clf.get_issues(df, labels.iloc[:10])
    with pytest.raises(ValueError, match="max_class_share"):
        clf.get_issues(df, labels, max_class_share=1.5)
    with pytest.raises(ValueError, match="cut"):
        clf.get_issues(df, labels, cut=-1)
    with pytest.raises(ValueError, match="veto must be one of"):
        clf.get_issues(df, labels, veto="strict")
