"""skval.plot renders headless to non-empty PNGs."""

import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skval import LossValClassifier  # noqa: E402
from skval.plot import plot_discovery, plot_history, plot_removal, plot_values  # noqa: E402


@pytest.fixture(scope="module")
def fitted(flipped_cancer, cancer_clf_history):
    # LossValClassifier(max_epochs=3, record_history=True, random_state=0) fitted on X, y (conftest)
    return cancer_clf_history, flipped_cancer[2]


def _png_ok(ax, tmp_path, name):
    path = tmp_path / f"{name}.png"
    ax.figure.savefig(path)
    plt.close(ax.figure)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_plot_values(fitted, tmp_path):
    clf, flipped = fitted
    ax = plot_values(clf, noisy=flipped)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["clean rows", "noisy rows"]
    _png_ok(ax, tmp_path, "values")
    _png_ok(plot_values(clf.data_values_), tmp_path, "values_plain")


def test_plot_history_on_given_axes(fitted, tmp_path):
    clf, flipped = fitted
    fig, ax = plt.subplots()
    out = plot_history(clf, noisy=flipped, max_rows=50)
    assert out is not ax
    out2 = plot_history(clf.weight_history_, ax=ax, max_rows=50)
    assert out2 is ax
    assert len(ax.get_lines()) == 50
    assert ax.get_lines()[0].get_xdata().tolist() == [1, 2, 3]
    _png_ok(out, tmp_path, "history")
    with pytest.raises(ValueError, match="record_history=True"):
        plot_history(LossValClassifier(max_epochs=1).fit([[0.0], [1.0]], [0, 1]))


def test_plot_discovery_and_removal(fitted, tmp_path):
    clf, flipped = fitted
    ax = plot_discovery(clf, flipped)
    xs, ys = ax.get_lines()[0].get_data()
    assert xs[0] == 0 and ys[-1] == 1.0
    _png_ok(ax, tmp_path, "discovery")
    ax = plot_removal([0, 0.1, 0.2], [0.9, 0.8, 0.7], [0.9, 0.92, 0.93])
    assert len(ax.get_lines()) == 2
    _png_ok(ax, tmp_path, "removal")
