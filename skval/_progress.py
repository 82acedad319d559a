"""The progress bar of ``verbose=1``: the notebook widget only where it can be drawn.

skorch's ``ProgressBar`` picks ``tqdm.notebook`` inside Jupyter, which raises
``ImportError: IProgress not found`` when ipywidgets is missing. Here the widget is
asked for only when tqdm can draw it; otherwise the bar is tqdm's text bar, which a
notebook shows as a cell's text output.
"""

from __future__ import annotations

from skorch.callbacks import ProgressBar


def notebook_widgets_available():
    """Whether tqdm can draw its notebook widget (ipywidgets is importable)."""
    try:
        import tqdm.notebook
    except ImportError:  # pragma: no cover - tqdm comes with skorch
        return False
    return getattr(tqdm.notebook, "IProgress", None) is not None


def progress_bar():
    """The ``ProgressBar`` of a fit: the widget in Jupyter when ipywidgets is there, else text."""
    return ProgressBar(detect_notebook=notebook_widgets_available())
