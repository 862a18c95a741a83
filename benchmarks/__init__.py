"""Reproducible speed measurements: `python -m benchmarks.NAME [--quick] [--json PATH]`."""
