"""Throughput and quality scripts of a checkout (docs/benchmarks.md), run from its root as
``python -m benchmarks.NAME``. A package so that one script reuses another
(``from benchmarks import detection``) and the tests import them like any module; not installed
with tfseti."""
