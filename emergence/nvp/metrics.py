"""NVP metrics that can fail: each one scores persistence (E_t+1 = E_t) and a trained model apart.

All take batches (B, H, W): `pred` the predicted mean, `true` the next field, `prev` the input
field E_t. The prototype's rescaled "fidelity" gave persistence 1.0; here persistence scores
skill 0 and change-field fidelity 0 by definition, and only a model that predicts the change
scores above.
"""

from __future__ import annotations

import numpy as np

from .atlas import entropy, gradient

Z95 = 1.959963984540054  # two-sided 95% normal quantile


def _flat(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"expected a batch of maps (B, H, W), got shape {a.shape}")
    return a.reshape(a.shape[0], -1)


def rmse(pred, true) -> float:
    return float(np.sqrt(np.mean((_flat(pred) - _flat(true)) ** 2)))


def skill(pred, true, prev) -> float:
    """1 - RMSE_model / RMSE_persistence: 0 for persistence, 1 for a perfect prediction."""
    base = rmse(prev, true)
    return float("nan") if base == 0 else 1.0 - rmse(pred, true) / base


def change_fidelity(pred, true, prev) -> float:
    """Mean over samples of 1 - ||dE_pred - dE_true|| / ||dE_true||, dE = E_t+1 - E_t (persistence: 0).

    Per field, then averaged: every snapshot counts the same. Pooled over the batch this ratio
    would equal `skill` exactly (the error of E_pred is the error of dE_pred); per field it asks
    the model to get the change right in quiet snapshots too, not only in the most active ones
    that dominate a pooled RMSE. Samples whose true change is exactly zero are skipped."""
    d_true = _flat(true) - _flat(prev)
    err = _flat(pred) - _flat(true)  # = dE_pred - dE_true
    denom = np.linalg.norm(d_true, axis=1)
    ok = denom > 0
    if not ok.any():
        return float("nan")
    return float(np.mean(1.0 - np.linalg.norm(err[ok], axis=1) / denom[ok]))


def gradient_alignment(pred, true, dx: float = 1.0) -> float:
    """Mean over the batch of the cosine between the predicted and true gradient fields."""
    gp = gradient(np.asarray(pred, dtype=np.float64), dx).reshape(len(pred), -1)
    gt = gradient(np.asarray(true, dtype=np.float64), dx).reshape(len(true), -1)
    num = np.sum(gp * gt, axis=1)
    den = np.linalg.norm(gp, axis=1) * np.linalg.norm(gt, axis=1)
    ok = den > 0
    return float(np.mean(num[ok] / den[ok])) if ok.any() else float("nan")


def entropy_coherence(pred, true, prev) -> float:
    """1 - mean |dH_pred - dH_true| / mean |dH_true|: how well the predicted entropy change
    (H of the normalised map) follows the true one. Persistence predicts dH = 0 and scores 0."""
    h0, hp, ht = entropy(np.asarray(prev)), entropy(np.asarray(pred)), entropy(np.asarray(true))
    denom = float(np.mean(np.abs(ht - h0)))
    return float("nan") if denom == 0 else 1.0 - float(np.mean(np.abs((hp - h0) - (ht - h0)))) / denom


def entropy_violation_rate(pred, true, prev, tol: float = 1e-6) -> float:
    """Fraction of samples whose predicted entropy falls below the input's (by more than tol)
    while the true next field's does not: a second-law violation the data never shows."""
    h0, hp, ht = entropy(np.asarray(prev)), entropy(np.asarray(pred)), entropy(np.asarray(true))
    return float(np.mean((hp < h0 - tol) & (ht >= h0 - tol)))


def coverage(mean, std, true, z: float = Z95) -> float:
    """Fraction of pixels inside mean +/- z std (0.95 expected for a calibrated Gaussian head)."""
    m, s, t = _flat(mean), _flat(std), _flat(true)
    if np.any(s < 0):
        raise ValueError("std: must be >= 0")
    return float(np.mean(np.abs(t - m) <= z * s))


def persistence(prev) -> np.ndarray:
    return np.asarray(prev)


def linear_extrapolation(prev2, prev) -> np.ndarray:
    """2 E_t - E_t-1, clipped at 0 (energy is non-negative)."""
    return np.maximum(2.0 * np.asarray(prev, dtype=np.float64) - np.asarray(prev2, dtype=np.float64), 0.0)


def evaluate(pred, true, prev, std=None, dx: float = 1.0) -> dict[str, float]:
    """Every metric at once (coverage only when a predictive std is given)."""
    out = {
        "rmse": rmse(pred, true),
        "skill": skill(pred, true, prev),
        "change_fidelity": change_fidelity(pred, true, prev),
        "gradient_alignment": gradient_alignment(pred, true, dx),
        "entropy_coherence": entropy_coherence(pred, true, prev),
        "entropy_violation_rate": entropy_violation_rate(pred, true, prev),
    }
    if std is not None:
        out["coverage95"] = coverage(pred, std, true)
    return out
