"""Every public name has a numpydoc docstring whose sections match its signature.

The names: ``skval.__all__``, the public names of every public module (``skval.evaluation``,
``skval.plot``, ...: their ``__all__``, or else the functions and classes they define), and every
public method of the estimators (their own and those inherited from scikit-learn, which users
meet in ``help()`` alike). Checked with ``numpydoc.validate`` on the codes in ``CHECKED``: no
docstring, summary, section names and order, every parameter documented with a type and a
description and none that the signature lacks, a Returns section with descriptions where the
function returns something. Left out, as style rather than correctness: an extended summary
(ES01), See Also (SA01) and Examples (EX01) sections everywhere, and a bare type on the first
Returns line (RT02: skval names its return values, ``ax : matplotlib Axes``).
"""

import importlib
import inspect
import pkgutil

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

from sklearn.base import BaseEstimator

import skval

CHECKED = {
    # docstring as a whole
    "GL01", "GL02", "GL03", "GL05", "GL06", "GL07", "GL08", "GL09", "GL10",
    # summary line
    "SS01", "SS02", "SS03", "SS04", "SS05", "SS06",
    # Parameters against the signature
    "PR01", "PR02", "PR03", "PR04", "PR05", "PR06", "PR07", "PR08", "PR09", "PR10",
    # Returns / Yields
    "RT01", "RT03", "RT04", "RT05", "YD01",
    # See Also entries, where there is a section
    "SA02", "SA03", "SA04",
}

# name -> reason, for docstrings awaiting a fix in a module another change is rewriting.
# Strict xfail: once the docstring passes, the xpass fails and the entry must go.
PENDING = {}


def public_names():
    names = []
    for name in skval.__all__:
        obj = getattr(skval, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            names.append(f"skval.{name}")
            if inspect.isclass(obj) and issubclass(obj, BaseEstimator):
                names += [f"skval.{name}.{attr}" for attr in dir(obj)
                          if not attr.startswith("_") and callable(getattr(obj, attr))]
    for info in pkgutil.iter_modules(skval.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"skval.{info.name}")
        public = getattr(module, "__all__", None) or [
            name for name, obj in vars(module).items()
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
            and obj.__module__ == module.__name__
        ]
        names += [f"skval.{info.name}.{name}" for name in public]
    return names


NAMES = public_names()


def errors(name):
    """The CHECKED errors numpydoc finds in ``name``'s docstring, as ``"CODE message"`` lines."""
    result = numpydoc_validate.validate(name)
    return [f"{code} {message}" for code, message in result["errors"] if code in CHECKED]


def test_the_names_cover_the_api():
    for expected in ("skval.LossValClassifier", "skval.LossValRegressor", "skval.NonFiniteLossError",
                     "skval.LossValClassifier.fit", "skval.LossValRegressor.predict",
                     "skval.LossValClassifier.predict_proba", "skval.LossValClassifier.score",
                     "skval.LossValRegressor.values_series", "skval.LossValClassifier.worst_rows",
                     "skval.LossValClassifier.get_params", "skval.LossValRegressor.set_params",
                     "skval.evaluation.inject_noise", "skval.plot.plot_values"):
        assert expected in NAMES
    assert set(PENDING) <= set(NAMES), set(PENDING) - set(NAMES)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=pytest.mark.xfail(reason=PENDING[n], strict=True)) if n in PENDING else n
     for n in NAMES],
)
def test_numpydoc(name):
    found = errors(name)
    assert not found, f"{name}:\n  " + "\n  ".join(found)
