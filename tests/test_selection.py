"""The paper's other curves (adding rows by value) and selecting a pool's best rows, with plots."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from skval.evaluation import addition_curve, selection_curve


def contradicting_pool():
    """Rows 0-29 label x >= 15 as 1; rows 30-59 (the 'bad source') say the opposite, valued low."""
    x = np.tile(np.arange(30.0), 2)
    y = np.concatenate([(np.arange(30) >= 15), (np.arange(30) < 15)]).astype(int)
    values = np.concatenate([np.linspace(1, 2, 30), np.linspace(0, 0.5, 30)])
    X_test, y_test = np.arange(30.0).reshape(-1, 1), (np.arange(30) >= 15).astype(int)
    return x.reshape(-1, 1), y, values, X_test, y_test


class ClassCounter(ClassifierMixin, BaseEstimator):
    """Scores the number of rows of class 1 it was fitted on."""

    def fit(self, X, y):
        self.classes_, self.n_ones_ = np.unique(y), int(np.sum(y == 1))
        return self

    def score(self, X, y):
        return self.n_ones_


def test_adding_low_values_first_trains_on_the_bad_rows():
    X, y, values, X_test, y_test = contradicting_pool()
    fractions, low = addition_curve(LogisticRegression(), X, y, values, X_test, y_test,
                                    fractions=[0.5, 1.0])
    _, high = addition_curve(LogisticRegression(), X, y, values, X_test, y_test, add="high",
                             fractions=[0.5, 1.0])
    np.testing.assert_array_equal(fractions, [0.5, 1.0])
    assert low[0] < 0.1 and high[0] == 1.0      # the low half is the contradicting source
    assert low[1] == high[1]                    # all rows either way


def test_a_single_class_subset_scores_nan():
    X, y = np.arange(10.0).reshape(-1, 1), np.array([0] * 5 + [1] * 5)
    values = np.arange(10.0)
    _, scores = addition_curve(LogisticRegression(), X, y, values, X, y, fractions=[0.3, 1.0])
    assert np.isnan(scores[0]) and scores[1] > 0.5


def test_stratify_takes_the_same_fraction_of_every_class():
    X, y = np.zeros((20, 1)), np.array([0] * 10 + [1] * 10)
    values = np.where(y == 1, 0.0, 1.0) + np.arange(20) * 0.01   # class 1 valued lowest
    _, plain = addition_curve(ClassCounter(), X, y, values, X, y, add="high", fractions=[0.5])
    assert np.isnan(plain[0])                                      # the top half: class 0 only
    _, strat = addition_curve(ClassCounter(), X, y, values, X, y, add="high", fractions=[0.5],
                              stratify=y)
    assert strat[0] == 5
    _, _, random = selection_curve(ClassCounter(), X, y, values, X, y, fractions=[0.3],
                                   stratify=y, n_random=3, random_state=0)
    assert random[0] == 3


def test_selection_by_value_beats_random_on_a_mixed_pool():
    X, y, values, X_test, y_test = contradicting_pool()
    fractions, by_value, random = selection_curve(
        LogisticRegression(), X, y, values, X_test, y_test, fractions=[0.5, 1.0],
        stratify=y, n_random=5, random_state=0)
    assert by_value[0] == 1.0 and random[0] < 0.9    # the top half of each class: the good source
    assert by_value[1] == random[1]


@pytest.mark.parametrize("kwargs, message", [
    ({"add": "middle"}, "add must be 'high' or 'low', got 'middle'"),
    ({"fractions": [0.0, 0.5]}, "fractions must lie in \\(0, 1\\]"),
    ({"fractions": [1.5]}, "fractions must lie in \\(0, 1\\]"),
    ({"stratify": [0, 1]}, "stratify must have shape \\(60,\\), got \\(2,\\)"),
])
def test_addition_curve_errors(kwargs, message):
    X, y, values, X_test, y_test = contradicting_pool()
    with pytest.raises(ValueError, match=message):
        addition_curve(LogisticRegression(), X, y, values, X_test, y_test, **kwargs)


def test_selection_curve_checks_n_random():
    X, y, values, X_test, y_test = contradicting_pool()
    with pytest.raises(ValueError, match="n_random must be an int >= 1, got 0"):
        selection_curve(LogisticRegression(), X, y, values, X_test, y_test, n_random=0)


def test_plots_of_the_curves(tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skval.plot import plot_addition, plot_selection

    X, y, values, X_test, y_test = contradicting_pool()
    fractions, by_value, random = selection_curve(
        LogisticRegression(), X, y, values, X_test, y_test, stratify=y, n_random=2, random_state=0)
    ax = plot_selection(fractions, by_value, random, metric="accuracy")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["skval", "random", "all rows"]
    assert ax.get_lines()[2].get_ydata()[0] == by_value[-1]
    _, low = addition_curve(LogisticRegression(), X, y, values, X_test, y_test, fractions=fractions)
    ax2 = plot_addition(fractions, low, by_value)
    np.testing.assert_array_equal(ax2.get_lines()[0].get_ydata(), low)
    for name, axes in (("selection", ax), ("addition", ax2)):
        axes.figure.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 5000
    plt.close("all")


# ----------------------------------------------------------------------------- the shared rules (skval._selection)

def test_lowest_rows_break_ties_by_row_order():
    from skval._selection import lowest, lowest_mask, value_order

    values = np.array([2.0, 1.0, 1.0, 0.0, 1.0])
    assert lowest(values, 3).tolist() == [3, 1, 2]
    assert lowest_mask(values, 2).tolist() == [False, True, False, True, False]
    assert value_order(values, "high").tolist() == [0, 4, 2, 1, 3]


def test_two_means_split_separates_the_low_cluster():
    from skval._selection import two_means_split

    assert two_means_split(np.array([0.1, 1.0, 0.2, 1.1, 0.9])) == 0.2
    assert two_means_split(np.array([0.5, 0.5])) == 0.5   # one cluster: the largest value


def test_cap_per_group_spares_a_small_class():
    from skval._selection import class_groups, rows_to_remove

    y = np.array([0] * 8 + [1] * 2)
    groups = class_groups(y, by_class=True)
    assert class_groups(y, by_class=False).tolist() == [0] * 10
    values = np.arange(10.0)[::-1]   # class 1 holds the lowest values
    removed = rows_to_remove(values, groups, cut=4, max_class_share=0.5)
    # class 0 (average size 5 -> factor 1) may lose 4 rows, class 1 (factor 0.16) none
    assert np.flatnonzero(removed).tolist() == [6, 7]
