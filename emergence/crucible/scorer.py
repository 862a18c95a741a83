"""The coherence scorer taught by the crucible's verdicts: which programs did pass for which intents.

PPO tunes the denoiser, which makes the draws; the engine's answer is the draw its ranking puts
first, and the ranking leans on the coherence scorer (`models.CoherenceScorer`), trained on corpus
wordings only. After a run, every distinct (problem, program) the sandbox judged is a labelled
example in the training problems' own words: passed every test, or not. `fit_scorer` fine-tunes
the scorer on them with binary cross-entropy, anchored to its starting weights (an L2 pull, so
what it knew of the corpus stays), and reports its ROC-AUC on problems it held out.
"""

from __future__ import annotations

import copy
import random

import numpy as np
import torch
from torch.nn import functional as F

from ..synthesis.models import condition, tokens


def verdict_pairs(episodes: list[dict]) -> dict:
    """{(problem id, ops tuple): passed} from episode rows (a program passing on any draw passed)."""
    pairs: dict = {}
    for e in episodes:
        ops = tuple(e["ops"])
        if ops:
            key = (e["problem"], ops)
            pairs[key] = pairs.get(key, False) or e["level"] == "all_right"
    return pairs


def fit_scorer(scorer, pairs: dict, encodings: dict, arity: dict, epochs: int = 4, lr: float = 1e-4,
               anchor: float = 1e-2, held_out: float = 0.2, seed: int = 0) -> tuple[object, dict]:
    """(fine-tuned copy of `scorer`, figures). `encodings`: problem id -> pooled intent vector;
    `arity`: problem id -> arity. Problems (not pairs) are split into fit and held-out parts."""
    problems = sorted({p for p, _ in pairs})
    if len(problems) < 2:
        raise ValueError("need verdicts on at least two problems")
    rng = random.Random(seed)
    rng.shuffle(problems)
    cut = max(1, int(len(problems) * held_out))
    test_ids = set(problems[:cut])

    def tensors(keys):
        emb = torch.as_tensor(np.stack([encodings[p] for p, _ in keys]), dtype=torch.float32)
        cond = condition(emb, torch.tensor([arity[p] for p, _ in keys]))
        tok = torch.tensor([tokens(list(o)) for _, o in keys])
        y = torch.tensor([float(pairs[k]) for k in keys])
        return cond, tok, y

    keys = sorted(pairs)
    fit_keys = [k for k in keys if k[0] not in test_ids]
    test_keys = [k for k in keys if k[0] in test_ids]
    model = copy.deepcopy(scorer).train()
    start = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    cond, tok, y = tensors(fit_keys)
    g = torch.Generator().manual_seed(seed)
    pos = float(y.mean()) if len(y) else 0.5
    weight = torch.tensor(min(10.0, (1 - pos) / max(pos, 1e-3)))  # balance passes against failures
    before = _auc(scorer, *tensors(test_keys)) if test_keys else None
    for _ in range(epochs):
        for idx in torch.randperm(len(y), generator=g).split(256):
            loss = F.binary_cross_entropy_with_logits(model(cond[idx], tok[idx]), y[idx], pos_weight=weight)
            loss = loss + anchor * sum(((p - s) ** 2).sum() for p, s in zip(model.parameters(), start))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    after = _auc(model, *tensors(test_keys)) if test_keys else None
    return model, {"pairs": len(keys), "problems": len(problems), "passed_share": pos, "held_out_problems": cut,
                   "held_out_auc_before": before, "held_out_auc_after": after, "epochs": epochs, "lr": lr,
                   "anchor": anchor}


@torch.no_grad()
def _auc(model, cond, tok, y) -> float | None:
    """ROC-AUC of the scorer's logits for passed against failed programs (None with one class)."""
    from ..synthesis.confidence import roc_auc

    if y.min() == y.max():
        return None
    return float(roc_auc(model(cond, tok).numpy(), y.numpy()))
