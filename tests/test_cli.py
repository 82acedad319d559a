"""python -m skval on CSV files with numeric and categorical columns."""

import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from skval._cli import main  # noqa: E402


@pytest.fixture(scope="module")
def noisy_csv(tmp_path_factory):
    """Adult-like CSV: a label that follows the features, 15% of it flipped."""
    rng = np.random.RandomState(0)
    n = 400
    age = rng.randint(18, 70, n)
    job = rng.choice(["clerk", "engineer", "nurse"], n)
    hours = rng.normal(40, 8, n).round(1)
    hours[::37] = np.nan  # missing feature values are imputed
    signal = (age - 44) / 15 + (job == "engineer") * 1.5 - (job == "nurse") * 1.0
    label = np.where(signal + rng.normal(0, 0.3, n) > 0, "high", "low")
    flipped = np.zeros(n, bool)
    flipped[rng.choice(n, 60, replace=False)] = True
    label = np.where(flipped, np.where(label == "high", "low", "high"), label)
    path = tmp_path_factory.mktemp("cli") / "people.csv"
    pd.DataFrame({"age": age, "job": job, "hours": hours, "income": label}).to_csv(path, index=False)
    return path, flipped


def test_cli_values_csv_with_categorical_columns(noisy_csv, tmp_path, capsys):
    path, flipped = noisy_csv
    out, png = tmp_path / "values.csv", tmp_path / "values.png"
    assert main([str(path), "--target", "income", "-o", str(out), "--plot", str(png),
                 "--epochs", "30"]) == 0
    printed = capsys.readouterr().out
    assert "classification: valued 400 rows" in printed
    result = pd.read_csv(out)
    assert list(result.columns) == ["row", "data_value", "rank"]
    assert result["row"].tolist() == list(range(400))
    assert sorted(result["rank"]) == list(range(1, 401))
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(flipped, -result["data_value"]) > 0.8
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_cli_regression_auto(tmp_path, capsys):
    rng = np.random.RandomState(1)
    df = pd.DataFrame({"x": rng.normal(size=60), "city": rng.choice(["a", "b"], 60)})
    df["price"] = 3 * df["x"] + (df["city"] == "a") + rng.normal(0, 0.1, 60)
    path = tmp_path / "prices.csv"
    df.to_csv(path, index=False)
    assert main([str(path), "--target", "price", "--epochs", "2"]) == 0
    assert "regression: valued 60 rows" in capsys.readouterr().out
    assert len(pd.read_csv(f"{path}.values.csv")) == 60


@pytest.mark.parametrize(
    "content, args, message",
    [
        (None, ["--target", "y"], "no such file"),
        ("", ["--target", "y"], "is empty"),
        ("a,y\n", ["--target", "y"], "has a header but no rows"),
        ("a,y\n1,2\n3,4\n", ["--target", "z"], "column 'z' not in"),
        ("a,y\n1,u\n3,v\n", ["--target", "y", "--task", "regression"], "needs a numeric target"),
        ("a,y\n1,\n3,v\n", ["--target", "y"], "has missing values"),
    ],
    ids=["missing-file", "empty", "no-rows", "no-column", "text-regression", "missing-target"],
)
def test_cli_errors(tmp_path, capsys, content, args, message):
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as exc:
        main([str(path), *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_module_help():
    out = subprocess.run([sys.executable, "-m", "skval", "--help"], capture_output=True, text=True,
                         check=True).stdout
    assert "--target" in out and "data_value" in out and "one-hot" in out


def test_cli_never_replaces_a_file_unasked(tmp_path, capsys):
    path = tmp_path / "small.csv"
    pd.DataFrame({"x": np.arange(20.0), "y": np.arange(20) % 2}).to_csv(path, index=False)
    existing = tmp_path / "mine.csv"
    existing.write_text("precious\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--target", "y", "-o", str(existing), "--epochs", "1"])
    assert exit_info.value.code == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert existing.read_text() == "precious\n"
    assert main([str(path), "--target", "y", "-o", str(existing), "--epochs", "1",
                 "--overwrite"]) == 0
    assert pd.read_csv(existing).columns.tolist() == ["row", "data_value", "rank"]
    printed = capsys.readouterr().out
    assert "data_value" in printed and "target" in printed  # the worst rows, as in the file
