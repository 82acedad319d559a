"""Helpers of docs/conf.py that must be importable (sphinx pickles its configuration)."""

from pathlib import Path

DOCS = Path(__file__).resolve().parent

# Examples that write pictures: in the gallery they write them into the build folder, never
# into the tracked docs/images (the pictures on the pages are those files, written by the same
# script run with ``--docs-images``: ``python examples/<name>.py --docs-images``).
WRITES_FILES = ("pandas_plots", "target_selection")


class ExampleArgs:
    """Command-line arguments each example runs with in the gallery: its defaults, but ``--out``."""

    def __repr__(self):
        return "ExampleArgs"

    def __call__(self, gallery_conf, script_vars):
        name = Path(script_vars.get("src_file", "")).stem
        if name in WRITES_FILES:
            return ["--out", str(DOCS / "_build" / "gallery_out" / name)]
        return []


# --- the --help of a command line, generated at build time ---------------------------------

import importlib  # noqa: E402
import os  # noqa: E402
import re  # noqa: E402

from docutils import nodes  # noqa: E402
from docutils.parsers.rst import Directive  # noqa: E402


class CommandHelp(Directive):
    """``.. command-help:: skval._cli``: the ``--help`` text of that module's ``_parser()``.

    The text is made by the parser itself when the site is built, 88 columns wide, so the page
    always shows the options of the code it documents.
    """

    required_arguments = 1

    def run(self):
        module = importlib.import_module(self.arguments[0])
        saved = os.environ.get("COLUMNS")
        os.environ["COLUMNS"] = "88"
        try:
            text = module._parser().format_help()
        finally:
            if saved is None:
                os.environ.pop("COLUMNS", None)
            else:
                os.environ["COLUMNS"] = saved
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


# --- docstrings: a fitted attribute's name in a type, e.g. ``ndarray of shape (n_features_in_,)``

_TYPE_LINE = re.compile(r"^(\s*\**\w+\s+:\s)(.*)$")
_TRAILING_UNDERSCORE = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?=[,)\s]|$)")


def escape_attribute_names_in_types(app, what, name, obj, options, lines):
    """Quote ``name_`` in the type of a numpydoc entry, where reST would read a link target.

    ``weight_history_ : ndarray of shape (n_epochs_, n_samples)`` is right in numpydoc, but the
    type is reST text, in which ``n_epochs_`` is a reference to a target that does not exist.
    """
    for i, line in enumerate(lines):
        match = _TYPE_LINE.match(line)
        if match:
            lines[i] = match.group(1) + _TRAILING_UNDERSCORE.sub(r"``\1``", match.group(2))


# --- class pages: skval's own members; scikit-learn's inherited ones are named, not repeated --

def skip_sklearn_members(app, what, name, obj, skip, options):
    """Leave out of a class page the members that scikit-learn defines (their docstrings refer
    to scikit-learn's own documentation labels); keep everything skval defines."""
    if what == "class" and (getattr(obj, "__module__", None) or "").startswith("sklearn."):
        return True
    return None
