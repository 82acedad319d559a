"""The documentation site lists every public name (docs/api.rst) and both command lines.

The .rst sources are parsed as text; no sphinx build runs here (.ci/run builds the site).
A name added to a module's ``__all__`` fails this test until docs/api.rst lists it in an
autosummary block under that module's ``.. currentmodule::``. Methods of the documented classes
need no entry: the class pages list them (``:members:`` in the autosummary class template).
"""

import importlib
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"

# every public module, and the module in whose currentmodule api.rst lists a name of its __all__
PUBLIC_MODULES = ("skval", "skval.evaluation", "skval.plot", "skval.exceptions", "skval.distributed")
# top-level names documented where they are defined (re-exported by skval)
DEFINED_IN = {"NonFiniteLossError": "skval.exceptions"}
COMMAND_LINES = ("skval._cli", "skval.distributed")  # python -m skval, python -m skval.distributed


def _autosummary_entries(text):
    """(currentmodule, name) for every entry of every autosummary block of an .rst text."""
    entries, module, lines = set(), None, text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        found = re.match(r"^\.\. currentmodule:: (\S+)\s*$", line)
        if found:
            module = found.group(1)
        if re.match(r"^\.\. autosummary::\s*$", line):
            i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                item = lines[i].strip()
                if item and not item.startswith(":"):
                    entries.add((module, item))
                i += 1
            continue
        i += 1
    return entries


def _public_names():
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        for name in module.__all__:
            if not (name.startswith("__") and name.endswith("__")):  # __version__
                yield module_name, name


API = _autosummary_entries((DOCS / "api.rst").read_text())


@pytest.mark.parametrize("module_name, name", sorted(set(_public_names())))
def test_public_name_is_in_the_api_reference(module_name, name):
    where = DEFINED_IN.get(name, module_name) if module_name == "skval" else module_name
    assert (where, name) in API, (
        f"{module_name}.{name} is public (in __all__) but docs/api.rst does not list it: add it "
        f"to an autosummary block under '.. currentmodule:: {where}'."
    )


def test_every_api_entry_exists():
    for module_name, name in API:
        assert module_name is not None, f"{name}: autosummary entry before any currentmodule"
        assert hasattr(importlib.import_module(module_name), name), f"{module_name}.{name} does not exist"


def test_the_parser_finds_entries():
    text = ".. currentmodule:: m\n\n.. autosummary::\n   :toctree: g/\n\n   A\n   b\n\nText\n"
    assert _autosummary_entries(text) == {("m", "A"), ("m", "b")}


@pytest.mark.parametrize("module_name", COMMAND_LINES)
def test_command_line_is_documented(module_name):
    text = (DOCS / "cli.rst").read_text()
    assert re.search(rf"^\.\. command-help:: {re.escape(module_name)}\s*$", text, re.M), module_name
    assert callable(importlib.import_module(module_name)._parser)


def test_every_page_is_in_a_toctree():
    """Each user-guide page is listed in the user guide's toctree, and the top pages in index."""
    guide = DOCS / "user_guide"
    listed = (guide / "index.rst").read_text()
    for page in guide.glob("*.rst"):
        if page.stem != "index":
            assert re.search(rf"^\s+{page.stem}\s*$", listed, re.M), f"{page.name} not in the toctree"
    index = (DOCS / "index.rst").read_text()
    for page in ("user_guide/index", "auto_examples/index", "api", "cli", "benchmarks", "changelog"):
        assert re.search(rf"^\s+{re.escape(page)}\s*$", index, re.M), page
