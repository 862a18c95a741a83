"""Prediction logging for later meta-learning: one record per predicted field.

`log_energy_vector(path, ...)` appends to a JSONL file (one line per record, flushed and fsynced,
so an acknowledged record survives a crash; a torn last line from a crash mid-write is skipped
by `read_energy_vectors`). `to_parquet(jsonl, parquet)` converts a log into a Parquet table
through polars, written atomically.

A record holds the summary "energy vector" of the prediction -- totals, entropies, the predicted
uncertainty, the thermodynamic checks -- and, optionally, the coarse field itself (`field`,
sum-pooled to at most 16x16 so logs stay small).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np

from .atlas import downsample, entropy

MAX_FIELD_SIDE = 16


def _coarse(field: np.ndarray) -> list:
    h, w = field.shape
    f = 1
    while (h // f > MAX_FIELD_SIDE or w // f > MAX_FIELD_SIDE) and h % (2 * f) == 0 and w % (2 * f) == 0:
        f *= 2
    return downsample(field, f).round(8).tolist() if f > 1 else field.round(8).tolist()


def energy_vector(prev, mean, std=None, *, domain: str | None = None, model: str | None = None,
                  checks: dict | None = None, include_field: bool = False, **extra) -> dict:
    """The record for one prediction: (H, W) input field, predicted mean and optional std."""
    prev = np.asarray(prev, dtype=np.float64)
    mean = np.asarray(mean, dtype=np.float64)
    if prev.ndim != 2 or mean.shape != prev.shape:
        raise ValueError(f"prev and mean must be (H, W) maps of one shape, got {prev.shape} and {mean.shape}")
    rec = {
        "time": time.time(), "domain": domain, "model": model, "shape": list(mean.shape),
        "energy_in": float(prev.sum()), "energy_out": float(mean.sum()),
        "entropy_in": float(entropy(prev)), "entropy_out": float(entropy(np.maximum(mean, 0))),
        "change_rms": float(np.sqrt(np.mean((mean - prev) ** 2))),
        "std_mean": float(np.mean(std)) if std is not None else None,
    }
    if checks is not None:
        rec["violations"] = list(checks.get("violations", []))
    if include_field:
        rec["field"] = _coarse(mean)
    for k, v in extra.items():
        rec[k] = v
    for k, v in rec.items():
        if isinstance(v, float) and not math.isfinite(v):
            rec[k] = None  # strict JSON
    return rec


def log_energy_vector(path: str | os.PathLike, prev, mean, std=None, **kw) -> dict:
    """Append one record to the JSONL log at `path` (created with its folder); returns it."""
    rec = energy_vector(prev, mean, std, **kw)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(rec, allow_nan=False) + "\n"
    with open(path, "a", encoding="utf-8") as f:
        f.write(line)
        f.flush()
        os.fsync(f.fileno())
    return rec


def read_energy_vectors(path: str | os.PathLike) -> list[dict]:
    """Every complete record of a JSONL log (a torn final line is skipped)."""
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def to_parquet(jsonl: str | os.PathLike, parquet: str | os.PathLike) -> str:
    """Convert a JSONL log to Parquet (the coarse fields, if any, become list columns)."""
    import polars as pl

    rows = read_energy_vectors(jsonl)
    if not rows:
        raise ValueError(f"{jsonl}: no records to convert")
    frame = pl.DataFrame(rows, infer_schema_length=None)
    parquet = Path(parquet)
    parquet.parent.mkdir(parents=True, exist_ok=True)
    tmp = parquet.with_name(f".{parquet.name}.tmp")
    frame.write_parquet(tmp)
    os.replace(tmp, parquet)
    return str(parquet)
