"""From a DataFrame to the worst rows and four plots
=================================================

breast_cancer as a pandas DataFrame with string labels, 15% of the training labels flipped.
Three lines give the worst rows (``worst_rows``: features, label and value) and a histogram of the
values; :mod:`skval.plot` then draws the weights of each epoch, the discovery curve of the
flipped rows and the removal curve of a logistic regression. The script saves the four pictures
as PNG (headless) into ``--out`` (default: a new temporary folder); ``--docs-images`` writes them
into ``docs/images``, where these pages take them from::

    python examples/pandas_plots.py [--epochs N] [--out DIR | --docs-images]

.. list-table::

   * - .. image:: /images/values.png
          :alt: histogram of the values, flipped rows in red
     - .. image:: /images/history.png
          :alt: the weight of each row over the epochs
   * - .. image:: /images/discovery.png
          :alt: share of the flipped rows found against the share of rows inspected
     - .. image:: /images/removal.png
          :alt: test accuracy as the highest- or lowest-valued rows are removed

What the pictures say is explained in :doc:`/user_guide/values`.
"""

# sphinx_gallery_thumbnail_path = "images/values.png"

import argparse
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from sklearn.datasets import load_breast_cancer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from skval import LossValClassifier  # noqa: E402
from skval.evaluation import inject_noise, removal_curve  # noqa: E402
from skval.plot import plot_discovery, plot_history, plot_removal, plot_values  # noqa: E402

# %%
# ``record_history=True`` keeps the weights of every epoch for :func:`skval.plot.plot_history`;
# the removal curve retrains the logistic regression without the highest- (or lowest-) valued
# rows, in steps.


def _output_folder(args):
    """--out, or docs/images with --docs-images, or a new temporary folder: never a tracked file unasked."""
    if args.docs_images:
        out = Path(__file__).resolve().parents[1] / "docs" / "images"
    elif args.out is not None:
        out = Path(args.out)
    else:
        return Path(tempfile.mkdtemp(prefix="skval-pandas_plots-"))
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default=None,
                        help="folder for the PNG files (default: a new temporary folder)")
    parser.add_argument("--docs-images", action="store_true",
                        help="write them into the repository's docs/images (regenerates the docs)")
    args = parser.parse_args(argv)
    out = _output_folder(args)

    data = load_breast_cancer(as_frame=True)
    df, target = data.data, data.target.map({0: "malignant", 1: "benign"})
    df_train, df_test, y_train, y_test = train_test_split(df, target, test_size=0.3, random_state=0)
    _, y_noisy, noisy = inject_noise(df_train, y_train, kind="label", rate=0.15, random_state=0)

    # the three lines
    clf = LossValClassifier(max_epochs=args.epochs, record_history=True, random_state=0).fit(df_train, y_noisy)
    print(clf.worst_rows(df_train, y_noisy, k=5)[["mean radius", "mean texture", "target", "data_value"]])
    plot_values(clf, noisy=noisy).figure.savefig(out / "values.png", dpi=80, bbox_inches="tight")

    plot_history(clf, noisy=noisy, max_rows=120).figure.savefig(out / "history.png", dpi=80,
                                                                 bbox_inches="tight")
    plot_discovery(clf, noisy).figure.savefig(out / "discovery.png", dpi=80, bbox_inches="tight")
    model = make_pipeline(StandardScaler(), LogisticRegression())
    fractions, high = removal_curve(model, df_train, y_noisy, clf.data_values_, df_test, y_test,
                                    remove="high")
    _, low = removal_curve(model, df_train, y_noisy, clf.data_values_, df_test, y_test, remove="low")
    ax = plot_removal(fractions, high, low, metric="test accuracy (logistic regression)")
    ax.figure.savefig(out / "removal.png", dpi=80, bbox_inches="tight")
    plt.close("all")
    print(f"plots written to {out}/")
    return clf


# %%
# Run it (in the gallery the pictures go into the build folder, not into ``docs/images``).

if __name__ == "__main__":
    main()
