"""Observability for energy runs: per-term budgets, gating metrics, atomic Parquet/JSON writes
and trace plots.

    from emergence.energy.observability import term_budgets, gating_metrics, write_parquet, plot_trace

    write_parquet(term_budgets(problem, eta), "runs/x/budgets.parquet")
    plot_trace(result.trace.to_frame(), "runs/x/trace.png")

Everything here is pure library code (numpy, polars, matplotlib's Agg canvas): no Ray, and no
pyplot global state, so it is safe to call from worker processes and threads.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from typing import Any, Mapping

import numpy as np

from .modules import gate_eta, gate_hazard
from .problem import EnergyProblem

__all__ = ["gating_metrics", "plot_trace", "term_budgets", "write_json", "write_parquet"]


# -- per-term budgets ----------------------------------------------------------------------------


def term_budgets(problem: EnergyProblem, eta) -> "pl.DataFrame":  # noqa: F821 - polars imported lazily
    """One row per term at `eta`: its family, weight, weighted and unweighted energy, weighted
    and unweighted gradient norm, and its share of the total |weighted energy| and of the sum of
    weighted gradient norms. The weighted energies sum to `problem.energy(eta)`."""
    import polars as pl

    x = np.asarray(eta, dtype=np.float64)
    if x.shape != (problem.n,):
        raise ValueError(f"eta: expected {problem.n} values, got shape {x.shape}")
    names = list(problem.terms)
    e_raw = problem.term_energies(x, weighted=False)
    g_raw = problem.term_grad_norms(x, weighted=False)
    weights = [problem.weight(k) for k in names]
    energy = [w * e_raw[k] for w, k in zip(weights, names)]
    # A term's weighted gradient is w * its unweighted gradient, so its norm is |w| * the norm.
    grad_norm = [abs(w) * g_raw[k] for w, k in zip(weights, names)]
    abs_total = float(sum(abs(e) for e in energy))
    g_total = float(sum(grad_norm))
    return pl.DataFrame(
        {
            "term": names,
            "family": [str(getattr(problem.terms[k], "family", k)) for k in names],
            "weight": weights,
            "energy": energy,
            "energy_unweighted": [e_raw[k] for k in names],
            "grad_norm": grad_norm,
            "grad_norm_unweighted": [g_raw[k] for k in names],
            "energy_share": [abs(e) / abs_total if abs_total > 0 else 0.0 for e in energy],
            "grad_share": [g / g_total if g_total > 0 else 0.0 for g in grad_norm],
        },
        schema={
            "term": pl.String,
            "family": pl.String,
            "weight": pl.Float64,
            "energy": pl.Float64,
            "energy_unweighted": pl.Float64,
            "grad_norm": pl.Float64,
            "grad_norm_unweighted": pl.Float64,
            "energy_share": pl.Float64,
            "grad_share": pl.Float64,
        },
    )


# -- gating metrics ------------------------------------------------------------------------------


def gating_metrics(gain, cost, k, redemption) -> dict[str, float]:
    """Metrics of a batch of gate decisions (one entry per trial).

    hazard_mean     mean of softplus(k (gain - cost)), the gates' hazard rates
    mu_hat          expansions / (sum of max(redemption, 0) + 1e-9): gates opened per unit of
                    positive redemption bought (lower is more efficient)
    good_bad_ratio  (good + 1e-6) / (bad + 1e-6), good = expanded with redemption > 0,
                    bad = expanded with redemption <= 0
    where a trial is *expanded* when eta_gate = gate_eta(gain, cost, k) > 0.5. Also returned:
    expansions, expansion_rate, good, bad, trials.
    `gain` and `redemption` are per-trial arrays; `cost` and `k` broadcast against them.
    """
    g = np.atleast_1d(np.asarray(gain, dtype=np.float64))
    r = np.atleast_1d(np.asarray(redemption, dtype=np.float64))
    try:
        g, r, c, kk = np.broadcast_arrays(g, r, np.asarray(cost, dtype=np.float64), np.asarray(k, dtype=np.float64))
    except ValueError:
        raise ValueError(f"gain, cost, k, redemption: shapes do not broadcast ({np.shape(gain)}, {np.shape(redemption)})") from None
    if g.ndim != 1 or g.size == 0:
        raise ValueError("gain, redemption: expected non-empty 1-D per-trial arrays")
    for name, arr in (("gain", g), ("cost", c), ("k", kk), ("redemption", r)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name}: values must be finite")
    hazard = gate_hazard(g, c, kk)
    expanded = gate_eta(g, c, kk) > 0.5
    n_exp = int(expanded.sum())
    good = int(np.sum(expanded & (r > 0.0)))
    bad = int(np.sum(expanded & (r <= 0.0)))
    return {
        "hazard_mean": float(np.mean(hazard)),
        "mu_hat": float(n_exp / (float(np.sum(np.maximum(r, 0.0))) + 1e-9)),
        "good_bad_ratio": float((good + 1e-6) / (bad + 1e-6)),
        "expansions": n_exp,
        "expansion_rate": float(n_exp / g.size),
        "good": good,
        "bad": bad,
        "trials": int(g.size),
    }


# -- atomic writes -------------------------------------------------------------------------------


@contextmanager
def _atomic_target(path, suffix: str = ".tmp"):
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename
    (os.replace is atomic on POSIX and Windows within one file system), on failure it is
    removed. Readers therefore see the old file or the complete new one, never a partial one."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=suffix, dir=parent)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        # mkstemp makes the file 0600; give it the mode an ordinary open() would have
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (os.umask(x) sets it,
    which would race with other threads creating files)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)
    os.umask(old)
    return old


def _fsync_file(path: str) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _as_frame(data):
    import polars as pl

    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, Mapping):
        return pl.DataFrame({k: (np.asarray(v) if isinstance(v, np.ndarray) else v) for k, v in data.items()})
    if isinstance(data, (list, tuple)) and all(isinstance(row, Mapping) for row in data):
        return pl.DataFrame(list(data))
    to_frame = getattr(data, "to_frame", None)  # RelaxTrace and friends
    if callable(to_frame):
        return _as_frame(to_frame())
    raise TypeError(f"write_parquet: expected a polars DataFrame, a dict of columns or a list of row dicts, got {type(data).__name__}")


def write_parquet(data, path) -> str:
    """Write a polars DataFrame (or a dict of columns, a list of row dicts, or anything with
    .to_frame()) to `path` as Parquet. Parent folders are created; the file is written to a
    temporary sibling and moved into place with os.replace, so a crash never leaves a
    half-written file at `path`. Returns the path."""
    frame = _as_frame(data)
    with _atomic_target(path) as tmp:
        frame.write_parquet(tmp)
    return os.fspath(path)


def _jsonable(x: Any):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None  # JSON has no NaN / infinity
    return x


def write_json(obj, path) -> str:
    """Write a JSON document atomically (same guarantee as write_parquet). numpy scalars and
    arrays are converted; NaN and infinities become null."""
    text = json.dumps(_jsonable(obj), indent=2, allow_nan=False)
    with _atomic_target(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text + "\n")
    return os.fspath(path)


# -- plots ---------------------------------------------------------------------------------------


def _new_figure(nrows: int = 1, ncols: int = 1, figsize=(7.0, 4.5), **kw):
    """A Figure on the Agg canvas, without pyplot (no global backend or figure registry)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, **kw)
    return fig, axes


def save_figure(fig, path, dpi: int = 110) -> str:
    """Render `fig` to a PNG at `path` atomically (parents created)."""
    with _atomic_target(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return os.fspath(path)


def _needs_symlog(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return False
    if v.min() <= 0.0:
        # mixed signs or zero: a linear axis is fine only if the range is modest
        nz = np.abs(v[v != 0.0])
        return bool(nz.size and nz.max() / max(nz.min(), 1e-300) > 1e3)
    return bool(v.max() / v.min() > 1e3)


def plot_trace(trace_frame, path, title: str | None = None) -> str:
    """PNG of a relaxation trace: energy vs accepted step (plus the original-weight energy when
    it differs, e.g. for adapted runs), and the eta bounds [eta_min, eta_max] per step.
    `trace_frame` is RelaxTrace.to_frame() (or a dict of its columns / a RelaxTrace). A symlog
    energy axis is used when the energies span more than three decades or cross zero."""
    frame = _as_frame(trace_frame)
    cols = set(frame.columns)
    if "energy" not in cols:
        raise ValueError("trace_frame: needs an 'energy' column")
    e = frame["energy"].to_numpy().astype(np.float64)
    step = frame["step"].to_numpy() if "step" in cols else np.arange(e.size)
    fig, (ax_e, ax_eta) = _new_figure(2, 1, figsize=(7.0, 6.0), sharex=True)
    ax_e.plot(step, e, lw=1.5, label="energy")
    shown = [e]
    if "original_energy" in cols:
        orig = frame["original_energy"].to_numpy().astype(np.float64)
        if not np.allclose(orig, e, rtol=1e-12, atol=1e-15, equal_nan=True):
            ax_e.plot(step, orig, lw=1.2, ls="--", label="energy (original weights)")
            shown.append(orig)
    allv = np.concatenate(shown)
    if _needs_symlog(allv):
        finite = np.abs(allv[np.isfinite(allv) & (allv != 0.0)])
        ax_e.set_yscale("symlog", linthresh=float(max(finite.min(), 1e-12)) if finite.size else 1.0)
    ax_e.set_ylabel("F(eta)")
    ax_e.grid(alpha=0.3)
    ax_e.legend(loc="best", fontsize=8)
    if title:
        ax_e.set_title(title)
    if {"eta_min", "eta_max"} <= cols:
        lo, hi = frame["eta_min"].to_numpy(), frame["eta_max"].to_numpy()
        ax_eta.fill_between(step, lo, hi, alpha=0.25, label="[eta_min, eta_max]")
        ax_eta.plot(step, lo, lw=1.0)
        ax_eta.plot(step, hi, lw=1.0)
        ax_eta.legend(loc="best", fontsize=8)
    ax_eta.set_ylim(-0.02, 1.02)
    ax_eta.set_xlabel("accepted step")
    ax_eta.set_ylabel("eta")
    ax_eta.grid(alpha=0.3)
    return save_figure(fig, path)
