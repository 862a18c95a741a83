"""How a returned value is judged against a test's expected value (on the host, never in the sandbox)."""

from __future__ import annotations

import json
import math

REL_TOL = 1e-6
ABS_TOL = 1e-9


def values_equal(got, expected, rel_tol: float = REL_TOL, abs_tol: float = ABS_TOL) -> bool:
    """Structural equality for JSON-shaped values: floats within a tolerance (NaN equals NaN),
    ints and floats compare by value, bools only equal bools, lists and tuples element by
    element, dicts by keys and values. A value the sandbox could only show as a repr never
    equals anything."""
    if isinstance(got, bool) or isinstance(expected, bool):
        return isinstance(got, bool) and isinstance(expected, bool) and got == expected
    if isinstance(got, (int, float)) and isinstance(expected, (int, float)):
        if isinstance(got, int) and isinstance(expected, int):
            return got == expected
        try:
            g, e = float(got), float(expected)
        except OverflowError:  # an int too large for a float equals no float
            return False
        if math.isnan(g) or math.isnan(e):
            return math.isnan(g) and math.isnan(e)
        if math.isinf(g) or math.isinf(e):
            return g == e
        return math.isclose(g, e, rel_tol=rel_tol, abs_tol=abs_tol)
    if isinstance(got, (list, tuple)) and isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(values_equal(g, e, rel_tol, abs_tol) for g, e in zip(got, expected))
    if isinstance(got, dict) and isinstance(expected, dict):
        if "__repr__" in got and len(got) == 1:
            return False
        return got.keys() == expected.keys() and all(values_equal(got[k], expected[k], rel_tol, abs_tol) for k in got)
    if got is None or expected is None:
        return got is None and expected is None
    return type(got) is type(expected) and got == expected


def preview(value, limit: int = 1000):
    """The returned value as reported back: itself when small, else a truncated JSON text."""
    text = json.dumps(value, allow_nan=True, default=repr)
    if len(text) <= limit:
        return value
    return {"__truncated__": text[:limit], "bytes": len(text)}
