"""``n_workers > 1`` from a script without ``if __name__ == "__main__":`` and from standard input.

The workers run ``python -m skval._worker``, never the caller's main module, and the plan
travels by cloudpickle: a network class defined in ``__main__`` reaches them by value.
(The notebook case: ``tests/test_notebook.py``.) Each test starts a Python process that
starts two workers: a few seconds, most of it importing torch three times.
"""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# No guard; the network class lives in __main__; the script prints the workers' pids, its own
# pid and the values.
SCRIPT = """
import os
import numpy as np
from torch import nn
from skval import LossValClassifier

class MainNet(nn.Module):
    def __init__(self, n_features, n_outputs):
        super().__init__()
        self.lin = nn.Linear(n_features, n_outputs)

    def forward(self, X):
        return self.lin(X)

rng = np.random.RandomState(0)
X = rng.normal(size=(40, 3))
y = (X[:, 0] > 0).astype(int)
est = LossValClassifier(MainNet, n_workers=2, max_epochs=1, batch_size=8, random_state=0)
est.fit(X, y)
print("RUNS", os.getpid())
print("FITTED", est.data_values_.shape, type(est.net_.module_).__name__,
      est._distributed_stats["n_workers"])
"""


def _run(args, **kwargs):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(ROOT)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          timeout=120, **kwargs)


def _check(done):
    assert done.returncode == 0, done.stderr
    # the main module ran once: the workers did not re-run it
    assert done.stdout.count("RUNS") == 1, done.stdout
    assert "FITTED (40,) MainNet 2" in done.stdout, done.stdout
    assert "FileNotFoundError" not in done.stderr


def test_a_script_without_the_guard_with_a_main_class(tmp_path):
    script = tmp_path / "no_guard.py"
    script.write_text(SCRIPT)
    _check(_run([str(script)], cwd=tmp_path))


def test_a_script_on_standard_input(tmp_path):
    _check(_run(["-"], input=SCRIPT, cwd=tmp_path))
