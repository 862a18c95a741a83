"""Pure pieces of sharding: which shard owns an id, and merging per-shard top-k lists."""

from __future__ import annotations

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def shard_of(ids: np.ndarray, n_shards: int) -> np.ndarray:
    """Shard index per id: a multiplicative hash, so runs of consecutive ids spread evenly."""
    if n_shards == 1:
        return np.zeros(len(ids), dtype=np.int64)
    with np.errstate(over="ignore"):
        h = ids.astype(np.uint64) * _GOLDEN
    return ((h >> np.uint64(32)) % np.uint64(n_shards)).astype(np.int64)


def merge_topk(distances: list[np.ndarray], ids: list[np.ndarray], k: int, metric: str,
               extra: list[list] | None = None):
    """Merge per-shard (q, k_i) results into the global top-k per query.

    Ordering is by distance (ascending for L2, descending for inner product), ties by id, so the
    answer does not depend on which shard replied first. Missing results (id -1) sort last.
    `extra`: per shard, a per-query list of per-hit payloads (metadata) permuted alongside."""
    if len(distances) == 1 and extra is None:
        return distances[0][:, :k], ids[0][:, :k], None
    D = np.concatenate(distances, axis=1)
    I = np.concatenate(ids, axis=1)
    key = D if metric == "l2" else -D
    missing = I < 0
    # lexsort: last key is primary. Missing hits go last whatever their distance.
    order = np.lexsort((np.where(missing, np.iinfo(np.int64).max, I), key, missing), axis=-1)[:, :k]
    D_out = np.take_along_axis(D, order, axis=1)
    I_out = np.take_along_axis(I, order, axis=1)
    if extra is None:
        return D_out, I_out, None
    rows = [sum((shard[r] for shard in extra), []) for r in range(len(D))]
    merged = [[rows[r][j] for j in order[r].tolist()] for r in range(len(D))]
    return D_out, I_out, merged
