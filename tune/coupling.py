"""Coupling / gate sweep: a Ray Tune sweep over coupling weights and gate costs on the gated ring.

    python -m tune.coupling                              # 5 x 5 grid over (w_gate, cost), n = 2000
    python -m tune.coupling --quick --out /tmp/sweep     # 3 x 3 grid, n = 500
    python -m tune.coupling --search asha --samples 16   # random (w_gate, cost) + ASHA on final_energy
    ray job submit --working-dir . -- python -m tune.coupling --quick

The scenario is the dense ring of `emergence.energy.scenarios.dense_ring`, rebuilt here with three
knobs. For n gating modules with gain_i = 0.02 (i mod 5), a = 0.15, b = 0.05, k = 10:

    F(eta) =   sum_i  a eta_i^2 + b eta_i^4 + (cost - gain_i) eta_i                    "local"
             + w_quad sum_i 0.6 (eta_i - eta_i+1)^2 + 0.3 (eta_i - eta_i+2)^2           "quadratic"
             - w_gate sum_i delta eta_i+1             (gate i+1 serves domain i)       "gate_benefit"

* w_quad scales both ring couplings (w_quad = 1 is the seed's 0.6 / 0.3 ring).
* w_gate is the weight of the gate-benefit term (a unit-weight coupling with delta = 0.05; the seed's
  dense ring is w_gate = 0.4).
* cost enters twice. It sets each gate's starting point, eta0_i = gate_eta(gain_i, cost, k) (the
  one-step open probability of a gate with hazard softplus(k (gain - cost))), and it is a linear
  field h_i = cost - gain_i on the Landau term. The field is what makes cost matter to the *energy*:
  a gate that costs more than it gains pays energy for being open (h_i > 0 pushes eta_i to 0), one
  that gains more than it costs is pulled open. Without it the relaxed state would not depend on
  cost at all (only the starting point would). With cost_field=False, w_quad = 1, w_gate = 0.4 and
  cost = 0.1 the problem is exactly `dense_ring(n)`.

Both fields are linear, so the relaxed state depends on (w_gate, cost) through the net drive
w_gate delta + gain_i - cost: a lone module's minimiser of a x^2 + b x^4 - s x is past 0.5 (an
"open" gate) iff s > a + b / 2 = 0.175, and the ring couplings average the drive over neighbours.
The problem is strictly convex (2a > 0) and the couplings are submodular, so the relaxed eta is
non-increasing in cost and non-decreasing in w_gate, module by module (Topkis): more cost, fewer
open gates. hazard_mean = mean_i softplus(k (gain_i - cost)) falls with cost by construction.

Each trial builds the problem, relaxes it with the accelerated method in chunks of --chunk-steps
accepted steps and calls `tune.report` after every chunk (so ASHA has rungs to stop trials at),
until the relaxation converges or --max-chunks chunks are done. Reported metrics: delta_f (final -
initial energy, <= 0 since every accepted step lowers F), final_energy, initial_energy, delta_f90,
steps, chunks, converged, mean_eta, frac_open (eta > 0.5), eta0_mean, hazard_mean, lbfgs_energy and
gap = final_energy - lbfgs_energy (an L-BFGS-B optimum of the same box problem, ~0.1 s at n = 2000;
--no-gap skips it and reports NaN).

Outputs under --out: coupling_<search>.parquet (one row per trial, clean column names),
coupling_<search>.png (heatmaps of delta_f and hazard_mean over (w_gate, cost); a scatter for ASHA's
random samples) and coupling_<search>.json (the summary `main` returns). Tune's own experiment folder
goes under --storage (default runs/tune, see emergence.paths) with a unique name per run, so a rerun never resumes or
overwrites an earlier one.

Ray: when Ray is already initialised (tests, a caller's session) it is used as is; inside
`ray job submit` (RAY_ADDRESS set) or with --address, `ray.init` connects to that cluster;
otherwise `make run`'s head when it is up (cluster.ray_session), else a
local Ray with 2 CPUs is started and shut down again at the end.
"""

from __future__ import annotations

import argparse
import math
import os
import time
import uuid
from typing import Any, Iterator

import numpy as np

from cluster.ray_session import ensure_ray
from emergence.paths import HELP, runs_path
from emergence.energy.modules import gate_eta, gate_hazard
from emergence.energy.problem import EnergyProblem
from emergence.energy.reference import lbfgsb_optimum
from emergence.energy.relax import RelaxConfig, delta_f90, relax
from emergence.energy.terms import GateBenefitCoupling, LandauTerm, QuadraticCoupling

# The seed's dense-ring constants.
A, B, K = 0.15, 0.05, 10.0
GAIN_STEP, GAIN_PERIOD = 0.02, 5
RING_WEIGHTS = (0.6, 0.3)  # (i, i+1) and (i, i+2) quadratic couplings, scaled by w_quad
DELTA = 0.05  # gate-benefit delta (domain improvement a gate buys)
OPEN = 0.5  # a gate counts as open when eta > OPEN

# Default sweep ranges: they straddle the open/closed boundary w_gate * delta + mean gain - cost
# ~ a + b/2 (see the module docstring), so both heatmaps have structure.
W_GATE_RANGE = (0.0, 6.0)
COST_RANGE = (0.0, 0.3)

SEARCHES = ("grid", "asha")
SWEPT = ("w_gate", "cost")
CONFIG_COLUMNS = ("w_gate", "cost", "w_quad", "n", "k", "delta")
METRIC_COLUMNS = (
    "delta_f",
    "final_energy",
    "initial_energy",
    "delta_f90",
    "steps",
    "chunks",
    "converged",
    "mean_eta",
    "frac_open",
    "eta0_mean",
    "hazard_mean",
    "lbfgs_energy",
    "gap",
    "relax_s",
)
TABLE_COLUMNS = ("w_gate", "cost", "delta_f", "final_energy", "delta_f90", "steps", "mean_eta", "frac_open", "hazard_mean", "gap")


# -- the problem (pure library, no Ray) ------------------------------------------------------------


def gate_gains(n: int) -> np.ndarray:
    """gain_i = 0.02 (i mod 5), as in the seed's dense ring."""
    return GAIN_STEP * (np.arange(n) % GAIN_PERIOD)


def _check_number(name: str, value, *, minimum: float | None = None, strict: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    if minimum is not None and (v <= minimum if strict else v < minimum):
        raise ValueError(f"{name}: must be {'>' if strict else '>='} {minimum}, got {value!r}")
    return v


def build_problem(
    n: int,
    w_gate: float,
    cost: float,
    w_quad: float = 1.0,
    k: float = K,
    delta: float = DELTA,
    cost_field: bool = True,
) -> tuple[EnergyProblem, np.ndarray]:
    """The gated ring with coupling weights (w_quad, w_gate) and gate cost `cost`.

    Returns (problem, gain). The terms are built with unit term weights and the sweep's weights are
    applied with `EnergyProblem.with_weights` ({"quadratic": w_quad, "gate_benefit": w_gate}).
    eta0 = gate_eta(gain, cost, k); the Landau field is h = cost - gain (0 when cost_field=False).
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"n: expected an integer number of modules, got {n!r}")
    if n < 3:
        raise ValueError(f"n: the gated ring needs at least 3 modules, got {n}")
    n = int(n)
    w_gate = _check_number("w_gate", w_gate, minimum=0.0)
    w_quad = _check_number("w_quad", w_quad, minimum=0.0)
    cost = _check_number("cost", cost, minimum=0.0)
    k = _check_number("k", k, minimum=0.0, strict=True)
    delta = _check_number("delta", delta)

    idx = np.arange(n, dtype=np.int64)
    nxt, nxt2 = (idx + 1) % n, (idx + 2) % n
    gain = gate_gains(n)
    h = cost - gain if cost_field else 0.0
    terms = {
        "local": LandauTerm(a=A, b=B, h=h, n=n),
        "quadratic": QuadraticCoupling(
            np.concatenate([idx, idx]),
            np.concatenate([nxt, nxt2]),
            np.concatenate([np.full(n, RING_WEIGHTS[0]), np.full(n, RING_WEIGHTS[1])]),
            n,
        ),
        "gate_benefit": GateBenefitCoupling(nxt, idx, 1.0, n, delta=delta),
    }
    base = EnergyProblem(n, terms, gate_eta(gain, cost, k))
    return base.with_weights({"quadratic": w_quad, "gate_benefit": w_gate}), gain


DEFAULT_TRIAL = {
    "n": 2000,
    "w_gate": 0.4,
    "cost": 0.1,
    "w_quad": 1.0,
    "k": K,
    "delta": DELTA,
    "chunk_steps": 25,
    "max_chunks": 40,
    "tol": 1e-9,
    "gap": True,
}


def trial_reports(config: dict) -> Iterator[dict[str, Any]]:
    """The trial's work without Ray: relax in chunks and yield one metrics dict per chunk.

    Stops after the chunk in which the relaxation converges (or makes no progress), or after
    `max_chunks` chunks. Every dict has the same keys (METRIC_COLUMNS)."""
    cfg = {**DEFAULT_TRIAL, **config}
    chunk_steps, max_chunks = int(cfg["chunk_steps"]), int(cfg["max_chunks"])
    if chunk_steps < 1:
        raise ValueError(f"chunk_steps: must be >= 1, got {chunk_steps}")
    if max_chunks < 1:
        raise ValueError(f"max_chunks: must be >= 1, got {max_chunks}")
    problem, gain = build_problem(int(cfg["n"]), cfg["w_gate"], cfg["cost"], cfg["w_quad"], cfg["k"], cfg["delta"])
    hazard_mean = float(np.mean(gate_hazard(gain, cfg["cost"], cfg["k"])))
    eta0_mean = float(np.mean(problem.eta0))
    optimum = lbfgsb_optimum(problem) if cfg["gap"] else math.nan

    x = problem.eta0.copy()
    energies = [problem.energy(x)]
    steps, elapsed = 0, 0.0
    for chunk in range(1, max_chunks + 1):
        r = relax(problem, x, RelaxConfig(method="accelerated", max_steps=chunk_steps, tol=float(cfg["tol"])))
        x = r.eta
        energies.extend(r.trace.energy[1:])
        steps += r.steps
        elapsed += r.wall_time_s
        done = r.converged or r.steps == 0 or r.reason == "stalled"
        yield {
            "delta_f": energies[-1] - energies[0],
            "final_energy": energies[-1],
            "initial_energy": energies[0],
            "delta_f90": delta_f90(energies),
            "steps": steps,
            "chunks": chunk,
            "converged": bool(r.converged),
            "mean_eta": float(np.mean(x)),
            "frac_open": float(np.mean(x > OPEN)),
            "eta0_mean": eta0_mean,
            "hazard_mean": hazard_mean,
            "lbfgs_energy": optimum,
            "gap": energies[-1] - optimum,
            "relax_s": elapsed,
        }
        if done:
            return


def coupling_trial(config: dict) -> None:
    """Tune function trainable: one `tune.report` per relaxation chunk."""
    from ray import tune as ray_tune

    for metrics in trial_reports(config):
        ray_tune.report(metrics)


# -- the sweep -------------------------------------------------------------------------------------


def grid_values(lo: float, hi: float, points: int) -> list[float]:
    return [float(v) for v in np.linspace(lo, hi, points)]


def param_space(args: argparse.Namespace) -> dict:
    from ray import tune as ray_tune

    fixed = {
        "n": args.n,
        "w_quad": args.w_quad,
        "k": args.k,
        "delta": args.delta,
        "chunk_steps": args.chunk_steps,
        "max_chunks": args.max_chunks,
        "tol": args.tol,
        "gap": not args.no_gap,
    }
    if args.search == "grid":
        return {
            **fixed,
            "w_gate": ray_tune.grid_search(grid_values(*args.w_gate_range, args.w_gate_points)),
            "cost": ray_tune.grid_search(grid_values(*args.cost_range, args.cost_points)),
        }
    return {**fixed, "w_gate": ray_tune.uniform(*args.w_gate_range), "cost": ray_tune.uniform(*args.cost_range)}


def run_sweep(args: argparse.Namespace):
    """Run the Tune experiment (Ray must be initialised). Returns (ResultGrid, experiment path)."""
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler

    name = f"coupling-{args.search}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    storage = os.path.abspath(args.storage)
    if args.search == "asha":
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=args.max_chunks, grace_period=1, reduction_factor=2)
        num_samples = args.samples
    else:
        scheduler, num_samples = None, 1
    tuner = ray_tune.Tuner(
        ray_tune.with_resources(coupling_trial, {"cpu": args.cpus_per_trial}),
        param_space=param_space(args),
        tune_config=ray_tune.TuneConfig(
            metric="final_energy",
            mode="min",
            scheduler=scheduler,
            num_samples=num_samples,
            max_concurrent_trials=args.max_concurrent,
            reuse_actors=True,  # the trainable holds no state between trials; skips an actor start per trial
        ),
        run_config=ray_tune.RunConfig(name=name, storage_path=storage, verbose=args.verbose),
    )
    results = tuner.fit()
    if results.errors:
        raise RuntimeError(f"{len(results.errors)} of {len(results)} trials failed; first error: {results.errors[0]!r}")
    return results, os.path.join(storage, name)


def results_table(result_grid) -> "pl.DataFrame":  # noqa: F821 - polars imported lazily
    """One row per trial (its last report), config and metric columns under clean names,
    sorted by (w_gate, cost)."""
    import polars as pl

    df = result_grid.get_dataframe()
    missing = [c for c in (*(f"config/{c}" for c in CONFIG_COLUMNS), *METRIC_COLUMNS) if c not in df.columns]
    if missing:
        raise RuntimeError(f"result grid: missing columns {missing}")
    cols = {"trial_id": "trial_id", **{f"config/{c}": c for c in CONFIG_COLUMNS}, **{m: m for m in METRIC_COLUMNS}}
    frame = pl.from_pandas(df[list(cols)].rename(columns=cols))
    return frame.with_columns(pl.col("n").cast(pl.Int64), pl.col("steps").cast(pl.Int64), pl.col("delta_f90").cast(pl.Int64), pl.col("chunks").cast(pl.Int64)).sort(
        ["w_gate", "cost"]
    )


def _edges(values: np.ndarray) -> np.ndarray:
    """Cell edges around sorted cell centres (half a step either side; +-0.5 for a single value)."""
    if values.size == 1:
        half = 0.5 * abs(values[0]) if values[0] != 0 else 0.5
        return np.array([values[0] - half, values[0] + half])
    mid = 0.5 * (values[1:] + values[:-1])
    return np.concatenate([[2 * values[0] - mid[0]], mid, [2 * values[-1] - mid[-1]]])


def plot_heatmaps(frame, path: str, title: str | None = None) -> str:
    """Two panels over (w_gate, cost): delta_f and hazard_mean. A full grid is drawn as a heatmap
    (values printed in the cells when it is small); scattered samples (ASHA) as coloured points."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    wg = frame["w_gate"].to_numpy()
    cost = frame["cost"].to_numpy()
    xs, ys = np.unique(wg), np.unique(cost)
    is_grid = xs.size * ys.size == frame.height and len(set(zip(wg.tolist(), cost.tolist()))) == frame.height

    fig = Figure(figsize=(11.0, 4.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2)
    panels = (
        ("delta_f", "ΔF = F_final − F_initial", "viridis"),
        ("hazard_mean", "mean gate hazard softplus(k (gain − cost))", "magma"),
    )
    for ax, (col, label, cmap) in zip(axes, panels):
        z = frame[col].to_numpy().astype(np.float64)
        if is_grid:
            grid = np.full((ys.size, xs.size), np.nan)
            grid[np.searchsorted(ys, cost), np.searchsorted(xs, wg)] = z
            mesh = ax.pcolormesh(_edges(xs), _edges(ys), grid, cmap=cmap, shading="flat")
            if grid.size <= 64:
                lo, hi = np.nanmin(grid), np.nanmax(grid)
                for (iy, ix), v in np.ndenumerate(grid):
                    light = hi > lo and (v - lo) / (hi - lo) < 0.5
                    ax.text(xs[ix], ys[iy], f"{v:.3g}", ha="center", va="center", fontsize=8, color="white" if light else "black")
            ax.set_xticks(xs)
            ax.set_yticks(ys)
        else:
            mesh = ax.scatter(wg, cost, c=z, cmap=cmap, s=60, edgecolors="k", linewidths=0.5)
        fig.colorbar(mesh, ax=ax, label=col)
        ax.set_xlabel("w_gate (gate-benefit weight)")
        ax.set_ylabel("cost (gate cost)")
        ax.set_title(label, fontsize=10)
    if title:
        fig.suptitle(title, fontsize=11)
    from emergence.energy.observability import save_figure

    return save_figure(fig, path)  # atomic: a reader never sees a half-written PNG


def format_table(frame) -> str:
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=4, tbl_width_chars=200, tbl_hide_dataframe_shape=True):
        return str(frame.select(TABLE_COLUMNS))


# -- CLI -------------------------------------------------------------------------------------------


def finite_number(text: str) -> float:
    """argparse type: a finite float (the sweeps' range bounds and fractions)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m tune.coupling",
        description="Ray Tune sweep over coupling weights and gate costs on the gated ring (Parquet + heatmap).",
        epilog=__doc__.split("\n\n", 2)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("--search", choices=SEARCHES, default="grid", help="grid: w_gate x cost grid; asha: random samples + ASHA (default grid)")
    ap.add_argument("--n", type=int, default=None, help="modules on the ring (>= 3; default 2000, 500 with --quick)")
    ap.add_argument("--quick", action="store_true", help="small run: 3 x 3 grid (6 ASHA samples), n = 500")
    ap.add_argument("--samples", type=int, default=None, help="ASHA: number of random samples (default 16, 6 with --quick)")
    ap.add_argument("--w-gate-points", type=int, default=None, help="grid: w_gate values (default 5, 3 with --quick)")
    ap.add_argument("--cost-points", type=int, default=None, help="grid: cost values (default 5, 3 with --quick)")
    ap.add_argument("--w-gate-range", type=finite_number, nargs=2, metavar=("LO", "HI"), default=list(W_GATE_RANGE), help="w_gate range (default %(default)s)")
    ap.add_argument("--cost-range", type=finite_number, nargs=2, metavar=("LO", "HI"), default=list(COST_RANGE), help="gate cost range (default %(default)s)")
    ap.add_argument("--w-quad", type=finite_number, default=1.0, help="scale of the ring couplings 0.6 / 0.3 (default 1.0)")
    ap.add_argument("--k", type=finite_number, default=K, help="gate steepness k (default 10)")
    ap.add_argument("--delta", type=finite_number, default=DELTA, help="gate-benefit delta (default 0.05)")
    ap.add_argument("--chunk-steps", type=int, default=DEFAULT_TRIAL["chunk_steps"], help="relaxation steps per tune.report (default %(default)s)")
    ap.add_argument("--max-chunks", type=int, default=DEFAULT_TRIAL["max_chunks"], help="most chunks per trial; ASHA's max_t (default %(default)s)")
    ap.add_argument("--tol", type=finite_number, default=DEFAULT_TRIAL["tol"], help="relaxation tolerance (default %(default)s)")
    ap.add_argument("--no-gap", action="store_true", help="skip the L-BFGS-B reference optimum (gap = NaN)")
    ap.add_argument("--cpus-per-trial", type=finite_number, default=0.5, help="Tune resources per trial (default 0.5)")
    ap.add_argument("--max-concurrent", type=int, default=2, help="max_concurrent_trials (default 2)")
    ap.add_argument("--out", default=runs_path("coupling"), help=f"folder for the Parquet table, heatmap PNG and summary JSON (default: coupling/ under {HELP})")
    ap.add_argument("--storage", default=runs_path("tune"), help=f"Tune storage_path (default: tune/ under {HELP}; each run gets a unique name)")
    ap.add_argument("--address", default=None, help="Ray cluster to connect to (default: RAY_ADDRESS, else start a local Ray)")
    ap.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0, help="Tune's console verbosity (default 0)")
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and validate; errors exit through argparse (status 2) with a message naming the option."""
    ap = build_parser()
    args = ap.parse_args(None if argv is None else [str(a) for a in argv])
    args.n = args.n if args.n is not None else (500 if args.quick else 2000)
    default_points = 3 if args.quick else 5
    args.w_gate_points = args.w_gate_points if args.w_gate_points is not None else default_points
    args.cost_points = args.cost_points if args.cost_points is not None else default_points
    args.samples = args.samples if args.samples is not None else (6 if args.quick else 16)

    if args.n < 3:
        ap.error(f"--n: the gated ring needs at least 3 modules, got {args.n}")
    for opt, v in (("--w-gate-points", args.w_gate_points), ("--cost-points", args.cost_points), ("--samples", args.samples)):
        if v < 1:
            ap.error(f"{opt}: must be >= 1, got {v}")
    for opt, (lo, hi), points in (("--w-gate-range", args.w_gate_range, args.w_gate_points), ("--cost-range", args.cost_range, args.cost_points)):
        if lo < 0:
            ap.error(f"{opt}: values must be >= 0, got LO = {lo}")
        if lo > hi:
            ap.error(f"{opt}: LO must be <= HI, got {lo} > {hi}")
        if lo == hi and (points > 1 or args.search == "asha"):
            ap.error(f"{opt}: LO == HI leaves nothing to sweep; use a wider range or 1 point")
    if args.w_quad < 0:
        ap.error(f"--w-quad: must be >= 0, got {args.w_quad}")
    if args.k <= 0:
        ap.error(f"--k: must be > 0, got {args.k}")
    if args.chunk_steps < 1:
        ap.error(f"--chunk-steps: must be >= 1, got {args.chunk_steps}")
    if args.max_chunks < 1:
        ap.error(f"--max-chunks: must be >= 1, got {args.max_chunks}")
    if args.tol < 0:
        ap.error(f"--tol: must be >= 0, got {args.tol}")
    if args.cpus_per_trial <= 0:
        ap.error(f"--cpus-per-trial: must be > 0 (Tune rejects 0 CPUs), got {args.cpus_per_trial}")
    if args.max_concurrent < 1:
        ap.error(f"--max-concurrent: must be >= 1, got {args.max_concurrent}")
    args.w_gate_range, args.cost_range = tuple(args.w_gate_range), tuple(args.cost_range)
    return args


def main(argv=None) -> dict:
    """Run the sweep; write Parquet, PNG and JSON under --out; print the paths and a table.

    Returns the summary: search, experiment path, output paths, trial count, best config (lowest
    final_energy) and its metrics."""
    args = parse_args(argv)

    import ray

    started = ensure_ray(args.address)
    try:
        result_grid, experiment = run_sweep(args)
    finally:
        if started:
            ray.shutdown()

    from emergence.energy.observability import write_json, write_parquet

    frame = results_table(result_grid)
    os.makedirs(args.out, exist_ok=True)
    stem = os.path.join(args.out, f"coupling_{args.search}")
    parquet = write_parquet(frame, stem + ".parquet")
    png = plot_heatmaps(
        frame,
        stem + ".png",
        title=f"coupling / gate sweep ({args.search}, n = {args.n}, w_quad = {args.w_quad:g}, {frame.height} trials)",
    )
    best = frame.sort("final_energy").row(0, named=True)
    summary = {
        "search": args.search,
        "n": args.n,
        "trials": frame.height,
        "experiment_path": experiment,
        "parquet": os.path.abspath(parquet),
        "png": os.path.abspath(png),
        "summary_json": os.path.abspath(stem + ".json"),
        "best_config": {k: best[k] for k in CONFIG_COLUMNS},
        "best_metrics": {k: best[k] for k in METRIC_COLUMNS},
    }
    write_json(summary, summary["summary_json"])

    print(format_table(frame))
    print(f"best (lowest final_energy): w_gate = {best['w_gate']:.4g}, cost = {best['cost']:.4g}, final_energy = {best['final_energy']:.6g}")
    print(f"parquet: {summary['parquet']}")
    print(f"heatmap: {summary['png']}")
    print(f"summary: {summary['summary_json']}")
    print(f"tune experiment: {experiment}")
    return summary


if __name__ == "__main__":
    # Run through the importable module, not __main__, so Ray pickles the trainable by reference.
    from tune.coupling import main as _main

    _main()
