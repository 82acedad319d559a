"""The command lines' files (skval._io): reading a CSV, refusing unsafe outputs, atomic writes."""

import ast
import os
import stat
from pathlib import Path

import pytest

import skval
from skval._io import FileError, check_outputs, read_csv, write_atomically


@pytest.mark.parametrize("module", ["_io", "_selection", "_tabular"])
def test_leaf_modules_import_nothing_from_skval(module):
    tree = ast.parse((Path(skval.__file__).parent / f"{module}.py").read_text())
    imported = [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                if node.level > 0 or (node.module or "").startswith("skval")]
    imported += [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names if alias.name.startswith("skval")]
    assert imported == []


@pytest.mark.parametrize("content, message", [
    (None, "no such file"),
    ("", "is empty"),
    ("a,y\n", "has a header but no rows"),
    ("a,b\n1,2\n", "column 'y' not in"),
])
def test_read_csv_says_what_is_wrong(tmp_path, content, message):
    pytest.importorskip("pandas")
    path = tmp_path / "data.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(FileError, match=message):
        read_csv(str(path), "y")


def test_read_csv_reads_the_table(tmp_path):
    pytest.importorskip("pandas")
    path = tmp_path / "data.csv"
    path.write_text("a,y\n1,x\n2,z\n")
    assert read_csv(str(path), "y")["y"].tolist() == ["x", "z"]


def test_check_outputs(tmp_path):
    source, existing, new = tmp_path / "in.csv", tmp_path / "old.csv", tmp_path / "new.csv"
    source.write_text("a\n1\n")
    existing.write_text("old\n")
    check_outputs(str(source), [str(new), None, ""], overwrite=False)   # unasked outputs skipped
    check_outputs(str(source), [str(existing)], overwrite=True)
    for outputs, overwrite, message in [
        ([str(tmp_path / "." / "in.csv")], True, "is the input file; refusing to write over it"),
        ([str(new), str(new)], False, "is given for two outputs"),
        ([str(existing)], False, "exists; pass --overwrite"),
    ]:
        with pytest.raises(FileError, match=message):
            check_outputs(str(source), outputs, overwrite)


def test_interrupted_write_leaves_the_previous_file(tmp_path):
    target = tmp_path / "values.csv"
    target.write_text("previous\n")

    def interrupted(tmp):
        with open(tmp, "w") as f:
            f.write("half a fil")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomically(str(target), interrupted)
    assert target.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["values.csv"]   # no temporary file left
    write_atomically(str(target), lambda tmp: open(tmp, "w").write("new\n"))
    assert target.read_text() == "new\n" and len(list(tmp_path.iterdir())) == 1


def test_both_command_lines_read_and_refuse_alike(tmp_path, capsys):
    pytest.importorskip("pandas")
    from skval import distributed

    data = tmp_path / "data.csv"
    data.write_text("a,y\n1,0\n2,1\n")
    X, y = distributed._read(str(data), "y", rank=0)
    assert X.columns.tolist() == ["a"] and y.tolist() == [0, 1]
    for path, target in [(tmp_path / "missing.csv", "y"), (tmp_path / "missing.npy", "0"),
                         (data, "b")]:
        with pytest.raises(SystemExit):
            distributed._read(str(path), target, rank=0)
    err = capsys.readouterr().err
    assert err.count("no such file") == 2 and "column 'b' not in" in err
    same = str(tmp_path / "out.csv")
    assert distributed.main([str(data), "--target", "y", "--task", "classification",
                             "--values", same, "--model", same]) == 1
    assert "is given for two outputs" in capsys.readouterr().err


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_get_the_users_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_atomically(str(tmp_path / "new.csv"), lambda tmp: open(tmp, "w").write("a\n"))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.csv").stat().st_mode) == mode


def test_a_replaced_file_keeps_its_mode(tmp_path):
    target = tmp_path / "values.csv"
    target.write_text("previous\n")
    target.chmod(0o640)
    write_atomically(str(target), lambda tmp: open(tmp, "w").write("new\n"))
    assert stat.S_IMODE(target.stat().st_mode) == 0o640 and target.read_text() == "new\n"
