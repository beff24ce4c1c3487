"""Measured comparisons; results go to benchmarks/RESULTS.md (see README)."""
