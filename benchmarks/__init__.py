"""skval's benchmarks: the scripts that make the figures in BENCHMARKS.md, and their helpers.

A package so that its tests (``benchmarks/tests``) and its scripts import the helpers the same way,
``from benchmarks._tasks import ...``. The scripts run as ``python benchmarks/quality.py ...`` from
the repo root (or as ``python -m benchmarks.quality ...``).
"""
