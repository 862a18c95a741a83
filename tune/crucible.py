"""Crucible sweep: Ray Tune over PPO's learning rate, entropy bonus, KL penalty to the supervised
engine and the reward's partial-credit weight, each trial a `training.crucible` run.

    python -m tune.crucible --engine runs/base/supervised.pt --samples 8 --iterations 20 \\
        --json benchmarks/results/crucible-sweep.json     # from the supervised engine (docs/crucible.md)
    python -m tune.crucible --quick --out /tmp/tc          # 2 trials x 2 iterations on a few problems
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m tune.crucible --quick

One trial at a time on this machine (each is a PPO run holding the cores). Every trial reports its
iterations (reward, success rate, KL, entropy) to Tune, then scores its tuned engine on the
validation intents (`benchmarks/tasks/intents_val.jsonl`: for choices, never trained on): the
raw-draw pass@1 of `--samples-per-task` draws, the objective. Outputs under --out:
crucible_sweep.parquet (one row per trial: the knobs, the objective, the last iteration's figures,
trial seconds, the engine file), crucible_sweep.png (the objective against each knob) and
crucible_sweep.json (the summary, with the best config); with --json PATH, also the sweep as a
benchmark report (`figures`: the trials; `targets`: at most 8 trials, none over 10 min), from which
benchmarks/README.md renders its table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid

import numpy as np

from cluster.ray_session import ensure_ray
from emergence.paths import HELP, runs_path

METRIC, MODE = "val_raw_pass@1", "max"
# knob -> (training.crucible flag, default range, log scale)
KNOBS = {"lr": ("--lr", (3e-6, 3e-5), True), "entropy": ("--entropy", (0.0, 0.01), False),
         "kl_ref": ("--kl-ref", (0.01, 0.3), True), "partial_scale": (None, (0.6, 1.3), False)}


def val_raw_pass(engine_path: str, samples: int, limit: int | None = None) -> float:
    """Mean raw-draw pass@1 on the validation intents (the sampler's draws, each rounded to one program)."""
    import torch

    from benchmarks.crucible import VAL
    from benchmarks.synthesis import Scorer, engine_task
    from emergence.sandbox import open_executor
    from emergence.synthesis.engine import Engine
    from emergence.synthesis.evaluation import load_tasks

    torch.set_num_threads(1)
    tasks = load_tasks(VAL)[:limit]
    engine = Engine.load(engine_path)
    with open_executor() as ex:
        scorer = Scorer(ex)
        return float(np.mean([engine_task(engine, scorer, t, samples)["pass@1"] for t in tasks]))


def crucible_trial(config: dict, fixed: dict) -> None:
    from ray import tune

    from training import crucible

    t0 = time.time()
    argv = list(fixed["argv"]) + ["--name", f"trial-{tune.get_context().get_trial_id()}", "--storage", fixed["storage"]]
    for knob, (flag, _, _) in KNOBS.items():
        if flag:
            argv += [flag, repr(float(config[knob]))]
    base = {"partial_scale": float(config["partial_scale"])}
    argv += ["--reward", json.dumps(base)]
    last: dict = {}

    def report(row):
        last.update(row)
        # the objective is known only at the end; Tune wants it in every result
        tune.report({**{k: v for k, v in row.items() if isinstance(v, (int, float))}, METRIC: float("nan")})

    out = crucible.main(argv, report=report)
    score = val_raw_pass(out["engine_path"], fixed["samples_per_task"], fixed["limit"])
    tune.report({**{k: v for k, v in last.items() if isinstance(v, (int, float))}, METRIC: score,
                 "trial_s": time.time() - t0, "engine_path": out["engine_path"]})


def param_space(args) -> dict:
    from ray import tune

    space = {}
    for knob, (_, (lo, hi), log) in KNOBS.items():
        lo, hi = getattr(args, f"{knob}_range") or (lo, hi)
        space[knob] = tune.loguniform(lo, hi) if log and lo > 0 else tune.uniform(lo, hi)
    return space


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=4, help="trials (at most 8 on this machine)")
    ap.add_argument("--iterations", type=int, default=15, help="PPO iterations per trial")
    ap.add_argument("--programs", type=int, default=512, help="programs per iteration")
    ap.add_argument("--problems", help="problem file (default: the training sources)")
    ap.add_argument("--sources", nargs="+", default=["corpus", "written"], help="problem sources trained on")
    ap.add_argument("--engine", help="engine to start from (default: the shipped one)")
    ap.add_argument("--samples-per-task", type=int, default=16, help="draws per validation intent (the objective)")
    ap.add_argument("--quick", action="store_true", help="2 trials x 2 iterations of 128 programs, 20 intents")
    for knob, (_, (lo, hi), _) in KNOBS.items():
        ap.add_argument(f"--{knob.replace('_', '-')}-range", type=float, nargs=2, metavar=("LO", "HI"),
                        help=f"range of {knob} (default {lo:g} {hi:g})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=runs_path("tune-crucible"), help=f"outputs (default: tune-crucible/ under {HELP})")
    ap.add_argument("--json", help="also write the sweep as a benchmark report here")
    ap.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else a private local Ray)")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.iterations, args.programs = 2, 2, 128
    if not 1 <= args.samples <= 8:
        ap.error("--samples: between 1 and 8 trials")
    for knob in KNOBS:
        r = getattr(args, f"{knob}_range")
        if r and not (0 <= r[0] <= r[1]):
            ap.error(f"--{knob.replace('_', '-')}-range: need 0 <= LO <= HI")
    return args


def trial_table(result_grid) -> list[dict]:
    rows = []
    for r in result_grid:
        m = r.metrics or {}
        rows.append({"trial_id": m.get("trial_id"), **{k: r.config.get(k) for k in KNOBS},
                     # the last iteration's figures (named apart from the knobs "entropy" and "kl_ref")
                     METRIC: m.get(METRIC), "success": m.get("success"), "reward": m.get("reward"),
                     "last_kl": m.get("kl_ref"), "last_entropy": m.get("entropy"), "iterations": m.get("iteration"),
                     "trial_s": m.get("trial_s"), "engine_path": m.get("engine_path"),
                     "error": None if r.error is None else str(r.error).splitlines()[0][:300]})
    return rows


def best_trial(rows: list[dict]) -> dict | None:
    """The trial with the highest objective (None when no trial was scored)."""
    scored = [r for r in rows if r.get(METRIC) is not None]
    return max(scored, key=lambda r: r[METRIC]) if scored else None


def sweep_report(rows: list[dict], argv: list[str], path: str | None = None) -> dict:
    """The sweep in the benchmarks' report format: each trial's knobs and figures, the best, and
    the budget this machine allows (at most 8 trials, none over 10 minutes) as computed targets."""
    from benchmarks.common import target, write_report

    keep = (*KNOBS, METRIC, "success", "reward", "last_kl", "last_entropy", "iterations", "trial_s", "error")
    trials = [{k: r.get(k) for k in keep} for r in rows]
    figures = {"objective": METRIC, "trials": trials, "best": best_trial(trials)}
    longest = max((r["trial_s"] or float("nan") for r in trials), default=float("nan"))
    targets = {"trials": target(float(len(trials)), 8, "<="), "longest trial, s": target(float(longest), 600, "<=")}
    report = write_report(None, "crucible_sweep", figures, targets, [])
    report["command"] = "python -m tune.crucible " + " ".join(argv)
    if path:
        from emergence.energy.observability import write_json

        write_json(report, path)
    return report


def plot(rows: list[dict], path: str) -> str:
    from emergence.energy.observability import _new_figure, save_figure

    fig, axes = _new_figure(1, len(KNOBS), figsize=(4.0 * len(KNOBS), 3.6))
    ok = [r for r in rows if r.get(METRIC) is not None]
    for ax, knob in zip(np.atleast_1d(axes), KNOBS):
        ax.scatter([r[knob] for r in ok], [r[METRIC] for r in ok])
        if KNOBS[knob][2]:
            ax.set_xscale("log")
        ax.set(xlabel=knob, ylabel=METRIC if knob == "lr" else None)
        ax.grid(alpha=0.3)
    fig.suptitle("Crucible sweep: validation raw-draw pass@1 per trial")
    return save_figure(fig, path)


def main(argv=None) -> dict:
    args = parse_args(argv)
    import ray
    from ray import tune

    from emergence.energy.observability import write_json, write_parquet

    os.makedirs(args.out, exist_ok=True)
    started = ensure_ray(args.address, log_to_driver=False)
    try:
        fixed_argv = ["--iterations", str(args.iterations), "--programs", str(args.programs),
                      "--seed", str(args.seed), "--sources", *args.sources]
        if args.quick:
            fixed_argv += ["--num-envs", "64", "--minibatch", "64", "--corpus", "40"]
        for flag, value in (("--problems", args.problems), ("--engine", args.engine)):
            if value:
                fixed_argv += [flag, os.path.abspath(value)]
        fixed = {"argv": fixed_argv, "storage": os.path.join(os.path.abspath(args.out), "runs"),
                 "samples_per_task": args.samples_per_task, "limit": 20 if args.quick else None}
        name = f"crucible-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:4]}"
        from ray.tune.search.basic_variant import BasicVariantGenerator

        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(crucible_trial, fixed=fixed), {"cpu": 1}),
            param_space=param_space(args),
            # one trial at a time: each PPO run holds the cores
            tune_config=tune.TuneConfig(metric=METRIC, mode=MODE, num_samples=args.samples,
                                        search_alg=BasicVariantGenerator(random_state=args.seed, max_concurrent=1)),
            run_config=tune.RunConfig(name=name, storage_path=os.path.join(os.path.abspath(args.out), "tune"),
                                      verbose=0))
        t0 = time.time()
        grid = tuner.fit()
        rows = trial_table(grid)
        stem = os.path.join(args.out, "crucible_sweep")
        parquet = write_parquet(rows, stem + ".parquet")
        png = plot(rows, stem + ".png")
        best = best_trial(rows)
        summary = {"trials": len(rows), "failed": [r["trial_id"] for r in rows if r["error"]],
                   "best_config": {k: best[k] for k in KNOBS} if best else None,
                   "best_" + METRIC: best[METRIC] if best else None, "best_engine": best["engine_path"] if best else None,
                   "seconds": time.time() - t0, "parquet": parquet, "png": png}
        write_json(summary, stem + ".json")
        if args.json:
            sweep_report(rows, list(sys.argv[1:] if argv is None else argv), args.json)
        for r in rows:
            print("  ".join(f"{k} {r[k]:.3g}" if isinstance(r[k], float) else f"{k} {r[k]}"
                            for k in (*KNOBS, METRIC, "success", "trial_s")))
        print(f"best: {summary['best_config']} ({METRIC} {summary['best_' + METRIC]}); parquet: {parquet}; plot: {png}")
        return summary
    finally:
        if started:
            ray.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
