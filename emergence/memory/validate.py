"""Checks on what callers send: every refusal names the field and the row."""

from __future__ import annotations

import json
import math

import numpy as np

from .errors import MemoryInputError
from .spec import MAX_K

MAX_ID = 2**63 - 1  # int64; -1 is FAISS's "no result", so ids are non-negative
MAX_METADATA_BYTES = 64 * 1024
IF_EXISTS = ("error", "skip", "replace")


def as_vectors(x, dim: int, max_rows: int, field: str = "vectors") -> np.ndarray:
    """(n, dim) float32, C-contiguous, finite; a single 1-D vector becomes one row."""
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise MemoryInputError(field, f"must be a list of {dim}-number rows ({exc})") from None
    if arr.dtype.kind not in "fiu" or arr.dtype == np.bool_:
        raise MemoryInputError(field, f"must hold numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise MemoryInputError(field, f"must be a 2-D array (rows of {dim} numbers), got {arr.ndim} dimensions")
    n, d = arr.shape
    if n == 0:
        raise MemoryInputError(field, "is empty")
    if d != dim:
        raise MemoryInputError(field, f"wrong dimension: rows have {d} numbers, the collection's dim is {dim}")
    if n > max_rows:
        raise MemoryInputError(field, f"{n} rows is over this collection's max_batch of {max_rows}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise MemoryInputError(f"{field}[{row}]", "must be finite (no NaN or infinity)")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():  # float64 values beyond float32's range
        row = int(np.flatnonzero(~np.isfinite(out).all(axis=1))[0])
        raise MemoryInputError(f"{field}[{row}]", "is out of float32 range")
    return out


def as_ids(ids, n: int | None = None, field: str = "ids", unique: bool = True) -> np.ndarray:
    """int64 ids in [0, 2**63-1), distinct within the request (when `unique`)."""
    if isinstance(ids, np.ndarray):
        if ids.dtype.kind not in "iu":
            raise MemoryInputError(field, f"must be integers, got dtype {ids.dtype}")
        arr = ids.reshape(-1)
        if arr.dtype.kind == "u" and arr.size and int(arr.max()) >= MAX_ID:
            raise MemoryInputError(field, f"ids must be below 2**63-1")
        arr = arr.astype(np.int64, copy=False)
    else:
        if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
            ids = [ids]
        if not isinstance(ids, (list, tuple)):
            raise MemoryInputError(field, f"must be a list of integers, got {type(ids).__name__}")
        for i, v in enumerate(ids):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise MemoryInputError(f"{field}[{i}]", f"must be an integer, got {v!r}")
            if not 0 <= int(v) < MAX_ID:
                raise MemoryInputError(f"{field}[{i}]", f"must be in [0, 2**63-1), got {v}")
        arr = np.asarray([int(v) for v in ids], dtype=np.int64)
    if arr.size and (arr.min() < 0):
        i = int(np.flatnonzero(arr < 0)[0])
        raise MemoryInputError(f"{field}[{i}]", f"must be in [0, 2**63-1), got {int(arr[i])}")
    if arr.size and arr.max() == MAX_ID:
        raise MemoryInputError(field, "ids must be below 2**63-1")
    if n is not None and arr.size != n:
        raise MemoryInputError(field, f"{arr.size} ids for {n} vectors")
    if arr.size == 0:
        raise MemoryInputError(field, "is empty")
    if unique:
        uniq, counts = np.unique(arr, return_counts=True)
        if uniq.size != arr.size:
            raise MemoryInputError(field, f"id {int(uniq[counts > 1][0])} appears more than once in this request")
    return np.ascontiguousarray(arr)


def as_metadata(metadata, n: int, field: str = "metadata") -> list[str | None]:
    """One JSON text (or None) per row; each JSON-serializable, finite, at most 64 KiB."""
    if metadata is None:
        return [None] * n
    if not isinstance(metadata, (list, tuple)):
        raise MemoryInputError(field, f"must be a list with one record per vector, got {type(metadata).__name__}")
    if len(metadata) != n:
        raise MemoryInputError(field, f"{len(metadata)} records for {n} vectors")
    out: list[str | None] = []
    for i, m in enumerate(metadata):
        if m is None:
            out.append(None)
            continue
        try:
            text = json.dumps(m, allow_nan=False, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise MemoryInputError(f"{field}[{i}]", f"must be JSON (finite numbers, string keys): {exc}") from None
        if len(text.encode()) > MAX_METADATA_BYTES:
            raise MemoryInputError(f"{field}[{i}]", f"is over {MAX_METADATA_BYTES} bytes as JSON")
        out.append(text)
    return out


def as_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise MemoryInputError("k", f"must be an integer, got {k!r}")
    if not 1 <= int(k) <= MAX_K:
        raise MemoryInputError("k", f"must be between 1 and {MAX_K}, got {k}")
    return int(k)


SEARCH_PARAMS = ("nprobe", "ef_search")
MAX_SEARCH_PARAM = 65_536


def as_search_params(params) -> dict:
    """Per-search overrides of the collection's nprobe (IVF) / ef_search (HNSW)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise MemoryInputError("params", f"must be an object, got {type(params).__name__}")
    out = {}
    for key, v in params.items():
        if key not in SEARCH_PARAMS:
            raise MemoryInputError(f"params.{key}", f"unknown search parameter (known: {', '.join(SEARCH_PARAMS)})")
        if v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= int(v) <= MAX_SEARCH_PARAM:
            raise MemoryInputError(f"params.{key}", f"must be an integer between 1 and {MAX_SEARCH_PARAM}, got {v!r}")
        out[key] = int(v)
    return out


def as_if_exists(mode) -> str:
    if mode not in IF_EXISTS:
        raise MemoryInputError("if_exists", f"one of {list(IF_EXISTS)}, got {mode!r}")
    return mode


def finite_or_none(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None
