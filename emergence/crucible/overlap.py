"""Guard: no training problem may read like an evaluation request.

A training problem whose description lies within cosine `threshold` (MiniLM sentence embeddings,
the engine's own encoder) of any evaluation request is refused: near-copies of what we measure on
would make the measurement a memory test."""

from __future__ import annotations

import numpy as np

THRESHOLD = 0.9


def too_close(train: list[str], evaluation: list[str], encoder=None, threshold: float = THRESHOLD) -> list[tuple]:
    """[(train text, evaluation text, cosine)] for every training text within `threshold` of an
    evaluation text, closest first. `encoder`: anything with encode(texts) -> unit vectors
    (default MiniLM)."""
    if not train or not evaluation:
        return []
    if encoder is None:
        from ..synthesis.encoder import make_encoder

        encoder = make_encoder("minilm")
    a, b = (np.asarray(encoder.encode(list(t)), dtype=np.float32) for t in (train, evaluation))
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-12
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-12
    sims = a @ b.T
    hits = np.argwhere(sims >= threshold)
    out = [(train[i], evaluation[j], float(sims[i, j])) for i, j in hits]
    return sorted(out, key=lambda h: -h[2])
