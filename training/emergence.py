"""Ray Train job: the Emergence Engine's networks with TorchTrainer (DDP).

    python -m training.emergence --quick                      # the small default model (minutes, 2 cores)
    python -m training.emergence --num-workers 2 --out runs/emergence/model.pt
    python -m training.emergence --name eng-a                 # rerun with the same name: resumes
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m training.emergence --quick

The driver builds the corpus (programs sampled from the DSL, described in varied words; see
`emergence/synthesis/corpus.py`), encodes every description once with the intent encoder
(cached by text under --data), and hands the arrays to the workers through the object store.
Each worker runs `emergence.synthesis.fit.fit` on its rank's share of every batch, with the
modules wrapped in DistributedDataParallel by `ray.train.torch.prepare_model` (gloo on CPU,
NCCL with --use-gpu). Every epoch is reported with a checkpoint (rank 0's); a run whose name
exists under --storage resumes from its latest checkpoint, and --max-failures restarts a failed
worker group from it. The final model is written to --out, which Serve and the benchmark load.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import numpy as np

from cluster.console import Relay, say
from cluster.ray_session import ensure_ray, quiet_train_console
from emergence.paths import HELP, runs_path

# "words": the denoiser cross-attends to the intent's token vectors. Against the pooled vector alone
# (3000 programs, 80 epochs): held-out programs sampled exactly 0.91 vs 0.55 of the time, and top-1 on
# held-out wordings 0.70 vs 0.505.
# 6000 programs x 5 wordings (for 3000 x 6): the denoiser memorized its training programs (denoising
# MSE 0.0007 on them, 0.014 on held-out ones); twice the programs halved the held-out figure, and
# dropout 0.1 then raised top-1 on held-out wordings by 2.5 to 4 points. docs/decisions/2026-11-24-corpus-size-and-dropout.md.
# "longer" (per start kind, programs one step past the walk: 4 steps, 5 from a document) is off: 600 of
# them in 6500 programs (one seed) solved 2 more validation intents, one a 5-step CSV pipeline, and lost 11
# of 1-3 steps (engine answer 0.525 against 0.637). docs/decisions/2026-11-24-validation-intents.md.
# 80 diffusion epochs (for 60): denoising MSE on the same held-out descriptions 0.0117 -> 0.0102.
# Every program of up to 3 steps (10,924; "programs" 11000 keeps them all), 56 diffusion epochs (about
# as many optimizer steps as 80 on 6000 programs): held-out denoising MSE 0.0108 -> 0.0076 on the
# 6000-program corpus's held-out programs, 0.0130 -> 0.0079 on this corpus's (8 draws each). 
# docs/decisions/2026-12-07-corpus-size.md.
# "epochs_swa" (weight averaging after the cosine schedule) is off: 8 epochs at 2e-4 on the 6000-program model
# moved that MSE 0.01085 -> 0.01060 (four draws each). Nearly all of it is at t >= 150, where x_t is almost
# noise and only the intent tells which held-out program it is; averaging weights does not change that.
DEFAULTS = {"programs": 11000, "per_program": 5, "longer": 0, "epochs_contrastive": 6, "epochs_diffusion": 56,
            "epochs_swa": 0, "epochs_scorer": 6, "words": True, "word_drop": 0.0, "dropout": 0.1}
QUICK = {"programs": 1800, "per_program": 3, "longer": 0, "epochs_contrastive": 6, "epochs_diffusion": 20,
         "epochs_swa": 0, "epochs_scorer": 4, "words": True, "word_drop": 0.0, "dropout": 0.0}


def encode_cached(texts: list[str], encoder_name: str, cache_path: str, words: bool = False):
    """Embeddings of `texts`, computing only those not in the cache file (keyed by text). With
    `words`: (embeddings, per text its word vectors), the word vectors cached beside the file
    (`…-words.npz`, one float16 block and offsets)."""
    from emergence.synthesis.encoder import make_encoder

    keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
    words_path = os.path.splitext(cache_path)[0] + "-words.npz"
    cache: dict = {}
    wcache: dict = {}
    if os.path.exists(cache_path):
        with np.load(cache_path) as z:
            cache = dict(zip(z["keys"].tolist(), z["vectors"]))
    if words and os.path.exists(words_path):
        with np.load(words_path) as z:
            flat, offsets = z["flat"], z["offsets"]
            wcache = {k: flat[offsets[i]:offsets[i + 1]] for i, k in enumerate(z["keys"].tolist())}
    missing = sorted({k: t for k, t in zip(keys, texts) if k not in cache or (words and k not in wcache)}.items())
    if missing:
        enc = make_encoder(encoder_name)
        if words:
            vecs, ws = _in_chunks(enc.encode_words, [t for _, t in missing], encoder_name)
            wcache.update({k: w for (k, _), w in zip(missing, ws)})
            offsets = np.cumsum([0] + [len(w) for w in wcache.values()])
            _save_npz(words_path, keys=np.array(list(wcache)), offsets=offsets,
                      flat=np.concatenate(list(wcache.values())).astype(np.float16))
        else:
            vecs = _in_chunks(enc.encode, [t for _, t in missing], encoder_name)
        cache.update({k: v for (k, _), v in zip(missing, vecs)})
        _save_npz(cache_path, keys=np.array(list(cache)), vectors=np.stack(list(cache.values())))
    emb = np.stack([cache[k] for k in keys]).astype(np.float32)
    return (emb, [wcache[k] for k in keys]) if words else emb


def _in_chunks(encode, texts: list[str], name: str, chunk: int = 2048):
    """encode(texts) in chunks, with a progress bar on stderr when there is more than one chunk;
    the results joined as one call's would be (arrays, or (arrays, lists) from encode_words)."""
    from tqdm import tqdm

    parts = []
    with tqdm(total=len(texts), desc=f"encoding ({name})", unit="text", disable=len(texts) <= chunk,
              file=sys.stderr) as bar:
        for i in range(0, len(texts), chunk):
            parts.append(encode(texts[i:i + chunk]))
            bar.update(len(texts[i:i + chunk]))
    if parts and isinstance(parts[0], tuple):
        return np.concatenate([p[0] for p in parts]), [w for p in parts for w in p[1]]
    return np.concatenate(parts) if parts else encode([])


def corpus_dir(model_path: str, state: dict, need: str = "corpus.jsonl") -> str:
    """The folder with an engine's corpus.jsonl, calibration.jsonl and embedding caches, which the
    benchmarks need (serving never does): beside a model trained here, else rebuilt on first use
    -- the corpus is deterministic given the settings saved in the model, and checked against the
    counts saved with them -- under runs/cache/engine-<sha256 prefix>."""
    from emergence.models import digest

    here = os.path.dirname(os.path.abspath(model_path))
    if os.path.exists(os.path.join(here, need)):
        return here
    settings = state.get("corpus") or {}
    if missing := [k for k in ("max_programs", "per_program", "max_len", "seed", "longer") if k not in settings]:
        raise ValueError(f"{model_path}: no {need} beside it, and the model does not say how its corpus was built "
                         f"(missing {missing}); put the corpus.jsonl and calibration.jsonl it was trained with "
                         "beside it (training.emergence writes them to its --data folder)")
    out = runs_path("cache", f"engine-{digest(model_path)[:12]}")
    if all(os.path.exists(os.path.join(out, f)) for f in ("corpus.jsonl", "calibration.jsonl")):
        return out
    print(f"rebuilding the engine's corpus under {out} (first use; the benchmarks need it)", file=sys.stderr, flush=True)
    records, calib = build_corpus(max_len=settings["max_len"], max_programs=settings["max_programs"],
                                  per_program=settings["per_program"], seed=settings["seed"], longer=settings["longer"])
    found = (len(records), len({(r.start, tuple(r.ops)) for r in records}))
    if found != (settings.get("records", found[0]), settings.get("programs", found[1])):
        raise ValueError(f"{model_path}: the corpus rebuilt from its settings has {found[0]} descriptions of {found[1]} "
                         f"programs, the model was trained on {settings.get('records')} of {settings.get('programs')}: "
                         "the corpus code changed since; use the corpus it was trained with")
    os.makedirs(out, exist_ok=True)
    for name, part in (("corpus.jsonl", records), ("calibration.jsonl", calib)):
        _save_atomically(part, os.path.join(out, name))
    return out


def build_corpus(*, max_len: int, max_programs: int, per_program: int, seed: int, longer: int):
    """(train + val records, held-out wordings of val programs for calibration): the job's corpus."""
    from emergence.synthesis import corpus

    built = corpus.build(max_len=max_len, max_programs=max_programs, per_program=per_program, seed=seed,
                         calibration=2, longer=longer)
    return [r for r in built if r.split != "calib"], [r for r in built if r.split == "calib"]


def _save_atomically(records, path: str) -> None:
    """A reader (another benchmark run) never sees half a file, and two writers never mix theirs."""
    import tempfile

    from emergence.synthesis import corpus

    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    os.close(fd)
    corpus.save(records, tmp)
    os.replace(tmp, path)


def _save_npz(path: str, **arrays) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, **arrays)
    os.replace(tmp, path)  # a crash never leaves half a cache


def train_loop(cfg: dict) -> None:
    import ray
    import ray.train
    import torch
    from ray.train.torch import get_device, prepare_model

    from emergence.synthesis.fit import FitConfig, fit

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    torch.set_num_threads(max(1, int(cfg.get("threads", 1))))
    data = ray.get(cfg["data"])
    resume = None
    ckpt = ray.train.get_checkpoint()
    if ckpt:
        with ckpt.as_directory() as d:
            resume = torch.load(os.path.join(d, "state.pt"), map_location="cpu", weights_only=False)
    device = get_device() if cfg["use_gpu"] else "cpu"
    started = time.time()

    def report(phase, epoch, metrics, state):
        row = {"phase": phase, "epoch": epoch + 1, "elapsed_s": round(time.time() - started, 1), "world_size": world,
               **{k: float(v) for k, v in metrics.items()}}
        if rank == 0:
            with tempfile.TemporaryDirectory() as d:
                torch.save(state, os.path.join(d, "state.pt"))
                with open(os.path.join(d, "metrics.json"), "w") as f:
                    json.dump(row, f)
                ray.train.report(row, checkpoint=ray.train.Checkpoint.from_directory(d))
        else:
            ray.train.report(row)

    fit(data, FitConfig(**cfg["fit"]), rank=rank, world=world,
        wrap=(lambda m: prepare_model(m)) if world > 1 or cfg["use_gpu"] else (lambda m: m),
        report=report, resume=resume, device=device,
        log=(lambda s: say(cfg.get("console"), s)) if rank == 0 else (lambda s: None))  # a line an epoch, rank 0


def build_data(programs: int, per_program: int, encoder: str, data_dir: str, seed: int = 0, max_len: int = 3,
               words: bool = False, longer: int = 0):
    """(train + val records, their TrainData, calibration records, their `Encoding`s). `words`:
    the descriptions' word vectors too, for a denoiser that attends to them."""
    from emergence.synthesis.engine import Encoding
    from emergence.synthesis.fit import TrainData

    os.makedirs(data_dir, exist_ok=True)
    t0 = time.time()
    # calib: held-out wordings of val programs, for ranking only
    records, calib = build_corpus(max_len=max_len, max_programs=programs, per_program=per_program, seed=seed,
                                  longer=longer)
    for name, part in (("corpus.jsonl", records), ("calibration.jsonl", calib)):
        _save_atomically(part, os.path.join(data_dir, name))
    built = records + calib
    t1 = time.time()
    emb, ws = _encoded([r.description for r in built], encoder, data_dir, words)
    is_calib = [r.split == "calib" for r in built]
    print(f"corpus: {len(records)} descriptions of {len({(r.start, tuple(r.ops)) for r in records})} programs "
          f"({sum(r.split == 'val' for r in records)} held out, {len(calib)} more in held-out wordings for "
          f"calibration) in {t1 - t0:.0f} s; encoded in {time.time() - t1:.0f} s", flush=True)
    data = TrainData.from_records(records, emb[~np.array(is_calib)],
                                  [w for w, c in zip(ws, is_calib) if not c] if words else None)
    return records, data, calib, [Encoding(e, w) for e, w, c in zip(emb, ws, is_calib) if c]


def _encoded(texts: list[str], encoder: str, data_dir: str, words: bool) -> tuple:
    """(embeddings, word vectors per text, or Nones), through the cache under `data_dir`."""
    path = os.path.join(data_dir, f"embeddings-{encoder}.npz")
    if words:
        return encode_cached(texts, encoder, path, words=True)
    return encode_cached(texts, encoder, path), [None] * len(texts)


def make_trainer(data, fit_cfg: dict, *, num_workers: int = 1, use_gpu: bool = False, name: str | None = None,
                 storage_path: str = "runs/train", max_failures: int = 1, cpus_per_worker: float = 1.0,
                 threads: int | None = None, console=None):
    """The TorchTrainer. `console`: a `cluster.console.Relay`'s queue for rank 0's line an epoch."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
        raise ValueError(f"num_workers must be an int ≥ 1, got {num_workers!r}")
    loop = {"data": ray.put(data), "fit": fit_cfg, "use_gpu": use_gpu,
            "threads": threads or max(1, int(cpus_per_worker)), "console": console}
    return TorchTrainer(
        train_loop, train_loop_config=loop,
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker={"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}),
        run_config=RunConfig(name=name or f"emergence-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}",
                             storage_path=os.path.abspath(storage_path),
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=2),
                             logging_config=quiet_train_console()),
    )


def calibrate(bundle, encoder_name: str, calib, calib_encodings, limit: int = 400) -> dict:
    """Ranking weights fitted on held-out programs described in held-out wordings, then the
    answer's confidence model on more of them (emergence.synthesis.calibrate); the confidence's
    fit and figures under "confidence"."""
    from emergence.synthesis.calibrate import calibrate_confidence, calibrate_ranking
    from emergence.synthesis.encoder import make_encoder
    from emergence.synthesis.engine import Engine

    engine = Engine(bundle, make_encoder(encoder_name))
    ranking = calibrate_ranking(engine, calib, calib_encodings, limit=limit)
    print(f"ranking weights {ranking['weights']}: top-1 {ranking['top1']:.3f} on {ranking['records']} held-out "
          f"descriptions (defaults {ranking['default_top1']:.3f}; right program among candidates {ranking['recall']:.3f})",
          flush=True)
    engine.rank_weights = ranking["weights"]
    conf = calibrate_confidence(engine, calib, calib_encodings, limit=limit, skip=limit)
    ranking["confidence"] = conf
    if conf.get("model"):
        print(f"answer confidence fitted on {conf['records']} more held-out descriptions: ROC-AUC "
              f"{conf['held_out_auc']:.3f} (cross-validated; coherence alone {conf['coherence_auc']:.3f})", flush=True)
    return ranking


def check_run(programs: int, per_program: int, longer: int, fit_cfg: dict, num_workers: int = 1) -> None:
    """Raise ValueError naming the first bad setting (before any Ray or corpus work starts)."""
    from emergence.synthesis.fit import FitConfig

    # programs 0 is a corpus of the 1-2 step programs alone (always all kept)
    for name, value, least in (("programs", programs, 0), ("per_program", per_program, 1), ("longer", longer, 0),
                               ("num_workers", num_workers, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an integer ≥ {least}, got {value!r}")
    FitConfig(**fit_cfg).check()


def run(*, programs: int, per_program: int, fit_cfg: dict, encoder: str = "minilm", data_dir: str = "runs/emergence",
        out: str | None = None, seed: int = 0, max_len: int = 3, calibrate_limit: int = 400, longer: int = 0,
        command: str = "python -m training.emergence", **kw) -> dict:
    import torch

    from emergence.models import provenance
    from emergence.synthesis.fit import Bundle, FitConfig, figures

    started = time.time()

    check_run(programs, per_program, longer, fit_cfg, kw.get("num_workers", 1))
    records, data, calib, calib_enc = build_data(programs, per_program, encoder, data_dir, seed, max_len,
                                                 words=bool(fit_cfg.get("words")), longer=longer)
    with Relay() as relay:
        result = make_trainer(data, fit_cfg, console=relay.queue, **kw).fit()
    if result.error:
        raise result.error
    with result.checkpoint.as_directory() as d:
        state = torch.load(os.path.join(d, "state.pt"), map_location="cpu", weights_only=False)
    unfinished = {p: n for p, n in state["done"].items()
                  if n < fit_cfg.get(f"epochs_{p}", getattr(FitConfig(), f"epochs_{p}"))}
    if unfinished:
        raise RuntimeError(f"the run stopped early: {unfinished}")
    bundle = Bundle.from_state(state["bundle"])
    figs = figures(bundle, data)
    ranking = calibrate(bundle, encoder, calib, calib_enc, calibrate_limit)
    model = {**state["bundle"], "encoder_name": encoder, "figures": figs,
             "corpus": {"records": len(records), "programs": int(len(set(data.pid.tolist()))), "seed": seed,
                        "longer": longer, "max_programs": programs, "per_program": per_program, "max_len": max_len},
             "run_path": result.path, "trained": provenance(command, seed, started)}
    _keep_calibration(model, ranking)
    if out:
        _save_model(model, out)
    return {"model_path": out, "figures": figs, "run_path": result.path, "checkpoint": result.checkpoint.path,
            "metrics": dict(result.metrics or {})}


def recalibrate(model_path: str, data_dir: str, limit: int = 400) -> dict:
    """Fit a trained model's ranking weights again (after a ranking feature was added, say) on
    the held-out wordings in `data_dir/calibration.jsonl`; rewrites the model file atomically."""
    import torch

    from emergence.synthesis import corpus
    from emergence.synthesis.engine import Encoding
    from emergence.synthesis.fit import Bundle

    path = os.path.join(data_dir, "calibration.jsonl")
    if not os.path.exists(path):
        raise ValueError(f"no {path}: this corpus predates held-out calibration wordings; train again")
    state = torch.load(model_path, map_location="cpu", weights_only=False)
    calib = corpus.load(path)
    enc = state.get("encoder_name", "minilm")
    bundle = Bundle.from_state(state)
    emb, ws = _encoded([r.description for r in calib], enc, data_dir, bundle.config.words)
    ranking = calibrate(bundle, enc, calib, [Encoding(e, w) for e, w in zip(emb, ws)], limit)
    _keep_calibration(state, ranking)
    _save_model(state, model_path)
    return ranking


def _keep_calibration(model: dict, ranking: dict) -> None:
    """Put what `calibrate` fitted into a model file's dict: the ranking weights and the confidence
    model, and their figures beside the others."""
    model["rank_weights"] = ranking["weights"]
    model["confidence"] = ranking["confidence"].get("model")
    figs = model.setdefault("figures", {})
    figs["ranking"] = {k: v for k, v in ranking.items() if k not in ("weights", "confidence")}
    figs["confidence"] = {k: v for k, v in ranking["confidence"].items() if k != "model"}


def _save_model(model: dict, path: str) -> None:
    import torch

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    torch.save(model, tmp)
    os.replace(tmp, path)  # a reader never sees half a model


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help=f"the small default model: {QUICK}")
    ap.add_argument("--programs", type=int, help="distinct programs in the corpus (all of 1-2 steps, then sampled; 0: those alone)")
    ap.add_argument("--per-program", type=int, help="descriptions per program")
    ap.add_argument("--longer", type=int, help="per start kind, sampled programs one step longer than the full walk "
                                               f"(default: {DEFAULTS['longer']})")
    for phase in ("contrastive", "diffusion", "scorer"):
        ap.add_argument(f"--epochs-{phase}", type=int)
    ap.add_argument("--epochs-swa", type=int, help="after diffusion, epochs of the denoiser at the constant rate "
                                                   "--swa-lr, its weights averaged over their ends (default: "
                                                   f"{DEFAULTS['epochs_swa']})")
    ap.add_argument("--swa-lr", type=float, default=2e-4, help="the weight-averaging epochs' learning rate")
    ap.add_argument("--batch-size", type=int, default=256, help="global batch (split across workers)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--diffusion-steps", type=int, default=200, help="T of the DDPM training schedule")
    ap.add_argument("--sample-steps", type=int, default=10, help="DDIM steps used for validation figures")
    ap.add_argument("--encoder", default="minilm", choices=["minilm", "hashing"])
    ap.add_argument("--words", action=argparse.BooleanOptionalAction, default=None,
                    help="the denoiser attends to the intent's word vectors as well as its pooled vector "
                         f"(default: {DEFAULTS['words']})")
    ap.add_argument("--word-drop", type=float, help="with --words: in training, hide each word from the denoiser "
                                                    f"this often (default: {DEFAULTS['word_drop']})")
    ap.add_argument("--dropout", type=float, help="the denoiser's residual dropout in training "
                                                  f"(default: {DEFAULTS['dropout']})")
    ap.add_argument("--num-workers", type=int, default=1)
    ap.add_argument("--cpus-per-worker", type=float, default=1.0)
    ap.add_argument("--use-gpu", action="store_true", help="one GPU per worker, NCCL")
    ap.add_argument("--max-failures", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--name", help="run name; an existing run of this name under --storage is resumed")
    ap.add_argument("--storage", default=runs_path("train"), help=f"Ray Train storage path (default: train/ under {HELP})")
    ap.add_argument("--data", default=runs_path("emergence"), help="corpus and embedding cache (default: emergence/ there)")
    ap.add_argument("--out", default=runs_path("emergence", "model.pt"),
                    help="the trained model file (default: emergence/model.pt there; serve it with EMERGENCE_ENGINE_MODEL)")
    ap.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else a private local Ray)")
    ap.add_argument("--recalibrate", action="store_true", help="no training: fit --out's ranking weights again on "
                                                               "--data's held-out wordings")
    args = ap.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.recalibrate:
        try:
            return recalibrate(args.out, args.data)
        except (ValueError, FileNotFoundError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    fit_cfg = {"batch": args.batch_size, "lr": args.lr, "T": args.diffusion_steps, "sample_steps": args.sample_steps,
               "epochs_contrastive": args.epochs_contrastive, "epochs_diffusion": args.epochs_diffusion,
               "epochs_scorer": args.epochs_scorer, "epochs_swa": args.epochs_swa, "swa_lr": args.swa_lr,
               "seed": args.seed, "words": args.words,
               "word_drop": args.word_drop, "dropout": args.dropout}
    try:  # a bad setting is reported before a Ray cluster is started for nothing
        check_run(args.programs, args.per_program, args.longer, fit_cfg, args.num_workers)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    # workers' own output stays in the job's logs; the console gets each epoch's line (cluster.console)
    started = ensure_ray(args.address, dashboard=True, log_to_driver=False)
    try:
        res = run(programs=args.programs, per_program=args.per_program, fit_cfg=fit_cfg, encoder=args.encoder,
                  longer=args.longer,
                  data_dir=args.data, out=args.out, seed=args.seed, num_workers=args.num_workers,
                  use_gpu=args.use_gpu, name=args.name, storage_path=args.storage, max_failures=args.max_failures,
                  cpus_per_worker=args.cpus_per_worker,
                  command=" ".join(["python -m training.emergence", *(sys.argv[1:] if argv is None else argv)]))
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    finally:
        if started:
            import ray

            ray.shutdown()
    print(json.dumps(res["figures"], indent=1))
    print(f"model: {res['model_path']}\nrun: {res['run_path']}")
    return res


if __name__ == "__main__":
    main()

