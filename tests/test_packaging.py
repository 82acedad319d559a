"""README's install for other machines works: build the wheel, install it, import and run it.

README says, for a machine other than this repository's: install torch, then in a clone
``pip wheel . --no-deps -w dist`` and ``pip install dist/skval-*.whl``. This test runs the same pip
commands on a copy of the sources, offline: ``--no-build-isolation`` builds with the setuptools
already installed (instead of fetching it into an isolated environment), and the wheel goes into a
target folder with ``--no-deps --no-index`` (the dependencies are those of this venv).
"""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BUILD_COMMAND = "pip wheel . --no-deps -w dist"
INSTALL_COMMAND = "pip install dist/skval-*.whl"


def _pip(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"],
                          cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


def test_readme_gives_the_tested_commands():
    assert BUILD_COMMAND in README and INSTALL_COMMAND in README
    assert "pip install skval" not in README  # not published on PyPI


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """The wheel built from a copy of the sources (a build in the clone could pick up stale build/)."""
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "setup.cfg", "setup.py", "MANIFEST.in", "README.md", "LICENSE"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(ROOT / "skval", src / "skval", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    build = _pip(*BUILD_COMMAND.split()[1:], "--no-build-isolation", "--no-index", cwd=src)
    assert build.returncode == 0, build.stdout + build.stderr
    wheels = list((src / "dist").glob("skval-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_holds_every_module(wheel):
    import skval

    expected = {p.relative_to(ROOT).as_posix() for p in (ROOT / "skval").rglob("*.py")
                if "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        metadata = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert {n for n in names if n.endswith(".py")} == expected
    assert re.search(rf"^Version: {re.escape(skval.__version__)}$", metadata, re.MULTILINE)
    assert re.search(r"^Requires-Dist: torch>=", metadata, re.MULTILINE)
    assert wheel.name.startswith(f"skval-{skval.__version__}-py3-none-any")


def test_installed_wheel_imports_and_runs(wheel, tmp_path):
    target = tmp_path / "site"
    install = _pip("install", "--no-deps", "--no-index", "--target", str(target), str(wheel), cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    # the installed copy comes first on the path; run from tmp_path so the clone is not on it
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = ("import importlib, pkgutil, skval\n"
            "[importlib.import_module('skval.' + m.name) for m in pkgutil.iter_modules(skval.__path__)"
            " if m.name != '__main__']\n"
            "print(skval.__file__)")
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip()).is_relative_to(target)
    cli = subprocess.run([sys.executable, "-m", "skval", "--help"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=300, check=False)
    assert cli.returncode == 0 and "--target" in cli.stdout, cli.stderr
