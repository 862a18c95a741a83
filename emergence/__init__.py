"""Emergence: the pure domain library (no Ray imports).

Subpackages are importable on their own and testable in milliseconds; the Ray layers
(`actors`, `training`, `serving`, `tune`, `cluster`) are thin wrappers over them.
"""

__version__ = "0.1.0"
