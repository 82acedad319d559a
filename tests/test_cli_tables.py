"""python -m skval and the estimators encode a table alike; what the command line writes and says."""

import os
import stat
import subprocess
import sys

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from skval import LossValClassifier  # noqa: E402
from skval._cli import main  # noqa: E402


@pytest.fixture(scope="module")
def mixed_csv(tmp_path_factory):
    rng = np.random.RandomState(0)
    n = 120
    frame = pd.DataFrame({
        "age": rng.randint(18, 70, n).astype(float),
        "job": rng.choice(["clerk", "engineer", "nurse"], n),
        "owner": rng.rand(n) > 0.5,
        "empty": np.nan,
    })
    frame.loc[::7, "age"] = np.nan
    frame.loc[::11, "job"] = None
    frame["y"] = np.where((frame["job"] == "engineer") | (frame["age"] > 50), "a", "b")
    path = tmp_path_factory.mktemp("tables") / "mixed.csv"
    frame.to_csv(path, index=False)
    return path


def test_cli_values_are_the_estimators_on_the_same_table(mixed_csv, tmp_path, capsys):
    out = tmp_path / "values.csv"
    assert main([str(mixed_csv), "--target", "y", "-o", str(out), "--epochs", "3"]) == 0
    err = capsys.readouterr().err
    # the estimator's warning as one line, no Python warning text
    assert err.strip() == ("warning: Columns left out of the features: 'empty': no value in any "
                           "training row. Drop them from X to silence this warning.")
    written = pd.read_csv(out)
    frame = pd.read_csv(mixed_csv)
    with pytest.warns(UserWarning, match="'empty'"):
        clf = LossValClassifier(max_epochs=3, random_state=0).fit(frame.drop(columns="y"),
                                                                  frame["y"].to_numpy())
    np.testing.assert_allclose(written["data_value"], clf.data_values_, rtol=1e-12)
    # the evidence columns are in the values CSV, as the estimator has them
    np.testing.assert_allclose(written[["label_evidence", "feature_evidence"]], clf.evidence_,
                               rtol=1e-12)


def test_cli_single_class_target_is_one_line(tmp_path):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": range(20), "z": np.arange(20) % 3, "y": "a"}).to_csv(path, index=False)
    run = subprocess.run([sys.executable, "-m", "skval", str(path), "--target", "y"],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr == ("error: target column 'y' has one class ('a') in every row; there is "
                          "nothing to tell apart: a classification needs at least 2 classes\n")
    assert not (tmp_path / "one.csv.values.csv").exists()


def test_cli_data_error_is_one_line(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    pd.DataFrame({"x": [np.nan] * 10, "y": list("ab") * 5}).to_csv(path, index=False)
    with pytest.raises(SystemExit) as stop:
        main([str(path), "--target", "y"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == ("error: No column of X can be used: 'x': no value in any "
                                       "training row\n")


def test_cli_outputs_follow_the_umask(mixed_csv, tmp_path, capsys):
    old = os.umask(0o022)
    try:
        assert main([str(mixed_csv), "--target", "y", "-o", str(tmp_path / "v.csv"),
                     "--kept-rows", str(tmp_path / "k.csv"), "--epochs", "1"]) == 0
    finally:
        os.umask(old)
    for name in ("v.csv", "k.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644
