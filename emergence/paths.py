"""Where runs, data and user-trained models go: one persistent directory, named in every job's --help.

EMERGENCE_RUNS when set (`make run` sets it, for every job on its head, to the checkout's runs/);
else ./runs -- except inside a `ray job submit` working-dir copy, which Ray deletes with the
session (checkpoints there could never be resumed), where it is ~/.emergence/runs.
"""

from __future__ import annotations

import os
from pathlib import Path

HELP = "EMERGENCE_RUNS, else ./runs (~/.emergence/runs inside a Ray job's working-dir copy)"


def runs_root() -> Path:
    env = os.environ.get("EMERGENCE_RUNS")
    if env:
        return Path(env).expanduser().resolve()
    cwd = Path.cwd()
    if "runtime_resources" in cwd.parts:  # <session>/runtime_resources/working_dir_files/_ray_pkg_*
        return Path.home() / ".emergence" / "runs"
    return cwd / "runs"


def runs_path(*parts: str) -> str:
    """A path under the runs root, e.g. runs_path("train") for Ray Train storage."""
    return str(runs_root().joinpath(*parts))
