"""How likely the engine's answer is right: a probability, not the scorer's raw coherence.

The coherence scorer judges one program against the intent. Whether the answer is right also
shows in how the sampler's draws agree (votes), how far the answer leads the next distinct
program (margin), and the action encoder's alignment. `fit_confidence` fits a logistic model
of "the ranked first program is the described one" on those features, from held-out corpus
programs in held-out wordings (never evaluation intents); `Engine` then reports its answer's
confidence as that probability and refuses below its threshold.

Wordings far from the corpus are harder than the held-out ones this is fitted on, so the
probability is optimistic there; what the benchmark checks is whether it separates right
answers from wrong ones better than coherence alone.
"""

from __future__ import annotations

import math

import numpy as np

FEATURES = ("scorer_logit", "alignment", "log_vote_share", "margin")
MARGIN_CAP = 10.0  # a lone candidate leads by "a lot", not by infinity


def features(candidates: list, n_samples: int) -> list[float] | None:
    """The answer's features: candidates ranked best first (`Candidate`s); None when there are none."""
    if not candidates:
        return None
    best = candidates[0]
    p = min(max(best.coherence, 1e-6), 1 - 1e-6)
    second = next((c for c in candidates[1:] if list(c.ops) != list(best.ops)), None)
    margin = MARGIN_CAP if second is None else min(best.rank_score - second.rank_score, MARGIN_CAP)
    return [math.log(p / (1 - p)), float(best.alignment), math.log(max(best.votes, 1) / max(n_samples, 1)),
            float(margin)]


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 50) -> dict:
    """Logistic regression by Newton's method on standardized features, with a small L2 penalty
    (which keeps it finite when the classes separate). Returns the model as plain numbers."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.ndim != 2 or len(x) != len(y) or len(x) == 0:
        raise ValueError(f"need an (n, d) feature matrix and n labels, got {x.shape} and {y.shape}")
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-9] = 1.0
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = l2 * len(x) * np.eye(z.shape[1])
    reg[-1, -1] = 0.0  # the bias is not penalized
    for _ in range(iters):
        p = 1 / (1 + np.exp(-z @ w))
        grad = z.T @ (p - y) + reg @ w
        hess = (z * (p * (1 - p))[:, None]).T @ z + reg + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {"features": list(FEATURES), "mean": mean.tolist(), "scale": scale.tolist(),
            "coef": w[:-1].tolist(), "bias": float(w[-1])}


def probability(model: dict, feats: list[float]) -> float:
    z = sum(c * (f - m) / s for c, f, m, s in zip(model["coef"], feats, model["mean"], model["scale"]))
    z += model["bias"]
    return 1 / (1 + math.exp(-z)) if z > -500 else 0.0


def roc_auc(scores, labels) -> float | None:
    """Probability that a random right answer scores above a random wrong one (ties count half)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def fit_confidence(x: list, y: list, folds: int = 2, seed: int = 0) -> dict:
    """The model fitted on all rows, plus held-out figures from `folds`-fold cross-validation:
    ROC-AUC of the fitted probability and of coherence alone, and the calibration of the fitted
    probability (mean predicted vs share right)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    order = np.random.default_rng(seed).permutation(len(x))
    held = np.zeros(len(x))
    for f in range(folds):
        test = order[f::folds]
        train = np.setdiff1d(order, test)
        if len(train) == 0 or len(set(y[train].tolist())) < 2:
            held[test] = y.mean() if len(y) else 0.5
            continue
        m = fit_logistic(x[train], y[train])
        held[test] = [probability(m, row) for row in x[test].tolist()]
    model = fit_logistic(x, y) if len(set(y.tolist())) == 2 else None
    return {"model": model, "records": int(len(x)), "share_right": float(y.mean()) if len(y) else 0.0,
            "held_out_auc": roc_auc(held.tolist(), y.tolist()),
            "coherence_auc": roc_auc(x[:, 0].tolist(), y.tolist()) if len(x) else None,
            "held_out_mean_probability": float(held.mean()) if len(held) else 0.0}
