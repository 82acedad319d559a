"""Tests of the benchmark code (collected by the suite: pyproject.toml's testpaths)."""
