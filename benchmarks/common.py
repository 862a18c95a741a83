"""Shared benchmark plumbing: targets whose `met` is computed, and the JSON report."""

from __future__ import annotations

import json
import os
import platform
import time

from cluster import ray_session


def target(value: float, goal: float, kind: str = "<=") -> dict:
    """A target with `met` computed from value and goal, never typed in."""
    compare = {"<=": lambda a, b: a <= b, "<": lambda a, b: a < b, ">=": lambda a, b: a >= b, ">": lambda a, b: a > b}
    if kind not in compare:
        raise ValueError(f"kind must be one of {sorted(compare)}, got {kind!r}")
    met = compare[kind](value, goal)  # NaN compares False: a missing figure never meets a target
    return {"value": value, "goal": f"{kind} {goal}", "met": bool(met)}


def write_report(path: str | None, name: str, figures: dict, targets: dict, argv: list[str]) -> dict:
    report = {
        "benchmark": name,
        "command": "python -m benchmarks." + name + (" " + " ".join(argv) if argv else ""),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    # timings taken on make run's head share it with whatever it serves
                    **({"ray": ray_session.JOINED} if ray_session.JOINED else {})},
        "figures": figures,
        "targets": targets,
    }
    if path:
        tmp = f"{path}.tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=2)
        os.replace(tmp, path)
    return report


def print_targets(targets: dict) -> None:
    print("\ntargets")
    for k, t in targets.items():
        print(f"  {'MET ' if t['met'] else 'MISS'}  {k}: {t['value']:.4g} (goal {t['goal']})")
