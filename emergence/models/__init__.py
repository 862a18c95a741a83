"""The trained default models shipped with the project, checked against their model cards.

    emergence/models/engine/model.pt   the Emergence Engine behind POST /synthesize
    emergence/models/nvp/              the NVP model behind POST /predict (an NVPModel directory)

Each folder holds a `README.md` model card: YAML front matter (the model's sha256, size, how it was
trained, its benchmark figures) and a text for people, both written by `python -m
benchmarks.model_cards` from the model file and the benchmark JSONs that measured that checksum.
`check(path)` is what the server, `make run` and the benchmarks load through: it says plainly
when a model is missing or does not match the card beside it (`checked(name)`: the shipped one,
which must have a card). Models a user trains go under `runs/`
and replace these only where the user points at them (EMERGENCE_ENGINE_MODEL, EMERGENCE_NVP_MODEL,
or a path given to the server or benchmark).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent
SHIPPED = {"engine": ROOT / "engine" / "model.pt", "nvp": ROOT / "nvp"}
CARD = "README.md"
NVP_FILES = ("config.json", "params.msgpack", "meta.json")  # what an NVPModel directory's digest covers


ENV = {"engine": "EMERGENCE_ENGINE_MODEL", "nvp": "EMERGENCE_NVP_MODEL"}  # a user's model instead


def default_path(name: str) -> Path:
    """The model served as `name` by default: the one the environment names (relative to the
    current directory), else the shipped one. Absolute, so a replica elsewhere finds it too."""
    return Path(os.environ.get(ENV[name]) or SHIPPED[name]).expanduser().resolve()


class ModelFileError(ValueError):
    """A model file that is missing, unreadable or not the one its card describes."""


def digest(path: str | os.PathLike) -> str:
    """sha256 of a model: of the file, or, for an NVP model directory, of its files' names and
    digests (config, parameters, meta) in order."""
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for name in NVP_FILES:
            if (path / name).is_file():
                h.update(f"{name}\0{_file_sha256(path / name)}\n".encode())
        return h.hexdigest()
    return _file_sha256(path)


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def size_bytes(path: str | os.PathLike) -> int:
    path = Path(path)
    return sum((path / n).stat().st_size for n in NVP_FILES if (path / n).is_file()) if path.is_dir() \
        else path.stat().st_size


def card_path(model_path: str | os.PathLike) -> Path:
    """Where a model's card lies: README.md in its directory (beside a model file, or inside an
    NVP model directory)."""
    p = Path(model_path)
    return (p if p.is_dir() else p.parent) / CARD


def read_card(model_path: str | os.PathLike) -> dict | None:
    """The card's front matter beside a model, with its text under "text"; None where there is no
    card: no README.md, one without front matter (an ordinary README), or one that describes
    another file of the folder (its `path` names another file)."""
    path = card_path(model_path)
    if not path.is_file():
        return None
    raw = path.read_text()
    if not raw.startswith("---\n") or "\n---\n" not in raw[4:]:
        return None
    head, text = raw[4:].split("\n---\n", 1)
    try:
        meta = yaml.safe_load(head)
    except yaml.YAMLError as exc:
        raise ModelFileError(f"{path}: the card's front matter is not YAML: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise ModelFileError(f"{path}: the card's front matter names no sha256")
    if meta.get("path") and Path(meta["path"]).name != Path(model_path).name:
        return None
    return {**meta, "text": text.lstrip("\n")}


def check(model_path: str | os.PathLike) -> dict | None:
    """Check a model against the card beside it; return the card (None where it has none).
    Raises ModelFileError naming what is wrong: a missing file, or a checksum the card does not
    name (a corrupt copy, a Git LFS pointer, or a retrained model whose card was not rewritten)."""
    path = Path(model_path)
    if not path.exists():
        missing = [path]
    else:  # an NVP model directory needs its config and parameters (meta is optional)
        missing = [path / n for n in ("config.json", "params.msgpack") if path.is_dir() and not (path / n).is_file()]
    if missing:
        raise ModelFileError(f"model file missing: {', '.join(map(str, missing))}")
    card = read_card(path)
    if card is not None:
        found = digest(path)
        if found != card["sha256"]:
            raise ModelFileError(
                f"{path} does not match its model card {card_path(path)}: sha256 {found}, the card names "
                f"{card['sha256']}. The file is corrupt or was replaced; restore the shipped one "
                f"(`git checkout -- {path}`), or rewrite the card for the new model (`python -m benchmarks.model_cards`)")
    return card


def checked(name: str) -> Path:
    """The path of the shipped model `name` ("engine" or "nvp"), checked against its card."""
    if name not in SHIPPED:
        raise ValueError(f"shipped models are {sorted(SHIPPED)}, got {name!r}")
    path = SHIPPED[name]
    check(path)
    if read_card(path) is None:
        raise ModelFileError(f"the shipped {name} model has no card at {card_path(path)}")
    return path


def provenance(command: str, seed: int, started: float) -> dict:
    """How a model was trained, for its file and card: the command, seed, when it finished (UTC)
    and how long it took (`started` from time.time()), on how many CPUs."""
    import time

    return {"command": command, "seed": seed, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "seconds": round(time.time() - started, 1), "cpus": os.cpu_count()}
