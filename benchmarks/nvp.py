"""NVP benchmark: a trained model against persistence and linear extrapolation, in- and out-of-domain.

1. Train (in this process, `emergence.nvp.train.fit`) on every synthetic domain but the held-out
   one -- or load `--checkpoint PATH` and skip training.
2. Evaluate on fresh sequences (new seeds) of the training domains and of the held-out domain (the
   model gets the "unknown" domain embedding there), or on any atlas: `--eval-atlas PATH [--domain NAME]`.
   One-step scores use the first TRAIN_FRAMES frames (the time range trained on); rollouts run on.
   Every metric for the raw model, for the model after thermodynamic projection
   (non-negativity + second law), persistence and linear extrapolation; rollout error after 10 and
   50 autoregressive steps.
3. Latency, batch 1, one thread (a subprocess with XLA's single-thread flags), at 64^2, 128^2 and
   256^2, next to one explicit finite-difference step of the heat equation (numpy) and the full
   FD advance over one dt (as many stable substeps as the synthetic generator takes).
4. Training throughput (samples/s) with 1 and 2 Ray Train workers (`training.nvp`), unless --no-ray.

    python -m benchmarks.nvp [--quick] [--json PATH] [--held-out heat] [--checkpoint DIR]
                             [--eval-atlas PATH [--domain NAME]] [--no-ray]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np

from benchmarks.common import print_targets, target, write_report
from emergence.models import ModelFileError, check, digest

SIZES = (64, 128, 256)
TRAIN_FRAMES = 20  # frames per training sequence; one-step scores use the same time range of fresh sequences
FEW_SHOT = 2  # held-out sequences used to refit the unknown domain's std scale (the figure beside the target)
LATENCY_FLAGS = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


# ----------------------------------------------------------------------------- latency (subprocess)


def _fd_heat_step(e, kx, ky):
    fx = -kx * (np.roll(e, -1, axis=-1) - e)
    fy = -ky * (np.roll(e, -1, axis=-2) - e)
    return e - 0.1 * (fx - np.roll(fx, 1, axis=-1) + fy - np.roll(fy, 1, axis=-2))


def _median_ms(fn, repeats: int) -> float:
    fn()
    fn()  # warm-up (compilation, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times))


def latency_main(checkpoint: str, repeats: int) -> dict:
    """Runs in a subprocess whose XLA_FLAGS pin JAX to one thread."""
    from emergence.nvp.synthetic import DOMAINS, generate
    from emergence.nvp.train import NVPModel

    model = NVPModel.load(checkpoint)
    out = {}
    for s in SIZES:
        e = generate("heat", 1, model.config.history + 1, shape=(s, s), seed=3)[:, 1:]
        window = e[:, : model.config.history]
        model_ms = _median_ms(lambda: model.predict(window, "heat"), repeats)
        f = e[0, -1].astype(np.float32)
        k = np.full_like(f, 0.5)
        fd_ms = _median_ms(lambda: _fd_heat_step(f, k, k), repeats)
        # the generator's stable substep for heat is dx^2 / (4 max kappa) with kappa up to ~1.5
        substeps = math.ceil(DOMAINS["heat"].default_dt / (0.9 / (4 * 1.5)))
        out[str(s)] = {"model_ms": model_ms, "fd_step_ms": fd_ms, "fd_substeps_per_dt": substeps,
                       "fd_advance_dt_ms": fd_ms * substeps}
    return out


def measure_latency(checkpoint: str, repeats: int) -> dict:
    env = {**os.environ, "XLA_FLAGS": LATENCY_FLAGS, "JAX_PLATFORMS": "cpu", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "benchmarks.nvp", "--latency-only", checkpoint, "--repeats", str(repeats)],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"latency subprocess failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- training throughput


def measure_throughput(atlas_path: str, domains: list[str], epochs: int, batch_size: int, storage: str) -> dict:
    """samples/s of the Ray Train job with 1 and 2 CPU workers on the same data (steady-state
    epochs only: the first epoch includes compilation)."""
    import ray

    from cluster.ray_session import ensure_ray
    from training import nvp as job

    started = ensure_ray(dashboard=True)
    out = {}
    try:
        for workers in (1, 2):
            res = job.run(atlas_path, domains, epochs=epochs, batch_size=batch_size, num_workers=workers,
                          name=f"bench-throughput-{workers}w", storage_path=storage, checkpoint_every=0)
            curve = res["curve"]
            steady = [r["samples_per_s"] for r in curve[1:]] or [curve[-1]["samples_per_s"]]
            out[str(workers)] = {"samples_per_s": float(np.median(steady)), "epochs": len(curve),
                                 "replicas_in_sync": all(r["replicas_in_sync"] for r in curve)}
    finally:
        if started:
            ray.shutdown()
    out["speedup_2_over_1"] = out["2"]["samples_per_s"] / out["1"]["samples_per_s"]
    return out


# ----------------------------------------------------------------------------- main


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smaller data and fewer epochs (a few minutes on 2 cores)")
    ap.add_argument("--json", help="write the JSON report here")
    ap.add_argument("--held-out", help="synthetic domain kept out of training (default heat; with --checkpoint "
                                       "the held-out domains are those the model was not trained on)")
    ap.add_argument("--checkpoint", help="evaluate this saved model instead of training one (the shipped one: "
                                         "emergence/models/nvp)")
    ap.add_argument("--save-model", help="where to save the model trained here (default runs/nvp/bench)")
    ap.add_argument("--eval-atlas", help="also (or only, with --checkpoint) evaluate on this atlas file")
    ap.add_argument("--domain", help="with --eval-atlas: the group to score (default: all)")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--sequences", type=int, help="training sequences per domain")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-ray", action="store_true", help="skip the Ray Train throughput measurement")
    ap.add_argument("--latency-only", metavar="CHECKPOINT", help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=30, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.latency_only:
        print(json.dumps(latency_main(args.latency_only, args.repeats)))
        return {}

    from emergence.nvp.atlas import Domain, load_atlas
    from emergence.nvp.evaluate import evaluate_domain, table
    from emergence.nvp.synthetic import DOMAINS, generate
    from emergence.nvp.thermo import thermo_compile
    from emergence.nvp.train import NVPModel, fit

    if args.checkpoint and args.held_out:
        ap.error("--held-out chooses what training leaves out; with --checkpoint the held-out domains are "
                 "those the model was not trained on")
    args.held_out = args.held_out or "heat"
    if args.held_out not in DOMAINS:
        ap.error(f"--held-out must be one of {sorted(DOMAINS)}")
    train_names = [d for d in sorted(DOMAINS) if d != args.held_out]
    epochs = args.epochs or (6 if args.quick else 16)
    n_seq = args.sequences or (10 if args.quick else 24)
    n_eval = 4 if args.quick else 8
    eval_steps = 30 if args.quick else 60  # 60 frames: room for a 50-step rollout
    figures: dict = {"held_out": args.held_out, "train_domains": train_names}

    if args.checkpoint:
        try:
            check(args.checkpoint)  # a shipped model must match its card
            model = NVPModel.load(args.checkpoint)
        except (ModelFileError, FileNotFoundError) as exc:
            ap.error(str(exc))
        checkpoint = args.checkpoint
        # a loaded model's held-out domains are those it was not trained on (none for the shipped one)
        trained = sorted(model.meta.get("trained_on") or model.config.domains)
        held = [d for d in sorted(DOMAINS) if d not in trained]
        args.held_out = held[0] if held else None
        train_names = [d for d in trained if d in DOMAINS]  # the throughput run trains on the same
        figures.update(held_out=args.held_out, train_domains=trained)
        figures["training"] = {"checkpoint": checkpoint, "sha256": digest(checkpoint), "meta": model.meta}
    else:
        train = {d: Domain(d, generate(d, n_seq, TRAIN_FRAMES, (64, 64), seed=args.seed + 10 + k), DOMAINS[d].default_dt, 1.0)
                 for k, d in enumerate(train_names)}
        t0 = time.perf_counter()
        model, history = fit(train, epochs=epochs, batch_size=16, seed=args.seed,
                             progress=lambda e, n, r: print(f"epoch {e}/{n} val_mse {r['val_mse']:.4f} "
                                                            f"({r['samples_per_s']:.0f} samples/s)", flush=True))
        checkpoint = model.save(args.save_model or "runs/nvp/bench")
        figures["training"] = {"epochs": epochs, "sequences_per_domain": n_seq, "seconds": time.perf_counter() - t0,
                               "final_val_mse": history[-1]["val_mse"], "std_scale": model.std_scale.tolist(),
                               "checkpoint": checkpoint}

    limits = thermo_compile(second_law=True, mode="project")
    results = []
    if not (args.checkpoint and args.eval_atlas):
        for k, d in enumerate(sorted(DOMAINS)):  # fresh seeds: never the training sequences
            dom = Domain(d, generate(d, n_eval, eval_steps, (64, 64), seed=args.seed + 1000 + k), DOMAINS[d].default_dt, 1.0)
            results.append(evaluate_domain(model, dom, known=(d != args.held_out), limits=limits,
                                           one_step_frames=TRAIN_FRAMES))
            if d == args.held_out:
                figures["held_out_few_shot"] = few_shot(model, dom)
    if args.eval_atlas:
        atlas = load_atlas(args.eval_atlas, [args.domain] if args.domain else None)
        for name, dom in atlas.items():
            r = evaluate_domain(model, dom, known=name in model.config.domains and name != args.held_out, limits=limits)
            r["source"] = args.eval_atlas
            results.append(r)
    print(table(results))
    if "held_out_few_shot" in figures:
        fs = figures["held_out_few_shot"]
        print(f"held-out {args.held_out}: 95% coverage {fs['coverage95']:.4f} with the std scale refitted on "
              f"{fs['calibration_sequences']} of its sequences (scored on the other {fs['scored_sequences']})")
    figures["evaluation"] = results

    figures["latency_ms"] = measure_latency(checkpoint, 10 if args.quick else 30)
    for s, row in figures["latency_ms"].items():
        print(f"latency {s}x{s}: model {row['model_ms']:.2f} ms, one FD step {row['fd_step_ms']:.3f} ms, "
              f"FD advance of dt ({row['fd_substeps_per_dt']} substeps) {row['fd_advance_dt_ms']:.3f} ms")

    if not args.no_ray:
        import tempfile

        from emergence.nvp.synthetic import export_atlas

        with tempfile.TemporaryDirectory() as tmp:
            path = export_atlas(os.path.join(tmp, "train.h5"), train_names, n=6 if args.quick else 12, t=20, seed=args.seed)
            figures["throughput"] = measure_throughput(path, train_names, epochs=3 if args.quick else 4, batch_size=16,
                                                       storage=os.path.join(tmp, "train"))
        print("training throughput (samples/s):", {k: v for k, v in figures["throughput"].items()})

    targets = targets_from(results, figures["latency_ms"], args.held_out)
    report = write_report(args.json, "nvp", figures, targets, sys.argv[1:] if argv is None else list(argv))
    print_targets(targets)
    return report


def few_shot(model, dom) -> dict:
    """The held-out domain's coverage after refitting only the unknown id's std scale on its first
    FEW_SHOT sequences, scored on the others (a figure beside the zero-shot target, not a target)."""
    from emergence.nvp.atlas import Domain
    from emergence.nvp.evaluate import few_shot_calibrated, one_step

    fs, rest = few_shot_calibrated(model, dom, FEW_SHOT, known=False)
    head = Domain(rest.name, rest.energy[:, :TRAIN_FRAMES], rest.dt, rest.dx)
    m = one_step(fs, head, known=False)["model"]
    return {"calibration_sequences": FEW_SHOT, "scored_sequences": int(rest.energy.shape[0]),
            "std_scale_unknown": float(fs.std_scale[0]), "zero_shot_std_scale_unknown": float(model.std_scale[0]),
            "coverage95": m["coverage95"], "skill": m["skill"]}


def targets_from(results: list[dict], latency: dict, held_out: str) -> dict:
    synth = [r for r in results if "source" not in r]
    known = [r["one_step"]["model"] for r in synth if r["known"]]
    held = [r["one_step"]["model"] for r in synth if not r["known"]]
    every = known + held
    t = {}
    if held:
        t[f"held-out ({held_out}) skill"] = target(held[0]["skill"], 0.7, ">=")
        t[f"held-out ({held_out}) change-field fidelity"] = target(held[0]["change_fidelity"], 0.8, ">=")
    if known:
        t["in-domain change-field fidelity (worst domain)"] = target(min(m["change_fidelity"] for m in known), 0.9, ">=")
    if every:
        t["gradient alignment (worst domain)"] = target(min(m["gradient_alignment"] for m in every), 0.95, ">=")
        t["entropy violations, raw model (worst domain)"] = target(max(m["entropy_violation_rate"] for m in every), 0.01, "<")
    if known:
        t["in-domain 95% coverage >= 0.90 (worst domain)"] = target(min(m["coverage95"] for m in known), 0.90, ">=")
        t["in-domain 95% coverage <= 0.98 (worst domain)"] = target(max(m["coverage95"] for m in known), 0.98, "<=")
    if held:  # zero-shot: the std scale of the unknown embedding, fitted on the training domains only
        t[f"held-out ({held_out}) 95% coverage >= 0.90"] = target(held[0]["coverage95"], 0.90, ">=")
        t[f"held-out ({held_out}) 95% coverage <= 0.98"] = target(held[0]["coverage95"], 0.98, "<=")
    t["latency 64x64 ms"] = target(latency["64"]["model_ms"], 10.0, "<")
    t["latency 256x256 ms"] = target(latency["256"]["model_ms"], 100.0, "<")
    return t


if __name__ == "__main__":
    main()
