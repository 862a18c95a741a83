"""Ray Train job: data-parallel NVP training with JaxTrainer, from an atlas through Ray Data.

    python -m training.nvp --atlas atlas.h5 --epochs 10 --num-workers 2 --out runs/nvp/model
    python -m training.nvp --synthetic --quick                     # generate a small atlas first
    python -m training.nvp --atlas atlas.h5 --name nvp-a            # rerun with the same name: resumes
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m training.nvp --synthetic --quick

Data parallelism is real SPMD: every worker is one JAX process of one `jax.distributed` run over a
1-D device mesh ("data"). Parameters and optimiser state are replicated, each worker feeds its
own Ray Data shard as its slice of the global batch, and XLA all-reduces the gradients inside
the jitted step, so every replica takes the identical update (checked each epoch: the parameter
checksums of all processes are gathered and compared; `replicas_in_sync` in the metrics).

- CPU (default): JaxTrainer does not start `jax.distributed` on CPU, so the train function does:
  rank 0 picks a free port, broadcasts host:port, and every rank initialises with gloo collectives.
- GPU (`--use-gpu`): `JaxConfig(use_gpu=True)` sets JAX_PLATFORMS=cuda and initialises
  `jax.distributed` itself (one process per worker, CUDA_VISIBLE_DEVICES per worker); the mesh
  then spans every GPU of every worker and each process splits its batch over its own GPUs.
  Install the `gpu` extra (jax[cuda12]) on the GPU nodes.

Checkpoints every --checkpoint-every epochs (and at the end), the best --keep kept by validation
skill; a run whose name already exists under --storage resumes from its latest checkpoint;
--max-failures restarts a failed worker group from the latest checkpoint (--fail-at-epoch
injects one failure, to see that happen). The final model (std calibrated on the validation
sequences) is written to --out as an `NVPModel` directory that Serve and the benchmark load.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cluster.console import Relay, quiet_ray_data, say
from cluster.ray_session import ensure_ray, quiet_train_console
from emergence.nvp.model import NVPConfig
from emergence.paths import HELP, runs_path
from emergence.progress import EpochProgress

from .data import plan, read_samples, samples_from_batches, window_dataset

DEFAULTS = {"epochs": 10, "batch_size": 16, "lr": 2e-3, "conservation": 0.1, "entropy_smooth": 0.05,
            "num_workers": 2, "checkpoint_every": 2, "keep": 2, "max_failures": 1, "seed": 0}
QUICK = {"epochs": 3, "sequences": 6, "t": 16}


# ----------------------------------------------------------------------------- worker side


def _init_cpu_distributed(rank: int, world: int) -> None:
    """jax.distributed over gloo for CPU workers (JaxTrainer only does this for TPU/GPU)."""
    import jax
    import ray
    from ray.train.collective import broadcast_from_rank_zero

    address = None
    if rank == 0:
        with socket.socket() as s:
            s.bind(("", 0))
            address = f"{ray.util.get_node_ip_address()}:{s.getsockname()[1]}"
    address = broadcast_from_rank_zero(address)
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(address, num_processes=world, process_id=rank)


def _checksum(tree) -> float:
    import jax

    return float(sum(np.sum(np.asarray(x, np.float64)) for x in jax.tree.leaves(tree)))


def train_loop(cfg: dict) -> None:
    """Runs on every worker (one JAX process each)."""
    import jax
    import ray.data
    import ray.train
    from flax import serialization
    from jax.experimental import multihost_utils
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from emergence.nvp import metrics as M
    from emergence.nvp.train import NVPModel, augment, create_state, default_weights, evaluate_loss, predict_samples, train_step

    ray.data.DataContext.get_current().enable_progress_bars = False
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    if world > 1 and not cfg["use_gpu"]:
        _init_cpu_distributed(rank, world)
    # Auto axes: XLA propagates the shardings (and inserts the gradient all-reduce) through the
    # unmodified jitted step; jax's default Explicit axes would need every gather annotated.
    mesh = jax.make_mesh((jax.device_count(),), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    replicated, sharded = NamedSharding(mesh, P()), NamedSharding(mesh, P("data"))

    def to_global(x, sharding=replicated):
        return jax.make_array_from_process_local_data(sharding, np.asarray(x))

    config = NVPConfig.from_json(cfg["config"])
    local_batch = cfg["batch_size"] // world
    steps = cfg["steps_per_epoch"]
    state = create_state(config, tuple(cfg["shape"]), cfg["lr"], cfg["epochs"] * steps, cfg["seed"])

    start, curve, restored = 1, [], False
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as d:
            meta = json.loads((Path(d) / "meta.json").read_text())
            params = serialization.from_bytes(state.params, (Path(d) / "params.msgpack").read_bytes())
            opt = serialization.from_bytes(state.opt_state, (Path(d) / "opt_state.msgpack").read_bytes())
        state = state.replace(params=params, opt_state=opt, step=meta["step"])
        start, curve, restored = meta["epoch"] + 1, meta["curve"], True
    state = jax.tree.map(to_global, state)
    local_weights = default_weights(conservation=cfg["conservation"], entropy_smooth=cfg["entropy_smooth"])
    weights = {k: to_global(v) for k, v in local_weights.items()}

    val = None
    if rank == 0:  # rank 0 scores the whole validation set with its local copy of the parameters
        val = samples_from_batches(ray.train.get_dataset_shard("val").iter_batches(batch_size=256, batch_format="numpy"))
        scorer = NVPModel(config, state.params)  # one model, one compiled predict: new params each epoch
    shard = ray.train.get_dataset_shard("train")
    progress = EpochProgress("epoch", cfg["epochs"], start - 1)

    for epoch in range(start, cfg["epochs"] + 1):
        rng = np.random.default_rng([cfg["seed"], epoch, rank])
        t0 = time.perf_counter()
        parts, n = [], 0
        it = shard.iter_batches(batch_size=local_batch, batch_format="numpy", drop_last=True,
                                local_shuffle_buffer_size=4 * local_batch, local_shuffle_seed=cfg["seed"] + epoch)
        for batch in it:
            if n == steps:  # every rank takes exactly `steps` steps: the collectives must line up
                break
            b = augment({k: batch[k] for k in ("window", "target", "domain_id", "log_dt", "log_dx")}, rng)
            state, p = train_step(state, {k: to_global(v, sharded) for k, v in b.items()}, weights)
            parts.append(p)
            n += 1
        if n < steps:
            raise RuntimeError(f"rank {rank}: data shard gave {n} batches, expected {steps}")
        jax.block_until_ready(state.params)
        seconds = time.perf_counter() - t0
        host = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), state)  # this process's replica
        sums = multihost_utils.process_allgather(np.float64(_checksum(host.params)))
        row = {"epoch": epoch, "seconds": seconds, "samples_per_s": steps * cfg["batch_size"] / seconds,
               "world_size": world, "devices": jax.device_count(),
               "replicas_in_sync": bool(np.all(np.asarray(sums) == np.asarray(sums).ravel()[0])),
               **{f"train_{k}": float(np.mean([float(p[k]) for p in parts])) for k in parts[0]}}
        if rank == 0:
            local = jax.tree.map(jax.numpy.asarray, host.params)
            row.update({f"val_{k}": v for k, v in evaluate_loss(local, state.apply_fn, val, local_weights).items()})
            scorer.params = local
            mean, _ = predict_samples(scorer, val)
            row["val_skill"] = M.skill(mean, val.target, val.window[:, -1])
            row["val_change_fidelity"] = M.change_fidelity(mean, val.target, val.window[:, -1])
            curve.append(row)
            say(cfg.get("console"), progress.line(epoch, {
                "train_loss": row["train_loss"], "val_mse": row["val_mse"], "val_skill": row["val_skill"],
                "samples/s": round(row["samples_per_s"])}))
        if cfg.get("fail_at_epoch") == epoch and not restored and rank == 0:
            raise RuntimeError(f"injected failure at epoch {epoch} (--fail-at-epoch); the run resumes from its checkpoint")
        metrics = dict(row)  # the whole curve travels in each checkpoint's meta.json, not in metrics
        last = epoch == cfg["epochs"]
        if rank == 0 and (last or (cfg["checkpoint_every"] and epoch % cfg["checkpoint_every"] == 0)):
            with tempfile.TemporaryDirectory() as tmp:
                model = NVPModel(config, host.params, meta={
                    "epoch": epoch, "step": int(host.step), "curve": curve, "trained_on": cfg["domains"],
                    "train_config": {k: cfg[k] for k in ("lr", "conservation", "entropy_smooth", "batch_size", "seed")}})
                model.save(Path(tmp) / "model", opt_state=host.opt_state)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(str(Path(tmp) / "model")))
        else:
            ray.train.report(metrics)


# ----------------------------------------------------------------------------- driver side


def plan_run(atlas: str, domains: list[str] | None, config: NVPConfig, batch_size: int, num_workers: int,
             val_fraction: float = 0.2):
    """Check the atlas against a run's settings (no values read): (train_items, val_items, map
    shape, optimiser steps per epoch). Errors name the atlas and the problem."""
    train_items, val_items, groups = plan(atlas, domains, config, val_fraction)
    shape = next(iter(groups.values())).shape
    if shape[0] % config.multiple or shape[1] % config.multiple:
        raise ValueError(f"{atlas}: map shape {shape} not divisible by {config.multiple} (the model's widths)")
    rows = sum(it["t"] - config.history for it in train_items)
    steps = (rows // num_workers) // (batch_size // num_workers)  # equal shards, drop_last batches
    if steps < 1:
        raise ValueError(f"{atlas}: {rows} training windows are too few for batch_size {batch_size} on {num_workers} workers")
    return train_items, val_items, shape, steps


def make_trainer(atlas: str, domains: list[str] | None = None, *, config: NVPConfig | None = None,
                 epochs: int = DEFAULTS["epochs"], batch_size: int = DEFAULTS["batch_size"], lr: float = DEFAULTS["lr"],
                 conservation: float = DEFAULTS["conservation"], entropy_smooth: float = DEFAULTS["entropy_smooth"],
                 num_workers: int = DEFAULTS["num_workers"], use_gpu: bool = False,
                 checkpoint_every: int = DEFAULTS["checkpoint_every"], keep: int = DEFAULTS["keep"],
                 max_failures: int = DEFAULTS["max_failures"], seed: int = DEFAULTS["seed"], val_fraction: float = 0.2,
                 name: str | None = None, storage_path: str | None = None, callbacks=None,
                 fail_at_epoch: int | None = None, cpus_per_worker: float = 1.0, console=None):
    """Build the JaxTrainer (also used by the Tune sweep, which passes its report callback).
    Returns (trainer, val_items) -- the validation sequences, for calibrating the final model.
    `console`: a `cluster.console.Relay`'s queue for rank 0's line an epoch."""
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.v2.jax import JaxConfig, JaxTrainer

    config = config or NVPConfig()
    for key, value, low in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("num_workers", num_workers, 1),
                            ("checkpoint_every", checkpoint_every, 0), ("keep", keep, 1), ("max_failures", max_failures, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{key} must be an int >= {low}, got {value!r}")
    for key, value in (("lr", lr), ("conservation", conservation), ("entropy_smooth", entropy_smooth)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0) or (key == "lr" and value == 0):
            raise ValueError(f"{key} must be a finite number {'> 0' if key == 'lr' else '>= 0'}, got {value!r}")
    if batch_size % num_workers:
        raise ValueError(f"batch_size ({batch_size}) must be divisible by num_workers ({num_workers}): "
                         "each worker feeds an equal slice of the global batch")

    train_items, val_items, shape, steps = plan_run(atlas, domains, config, batch_size, num_workers, val_fraction)

    # Read once, in the driver's Ray Data tasks, and reused every epoch: reads started from inside
    # the train loop would wait for CPUs that the workers hold. (An atlas larger than the object
    # store would stream instead: leave CPUs free on the nodes for the read tasks.)
    quiet_ray_data()
    train_ds = window_dataset(train_items, config).materialize()
    val_ds = window_dataset(val_items, config).materialize()
    platform = "cuda" if use_gpu else "cpu"
    loop_config = {"config": config.to_json(), "shape": list(shape), "epochs": epochs, "batch_size": batch_size,
                   "lr": float(lr), "conservation": float(conservation), "entropy_smooth": float(entropy_smooth),
                   "seed": seed, "use_gpu": use_gpu, "steps_per_epoch": steps, "checkpoint_every": checkpoint_every,
                   "domains": sorted({it["domain"] for it in train_items}), "fail_at_epoch": fail_at_epoch,
                   "console": console}
    run_config = RunConfig(
        name=name or f"nvp-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
        storage_path=os.path.abspath(storage_path or "runs/train"),
        failure_config=FailureConfig(max_failures=max_failures),
        checkpoint_config=CheckpointConfig(num_to_keep=keep, checkpoint_score_attribute="val_skill",
                                           checkpoint_score_order="max"),
        worker_runtime_env={"env_vars": {"JAX_PLATFORMS": platform}},  # must be set before jax is imported
        callbacks=callbacks,
        logging_config=quiet_train_console(),
    )
    resources = {"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}
    trainer = JaxTrainer(
        train_loop, train_loop_config=loop_config, jax_config=JaxConfig(use_gpu=use_gpu),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu, resources_per_worker=resources),
        run_config=run_config, datasets={"train": train_ds, "val": val_ds},
        dataset_config=DataConfig(datasets_to_split=["train"]),
    )
    return trainer, val_items


def run(atlas: str, domains: list[str] | None = None, out: str | None = None, **kw) -> dict:
    """Train; return {"model_path", "curve", "metrics", "checkpoint", "run_path"}. With `out`, the
    final model (std calibrated on the validation sequences) is saved there."""
    from emergence.nvp.train import NVPModel, calibrate_std

    config = kw.pop("config", None) or NVPConfig()
    with Relay() as relay:
        trainer, val_items = make_trainer(atlas, domains, config=config, console=relay.queue, **kw)
        result = trainer.fit()
    if result.error:
        raise result.error
    # The latest checkpoint is the final epoch's (the kept best-by-skill ones may be older); its
    # meta.json carries the learning curve of every epoch, those before a restart included.
    with result.checkpoint.as_directory() as d:
        model = NVPModel.load(d)
    out_path = None
    if out:
        model.std_scale = calibrate_std(model, read_samples(val_items, config))
        model.meta.update({"run_path": result.path})
        out_path = model.save(out)
    return {"model_path": out_path, "curve": model.meta["curve"], "checkpoint": result.checkpoint.path,
            "metrics": dict(result.metrics or {}), "run_path": result.path}


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--atlas", help="HDF5 atlas to train on")
    src.add_argument("--synthetic", action="store_true", help="generate a synthetic atlas (heat, advection, reaction) first")
    ap.add_argument("--domains", nargs="+", help="atlas groups to train on (default: all)")
    ap.add_argument("--quick", action="store_true", help=f"small run: {QUICK}")
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--batch-size", type=int, default=DEFAULTS["batch_size"], help="global batch (split across workers)")
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    ap.add_argument("--lambda-conservation", type=float, default=DEFAULTS["conservation"])
    ap.add_argument("--lambda-entropy", type=float, default=DEFAULTS["entropy_smooth"])
    ap.add_argument("--history", type=int, default=NVPConfig.history, help="fields the model reads (E_t and history-1 before)")
    ap.add_argument("--num-workers", type=int, default=DEFAULTS["num_workers"])
    ap.add_argument("--cpus-per-worker", type=float, default=1.0)
    ap.add_argument("--use-gpu", action="store_true", help="one GPU per worker (JAX_PLATFORMS=cuda; needs the gpu extra)")
    ap.add_argument("--checkpoint-every", type=int, default=DEFAULTS["checkpoint_every"], help="epochs (0: only at the end)")
    ap.add_argument("--keep", type=int, default=DEFAULTS["keep"], help="checkpoints kept (best by validation skill)")
    ap.add_argument("--max-failures", type=int, default=DEFAULTS["max_failures"])
    ap.add_argument("--fail-at-epoch", type=int, help="inject one worker failure after this epoch (fault-tolerance drill)")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--name", help="run name; an existing run of this name under --storage is resumed")
    ap.add_argument("--storage", default=runs_path("train"), help=f"Ray Train storage path (default: train/ under {HELP})")
    ap.add_argument("--out", default=runs_path("nvp", "trained"),
                    help="where the final model directory goes (default: nvp/trained there; serve it with EMERGENCE_NVP_MODEL)")
    ap.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else a private local Ray)")
    args = ap.parse_args(argv)
    if args.epochs is None:
        args.epochs = QUICK["epochs"] if args.quick else DEFAULTS["epochs"]
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    from emergence.nvp.atlas import AtlasError

    # workers' own output stays in the job's logs; the console gets each epoch's line (cluster.console)
    started = ensure_ray(args.address, dashboard=True, log_to_driver=False)
    try:
        atlas = args.atlas
        if args.synthetic:
            from emergence.nvp.synthetic import _bar, export_atlas

            n, t = (QUICK["sequences"], QUICK["t"]) if args.quick else (12, 20)
            os.makedirs(args.storage, exist_ok=True)
            atlas = export_atlas(os.path.join(args.storage, "synthetic_atlas.h5"), n=n, t=t, seed=args.seed, progress=_bar)
        try:
            res = run(atlas, args.domains, out=args.out, config=NVPConfig(history=args.history), epochs=args.epochs,
                      batch_size=args.batch_size, lr=args.lr, conservation=args.lambda_conservation,
                      entropy_smooth=args.lambda_entropy, num_workers=args.num_workers, use_gpu=args.use_gpu,
                      checkpoint_every=args.checkpoint_every, keep=args.keep, max_failures=args.max_failures,
                      seed=args.seed, name=args.name, storage_path=args.storage, fail_at_epoch=args.fail_at_epoch,
                      cpus_per_worker=args.cpus_per_worker)
        except (AtlasError, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    finally:
        if started:
            import ray

            ray.shutdown()
    last = res["curve"][-1]  # each epoch had its line as it ran; the run's whole curve is in its run folder
    print(f"trained {last['epoch']} epochs on {last['world_size']} workers (replicas in sync: "
          f"{all(r['replicas_in_sync'] for r in res['curve'])}): val_mse {last['val_mse']:.4f}, "
          f"val_skill {last['val_skill']:.4f}")
    print(f"model: {res['model_path']}\nrun: {res['run_path']}")
    return res


if __name__ == "__main__":
    main()
