#!/usr/bin/env bash
# GPU check (issue 13), one run on a CUDA machine, about 3-5 minutes:
#   1. the GPU and the versions in use;
#   2. the tests marked cuda (fit on cuda, pickle, load where CUDA is hidden; CPU and GPU
#      fits agree);
#   3. a 100k-row fit on cuda and on the CPU (2 epochs, exact and entropic OT): fit wall
#      time, last epoch's time, peak torch.cuda.max_memory_allocated, and how close the
#      two devices' data values are.
# Every step runs under its own timeout and a failed step does not stop the next.
# Outputs go to $OUT (or benchmarks/results/gpu_check): env.txt, pytest_cuda.txt, timing.txt.
#
# Run from anywhere: bash benchmarks/gpu_check.sh   (ROWS=2000 for a quick try)
# POT and skorch are missing from the GPU image: carry their wheels in .whl/ (git-ignored),
# made where pip works, e.g.
#   python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_28_x86_64 -d .whl POT==0.9.7.post1 skorch==1.4.0
set -x
cd "$(dirname "$0")/.." || exit 1
OUT=${OUT:-benchmarks/results/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
ROWS=${ROWS:-100000}
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi

{
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    $PY -c "import sys, torch, ot, skorch, sklearn; print(sys.version.split()[0], 'torch',
torch.__version__, 'cuda', torch.cuda.is_available(), 'POT', ot.__version__, 'skorch',
skorch.__version__, 'sklearn', sklearn.__version__, 'threads', torch.get_num_threads())"
} 2>&1 | tee "$OUT/env.txt"

timeout 300 $PY -m pytest -m cuda -q -rA -p no:cacheprovider tests/test_reliability.py 2>&1 \
    | tee "$OUT/pytest_cuda.txt"

timeout 300 $PY - "$ROWS" <<'EOF' 2>&1 | tee "$OUT/timing.txt"
"""A fit of ROWS rows on cuda and on the CPU: wall time, peak GPU memory, agreement."""
import json
import sys
import time
import traceback

import numpy as np
import torch
from scipy.stats import spearmanr
from sklearn.datasets import make_classification

from skval import LossValClassifier

rows = int(sys.argv[1])
X, y = make_classification(rows, n_features=20, n_informative=10, random_state=0)
devices = ["cuda", "cpu"] if torch.cuda.is_available() else ["cpu"]


def fit(device, method, X, y, epochs=2):
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    est = LossValClassifier(max_epochs=epochs, ot_method=method, device=device,
                            random_state=0).fit(X, y)
    if device == "cuda":
        torch.cuda.synchronize()
    return est, time.perf_counter() - start


if "cuda" in devices:  # CUDA context, kernels and fused optimizer set up outside the timings
    fit("cuda", "exact", X[:1000], y[:1000], epochs=1)
values = {}
for method in ("exact", "sinkhorn"):
    for device in devices:
        try:
            est, wall = fit(device, method, X, y)
        except Exception:
            traceback.print_exc()
            continue
        values[device, method] = est.data_values_
        peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
        print(json.dumps({"rows": rows, "device": device, "ot_method": method,
                          "fit_s": round(wall, 2),
                          "last_epoch_s": round(est.net_.history[-1, "dur"], 2),
                          "peak_cuda_MiB": None if peak is None else round(peak, 1),
                          "cpu_threads": torch.get_num_threads()}), flush=True)
    if ("cuda", method) in values and ("cpu", method) in values:
        cpu, gpu = values["cpu", method], values["cuda", method]
        print(json.dumps({"ot_method": method, "spearman_cpu_cuda": float(spearmanr(cpu, gpu)[0]),
                          "max_abs_diff": float(np.abs(cpu - gpu).max()),
                          "mean_abs_diff": float(np.abs(cpu - gpu).mean())}), flush=True)
EOF
echo "gpu_check done; outputs in $OUT"
