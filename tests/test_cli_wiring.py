"""The command lines, end to end: which rows ``--kept-rows`` keeps, and the input file that
no output may replace whatever its spelling (``python -m skval``, ``python -m skval.distributed``).
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from skval import LossValClassifier  # noqa: E402
from skval._cli import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def imbalanced_csv(tmp_path):
    """60 rows: 40 of class "a", 20 of class "b" (average class size 30)."""
    rng = np.random.RandomState(0)
    y = np.array(["a"] * 40 + ["b"] * 20)
    rng.shuffle(y)
    x1 = rng.normal(size=60) + (y == "a")
    frame = pd.DataFrame({"x1": x1, "x2": rng.normal(size=60), "label": y})
    path = tmp_path / "imbalanced.csv"
    frame.to_csv(path, index=False)
    return path


def lowest(values, rows, k):
    """The ``k`` rows of ``rows`` with the lowest values (ties: earlier rows first)."""
    return rows[np.argsort(values[rows], kind="stable")[:k]]


@pytest.mark.parametrize("veto", ["doubt", "none"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_kept_rows_cap_each_class_on_its_own(imbalanced_csv, tmp_path, capsys, task, veto):
    # --cut 59 makes every row but one a candidate, so the cap decides: with
    # --max-class-share 0.25 class "a" (40 rows, at least average size) loses its
    # floor(0.25 * 40) = 10 lowest-valued rows and class "b" (20 rows, size factor
    # (20/30)^2) its floor(0.25 * 4/9 * 20) = 2 lowest, 12 rows in all. A regression
    # target is one group: floor(0.25 * 60) = 15 lowest rows.
    frame = pd.read_csv(imbalanced_csv)
    if task == "regression":
        frame["label"] = frame["x1"] * 2 + np.random.RandomState(1).normal(size=60)
        frame.to_csv(imbalanced_csv, index=False)
    out, kept_path = tmp_path / "values.csv", tmp_path / "kept.csv"
    task_arg = "".join(list(task))  # as a real command line gives it: equal, not identical
    assert main([str(imbalanced_csv), "--target", "label", "--task", task_arg, "-o", str(out),
                 "--kept-rows", str(kept_path), "--cut", "59", "--max-class-share", "0.25",
                 "--epochs", "2", "--veto", veto]) == 0
    report = pd.read_csv(out)
    values = report["data_value"].to_numpy()
    if task == "classification":
        labels = frame["label"].to_numpy()
        capped = np.concatenate([lowest(values, np.flatnonzero(labels == "a"), 10),
                                 lowest(values, np.flatnonzero(labels == "b"), 2)])
    else:
        capped = lowest(values, np.arange(60), 15)
    # the guards (the network's veto, the class floor) only spare rows of the cap's choice:
    # what goes is among the capped rows (all of them without the veto: the cap keeps every
    # class above its floor), and it is what the values CSV flags
    removed = np.flatnonzero(report["flagged"].to_numpy().astype(bool))
    if veto == "none":
        assert set(removed) == set(capped)
    else:
        assert set(removed) <= set(capped)
    expected = np.setdiff1d(np.arange(60), removed)
    kept = pd.read_csv(kept_path)
    pd.testing.assert_frame_equal(kept, frame.iloc[expected].reset_index(drop=True))
    assert f"kept {len(expected)} of 60 rows" in capsys.readouterr().out


# ----------------------------------------------------------------------------- the input file

def other_spelling(path, how):
    """Another name of the file ``path``: a symlink to it, or a path through ``sub/..``."""
    if how == "symlink":
        link = path.parent / f"link-to-{path.name}"
        link.symlink_to(path)
        return str(link)
    (path.parent / "sub").mkdir(exist_ok=True)
    return os.path.join(str(path.parent), "sub", "..", path.name)


@pytest.fixture
def small_csv(tmp_path):
    path = tmp_path / "small.csv"
    pd.DataFrame({"x": np.linspace(0, 1, 20), "y": np.arange(20) % 2}).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("how", ["symlink", "dotdot"])
@pytest.mark.parametrize("option", ["-o", "--plot", "--kept-rows"])
def test_cli_refuses_the_input_file_under_another_name(small_csv, capsys, option, how):
    before = small_csv.read_bytes()
    same_file = other_spelling(small_csv, how)
    assert same_file != str(small_csv) and os.path.samefile(same_file, small_csv)
    with pytest.raises(SystemExit) as exit_info:
        main([str(small_csv), "--target", "y", option, same_file, "--overwrite", "--epochs", "1"])
    assert exit_info.value.code == 2
    assert f"{same_file} is the input file; refusing to write over it" in capsys.readouterr().err
    assert small_csv.read_bytes() == before
    assert os.path.samefile(same_file, small_csv)  # a symlink is not replaced either


@pytest.mark.parametrize("how", ["symlink", "dotdot"])
def test_cli_refuses_one_file_for_two_outputs_under_two_names(small_csv, tmp_path, capsys, how):
    target = tmp_path / "a.csv"
    target.write_text("mine\n")
    with pytest.raises(SystemExit) as exit_info:
        main([str(small_csv), "--target", "y", "-o", str(target), "--kept-rows",
              other_spelling(target, how), "--overwrite", "--epochs", "1"])
    assert exit_info.value.code == 2
    assert "is given for two outputs" in capsys.readouterr().err
    assert target.read_text() == "mine\n"


def run_distributed(*args, subprocess_run=False):
    """``python -m skval.distributed ARGS`` (a single process, not under torchrun): in a
    subprocess, or its ``main`` in this process; the exit code, stdout and stderr."""
    if not subprocess_run:
        from contextlib import redirect_stderr, redirect_stdout
        from io import StringIO

        from skval.distributed import main as distributed_main

        out, err = StringIO(), StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = distributed_main(list(args))
        return code, out.getvalue(), err.getvalue()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for name in ("RANK", "WORLD_SIZE"):
        env.pop(name, None)
    run = subprocess.run([sys.executable, "-m", "skval.distributed", *args], capture_output=True,
                         text=True, env=env, timeout=300, check=False)
    return run.returncode, run.stdout, run.stderr


@pytest.mark.parametrize("option, how, in_subprocess", [
    ("--values", "plain", True), ("--model", "symlink", False), ("--values", "dotdot", False)])
def test_distributed_entry_refuses_to_write_over_its_input(small_csv, tmp_path, option, how,
                                                           in_subprocess):
    before = small_csv.read_bytes()
    same_file = str(small_csv) if how == "plain" else other_spelling(small_csv, how)
    outputs = {"--values": str(tmp_path / "values.csv"), "--model": str(tmp_path / "model.pkl")}
    outputs[option] = same_file
    code, out, err = run_distributed(
        str(small_csv), "--target", "y", "--task", "classification",
        "--params", '{"max_epochs": 1, "random_state": 0}', "--overwrite",
        "--values", outputs["--values"], "--model", outputs["--model"],
        subprocess_run=in_subprocess)
    assert code == 1, out + err
    assert f"error: {same_file} is the input file; refusing to write over it" in err
    assert small_csv.read_bytes() == before
    assert not any(Path(p).exists() for o, p in outputs.items() if o != option)  # nothing written



@pytest.mark.parametrize("target, task", [
    (np.arange(30) % 3, "classification"),          # a few integer classes
    (np.arange(30) % 3 * 2 + 1, "classification"),  # odd integers are integers too
    (np.arange(30) % 25, "regression"),             # more than 20 distinct integers
    (np.arange(30) % 3 + 0.5, "regression"),        # not whole numbers
])
def test_cli_auto_task(tmp_path, capsys, target, task):
    path = tmp_path / "t.csv"
    pd.DataFrame({"x": np.random.RandomState(0).normal(size=30), "y": target}).to_csv(
        path, index=False)
    assert main([str(path), "--target", "y", "--epochs", "1", "--top", "1"]) == 0
    assert f"{task}: valued 30 rows" in capsys.readouterr().out


def test_cli_refuses_a_file_of_the_target_alone(tmp_path, capsys):
    path = tmp_path / "only.csv"
    path.write_text("y\n" + "\n".join(str(i % 2) for i in range(10)) + "\n")
    with pytest.raises(SystemExit):
        main([str(path), "--target", "y"])
    assert "has no feature columns besides 'y'" in capsys.readouterr().err


def test_distributed_entry_writes_values_and_model(tmp_path):
    # the counterpart of the refusal, in this process (no torchrun: a group of one)
    import pickle

    rng = np.random.RandomState(0)
    data = np.column_stack([rng.normal(size=(24, 2)), np.arange(24) % 2])
    path = tmp_path / "data.npy"
    np.save(path, data)
    values, model = tmp_path / "values.csv", tmp_path / "model.pkl"
    code, out, err = run_distributed(str(path), "--target", "-1", "--task", "classification",
                                     "--params", '{"max_epochs": 2, "random_state": 0}',
                                     "--values", str(values), "--model", str(model))
    assert code == 0, out + err
    assert "valued 24 rows on 1 process in " in out and "s (2 epochs)" in out
    assert out.rstrip().endswith(f"values: {values}; model: {model}")
    with open(model, "rb") as f:
        est = pickle.load(f)
    assert isinstance(est, LossValClassifier) and est.n_features_in_ == 2
    table = np.loadtxt(values, delimiter=",", skiprows=1)
    np.testing.assert_array_equal(table[:, 0], np.arange(24))
    np.testing.assert_allclose(table[:, 1], est.data_values_, rtol=1e-6)
    # the same file refused when it exists, unless --overwrite
    code, out, err = run_distributed(str(path), "--target", "-1", "--task", "classification",
                                     "--values", str(values))
    assert code == 1 and "exists; pass --overwrite" in err
    with pytest.raises(SystemExit):  # --target names no column of the array
        run_distributed(str(path), "--target", "3", "--task", "classification",
                        "--values", str(tmp_path / "v.csv"))
    assert not (tmp_path / "v.csv").exists()


def test_distributed_entry_arguments(tmp_path, capsys):
    import pickle

    from skval import LossValRegressor
    from skval.distributed import main as distributed_main

    rng = np.random.RandomState(0)
    path = tmp_path / "reg.npy"
    np.save(path, np.column_stack([rng.normal(size=(20, 2)), rng.normal(size=20)]))
    model = tmp_path / "m.pkl"
    code, out, err = run_distributed(str(path), "--target", "-1", "--task", "regression",
                                     "--params", '{"max_epochs": 1}', "--values",
                                     str(tmp_path / "v.csv"), "--model", str(model))
    assert code == 0, out + err
    with open(model, "rb") as f:
        assert isinstance(pickle.load(f), LossValRegressor)
    capsys.readouterr()
    with pytest.raises(SystemExit):  # --task is required
        distributed_main([str(path), "--target", "-1", "--values", str(tmp_path / "w.csv")])
    with pytest.raises(SystemExit):
        distributed_main([str(path), "--target", "-1", "--task", "regression", "--values",
                          str(tmp_path / "w.csv"), "--params", '{"n_workers": 2}'])
    assert "error: n_workers is not a parameter here" in capsys.readouterr().err
    flat = tmp_path / "flat.npy"
    np.save(flat, np.arange(10.0))
    with pytest.raises(SystemExit):
        distributed_main([str(flat), "--target", "0", "--task", "regression", "--values",
                          str(tmp_path / "w.csv")])
    assert "holds an array of shape (10,)" in capsys.readouterr().err
    assert not (tmp_path / "w.csv").exists()


def test_cli_regression_on_text_names_its_first_value(tmp_path, capsys):
    path = tmp_path / "text.csv"
    path.write_text("a,y\n1.5,first\n0.5,middle\n2.5,last\n")
    with pytest.raises(SystemExit):
        main([str(path), "--target", "y", "--task", "regression"])
    assert "'y' has values like 'first'" in capsys.readouterr().err
