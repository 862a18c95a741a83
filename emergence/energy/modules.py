"""Module kinds: how a module reads its input into an initial order parameter eta0, and which
Landau local energy it contributes.

Every kind reduces to per-module Landau parameters (a, b, h, center) plus eta0, so the
coordinator sees one vectorized `LandauTerm` whatever kinds a problem mixes. A new kind is a
function registered in `MODULE_KINDS`; nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


def softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def gate_eta(gain, cost, k) -> np.ndarray:
    """eta_gate = 1 - exp(-softplus(k (gain - cost))): the one-step open probability of a gate
    whose hazard rate is softplus(k * net benefit). Equal to sigmoid(k * net) mathematically;
    computed in the hazard form so the hazard itself is available for metrics."""
    lam = softplus(np.asarray(k, dtype=np.float64) * (np.asarray(gain, dtype=np.float64) - np.asarray(cost, dtype=np.float64)))
    return -np.expm1(-lam)


def gate_hazard(gain, cost, k) -> np.ndarray:
    return softplus(np.asarray(k, dtype=np.float64) * (np.asarray(gain, dtype=np.float64) - np.asarray(cost, dtype=np.float64)))


def sequence_eta(values, samples: int | None = None, rng: np.random.Generator | None = None) -> float:
    """Sequence consistency: the fraction of ordered pairs i < j with v_i <= v_j.

    Exact (all pairs, O(L log L) via a merge count) when samples is None; otherwise a uniform
    random sample of pairs, which is what a streaming module would afford.
    """
    v = np.asarray(values, dtype=np.float64)
    L = v.size
    if L < 2:
        return 1.0
    total = L * (L - 1) // 2
    if samples is None:
        return 1.0 - _count_inversions(v) / total
    rng = rng or np.random.default_rng()
    i = rng.integers(0, L, samples)
    j = rng.integers(0, L, samples)
    keep = i != j
    lo, hi = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
    return float(np.mean(v[lo] <= v[hi])) if lo.size else 1.0


def _count_inversions(v: np.ndarray) -> int:
    """Pairs i < j with v_i > v_j, by merge sort (strict, so ties are not inversions)."""

    def sort_count(a):
        if a.size <= 1:
            return a, 0
        mid = a.size // 2
        left, cl = sort_count(a[:mid])
        right, cr = sort_count(a[mid:])
        # for each right element, count left elements strictly greater
        pos = np.searchsorted(left, right, side="right")
        cross = int(np.sum(left.size - pos))
        return np.sort(np.concatenate([left, right]), kind="mergesort"), cl + cr + cross

    return sort_count(v)[1]


def connectivity_eta(grid) -> float:
    """Grid connectivity: the largest 4-connected component of open cells over all cells."""
    from scipy import ndimage

    g = np.asarray(grid, dtype=bool)
    if g.ndim != 2 or g.size == 0:
        raise ValueError("grid: expected a non-empty 2-D array of open (1) / closed (0) cells")
    labels, count = ndimage.label(g)
    if count == 0:
        return 0.0
    return float(np.bincount(labels.ravel())[1:].max() / g.size)


@dataclass
class ModuleGroup:
    """Per-module Landau parameters and initial eta for a block of modules."""

    a: np.ndarray
    b: np.ndarray
    h: np.ndarray
    center: np.ndarray
    eta0: np.ndarray
    kind: str

    @property
    def count(self) -> int:
        return int(self.a.size)


ModuleBuilder = Callable[[dict, int, str], ModuleGroup]


def _param(spec: dict, key: str, count: int, where: str, default=None) -> np.ndarray:
    from .spec import SpecError, finite_array

    if key not in spec:
        if default is None:
            raise SpecError(f"{where}.{key}", "is required")
        return np.full(count, float(default))
    return finite_array(spec[key], count, f"{where}.{key}")


def _landau(spec: dict, count: int, where: str) -> ModuleGroup:
    eta0 = _param(spec, "eta0", count, where, 0.5)
    return ModuleGroup(
        _param(spec, "a", count, where),
        _param(spec, "b", count, where),
        _param(spec, "h", count, where, 0.0),
        _param(spec, "center", count, where, 0.0),
        eta0,
        "landau",
    )


def _gating(spec: dict, count: int, where: str) -> ModuleGroup:
    gain = _param(spec, "gain", count, where)
    cost = _param(spec, "cost", count, where, 0.1)
    k = _param(spec, "k", count, where, 10.0)
    return ModuleGroup(
        _param(spec, "a", count, where, 0.1),
        _param(spec, "b", count, where, 0.1),
        _param(spec, "h", count, where, 0.0),
        np.zeros(count),
        gate_eta(gain, cost, k),
        "gating",
    )


def _ordered(eta_fn, kind):
    def build(spec: dict, count: int, where: str) -> ModuleGroup:
        from .spec import SpecError

        inputs = spec.get("inputs")
        if not isinstance(inputs, list) or len(inputs) != count:
            raise SpecError(f"{where}.inputs", f"expected a list of {count} inputs, one per module")
        etas = []
        for t, x in enumerate(inputs):
            try:
                etas.append(eta_fn(x))
            except (ValueError, TypeError, OverflowError) as exc:
                raise SpecError(f"{where}.inputs[{t}]", str(exc)) from None
        return ModuleGroup(
            _param(spec, "a", count, where, 1.0),
            _param(spec, "b", count, where, 1.0),
            _param(spec, "h", count, where, 0.0),
            np.ones(count),  # Landau around full order, eta = 1
            np.asarray(etas, dtype=np.float64),
            kind,
        )

    return build


def _sequence_input(x) -> float:
    try:
        v = np.asarray(x, dtype=np.float64)
    except OverflowError:
        raise ValueError("expected a 1-D list of finite numbers") from None
    if v.ndim != 1 or not np.all(np.isfinite(v)):
        raise ValueError("expected a 1-D list of finite numbers")
    return sequence_eta(v)


MODULE_KINDS: dict[str, ModuleBuilder] = {
    "landau": _landau,
    "gating": _gating,
    "sequence": _ordered(_sequence_input, "sequence"),
    "connectivity": _ordered(connectivity_eta, "connectivity"),
}


def register_module_kind(name: str, builder: ModuleBuilder) -> None:
    """Add a module kind usable from problem specs (and so from Serve and the actors)."""
    MODULE_KINDS[name] = builder
