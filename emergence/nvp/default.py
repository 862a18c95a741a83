"""The small default model that `make run` serves: trained on first start when none exists.

Synthetic sequences of every domain at 64x64 (the network is fully convolutional, so it serves
128x128, 256x256 and 128x384 maps too), a few minutes on 2 cores. The model directory is written
atomically, so an interrupted first start trains again next time instead of serving half a model.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from .atlas import Domain
from .model import NVPConfig
from .synthetic import DOMAINS, generate
from .train import NVPModel, fit

DEFAULT_MODEL_DIR = os.environ.get("EMERGENCE_NVP_MODEL", "runs/nvp/default")
DEFAULT_RECIPE = {"sequences": 16, "steps": 20, "shape": (64, 64), "epochs": 10, "batch_size": 16, "seed": 0}


def training_domains(sequences: int, steps: int, shape, seed: int) -> dict[str, Domain]:
    return {name: Domain(name, generate(name, sequences, steps, shape=shape, seed=seed + k), spec.default_dt, 1.0)
            for k, (name, spec) in enumerate(sorted(DOMAINS.items()))}


def _bar(epoch: int, epochs: int, row: dict) -> None:
    width = 30
    done = int(width * epoch / epochs)
    sys.stderr.write(f"\r  nvp default model [{'#' * done}{'.' * (width - done)}] epoch {epoch}/{epochs} "
                     f"val_mse {row['val_mse']:.4f} ({row['samples_per_s']:.0f} samples/s)")
    if epoch == epochs:
        sys.stderr.write("\n")
    sys.stderr.flush()


def ensure_default_model(path: str | os.PathLike = DEFAULT_MODEL_DIR, progress: bool = True, **recipe) -> str:
    """Return the path of a trained model at `path`, training one first if none is there."""
    path = Path(path)
    if (path / "params.msgpack").is_file():
        return str(path)
    r = {**DEFAULT_RECIPE, **recipe}
    if progress:
        print(f"no NVP model at {path}: training the default one ({r['epochs']} epochs on "
              f"{r['sequences']} sequences x {len(DOMAINS)} domains, {r['shape'][0]}x{r['shape'][1]})", file=sys.stderr)
    t0 = time.perf_counter()
    domains = training_domains(r["sequences"], r["steps"], tuple(r["shape"]), r["seed"])
    model, history = fit(domains, NVPConfig(), epochs=r["epochs"], batch_size=r["batch_size"], seed=r["seed"],
                         progress=_bar if progress else None)
    model.meta.update({"recipe": {**r, "shape": list(r["shape"])}, "train_seconds": time.perf_counter() - t0,
                       "final_val_mse": history[-1]["val_mse"]})
    model.save(path)
    return str(path)


def load_default_model(path: str | os.PathLike = DEFAULT_MODEL_DIR) -> NVPModel:
    return NVPModel.load(ensure_default_model(path))
