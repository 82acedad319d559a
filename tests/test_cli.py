"""python -m skval on CSV files with numeric and categorical columns."""

import re
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from skval._cli import main  # noqa: E402

REPORT_CLASSIFICATION = ["data_value", "rank", "label_evidence", "feature_evidence", "source",
                         "flagged", "given_proba", "suggested_label", "suggested_proba"]


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
    # 60 of 400 labels (15 %) flipped, no feature corrupted: the canaries' estimate
    estimate = re.search(r"the run estimates (\d+)% of the labels wrong and (\d+)% of the rows' "
                         r"features corrupted \(its canary rows\)", printed)
    assert 8 <= int(estimate[1]) <= 25 and int(estimate[2]) <= 5, printed
    result = pd.read_csv(out)
    # the values CSV is the get_issues report (less the target, which is in the file)
    assert list(result.columns) == ["row"] + REPORT_CLASSIFICATION
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
    out = capsys.readouterr().out
    assert "regression: valued 60 rows" in out
    assert "the run estimates" not in out  # under 200 rows: no canaries, no estimate
    assert len(pd.read_csv(f"{path}.values.csv")) == 60


def test_cli_regression_names_targets_in_its_estimate(tmp_path, capsys):
    rng = np.random.RandomState(1)
    df = pd.DataFrame({"x": rng.normal(size=300)})
    df["price"] = 3 * df["x"] + rng.normal(0, 0.1, 300)
    path = tmp_path / "prices.csv"
    df.to_csv(path, index=False)
    assert main([str(path), "--target", "price", "--epochs", "2"]) == 0
    assert re.search(r"the run estimates \d+% of the targets wrong \(its residuals\) and \d+% "
                     r"of the rows' features corrupted", capsys.readouterr().out)


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
    assert pd.read_csv(existing).columns.tolist() == ["row"] + REPORT_CLASSIFICATION
    printed = capsys.readouterr().out
    assert "data_value" in printed and "target" in printed  # the worst rows, as in the file


# ----------------------------------------------------------------------------- kept rows, safety, identifiers

def test_cli_kept_rows_are_the_file_rows_without_the_flipped_ones(noisy_csv, tmp_path, capsys):
    path, flipped = noisy_csv
    kept_path = tmp_path / "kept.csv"
    assert main([str(path), "--target", "income", "-o", str(tmp_path / "v.csv"),
                 "--kept-rows", str(kept_path), "--epochs", "30"]) == 0
    original, kept = pd.read_csv(path), pd.read_csv(kept_path)
    # the rows the report does not flag (the guarded default cut)
    expected = np.flatnonzero(~pd.read_csv(tmp_path / "v.csv")["flagged"].to_numpy())
    # the file's own rows, all columns, in file order: those the default cut keeps
    pd.testing.assert_frame_equal(original.iloc[expected].reset_index(drop=True), kept)
    assert f"kept {len(kept)} of 400 rows" in capsys.readouterr().out
    assert flipped[expected].mean() < 0.08 < flipped.mean()   # from 15% flipped to under 8%


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    pd.DataFrame({"x": np.linspace(0, 1, 20), "y": np.arange(20) % 2}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("option", ["-o", "--plot", "--kept-rows"])
def test_cli_refuses_to_write_over_its_input(small_csv, capsys, option):
    before = small_csv.read_bytes()
    same_file = str(small_csv.parent / "." / small_csv.name)   # another spelling of the input
    with pytest.raises(SystemExit) as exit_info:
        main([str(small_csv), "--target", "y", option, same_file, "--overwrite", "--epochs", "1"])
    assert exit_info.value.code == 2
    assert "is the input file; refusing to write over it" in capsys.readouterr().err
    assert small_csv.read_bytes() == before


def test_cli_refuses_one_path_for_two_outputs(small_csv, tmp_path, capsys):
    with pytest.raises(SystemExit):
        main([str(small_csv), "--target", "y", "-o", str(tmp_path / "a.csv"),
              "--kept-rows", str(tmp_path / "a.csv")])
    assert "is given for two outputs" in capsys.readouterr().err


def churn_like(n=60, seed=0):
    rng = np.random.RandomState(seed)
    x = rng.normal(size=n)
    return pd.DataFrame({
        "customerID": [f"{i:04d}-{c}" for i, c in enumerate(rng.choice(list("ABCDEF"), n))],
        "row_no": np.arange(1, n + 1),
        "tenure": rng.randint(0, 70, n),                 # integers, not counting up
        "charges": rng.normal(50, 10, n).round(2),       # a distinct float per row: a feature
        "plan": rng.choice(["basic", "plus"], n),
        "churn": np.where(x > 0, "yes", "no"),
    })


def test_identifier_columns_are_detected():
    from skval._tabular import identifier_columns as _identifier_columns

    frame = churn_like().drop(columns="churn")
    assert _identifier_columns(frame) == ["customerID", "row_no"]
    frame.loc[3, "customerID"] = frame.loc[4, "customerID"]      # no longer distinct
    shuffled = frame.assign(row_no=frame["row_no"].to_numpy()[::-1])  # counts down
    assert _identifier_columns(shuffled) == []


def test_cli_leaves_identifiers_out_of_the_features(tmp_path, capsys, monkeypatch):
    import skval._cli as cli

    path = tmp_path / "churn.csv"
    churn_like().to_csv(path, index=False)
    seen = []
    fit = cli._value_rows
    monkeypatch.setattr(cli, "_value_rows", lambda X, *a: seen.append(list(X.columns)) or fit(X, *a))
    assert main([str(path), "--target", "churn", "--epochs", "1"]) == 0
    assert seen[-1] == ["tenure", "charges", "plan"]
    assert "identifier columns left out of the features: customerID, row_no" in capsys.readouterr().out
    values = pd.read_csv(f"{path}.values.csv")
    assert list(values.columns) == ["row", "customerID", "row_no"] + REPORT_CLASSIFICATION
    assert values["customerID"].tolist() == churn_like()["customerID"].tolist()

    assert main([str(path), "--target", "churn", "--epochs", "1", "--keep-id-columns",
                 "--overwrite"]) == 0
    assert seen[-1] == ["customerID", "row_no", "tenure", "charges", "plan"]
    assert "left out" not in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--cut", "half"], "expected 'kmeans', a fraction in (0, 1) or a count, got 'half'"),
    (["--cut", "1.5"], "--cut: cut as a fraction of rows must be in (0, 1), got 1.5"),
    (["--cut", "20"], "--cut: cut as a count of rows must be in [0, 20), got 20"),
    (["--max-class-share", "1"], "--max-class-share: max_class_share must be in [0, 1), got 1.0"),
])
def test_cli_cut_errors_before_fitting(small_csv, tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main([str(small_csv), "--target", "y", "--kept-rows", str(tmp_path / "k.csv"), *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "k.csv").exists()


def test_cli_help_says_what_is_written_and_when(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    for phrase in ("--kept-rows", "None of them may be the input CSV", "--overwrite", "temporary file",
                   "--keep-id-columns", "Identifier columns are not features"):
        assert phrase in out, phrase
