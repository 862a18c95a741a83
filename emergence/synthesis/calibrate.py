"""Fitting the ranking weights on held-out corpus programs and wordings (never on evaluation intents).

The engine ranks candidates by w_scorer * logit(coherence) + w_align * alignment + w_votes *
log(votes). After training, `calibrate_ranking` synthesizes from held-out descriptions
(validation programs, which the networks never saw, in wordings training never used: the
corpus's "calib" split), records every candidate's three features and whether it is the
described program, and picks the weights on a small grid that put the right program first most
often. Candidates are compared by their operations, the part the networks choose.
"""

from __future__ import annotations

import itertools
import math
import random

import numpy as np

GRID = {"scorer": (0.0, 0.5, 1.0, 2.0), "align": (0.0, 5.0, 10.0, 20.0), "votes": (0.0, 0.5, 1.0, 2.0)}


def candidate_features(engine, records, encodings) -> list[list[tuple]]:
    """Per record (with its `Encoding`): [(scorer logit, alignment, log votes, is the described program)]."""
    rows = []
    for rec, enc in zip(records, encodings):
        syn = engine.synthesize(rec.description, rec.arity, n_candidates=64, encoding=enc)
        feats, seen = [], set()
        for c in syn.candidates:
            if tuple(c.ops) in seen:
                continue
            seen.add(tuple(c.ops))
            p = min(max(c.coherence, 1e-6), 1 - 1e-6)
            feats.append((math.log(p / (1 - p)), c.alignment, math.log(c.votes), list(c.ops) == list(rec.ops)))
        rows.append(feats)
    return rows


def top1(rows, w) -> float:
    hits = 0
    for feats in rows:
        if feats:
            best = max(feats, key=lambda f: w["scorer"] * f[0] + w["align"] * f[1] + w["votes"] * f[2])
            hits += best[3]
    return hits / max(1, len(rows))


def calibrate_ranking(engine, records, encodings, limit: int = 400, seed: int = 0) -> dict:
    """Best grid weights on up to `limit` validation records: {"weights", "top1", "recall", "default_top1"}."""
    idx = _order(len(records), seed)[:limit]
    rows = candidate_features(engine, [records[i] for i in idx], [encodings[i] for i in idx])
    best_w, best = None, -1.0
    for s, a, v in itertools.product(GRID["scorer"], GRID["align"], GRID["votes"]):
        w = {"scorer": s, "align": a, "votes": v}
        if s == a == v == 0:
            continue
        acc = top1(rows, w)
        if acc > best + 1e-9:
            best_w, best = w, acc
    return {"weights": best_w, "top1": best, "recall": float(np.mean([any(f[3] for f in r) for r in rows])),
            "default_top1": top1(rows, engine.rank_weights), "records": len(rows)}


def _order(n: int, seed: int) -> list[int]:
    """The records' shuffled order that both fits share: the ranking takes its first part, the
    confidence model the next."""
    idx = list(range(n))
    random.Random(seed).shuffle(idx)
    return idx


def calibrate_confidence(engine, records, encodings, limit: int = 400, skip: int = 400, seed: int = 0) -> dict:
    """The answer's confidence model (`confidence.fit_confidence`), fitted with the engine's
    current ranking on up to `limit` validation records after the first `skip` of the same
    shuffled order (those the ranking weights were fitted on), or on the first `limit` when too
    few are left: {"model", "records", "held_out_auc", "coherence_auc", ...}."""
    from .confidence import features, fit_confidence

    idx = _order(len(records), seed)
    rest = idx[skip:skip + limit]
    idx = rest if len(rest) >= min(limit, 100) else idx[:limit]
    x, y = [], []
    for i in idx:
        rec = records[i]
        syn = engine.synthesize(rec.description, rec.arity, encoding=encodings[i])
        f = features(syn.candidates, engine.n_samples)
        if f is not None:
            x.append(f)
            y.append(list(syn.candidates[0].ops) == list(rec.ops))
    return fit_confidence(x, y, seed=seed) if x else {"model": None, "records": 0}
