"""Sphinx configuration of skval's documentation site.

Build it from the repository root (nothing is fetched from the network while it builds):

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The example gallery is built from ``examples/`` by sphinx-gallery. By default the examples are
not executed (``tests/test_examples.py`` runs every one of them; the pictures they write are
shown from ``docs/images``); ``SKVAL_DOCS_EXECUTE=1`` runs each with its defaults and puts its
printed output on its page (a few minutes on 2 cores).
"""

import os
import sys
import warnings
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS))

import skval  # noqa: E402
from skval_docs_helpers import (  # noqa: E402
    CommandHelp,
    ExampleArgs,
    escape_attribute_names_in_types,
    skip_sklearn_members,
)

project = "skval"
author = "the skval developers"
copyright = "2026, the skval developers"
version = release = skval.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = ["_build", "notebooks/README.md", "**/*.ipynb", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5"]
# No intersphinx: the build must not fetch anything.
# Notebook examples: a place is kept in docs/notebooks/ (its README.md says how to add one).

# --- API reference: autosummary writes one page per public name into api/generated/ ---------
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"member-order": "bysource"}
autodoc_typehints = "none"  # the numpydoc sections carry the types
numpydoc_show_class_members = False  # the class template lists the members itself
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_validation_checks = set()  # tests/test_docstrings.py checks the sections

# --- example gallery ------------------------------------------------------------------------


def _execute():
    """Run the examples while building? Only with ``SKVAL_DOCS_EXECUTE=1``."""
    return os.environ.get("SKVAL_DOCS_EXECUTE", "0") == "1"


sphinx_gallery_conf = {
    "examples_dirs": ["../examples"],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r".*\.py$",  # every example, not only plot_*.py
    "plot_gallery": "True" if _execute() else "False",
    "reset_argv": ExampleArgs(),
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
    "show_memory": False,
    "reference_url": {},
    "backreferences_dir": None,
    "matplotlib_animations": False,
    "abort_on_example_error": True,
}

# An example may print warnings of its own libraries while it runs; they are part of its output,
# not of the build.
warnings.filterwarnings("ignore", category=UserWarning, message="Matplotlib is currently using agg")

# --- HTML -----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skval {release}"
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 6,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": [],
}
html_sidebars = {"changelog": [], "benchmarks": []}
html_show_sourcelink = False
html_copy_source = False

myst_heading_anchors = 3


def setup(app):
    app.add_directive("command-help", CommandHelp)
    # numpydoc runs at priority 500: quote the names before it reads the sections
    app.connect("autodoc-process-docstring", escape_attribute_names_in_types, priority=400)
    app.connect("autodoc-skip-member", skip_sklearn_members)
