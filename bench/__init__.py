"""Benchmarks run by ``make bench``: measured figures, printed as a table (not tests)."""
