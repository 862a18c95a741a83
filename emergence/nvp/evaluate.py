"""One evaluator for a trained model and the two baselines, on any atlas domain.

For each domain it reports, side by side, every metric of `metrics.evaluate` for
- `model`: the raw prediction (no enforcement),
- `model_enforced`: the same after `thermo_compile(...)` projection, when limits are given,
- `persistence` (E_t+1 = E_t) and `linear` (2 E_t - E_t-1),
plus rollout errors: RMSE and skill after k autoregressive steps (k = 10, 50 by default, those
that fit in the sequences), each method fed its own predictions.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from .atlas import Domain
from .model import NVPConfig
from .thermo import ThermoLimits
from .train import NVPModel, make_samples, predict_samples

ROLLOUT_STEPS = (10, 50)
DIVERGED = 1e3  # a rollout whose field exceeds this many times the data's max has diverged


def one_step(model: NVPModel, domain: Domain, known: bool = True, limits: ThermoLimits | None = None,
             max_samples: int | None = None, seed: int = 0) -> dict[str, dict[str, float]]:
    """One-step metrics on every window of `domain` (or a random subset of max_samples)."""
    cfg: NVPConfig = model.config
    s = make_samples([domain], cfg, known=known)
    idx = np.arange(len(s))
    if max_samples is not None and len(s) > max_samples:
        idx = np.sort(np.random.default_rng(seed).choice(len(s), max_samples, replace=False))
        s = s.take(idx)
    mean, std = predict_samples(model, s)
    prev = s.window[:, -1]
    # the linear baseline needs E_t-1 even when the model does not look at it
    prev2 = s.window[:, -2] if cfg.history >= 2 else _align_prev2(domain, cfg.history)[idx]
    out = {
        "model": M.evaluate(mean, s.target, prev, std, dx=domain.dx),
        "persistence": M.evaluate(M.persistence(prev), s.target, prev, dx=domain.dx),
        "linear": M.evaluate(M.linear_extrapolation(prev2, prev), s.target, prev, dx=domain.dx),
    }
    if limits is not None:
        enforced, checks = limits(mean, prev)
        out["model_enforced"] = M.evaluate(enforced, s.target, prev, std, dx=domain.dx)
        out["model_enforced"]["projected_fraction"] = float(np.mean([c["projected"] for c in checks]))
    out["model"]["samples"] = float(len(s))
    return out


def _align_prev2(domain: Domain, history: int) -> np.ndarray:
    """E_t-1 for each window of a history-1 sample set (the first frame repeats E_0)."""
    e = domain.energy
    n, t = e.shape[:2]
    idx = np.arange(t - history)
    prev2 = e[:, np.maximum(idx - 1, 0)]
    return prev2.reshape(n * len(idx), *e.shape[2:])


def rollout(model: NVPModel, domain: Domain, known: bool = True, steps=ROLLOUT_STEPS,
            limits: ThermoLimits | None = None, max_sequences: int = 8) -> dict[str, dict[str, float]]:
    """Autoregressive error after each k in `steps` (only ks that fit in the sequences):
    {method: {"rmse@k": ..., "skill@k": ...}} with skill relative to persistence at the same k.
    A model rollout that diverges scores rmse inf (skill -inf) from then on; `diverged_at` says when."""
    e = domain.energy[:max_sequences].astype(np.float32)
    h = max(model.config.history, 2)
    start = h - 1  # index of E_t; linear extrapolation needs E_t-1
    ks = [k for k in steps if start + k < e.shape[1]]
    if not ks:
        return {}
    horizon = max(ks)
    name = domain.name if known else None
    window = e[:, start - model.config.history + 1 : start + 1]
    means, diverged_at = [], None
    for k in range(1, horizon + 1):  # step by step, so a diverging rollout is recorded, not fatal
        mean, _ = model.predict(window, name, domain.dt, domain.dx)
        if limits is not None and np.isfinite(mean).all():
            mean = limits(mean, window[:, -1])[0]
        if not np.isfinite(mean).all() or np.abs(mean).max() > DIVERGED * max(1.0, float(np.abs(e).max())):
            diverged_at = k
            break
        means.append(mean)
        window = np.concatenate([window[:, 1:], mean[:, None]], axis=1)
    e_t, last = e[:, start], e[:, start] - e[:, start - 1]
    out: dict[str, dict[str, float]] = {"model": {}, "persistence": {}, "linear": {}}
    for k in ks:
        true = e[:, start + k]
        preds = {"model": means[k - 1] if k <= len(means) else None, "persistence": e_t,
                 "linear": np.maximum(e_t + k * last, 0.0)}
        base = M.rmse(e_t, true)
        for method, pred in preds.items():
            r = float("inf") if pred is None else M.rmse(pred, true)
            out[method][f"rmse@{k}"] = r
            out[method][f"skill@{k}"] = float("nan") if base == 0 else 1.0 - r / base
    out["model"]["diverged_at"] = diverged_at
    return out


def evaluate_domain(model: NVPModel, domain: Domain, known: bool = True, limits: ThermoLimits | None = None,
                    max_samples: int | None = None, one_step_frames: int | None = None) -> dict:
    """Everything for one domain: {"one_step": {...}, "rollout": {...}, "known": bool}.
    `one_step_frames` scores one-step metrics on the first frames only (the time range the model
    was trained on), while rollouts use the whole sequences."""
    head = domain
    if one_step_frames is not None and one_step_frames < domain.energy.shape[1]:
        head = Domain(domain.name, domain.energy[:, :one_step_frames], domain.dt, domain.dx, domain.source)
    return {
        "domain": domain.name, "known": known,
        "one_step": one_step(model, head, known, limits, max_samples),
        "rollout": rollout(model, domain, known, limits=limits),
    }


def table(results: list[dict], keys=("skill", "change_fidelity", "gradient_alignment", "entropy_coherence",
                                       "entropy_violation_rate", "coverage95")) -> str:
    """A plain-text table: one row per (domain, method)."""
    head = f"{'domain':<12}{'method':<16}" + "".join(f"{k[:14]:>16}" for k in keys)
    lines = [head, "-" * len(head)]
    for r in results:
        for method, m in r["one_step"].items():
            cells = "".join(f"{m[k]:>16.4f}" if k in m else f"{'-':>16}" for k in keys)
            lines.append(f"{r['domain'] + ('' if r['known'] else '*'):<12}{method:<16}{cells}")
    lines.append("(* = held-out domain, evaluated with the 'unknown' domain embedding)")
    return "\n".join(lines)


def few_shot_calibrated(model: NVPModel, domain: Domain, sequences: int, known: bool = False) -> tuple[NVPModel, Domain]:
    """Refit the std scale of the id `domain` is scored with on its first `sequences` sequences
    and return (that model, the remaining sequences to score on): calibration data never scored.
    For a new domain a few labelled sequences usually exist; the mean is unchanged."""
    n = domain.energy.shape[0]
    if not 1 <= sequences < n:
        raise ValueError(f"sequences must be in [1, {n - 1}] for a domain of {n} sequences, got {sequences}")
    from .train import calibrate_std

    cal = Domain(domain.name, domain.energy[:sequences], domain.dt, domain.dx, domain.source)
    rest = Domain(domain.name, domain.energy[sequences:], domain.dt, domain.dx, domain.source)
    samples = make_samples([cal], model.config, known=known)
    d = int(samples.domain_id[0])
    fitted = calibrate_std(model, samples)
    scale = model.std_scale.copy()
    scale[d] = fitted[d]
    out = NVPModel(model.config, model.params, scale, {**model.meta, "few_shot_calibrated": domain.name})
    return out, rest
