"""Problem specs: the JSON shape shared by the CLI, the actors and POST /relax.

    {
      "modules":   [{"kind": "gating", "count": 3, "a": 0.15, "b": 0.05, "gain": [0, 0.02, 0.04]}, ...],
      "couplings": [{"family": "quadratic", "i": [0, 1], "j": [1, 2], "weight": 0.6}, ...],
      "eta0": [...],                     # optional, overrides what the modules computed
      "weights": {"quadratic": 1.0}      # optional term weights
    }

Module groups and coupling families are columnar: a scalar broadcasts, a list gives one value
per module or per coupling. Every error names the offending field (`SpecError.field`).
"""

from __future__ import annotations

import math

import numpy as np

from .modules import MODULE_KINDS
from .problem import EnergyProblem
from .terms import GateBenefitCoupling, HingeCoupling, LandauTerm, QuadraticCoupling

MAX_MODULES = 2_000_000
MAX_COUPLINGS = 8_000_000


class SpecError(ValueError):
    """A problem spec is invalid; `field` is the dotted path of the bad value."""

    def __init__(self, field: str, message: str):
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")

    def __reduce__(self):  # picklable, so the error crosses Ray actor boundaries intact
        return (SpecError, (self.field, self.message))


def finite_array(x, count: int, where: str) -> np.ndarray:
    """A float array of `count` finite values from a scalar or a list."""
    if isinstance(x, bool) or x is None:
        raise SpecError(where, "expected a number or a list of numbers")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise SpecError(where, "expected a number or a list of finite numbers") from None
    if arr.ndim == 0:
        arr = np.full(count, float(arr))
    elif arr.shape != (count,):
        raise SpecError(where, f"expected a flat list of {count} values, got shape {list(arr.shape)}")
    if not np.all(np.isfinite(arr)):
        raise SpecError(where, "values must be finite (no NaN or infinity)")
    return arr


def _index_array(x, n: int, where: str) -> np.ndarray:
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError):
        raise SpecError(where, "expected a list of module indices") from None
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise SpecError(where, "expected a 1-D list of integer module indices")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= n):
        bad = int(arr[(arr < 0) | (arr >= n)][0])
        raise SpecError(where, f"index {bad} out of range [0, {n})")
    return arr


def _count(group: dict, where: str) -> int:
    if "count" in group:
        c = group["count"]
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise SpecError(f"{where}.count", "expected a positive integer")
        return c
    for v in group.values():
        if isinstance(v, list):
            return len(v)
    return 1


def _nonneg(arr: np.ndarray, where: str) -> np.ndarray:
    if np.any(arr < 0):
        raise SpecError(where, "must be >= 0")
    return arr


def _pair(c: dict, n: int, where: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for key in ("i", "j"):
        if key not in c:
            raise SpecError(f"{where}.{key}", "is required")
    i = _index_array(c["i"], n, f"{where}.i")
    j = _index_array(c["j"], n, f"{where}.j")
    if i.shape != j.shape:
        raise SpecError(f"{where}.j", f"expected {i.size} indices to match i, got {j.size}")
    if "weight" not in c:
        raise SpecError(f"{where}.weight", "is required")
    w = _nonneg(finite_array(c["weight"], i.size, f"{where}.weight"), f"{where}.weight")
    return i, j, w


def _quadratic(c, n, where):
    i, j, w = _pair(c, n, where)
    return QuadraticCoupling(i, j, w, n)


def _hinge(c, n, where):
    i, j, w = _pair(c, n, where)
    alpha = _nonneg(finite_array(c.get("alpha", 1.0), i.size, f"{where}.alpha"), f"{where}.alpha")
    beta = _nonneg(finite_array(c.get("beta", 1.0), i.size, f"{where}.beta"), f"{where}.beta")
    return HingeCoupling(i, j, w, n, alpha=alpha, beta=beta)


def _gate_benefit(c, n, where):
    i, j, w = _pair(c, n, where)
    if "delta" not in c:
        raise SpecError(f"{where}.delta", "is required (the domain improvement the gate buys)")
    return GateBenefitCoupling(i, j, w, n, delta=finite_array(c["delta"], i.size, f"{where}.delta"))


COUPLING_FAMILIES = {"quadratic": _quadratic, "hinge": _hinge, "gate_benefit": _gate_benefit}


def register_coupling_family(name: str, builder) -> None:
    """builder(spec_dict, n, where) -> EnergyTerm. Makes the family usable in specs."""
    COUPLING_FAMILIES[name] = builder


def problem_from_spec(spec: dict, max_modules: int = MAX_MODULES, max_couplings: int = MAX_COUPLINGS) -> EnergyProblem:
    if not isinstance(spec, dict):
        raise SpecError("spec", "expected a JSON object")
    unknown = set(spec) - {"modules", "couplings", "eta0", "weights", "names"}
    if unknown:
        raise SpecError(sorted(unknown)[0], "unknown field")
    groups = spec.get("modules")
    if not isinstance(groups, list) or not groups:
        raise SpecError("modules", "expected a non-empty list of module groups")
    parts = []
    total = 0
    for g, group in enumerate(groups):
        where = f"modules[{g}]"
        if not isinstance(group, dict):
            raise SpecError(where, "expected an object")
        kind = group.get("kind", "landau")
        if not isinstance(kind, str) or kind not in MODULE_KINDS:
            raise SpecError(f"{where}.kind", f"unknown module kind {kind!r}; known: {sorted(MODULE_KINDS)}")
        count = _count(group, where)
        total += count
        if total > max_modules:
            raise SpecError("modules", f"problem too large: more than {max_modules} modules")
        part = MODULE_KINDS[kind](group, count, where)
        if np.any(part.b < 0):
            raise SpecError(f"{where}.b", "quartic coefficients must be >= 0")
        if np.any((part.eta0 < 0) | (part.eta0 > 1)):
            raise SpecError(f"{where}.eta0", "eta must lie in [0, 1]")
        parts.append(part)
    n = total
    cat = lambda attr: np.concatenate([getattr(p, attr) for p in parts])  # noqa: E731
    terms = {"local": LandauTerm(cat("a"), cat("b"), cat("h"), cat("center"), n=n)}
    eta0 = cat("eta0")

    couplings = spec.get("couplings", [])
    if not isinstance(couplings, list):
        raise SpecError("couplings", "expected a list of coupling families")
    m_total = 0
    for c_idx, c in enumerate(couplings):
        where = f"couplings[{c_idx}]"
        if not isinstance(c, dict):
            raise SpecError(where, "expected an object")
        fam = c.get("family")
        if not isinstance(fam, str) or fam not in COUPLING_FAMILIES:
            raise SpecError(f"{where}.family", f"unknown coupling family {fam!r}; known: {sorted(COUPLING_FAMILIES)}")
        m_total += len(c.get("i", [])) if isinstance(c.get("i"), list) else 0
        if m_total > max_couplings:
            raise SpecError("couplings", f"problem too large: more than {max_couplings} couplings")
        term = COUPLING_FAMILIES[fam](c, n, where)
        name = fam if fam not in terms else f"{fam}_{c_idx}"
        terms[name] = term

    if "eta0" in spec:
        eta0 = finite_array(spec["eta0"], n, "eta0")
        if np.any((eta0 < 0) | (eta0 > 1)):
            raise SpecError("eta0", "eta must lie in [0, 1]")
    weights = spec.get("weights", {})
    if not isinstance(weights, dict):
        raise SpecError("weights", "expected an object of term weights")
    for k, v in weights.items():
        if k not in terms:
            raise SpecError(f"weights.{k}", f"unknown term; terms are {sorted(terms)}")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v) or v < 0:
            raise SpecError(f"weights.{k}", "expected a finite number >= 0")
    names = spec.get("names")
    if names is not None and (not isinstance(names, list) or len(names) != n or not all(isinstance(x, str) for x in names)):
        raise SpecError("names", f"expected a list of {n} strings, one label per module")
    return EnergyProblem(n, terms, eta0, {k: float(v) for k, v in weights.items()}, names)


def _finite(v) -> bool:
    try:
        return math.isfinite(v)
    except OverflowError:  # a JSON integer too large for a float
        return False
