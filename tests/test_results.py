"""Values keyed by the user's rows: values_series and worst_rows."""

import numpy as np
import pytest

from skval import LossValClassifier

pd = pytest.importorskip("pandas")


@pytest.fixture(scope="module")
def frame_fit(flipped_cancer):
    X, y, flipped, _ = flipped_cancer
    index = pd.Index([f"patient-{i}" for i in range(len(X))], name="id")
    df = pd.DataFrame(X[:, :5], columns=list("abcde"), index=index)
    labels = pd.Series(np.array(["benign", "malignant"])[y], index=index)
    clf = LossValClassifier(max_epochs=5, random_state=0).fit(df, labels)
    return clf, df, labels


def test_values_series_keyed_by_index(frame_fit):
    clf, df, _ = frame_fit
    s = clf.values_series()
    assert s.name == "data_value"
    assert s.index.equals(df.index)
    np.testing.assert_array_equal(s.to_numpy(), clf.data_values_)
    ordered = clf.values_series(sort=True)
    assert ordered.is_monotonic_increasing
    assert ordered.index[0] == df.index[np.argmin(clf.data_values_)]


def test_worst_rows_joined_with_features_and_labels(frame_fit):
    clf, df, labels = frame_fit
    worst = clf.worst_rows(df, labels, k=7)
    assert len(worst) == 7
    assert list(worst.columns) == list("abcde") + ["target", "data_value", "rank",
                                                    "label_evidence", "feature_evidence"]
    assert worst["rank"].tolist() == list(range(1, 8))
    assert worst["data_value"].is_monotonic_increasing
    first = worst.index[0]
    assert worst.loc[first, "target"] == labels[first]
    assert worst.loc[first, "a"] == df.loc[first, "a"]
    assert df.shape == (569, 5)  # not modified
    with pytest.raises(ValueError, match="fitted on 569"):
        clf.worst_rows(df.iloc[:10])
    with pytest.raises(ValueError, match="k must be a positive int"):
        clf.worst_rows(df, k=0)


def test_numpy_input_uses_row_numbers(diabetes, diabetes_reg):
    X, _ = diabetes
    reg = diabetes_reg  # LossValRegressor(max_epochs=5, random_state=0) fitted on X, y
    s = reg.values_series()
    assert s.index.equals(pd.RangeIndex(len(X)))
    worst = reg.worst_rows(X, k=3)
    assert worst.index.tolist() == np.argsort(reg.data_values_)[:3].tolist()
    assert "target" not in worst.columns
