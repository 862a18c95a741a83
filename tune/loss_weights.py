"""Loss-weight sweep: Ray Tune + ASHA over the NVP loss weights and learning rate, each trial a JaxTrainer run.

    python -m tune.loss_weights --synthetic --quick --out /tmp/lw     # small atlas, 4 samples x 3 epochs
    python -m tune.loss_weights --atlas atlas.h5 --samples 16 --epochs 10
    python -m tune.loss_weights --atlas atlas.h5 --num-workers 2 --max-concurrent 2   # on a bigger cluster
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m tune.loss_weights --synthetic --quick

Swept (log-uniform, ranges settable): lambda_conservation (the loss's λ₁, `conservation`),
lambda_entropy (λ₂, `entropy_smooth`) and the learning rate. Everything else (model, batch size,
seed, data split) is the same for every trial, so the trials differ only in the three knobs.

Each trial is a small driver function holding {"cpu": 0.1}: it builds the trainer with
`training.nvp.make_trainer(..., callbacks=[TuneReportCallback()])` and calls `fit()` (from a
zero-CPU task, see `loss_weights_trial` for why). The JaxTrainer's workers take their own CPUs
(--num-workers x --cpus-per-worker), and the callback forwards rank 0's per-epoch report
(val_skill, val_mse, ...) to Tune, where ASHA (time attribute `epoch`,
max_t = --epochs, grace period --grace-period) stops trials whose validation skill
(1 - RMSE_model / RMSE_persistence; higher is better) falls behind at a rung. Each Train run keeps
one checkpoint, written at its last epoch, so trials that ASHA stops leave none. On 2 CPUs one
1-worker trial (1.1 CPUs) runs at a time: a second concurrent one would not deadlock, but its
workers would only wait for the first trial's CPUs.

--synthetic first writes a synthetic atlas (heat, advection, reaction; 12 sequences x 20 steps per
domain, 6 x 16 with --quick) into the experiment's folder.

Outputs under --out: loss_weights.parquet (one row per trial: the three weights, val_skill and
val_mse at the last epoch run, the best val_skill and its epoch, epochs run, whether ASHA stopped
it, trial seconds, its checkpoint), loss_weights_curves.parquet (one row per trial and epoch),
loss_weights.png (val_skill over λ₁ x λ₂, val_skill against the learning rate, learning curves)
and loss_weights.json (the summary `main` returns, with the best config: the highest val_skill at
the last epoch run, as Tune's `get_best_result(scope="last")`). Tune's experiment and the trials'
Train runs go under --storage (default runs/tune, see emergence.paths) with a unique name per run, so a rerun never
resumes or overwrites an earlier one.

Ray: when Ray is already initialised (tests, a caller's session) it is used as is; inside
`ray job submit` (RAY_ADDRESS set) or with --address, `ray.init` connects to that cluster;
otherwise `make run`'s head when it is up (cluster.ray_session), else a local Ray with 2 CPUs
and the dashboard (Tune's cleanup of Train v2 runs needs the
State API) is started and shut down again at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

import numpy as np

from cluster.ray_session import ensure_ray
from emergence.paths import HELP, runs_path

METRIC, MODE = "val_skill", "max"
TIME_ATTR = "epoch"  # the trainer's epoch counter: ASHA's rungs are epochs
TRIAL_CPU = 0.1  # the trial's driver function only waits on the trainer

# Swept knob (its name in Tune's config and the outputs) -> (make_trainer argument, default log-uniform range).
SPACE = {
    "lambda_conservation": ("conservation", (1e-3, 1.0)),
    "lambda_entropy": ("entropy_smooth", (1e-3, 1.0)),
    "lr": ("lr", (3e-4, 1e-2)),
}
SWEPT = tuple(SPACE)
QUICK = {"samples": 4, "epochs": 3, "sequences": 6, "t": 16}
DEFAULTS = {"samples": 8, "epochs": 6, "sequences": 12, "t": 20}

METRIC_COLUMNS = (
    "val_skill",
    "val_mse",
    "val_change_fidelity",
    "train_loss",
    "best_val_skill",
    "best_epoch",
    "epochs",
    "asha_stopped",
    "trial_s",
    "samples_per_s",
)
TABLE_COLUMNS = ("trial_id", *SWEPT, "val_skill", "best_val_skill", "val_mse", "epochs", "asha_stopped", "trial_s")
CURVE_COLUMNS = ("val_skill", "val_mse", "val_change_fidelity", "train_loss", "samples_per_s")


# -- the trial -------------------------------------------------------------------------------------


def _report_callback():
    """Forwards rank 0's per-epoch Train report (scalars only) to this trial's Tune session."""
    from ray.tune.integration.ray_train import TuneReportCallback

    return TuneReportCallback()


def fit_trial(config: dict, fixed: dict, callback, trial_id: str) -> None:
    """Build this trial's JaxTrainer and fit it (runs in a zero-CPU task, see loss_weights_trial)."""
    import ray.data

    from emergence.nvp.model import NVPConfig
    from training.nvp import make_trainer

    ray.data.DataContext.get_current().enable_progress_bars = False  # make_trainer materialises here
    trainer, _ = make_trainer(
        fixed["atlas"],
        fixed["domains"],
        config=NVPConfig.from_json(fixed["model"]),
        epochs=fixed["epochs"],
        batch_size=fixed["batch_size"],
        **{argument: float(config[key]) for key, (argument, _) in SPACE.items()},  # lr, conservation, entropy_smooth
        num_workers=fixed["num_workers"],
        cpus_per_worker=fixed["cpus_per_worker"],
        checkpoint_every=0,  # one checkpoint, at the last epoch: the sweep compares, it does not resume
        keep=1,
        max_failures=0,  # a failing configuration is a result, not something to retry
        seed=fixed["seed"],
        val_fraction=fixed["val_fraction"],
        name=f"trial-{trial_id}",  # unique per trial, under the experiment's own folder
        storage_path=fixed["train_storage"],
        callbacks=[callback],
    )
    result = trainer.fit()
    if result.error:
        raise result.error


def loss_weights_trial(config: dict, fixed: dict) -> None:
    """Tune function trainable: one JaxTrainer run, whose callback reports every epoch to Tune.

    The run is started from a nested zero-CPU task whose runtime env names the dashboard
    (RAY_API_SERVER_ADDRESS). When ASHA stops a trial, Tune ends this actor and the Train
    controller dies with it; Train v2's detached PlacementGroupCleaner (which inherits the
    controller's runtime env) must then free the workers' placement group. It finds the cluster
    through the State API, which without an address auto-detects: with a second Ray instance on
    the host it fails (or picks the other one) and the CPUs stay reserved, so later trials hang."""
    import ray
    from ray import tune as ray_tune

    callback = _report_callback()  # built here: it needs this trial's Tune session
    env = {"RAY_API_SERVER_ADDRESS": fixed["api_server"]} if fixed["api_server"] else {}
    run = ray.remote(num_cpus=0, max_retries=0, runtime_env={"env_vars": env})(fit_trial)
    ray.get(run.remote(config, fixed, callback, ray_tune.get_context().get_trial_id()))


# -- the sweep -------------------------------------------------------------------------------------


def param_space(args: argparse.Namespace) -> dict:
    from ray import tune as ray_tune

    return {key: ray_tune.loguniform(*getattr(args, f"{key}_range")) for key in SWEPT}


def _check_fits(args: argparse.Namespace, fixed_size: bool) -> None:
    """A trial that cannot fit would wait forever (Train retries the worker-group start without
    end): an error on a cluster of fixed size (the local one), a warning where it may autoscale.
    Concurrent trials beyond what fits only wait their turn: a warning."""
    import ray

    cpus = ray.cluster_resources().get("CPU", 0.0)
    need = TRIAL_CPU + args.num_workers * args.cpus_per_worker
    if need > cpus + 1e-9:
        msg = (f"one trial needs {need:g} CPUs ({TRIAL_CPU} for its driver + --num-workers {args.num_workers} "
               f"x --cpus-per-worker {args.cpus_per_worker:g}), the cluster has {cpus:g}")
        if fixed_size:
            raise ValueError(msg)
        print(f"warning: {msg} now; the sweep waits for the autoscaler", file=sys.stderr)
    elif args.max_concurrent * need > cpus + 1e-9:
        print(f"warning: --max-concurrent {args.max_concurrent} trials need {args.max_concurrent * need:g} CPUs, the "
              f"cluster has {cpus:g}: the rest wait for CPUs (Train retries their start every 60 s)", file=sys.stderr)


def _preflight(args: argparse.Namespace, config) -> None:
    """Check the atlas against the trial settings here, once: make_trainer repeats these checks
    in every trial, where a failure would become N failed trials instead of one clear error."""
    from training.nvp import plan_run

    plan_run(args.atlas, args.domains, config, args.batch_size, args.num_workers, args.val_fraction)


def _api_server() -> str | None:
    """This cluster's dashboard (State API) URL, or None when it has no dashboard."""
    from ray._private.worker import get_dashboard_url

    url = get_dashboard_url()
    if not url:
        print("warning: this Ray cluster has no dashboard; Train v2 under Tune needs its State API to free "
              "the resources of trials that ASHA stops, so later trials may wait forever", file=sys.stderr)
        return None
    return url if "://" in url else f"http://{url}"


def run_sweep(args: argparse.Namespace, config=None, fixed_size: bool = False):
    """Run the Tune experiment (Ray must be initialised). `config` is the NVPConfig of every trial
    (default NVPConfig(history=--history)); `fixed_size`: the cluster cannot grow (see
    _check_fits). Returns (ResultGrid, experiment path)."""
    from ray import tune as ray_tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator

    from emergence.nvp.model import NVPConfig

    config = config or NVPConfig(history=args.history)
    _preflight(args, config)
    _check_fits(args, fixed_size)
    name = args.name
    storage = os.path.abspath(args.storage)
    fixed = {
        # Absolute paths: Tune runs each trial in its own working directory.
        "atlas": os.path.abspath(args.atlas),
        "domains": args.domains,
        "model": config.to_json(),
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
        "cpus_per_worker": args.cpus_per_worker,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "train_storage": os.path.join(storage, name, "train"),
        "api_server": _api_server(),
    }
    # stop_last_trials=False: a trial that reaches max_t ends by itself, so its Train run shuts
    # down cleanly instead of being killed after its final report.
    scheduler = ASHAScheduler(time_attr=TIME_ATTR, max_t=args.epochs, grace_period=args.grace_period,
                              reduction_factor=args.reduction_factor, stop_last_trials=False)
    tuner = ray_tune.Tuner(
        ray_tune.with_resources(ray_tune.with_parameters(loss_weights_trial, fixed=fixed), {"cpu": TRIAL_CPU}),
        param_space=param_space(args),
        tune_config=ray_tune.TuneConfig(
            metric=METRIC,
            mode=MODE,
            scheduler=scheduler,
            # --seed fixes the sampled configs. The concurrency limit goes here: Tune ignores
            # max_concurrent_trials when it is handed a BasicVariantGenerator.
            search_alg=BasicVariantGenerator(random_state=args.seed, max_concurrent=args.max_concurrent),
            num_samples=args.samples,
        ),
        run_config=ray_tune.RunConfig(name=name, storage_path=storage, verbose=args.verbose),
    )
    return tuner.fit(), os.path.join(storage, name)


def _trial_rows(result, max_epochs: int) -> tuple[dict, list[dict]]:
    """(summary row, curve rows) of one finished or stopped trial."""
    history = result.metrics_dataframe
    if history is None or METRIC not in history.columns or history.empty:
        raise RuntimeError(f"trial {result.metrics.get('trial_id')}: reported no {METRIC}")
    history = history.sort_values(TIME_ATTR)
    last = history.iloc[-1]
    skill = history[METRIC].to_numpy(dtype=np.float64)
    best = int(np.nanargmax(skill)) if np.isfinite(skill).any() else len(skill) - 1
    trial_id = str(result.metrics.get("trial_id") or last["trial_id"])
    epochs = int(last[TIME_ATTR])
    row = {
        "trial_id": trial_id,
        **{key: float(result.config[key]) for key in SWEPT},
        **{key: float(last[key]) for key in ("val_skill", "val_mse", "val_change_fidelity", "train_loss", "samples_per_s")},
        "best_val_skill": float(skill[best]),
        "best_epoch": int(history[TIME_ATTR].iloc[best]),
        "epochs": epochs,
        "asha_stopped": epochs < max_epochs,
        "trial_s": float(last["time_total_s"]),
        # TuneReportCallback passes the Train checkpoint's path as a metric (trials ASHA stopped have none).
        "checkpoint": result.metrics.get("checkpoint_path") or None,
    }
    curve = [{"trial_id": trial_id, "epoch": int(r[TIME_ATTR]), **{k: float(r[k]) for k in CURVE_COLUMNS}}
             for _, r in history.iterrows()]
    return row, curve


def results_tables(result_grid, max_epochs: int):
    """(trials, curves, failed): one row per trial that reported, sorted by val_skill (best
    first, NaN last); one row per trial and epoch; [(trial_id, error)] of trials that raised."""
    import polars as pl

    rows, curves, failed = [], [], []
    for result in result_grid:
        if result.error is not None:
            failed.append((str(result.metrics.get("trial_id", "?") if result.metrics else "?"), repr(result.error)))
            continue
        row, curve = _trial_rows(result, max_epochs)
        rows.append(row)
        curves.extend(curve)
    if not rows:
        raise RuntimeError(f"all {len(failed)} trials failed; first error: {failed[0][1] if failed else 'none'}")
    trials = pl.DataFrame(rows, schema_overrides={"checkpoint": pl.Utf8}).sort(
        pl.col("val_skill").fill_nan(None), descending=True, nulls_last=True)
    return trials, pl.DataFrame(curves), failed


def best_row(trials) -> dict:
    """The trial with the highest val_skill at its last epoch (Tune's scope="last"), NaNs skipped."""
    import polars as pl

    ok = trials.filter(pl.col("val_skill").is_finite())
    if ok.height == 0:
        raise RuntimeError("no trial has a finite val_skill")
    return ok.sort("val_skill", descending=True).row(0, named=True)


def _skill_window(values: np.ndarray) -> tuple[float, float]:
    """Colour / y range for val_skill. A diverged trial (skill far below 0, i.e. worse than
    persistence) would squash every other point into one colour, so when some trials beat
    persistence the range starts just below the worst of those, and lower values are clipped."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    hi = float(finite.max())
    good = finite[finite >= 0]
    lo = float(finite.min()) if good.size == 0 or good.size == finite.size else float(good.min())
    if hi - lo < 1e-6:
        return lo - 0.05, hi + 0.05
    return (lo if lo == finite.min() else lo - 0.1 * (hi - lo)), hi


def plot_sweep(trials, curves, path: str, title: str | None = None, ranges: dict | None = None) -> str:
    """Three panels: val_skill over (λ₁, λ₂) as coloured points (log axes), val_skill against the
    learning rate, and each trial's learning curve (ASHA-stopped ones dashed). `ranges` (swept
    key -> (lo, hi)) sets the axes to the search space. Diverged trials are clipped (see
    _skill_window) and counted in the panel titles."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter

    import polars as pl

    fig = Figure(figsize=(15.0, 4.6), constrained_layout=True)
    FigureCanvasAgg(fig)
    ax_w, ax_lr, ax_c = fig.subplots(1, 3)
    skill = trials["val_skill"].to_numpy().astype(np.float64)
    vmin, vmax = _skill_window(skill)
    clipped = int(np.sum(skill < vmin))
    shown = np.maximum(skill, vmin)  # clipped points sit on the lower edge
    note = f" ({clipped} below {vmin:.2f}, clipped)" if clipped else ""
    stopped = trials["asha_stopped"].to_numpy()
    style = {"cmap": "viridis", "vmin": vmin, "vmax": vmax, "s": 70, "edgecolors": "k", "linewidths": 0.5}
    for mask, marker, label in ((~stopped, "o", "ran all epochs"), (stopped, "X", "stopped by ASHA")):
        if mask.any():
            points = ax_w.scatter(trials["lambda_conservation"].to_numpy()[mask], trials["lambda_entropy"].to_numpy()[mask],
                                  c=shown[mask], marker=marker, label=label, **style)
            ax_lr.scatter(trials["lr"].to_numpy()[mask], shown[mask], c=shown[mask], marker=marker, label=label, **style)
    fig.colorbar(points, ax=ax_w, label="val_skill (last epoch)", extend="min" if clipped else "neither")
    ax_w.set(xscale="log", yscale="log", xlabel="λ₁ conservation", ylabel="λ₂ entropy smoothness",
             title="val_skill over the loss weights" + note)
    margin = 0.05 * (vmax - vmin)
    ax_lr.set(xscale="log", xlabel="learning rate", ylabel="val_skill (last epoch)", title="val_skill against lr" + note,
              ylim=(vmin - margin, vmax + margin))
    if ranges:  # pad the search box by 5% (in log space) so points on its edge stay visible
        pad = lambda lo, hi: (lo / (hi / lo) ** 0.05, hi * (hi / lo) ** 0.05)  # noqa: E731
        ax_w.set(xlim=pad(*ranges["lambda_conservation"]), ylim=pad(*ranges["lambda_entropy"]))
        ax_lr.set(xlim=pad(*ranges["lr"]))
    for ax in (ax_w, ax_lr):
        ax.xaxis.set_minor_formatter(NullFormatter())  # log minor labels overlap on narrow ranges
        ax.yaxis.set_minor_formatter(NullFormatter())
        ax.legend(fontsize=8)
    cmin, cmax = _skill_window(curves["val_skill"].to_numpy().astype(np.float64))  # every epoch, not only the last
    cmargin = 0.05 * (cmax - cmin)
    for trial_id, lr, was_stopped in trials.select("trial_id", "lr", "asha_stopped").iter_rows():
        c = curves.filter(pl.col("trial_id") == trial_id).sort("epoch")
        ax_c.plot(c["epoch"], np.maximum(c["val_skill"].to_numpy(), cmin), "--" if was_stopped else "-", marker="o", ms=3,
                  label=f"{trial_id} (lr {lr:.1e})")
    low = int(np.sum(curves["val_skill"].to_numpy() < cmin))
    ax_c.set(xlabel="epoch", ylabel="val_skill", title="learning curves (dashed: stopped by ASHA)" + (
             f"\n{low} point(s) below {cmin:.2f} clipped" if low else ""),
             ylim=(cmin - cmargin, cmax + cmargin))
    ax_c.xaxis.get_major_locator().set_params(integer=True)
    if trials.height <= 12:
        ax_c.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=11)
    from emergence.energy.observability import save_figure

    return save_figure(fig, path, dpi=100)  # atomic: a reader never sees a half-written PNG


def format_table(trials) -> str:
    import polars as pl

    with pl.Config(tbl_rows=-1, tbl_cols=-1, float_precision=4, tbl_width_chars=200, tbl_hide_dataframe_shape=True,
                   tbl_hide_column_data_types=True):
        return str(trials.select(TABLE_COLUMNS))


# -- CLI -------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from training.nvp import DEFAULTS as TRAIN
    from tune.coupling import finite_number

    ap = argparse.ArgumentParser(
        prog="python -m tune.loss_weights",
        description="Ray Tune + ASHA sweep over the NVP loss weights (λ₁ conservation, λ₂ entropy smoothness) "
                    "and the learning rate; each trial a JaxTrainer run (Parquet + plot).",
        epilog=__doc__.split("\n\n", 2)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--atlas", help="HDF5 atlas to train on")
    src.add_argument("--synthetic", action="store_true", help="generate a synthetic atlas (heat, advection, reaction) first")
    ap.add_argument("--domains", nargs="+", help="atlas groups to train on (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"small run: {QUICK['samples']} samples x {QUICK['epochs']} epochs "
                                                         f"(a {QUICK['sequences']} x {QUICK['t']}-step synthetic atlas)")
    ap.add_argument("--samples", type=int, help=f"trials (default {DEFAULTS['samples']}, {QUICK['samples']} with --quick)")
    ap.add_argument("--epochs", type=int, help=f"epochs per trial, ASHA's max_t (default {DEFAULTS['epochs']}, "
                                               f"{QUICK['epochs']} with --quick)")
    ap.add_argument("--grace-period", type=int, default=1, help="ASHA: epochs before a trial can be stopped (default 1)")
    ap.add_argument("--reduction-factor", type=int, default=2, help="ASHA reduction factor (default 2)")
    for key, (_, (lo, hi)) in SPACE.items():
        ap.add_argument(f"--{key.replace('_', '-')}-range", type=finite_number, nargs=2, metavar=("LO", "HI"), default=[lo, hi],
                        help=f"log-uniform range of {key} (default {lo:g} {hi:g})")
    ap.add_argument("--batch-size", type=int, default=TRAIN["batch_size"], help="global batch, split across workers (default %(default)s)")
    ap.add_argument("--history", type=int, default=3, help="fields the model reads (default 3)")
    ap.add_argument("--val-fraction", type=finite_number, default=0.2, help="sequences per domain held out for val_skill (default 0.2)")
    ap.add_argument("--num-workers", type=int, default=1, help="JaxTrainer workers per trial (default 1)")
    ap.add_argument("--cpus-per-worker", type=finite_number, default=1.0, help="CPUs per JaxTrainer worker (default 1)")
    ap.add_argument("--max-concurrent", type=int, default=1,
                    help="trials at once (default 1: a second 1-worker trial does not fit on 2 CPUs)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the sampled configs, the model init and the data (default 0)")
    ap.add_argument("--name", help="Tune experiment name (default: unique per run; an existing name is an error)")
    ap.add_argument("--out", default=runs_path("loss_weights"), help=f"folder for the Parquet tables, plot and summary JSON (default: loss_weights/ under {HELP})")
    ap.add_argument("--storage", default=runs_path("tune"), help=f"Tune storage_path (default: tune/ under {HELP}; each run gets a unique name)")
    ap.add_argument("--address", default=None, help="Ray cluster to connect to (default: RAY_ADDRESS, else start a local Ray)")
    ap.add_argument("--verbose", type=int, choices=(0, 1, 2), default=0,
                    help="Tune's console verbosity; >= 1 also streams the trials' worker logs (default 0)")
    return ap


def parse_args(argv=None) -> argparse.Namespace:
    """Parse and validate; errors exit through argparse (status 2) with a message naming the option."""
    ap = build_parser()
    args = ap.parse_args(None if argv is None else [str(a) for a in argv])
    preset = QUICK if args.quick else DEFAULTS
    args.samples = preset["samples"] if args.samples is None else args.samples
    args.epochs = preset["epochs"] if args.epochs is None else args.epochs
    args.sequences, args.t = preset["sequences"], preset["t"]

    for opt, value, low in (("--samples", args.samples, 1), ("--epochs", args.epochs, 1), ("--grace-period", args.grace_period, 1),
                            ("--reduction-factor", args.reduction_factor, 2), ("--batch-size", args.batch_size, 1),
                            ("--history", args.history, 1), ("--num-workers", args.num_workers, 1),
                            ("--max-concurrent", args.max_concurrent, 1)):
        if value < low:
            ap.error(f"{opt}: must be >= {low}, got {value}")
    if args.grace_period > args.epochs:
        ap.error(f"--grace-period: must be <= --epochs ({args.epochs}), got {args.grace_period}")
    if args.batch_size % args.num_workers:
        ap.error(f"--batch-size: {args.batch_size} must be divisible by --num-workers ({args.num_workers})")
    if args.cpus_per_worker <= 0:
        ap.error(f"--cpus-per-worker: must be > 0, got {args.cpus_per_worker}")
    if not 0 < args.val_fraction < 1:
        ap.error(f"--val-fraction: must be in (0, 1), got {args.val_fraction}")
    for key in SWEPT:
        opt, (lo, hi) = f"--{key.replace('_', '-')}-range", getattr(args, f"{key}_range")
        if lo <= 0:
            ap.error(f"{opt}: a log-uniform range needs LO > 0, got {lo}")
        if lo >= hi:
            ap.error(f"{opt}: LO must be < HI, got {lo} >= {hi}")
        setattr(args, f"{key}_range", (lo, hi))
    if args.atlas is not None and not os.path.isfile(args.atlas):
        ap.error(f"--atlas: no such file: {args.atlas}")
    if args.name and os.path.exists(os.path.join(args.storage, args.name)):
        ap.error(f"--name: {os.path.join(args.storage, args.name)} exists; pick a new name (a sweep never resumes)")
    args.name = args.name or f"loss-weights-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}"
    return args


def _synthetic_atlas(args: argparse.Namespace) -> str:
    from emergence.nvp.synthetic import _bar, export_atlas

    folder = os.path.join(args.storage, args.name)  # the experiment's own folder: a run never shares it
    os.makedirs(folder, exist_ok=True)
    return export_atlas(os.path.join(folder, "synthetic_atlas.h5"), n=args.sequences, t=args.t, seed=args.seed, progress=_bar)


def main(argv=None, *, config=None) -> dict:
    """Run the sweep; write Parquet, PNG and JSON under --out; print a table and the best config.

    `config` (an NVPConfig, e.g. a tiny model in tests) overrides the default model. Returns the
    summary: experiment path, output paths, trial counts, the best config and its metrics."""
    args = parse_args(argv)
    if args.synthetic:
        args.atlas = _synthetic_atlas(args)

    # The workers' logs (every Train report, Ray Data plans) drown the table; --verbose 1 shows them.
    started = ensure_ray(args.address, dashboard=True, log_to_driver=args.verbose > 0)
    try:
        try:
            # A cluster named by address (job submit, KubeRay) may autoscale; a local Ray cannot.
            fixed_size = not (args.address or os.environ.get("RAY_ADDRESS"))
            result_grid, experiment = run_sweep(args, config, fixed_size=fixed_size)
        except ValueError as exc:  # bad atlas, too few windows for the batch, trial too big for the cluster
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    finally:
        if started:
            import ray

            ray.shutdown()

    from emergence.energy.observability import write_json, write_parquet

    trials, curves, failed = results_tables(result_grid, args.epochs)
    for trial_id, error in failed:
        print(f"warning: trial {trial_id} failed: {error}", file=sys.stderr)
    best = best_row(trials)
    stem = os.path.join(args.out, "loss_weights")
    parquet = write_parquet(trials, stem + ".parquet")
    curves_parquet = write_parquet(curves, stem + "_curves.parquet")
    png = plot_sweep(trials, curves, stem + ".png", title=f"NVP loss-weight sweep (ASHA on {METRIC}, {trials.height} trials, "
                                                          f"≤ {args.epochs} epochs, {os.path.basename(args.atlas)})",
                     ranges={key: getattr(args, f"{key}_range") for key in SWEPT})
    summary = {
        "metric": METRIC,
        "mode": MODE,
        "atlas": os.path.abspath(args.atlas),
        "epochs": args.epochs,
        "trials": trials.height,
        "asha_stopped": int(trials["asha_stopped"].sum()),
        "failed": [{"trial_id": t, "error": e} for t, e in failed],
        "experiment_path": experiment,
        "parquet": os.path.abspath(parquet),
        "curves_parquet": os.path.abspath(curves_parquet),
        "png": os.path.abspath(png),
        "summary_json": os.path.abspath(stem + ".json"),
        "best_trial_id": best["trial_id"],
        "best_config": {key: best[key] for key in SWEPT},
        "best_metrics": {key: best[key] for key in METRIC_COLUMNS},
        "best_checkpoint": best["checkpoint"],
    }
    write_json(summary, summary["summary_json"])

    print(format_table(trials))
    print(f"best ({METRIC} at the last epoch run): lambda_conservation = {best['lambda_conservation']:.4g}, "
          f"lambda_entropy = {best['lambda_entropy']:.4g}, lr = {best['lr']:.4g}  ->  {METRIC} = {best['val_skill']:.4f} "
          f"after {best['epochs']} epoch(s) (trial {best['trial_id']})")
    print(f"parquet: {summary['parquet']}")
    print(f"curves: {summary['curves_parquet']}")
    print(f"plot: {summary['png']}")
    print(f"summary: {summary['summary_json']}")
    print(f"tune experiment: {experiment}")
    return summary


if __name__ == "__main__":
    # Run through the importable module, not __main__, so Ray pickles the trainable by reference.
    from tune.loss_weights import main as _main

    _main()
