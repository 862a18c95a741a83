"""The default NVP model that `make run` serves, shipped in `emergence/models/nvp`, and its recipe.

Synthetic sequences of every domain at 64x64 (the network is fully convolutional, so it serves
128x128, 256x256 and 128x384 maps too), a few minutes on 2 cores. Retrain it with

    python -m emergence.nvp.default --out runs/nvp/default     # then EMERGENCE_NVP_MODEL=runs/nvp/default

The shipped model is only ever read (checked against its card); a model directory elsewhere is
trained when missing and written atomically, so an interrupted run trains again next time
instead of leaving half a model.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from emergence.models import SHIPPED, check, default_path, provenance

from .atlas import Domain
from .model import NVPConfig
from .synthetic import DOMAINS, generate
from .train import NVPModel, fit

DEFAULT_MODEL_DIR = str(default_path("nvp"))
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


def ensure_default_model(path: str | os.PathLike = DEFAULT_MODEL_DIR, progress: bool = True,
                         command: str = "ensure_default_model()", **recipe) -> str:
    """Return the path of a trained model at `path`, training one first if none is there (never
    for the shipped model, which is checked against its card instead: ModelFileError if it fails)."""
    path = Path(path)
    if path.resolve() == SHIPPED["nvp"]:
        check(path)
        return str(path)
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
                       "final_val_mse": history[-1]["val_mse"],
                       "trained": provenance(command, r["seed"], time.time() - (time.perf_counter() - t0))})
    model.save(path)
    return str(path)


def load_default_model(path: str | os.PathLike = DEFAULT_MODEL_DIR) -> NVPModel:
    return NVPModel.load(ensure_default_model(path))


def main(argv=None) -> str:
    ap = argparse.ArgumentParser(description="Train the default NVP model (the recipe above) into --out.")
    ap.add_argument("--out", required=True, help="a new model directory (the shipped one is never overwritten)")
    ap.add_argument("--seed", type=int, default=DEFAULT_RECIPE["seed"])
    ap.add_argument("--epochs", type=int, default=DEFAULT_RECIPE["epochs"])
    args = ap.parse_args(argv)
    out = Path(args.out)
    if out.resolve() == SHIPPED["nvp"] or (out / "params.msgpack").exists():
        ap.error(f"--out {out} already holds a model; name a new directory")
    command = " ".join(["python -m emergence.nvp.default", *(sys.argv[1:] if argv is None else argv)])
    path = ensure_default_model(out, progress=True, command=command, seed=args.seed, epochs=args.epochs)
    print(f"model: {path}\nserve it: EMERGENCE_NVP_MODEL={path} make run")
    return path


if __name__ == "__main__":
    main()
