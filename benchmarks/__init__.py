"""Benchmarks run by hand (`python -m benchmarks.engine`); not part of the installed package."""
