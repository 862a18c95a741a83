"""Atlas -> Ray Data: one row per (window of `history` fields -> next field).

The driver only inspects the atlas (groups, attributes, shapes); the values are read and validated
inside Ray Data tasks, one atlas sequence per task, so a large atlas never passes through the
driver. Whole sequences go to validation (the last ceil(fraction * N) of each domain, the same
`validation_start` as `emergence.nvp.train.split_by_sequence`), so no validation window shares frames with a training one.
"""

from __future__ import annotations

import os
from dataclasses import asdict

import numpy as np

from emergence.nvp.atlas import AtlasGroup, Domain, inspect_atlas, read_sequences
from emergence.nvp.model import NVPConfig
from emergence.nvp.train import Samples, make_samples, validation_start


def plan(atlas: str, domains: list[str] | None, config: NVPConfig, val_fraction: float = 0.2):
    """Inspect the atlas; return (train_items, val_items, groups): one item per sequence."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    groups = inspect_atlas(atlas, domains)
    if domains is not None:  # inspect_atlas keys by the `domain` attribute; keep the caller's names
        groups = {g.domain: g for g in groups.values()}
    shapes = {g.shape for g in groups.values()}
    if len(shapes) > 1:
        raise ValueError(f"{atlas}: all training domains must share one map shape, got {sorted(shapes)}")
    train, val = [], []
    for g in groups.values():
        if g.t <= config.history:
            raise ValueError(f"{g.where}: T = {g.t} steps is too short for history = {config.history}")
        if g.n < 2:
            raise ValueError(f"{g.where}: need >= 2 sequences to hold some out for validation, got {g.n}")
        cut = validation_start(g.n, val_fraction)
        for i in range(g.n):
            (train if i < cut else val).append({**_item(g), "sequence": i})
    return train, val, groups


def _item(g: AtlasGroup) -> dict:
    d = asdict(g)
    d["shape"] = list(g.shape)
    return d


def sequence_windows(item: dict, config_json: str) -> dict[str, np.ndarray]:
    """One atlas sequence -> a batch of training rows (runs inside a Ray Data task)."""
    config = NVPConfig.from_json(config_json)
    g = AtlasGroup(**{**{k: item[k] for k in ("path", "group", "domain", "n", "t", "dt", "dx")},
                      "shape": tuple(item["shape"])})
    seq = int(item["sequence"])
    rows = make_samples([Domain(g.domain, read_sequences(g, seq, seq + 1), g.dt, g.dx)], config)
    rows.sequence[:] = seq  # its index in the atlas group, not in this one-sequence read
    return {f: getattr(rows, f) for f in Samples.__dataclass_fields__}


def window_dataset(items: list[dict], config: NVPConfig):
    """A Ray Dataset of training rows read from the atlas, one read task per sequence."""
    import ray.data

    if not items:
        raise ValueError("no sequences to read")
    cfg = config.to_json()

    def read(batch: dict) -> dict:
        rows = [sequence_windows({k: batch[k][i] for k in batch}, cfg) for i in range(len(batch["sequence"]))]
        return {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}

    # Paths are made absolute: read tasks may run with another working directory.
    items = [{**it, "path": os.path.abspath(it["path"])} for it in items]
    return ray.data.from_items(items, override_num_blocks=len(items)).map_batches(read, batch_size=1)


def samples_from_batches(batches) -> Samples:
    """Collect numpy batches (dicts of Samples' columns) into one Samples."""
    parts = [Samples(**{f: np.asarray(b[f]) for f in Samples.__dataclass_fields__}) for b in batches]
    if not parts:
        raise ValueError("no rows")
    return Samples.concat(parts)


def read_samples(items: list[dict], config: NVPConfig) -> Samples:
    """The same rows as `window_dataset`, read here (the driver's validation set)."""
    return samples_from_batches(sequence_windows(it, config.to_json()) for it in items)
