"""A crucible run as figures: reward (and each component) per iteration, success rate with its
moving average and the curriculum level, and reward and success per episode (rolling means).

`plot_run(rows, episodes, out_dir)` takes the rows `training.crucible` writes to metrics.parquet
(one per iteration) and the episodes of episodes.parquet (one per program judged).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..energy.observability import _new_figure, save_figure

COMPONENTS = ("correctness", "speed", "quality")


def rolling(values, window: int) -> np.ndarray:
    """Mean of the last `window` values at each point (fewer at the start)."""
    v = np.asarray(values, dtype=float)
    if not len(v):
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_run(rows: list[dict], episodes: list[dict], out_dir) -> dict:
    out_dir = Path(out_dir)
    if not rows:
        raise ValueError("no iterations to plot")
    it = [r["iteration"] for r in rows]
    paths = {}

    fig, ax = _new_figure()
    ax.plot(it, [r.get("reward", np.nan) for r in rows], label="reward", lw=2)
    for k in COMPONENTS:
        ax.plot(it, [r.get(k, np.nan) for r in rows], label=k, lw=1)
    ax.set(xlabel="PPO iteration", ylabel="mean per program", title="Crucible reward")
    ax.legend(), ax.grid(alpha=0.3)
    paths["reward"] = save_figure(fig, out_dir / "reward.png")

    fig, ax = _new_figure()
    ax.plot(it, [r.get("success", np.nan) for r in rows], label="success (iteration)", lw=1)
    ax.plot(it, [r.get("success_avg", np.nan) for r in rows], label="success (moving average)", lw=2)
    ax.set(xlabel="PPO iteration", ylabel="share of programs passing every test", ylim=(0, 1),
           title="Crucible success rate")
    level = ax.twinx()
    level.step(it, [r.get("level", np.nan) for r in rows], where="post", color="grey", ls="--", label="level")
    level.set_ylabel("curriculum level")
    ax.legend(loc="upper left"), ax.grid(alpha=0.3)
    paths["success"] = save_figure(fig, out_dir / "success.png")

    if episodes:
        n = len(episodes)
        window = max(1, min(512, n // 10 or 1))
        fig, ax = _new_figure()
        x = np.arange(1, n + 1)
        ax.plot(x, rolling([e["reward"] for e in episodes], window), label=f"reward (mean of {window})")
        ax.set(xlabel="episode (one program)", ylabel="reward", title="Training progress")
        right = ax.twinx()
        right.plot(x, rolling([e["level"] == "all_right" for e in episodes], window), color="tab:green",
                   label=f"success rate (mean of {window})")
        right.set(ylabel="success rate", ylim=(0, 1))
        ax.legend(loc="upper left"), right.legend(loc="lower right"), ax.grid(alpha=0.3)
        paths["progress"] = save_figure(fig, out_dir / "progress.png")
    return paths
