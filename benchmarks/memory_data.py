"""Data for the memory benchmark: Fashion-MNIST from Debian's package, its exact ground truth
(computed once, cached), and a synthetic Gaussian mixture for the scale run.

Fashion-MNIST is what ann-benchmarks' fashion-mnist-784-euclidean is built from: 60k train
vectors (the database) and 10k test vectors (the queries), 784 raw pixel values 0..255 as float32.

Ground truth is exact: pixels are integers, so float64 dot products and norms are exact integers
(every partial sum stays below 2**53) and the squared L2 distances carry no rounding at all. A
float32 index (faiss IndexFlatL2) rounds them -- distances reach ~5e7 > 2**24 -- which can swap
near-ties. Ties that remain are real (equal integer distances) and are broken by the smaller id.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import time

import numpy as np

DATASET_DIR = os.environ.get("EMERGENCE_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")
CACHE_DIR = os.path.join("runs", "memory-bench")
FILES = {"train": "train-images-idx3-ubyte.gz", "test": "t10k-images-idx3-ubyte.gz"}
GT_K = 100


class DatasetMissing(RuntimeError):
    pass


def _paths(directory: str) -> dict:
    paths = {k: os.path.join(directory, f) for k, f in FILES.items()}
    missing = [p for p in paths.values() if not os.path.exists(p)]
    if missing:
        raise DatasetMissing(
            f"Fashion-MNIST not found ({', '.join(missing)}). Install Debian's package: "
            "sudo apt-get install dataset-fashion-mnist (or point EMERGENCE_FASHION_MNIST at a "
            "directory holding train-images-idx3-ubyte.gz and t10k-images-idx3-ubyte.gz)")
    return paths


def read_idx_images(path: str) -> np.ndarray:
    """(n, rows*cols) uint8 from an IDX3 file (gzipped)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, n, rows, cols = np.frombuffer(data[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX3 image file (magic {magic})")
    images = np.frombuffer(data[16:], dtype=np.uint8)
    if images.size != n * rows * cols:
        raise ValueError(f"{path}: {images.size} pixels, the header says {n}x{rows}x{cols}")
    return images.reshape(n, rows * cols)


def files_digest(paths: dict) -> str:
    h = hashlib.sha256()
    for key in sorted(paths):
        with open(paths[key], "rb") as f:
            h.update(f.read())
    return h.hexdigest()[:16]


def exact_topk(train: np.ndarray, queries: np.ndarray, k: int, chunk: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """Exact squared-L2 top-k of integer-valued data: (ids int32 (q, k), distances int64 (q, k)),
    ordered by distance, then id."""
    x = train.astype(np.float64)
    xn = (x * x).sum(1)
    ids = np.empty((len(queries), k), np.int32)
    dist = np.empty((len(queries), k), np.int64)
    for s in range(0, len(queries), chunk):
        q = queries[s:s + chunk].astype(np.float64)
        d = (q * q).sum(1)[:, None] + xn[None, :] - 2.0 * (q @ x.T)
        kth = np.partition(d, k - 1, axis=1)[:, k - 1]
        for r in range(len(q)):
            cand = np.flatnonzero(d[r] <= kth[r])  # every tie with the k-th, so ids break ties
            order = np.lexsort((cand, d[r, cand]))[:k]
            ids[s + r] = cand[order]
            dist[s + r] = np.rint(d[r, cand[order]]).astype(np.int64)
    return ids, dist


def exact_distances(train: np.ndarray, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Exact squared L2 (int64) between query i and train[ids[i, j]] (ids -1 -> -1)."""
    out = np.full(ids.shape, -1, np.int64)
    for i in range(len(ids)):
        row = ids[i]
        ok = row >= 0
        diff = train[row[ok]].astype(np.int64) - queries[i].astype(np.int64)
        out[i, ok] = (diff * diff).sum(1)
    return out


def fashion_mnist(n_train: int | None = None, n_test: int | None = None, directory: str = DATASET_DIR,
                  cache_dir: str = CACHE_DIR) -> dict:
    """{"train" (n, 784) float32, "test" (q, 784) float32, "gt_ids" (q, 100) int32, "gt_dist"
    (q, 100) int64, "digest", "gt_seconds" (0.0: from the cache)}. Subsets are the first rows."""
    paths = _paths(directory)
    train = read_idx_images(paths["train"])[:n_train]
    test = read_idx_images(paths["test"])[:n_test]
    digest = files_digest(paths)
    os.makedirs(cache_dir, exist_ok=True)
    cache = os.path.join(cache_dir, f"fashion-mnist-gt-{digest}-{len(train)}x{len(test)}-k{GT_K}.npz")
    gt_seconds = 0.0
    if os.path.exists(cache):
        with np.load(cache) as z:
            gt_ids, gt_dist = z["ids"], z["dist"]
    else:
        t0 = time.perf_counter()
        gt_ids, gt_dist = exact_topk(train, test, GT_K)
        gt_seconds = time.perf_counter() - t0
        tmp = cache + ".tmp.npz"
        np.savez(tmp, ids=gt_ids, dist=gt_dist)
        os.replace(tmp, cache)
    return {"train": train.astype(np.float32), "test": test.astype(np.float32), "train_u8": train,
            "test_u8": test, "gt_ids": gt_ids, "gt_dist": gt_dist, "digest": digest, "gt_seconds": gt_seconds,
            "gt_cache": cache}


def mixture_centers(dim: int = 128, n_centers: int = 1000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.0, 1.0, (n_centers, dim)).astype(np.float32)


def mixture_batch(centers: np.ndarray, start: int, n: int, seed: int = 0, spread: float = 0.35) -> np.ndarray:
    """Rows start..start+n of the synthetic set: a centre plus Gaussian noise, reproducible per
    batch (the same start and n give the same rows)."""
    rng = np.random.default_rng([seed, start])
    which = rng.integers(0, len(centers), n)
    return (centers[which] + rng.normal(0.0, spread, (n, centers.shape[1]))).astype(np.float32)
