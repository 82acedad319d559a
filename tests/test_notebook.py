"""``examples/notebook.ipynb`` run headless with nbclient, on a kernel of this Python.

It pins two things a notebook user hit: ``verbose=1`` without ipywidgets (skorch's own
``ProgressBar`` picked ``tqdm.notebook`` and raised ``ImportError: IProgress not found``)
and ``n_workers=2`` with a network class defined in the notebook (spawned workers could
not import it). The kernel is a kernelspec written to a temporary folder that runs
``sys.executable`` with this checkout first on its path.
"""

import json
import os
import sys
from pathlib import Path

import pytest

from skval import _progress

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook, executed; the kernel's own view of ipywidgets."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / "skval-test"
    spec.mkdir(parents=True)
    path = os.pathsep.join([str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "skval test", "language": "python",
        "env": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}}))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(jupyter))
        notebook = nbformat.read(NOTEBOOK, as_version=4)
        notebook.cells.append(nbformat.v4.new_code_cell(
            "from skval import _progress\nprint('widgets:', _progress.notebook_widgets_available())"))
        nbclient.NotebookClient(notebook, kernel_name="skval-test", timeout=120,
                                resources={"metadata": {"path": str(ROOT)}}).execute()
    return notebook


def _text(cell):
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def test_verbose_fit_shows_a_text_bar_without_ipywidgets(executed):
    widgets = _text(executed.cells[-1])
    cell = executed.cells[2]
    assert not [o for o in cell.outputs if o.output_type == "error"]
    assert "one process: (120,) 2 epochs" in _text(cell)
    assert "train_loss" in _text(cell)  # the epoch log
    if "widgets: False" in widgets:  # the text bar: tqdm's "it/s" or its batch counter
        assert "/8" in _text(cell), _text(cell)


def test_a_notebook_class_trains_on_two_processes(executed):
    cell = executed.cells[3]
    assert not [o for o in cell.outputs if o.output_type == "error"]
    assert "two processes: (120,) NotebookNet" in _text(cell)


@pytest.mark.parametrize("iprogress, widget", [(None, False), (object, True)])
def test_the_widget_only_when_tqdm_can_draw_it(monkeypatch, iprogress, widget):
    import tqdm.notebook

    monkeypatch.setattr(tqdm.notebook, "IProgress", iprogress)
    assert _progress.notebook_widgets_available() is widget
    assert _progress.progress_bar().detect_notebook is widget
