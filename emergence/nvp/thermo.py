"""Thermodynamic limits enforced at inference, when asked: `thermo_compile` and its checks.

The model learns conservation through the loss; nothing here changes what it learned. A compiled
limit set checks each predicted field against:
- non-negativity (energy density is >= 0),
- an energy budget: |sum(E_pred) - sum(E_t)| <= energy_budget * sum(E_t) (relative; 0 = exact
  conservation, None = unchecked, as for a domain with sources),
- an entropy ceiling: H(E_pred) <= entropy_max (nats of the normalised map; None = unchecked),
- optionally the second law: H(E_pred) >= H(E_t) - tol.

mode="raise" raises `ThermodynamicViolation` naming every failed check; mode="project" returns the
nearest admissible field along a simple path: clip at 0, shift the total into the budget by a
uniform rescale, then blend towards E_t (H is concave, so blending towards an admissible E_t
restores the entropy limits) by bisection on the blend weight. Both modes report what they saw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .atlas import entropy

__all__ = ["ThermoLimits", "ThermodynamicViolation", "check_field", "thermo_compile"]


class ThermodynamicViolation(ValueError):
    """A prediction broke a compiled limit; `.checks` holds the per-sample report."""

    def __init__(self, message: str, checks: list[dict]):
        super().__init__(message)
        self.checks = checks


@dataclass(frozen=True)
class ThermoLimits:
    energy_budget: float | None = None
    entropy_max: float | None = None
    second_law: bool = False
    mode: str = "raise"
    tol: float = 1e-9

    def __post_init__(self):
        if self.energy_budget is not None and not (math.isfinite(self.energy_budget) and self.energy_budget >= 0):
            raise ValueError(f"energy_budget must be a finite number >= 0 or None, got {self.energy_budget!r}")
        if self.entropy_max is not None and not (math.isfinite(self.entropy_max) and self.entropy_max > 0):
            raise ValueError(f"entropy_max must be a positive finite number or None, got {self.entropy_max!r}")
        if self.mode not in ("raise", "project"):
            raise ValueError(f"mode must be 'raise' or 'project', got {self.mode!r}")

    def __call__(self, pred, prev):
        return enforce(pred, prev, self)


def thermo_compile(energy_budget: float | None = None, entropy_max: float | None = None,
                   second_law: bool = False, mode: str = "raise", tol: float = 1e-9) -> ThermoLimits:
    """A callable `limits(pred, prev) -> (field, checks)` enforcing the given limits."""
    return ThermoLimits(energy_budget, entropy_max, second_law, mode, tol)


def check_field(pred, prev, limits: ThermoLimits | None = None) -> dict:
    """Report for one (H, W) prediction against the input field: totals, entropies, violations."""
    pred = np.asarray(pred, dtype=np.float64)
    prev = np.asarray(prev, dtype=np.float64)
    total_prev, total_pred = float(prev.sum()), float(pred.sum())
    h_prev, h_pred = float(entropy(prev)), float(entropy(np.maximum(pred, 0.0)))
    drift = (total_pred - total_prev) / total_prev if total_prev > 0 else float("inf")
    out = {
        "energy_in": total_prev, "energy_out": total_pred, "energy_drift": drift,
        "entropy_in": h_prev, "entropy_out": h_pred, "entropy_change": h_pred - h_prev,
        "min_value": float(pred.min()), "violations": [],
    }
    v = out["violations"]
    if pred.min() < 0:
        v.append(f"negative energy (min {pred.min():.3g})")
    if limits is not None:
        if limits.energy_budget is not None and abs(drift) > limits.energy_budget + limits.tol:
            v.append(f"energy drift {drift:+.3g} exceeds budget {limits.energy_budget:g}")
        if limits.entropy_max is not None and h_pred > limits.entropy_max + limits.tol:
            v.append(f"entropy {h_pred:.6g} above entropy_max {limits.entropy_max:g}")
        if limits.second_law and h_pred < h_prev - limits.tol:
            v.append(f"entropy decreased by {h_prev - h_pred:.3g} (second law)")
    return out


def enforce(pred, prev, limits: ThermoLimits):
    """Apply `limits` to a batch (B, H, W) or one map (H, W). Returns (field, checks) where checks
    lists each sample's report (with `projected: True` where the field was changed)."""
    pred = np.asarray(pred, dtype=np.float64)
    prev = np.asarray(prev, dtype=np.float64)
    if pred.shape != prev.shape:
        raise ValueError(f"pred and prev must have the same shape, got {pred.shape} and {prev.shape}")
    single = pred.ndim == 2
    p = pred[None] if single else pred
    q = prev[None] if single else prev
    out = p.copy()
    checks = []
    for i in range(len(p)):
        c = check_field(p[i], q[i], limits)
        if c["violations"] and limits.mode == "raise":
            checks.append(c)
            raise ThermodynamicViolation(f"sample {i}: " + "; ".join(c["violations"]), checks)
        if c["violations"]:
            out[i] = _project(p[i], q[i], limits)
            after = check_field(out[i], q[i], limits)
            after["projected"], after["violations_before"] = True, c["violations"]
            c = after
        else:
            c["projected"] = False
        checks.append(c)
    field = out[0] if single else out
    return field.astype(np.float32), checks


def _project(pred: np.ndarray, prev: np.ndarray, limits: ThermoLimits) -> np.ndarray:
    x = np.maximum(pred, 0.0)
    total_prev = prev.sum()
    if limits.energy_budget is not None and total_prev > 0 and x.sum() > 0:
        lo, hi = total_prev * (1 - limits.energy_budget), total_prev * (1 + limits.energy_budget)
        x = x * (np.clip(x.sum(), lo, hi) / x.sum())

    def ok(f):
        return not check_field(f, prev, limits)["violations"]

    if ok(x):
        return x
    # blend towards E_t (itself rescaled into the budget, so the blend keeps the total admissible)
    if not ok(prev):
        raise ThermodynamicViolation("the input field itself breaks the limits; nothing to project onto",
                                     [check_field(prev, prev, limits)])
    a, b = 0.0, 1.0  # weight of x: 0 is admissible, 1 is not
    for _ in range(40):
        m = 0.5 * (a + b)
        if ok(m * x + (1 - m) * prev):
            a = m
        else:
            b = m
    return a * x + (1 - a) * prev
