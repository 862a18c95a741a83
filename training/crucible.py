"""The Digital Crucible: RLlib PPO fine-tunes the Emergence Engine on problems it must solve, with
rewards from running its programs' tests in the sandbox pool.

    python -m training.crucible --quick                       # a few iterations on the training problems
    python -m training.crucible --iterations 40 --name cru-s1 # rerun with the same name: resumes
    python -m training.crucible --use-gpu                     # the learner on a GPU
    RAY_AUTH_MODE=token ray job submit --address http://127.0.0.1:8265 --working-dir . -- \\
        python -m training.crucible --quick

The driver gathers the training problems (`emergence.crucible.sources`: corpus pipelines in
held-out wordings, MBPP's train split, the written problems; never an evaluation set), encodes
each once with the engine's encoder, and runs PPO (new API stack) with the engine's denoiser as
the policy (`training.crucible_rl`). Each iteration draws `--programs` programs, one per problem
episode, judged in sandbox batches; the curriculum (`emergence.crucible.curriculum`) starts at
the level where the starting engine sometimes succeeds and promotes on success rate. Every
iteration prints one line and appends a row (reward and each component, success rate, level,
KL to the supervised engine, entropy) to metrics.parquet under the run; checkpoints
(`save_to_path`) go there too, and a rerun with the same --name resumes from the latest. The
result is an engine file `Engine.load` reads (default: <run>/engine.pt), recording that it was
crucible-tuned, from which base, on which problems, for how long.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from cluster.ray_session import ensure_ray
from emergence.crucible.grammar import program_ops
from emergence.models import digest
from emergence.paths import HELP, runs_path

# the recipe of the shipped tuned engine (docs/decisions/2026-12-07-crucible-recipe.md): 1000 corpus problems and
# the written ones (MBPP's train split gives almost no signal: the DSL expresses a tenth of it), 45 iterations at 3e-5.
# The shipped engine trained on the first writer's problems; every written training file is gathered now, measured
# no worse (docs/decisions/2026-12-07-more-written-problems.md)
DEFAULTS = {"iterations": 45, "programs": 512, "num_envs": 128, "minibatch": 128, "epochs": 2, "lr": 3e-5,
            "entropy": 0.0, "kl_ref": 0.05, "group": 8, "clip": 0.2, "checkpoint_every": 5, "corpus": 1000, "seed": 0,
            "sources": ["corpus", "written"]}
QUICK = {"iterations": 3, "programs": 128, "num_envs": 64, "minibatch": 64, "corpus": 60}
RESULTS = {"reward", "correctness", "speed", "quality"}
EPISODE_KEYS = ("problem", "ops", "difficulty", "level", "reward", "correctness", "speed", "quality", "passed", "tests",
                "cached")
SOURCES = ("corpus", "written", "mbpp")  # emergence.crucible.sources
STATE = "crucible_state.json"  # the driver's state, inside each checkpoint


def engine_default() -> str:
    from emergence.models import default_path

    return str(default_path("engine"))


def prepare(run: Path, args) -> dict:
    """The run's problems and their encodings, written once under the run (a resumed run reads
    them back, so it trains on exactly the same problems)."""
    from emergence.crucible.problems import load_problems, save_problems
    from emergence.synthesis.engine import Engine
    from training.crucible_rl import write_encodings

    problems_path, enc_path = run / "problems.jsonl", run / "encodings.npz"
    if not problems_path.exists():
        if args.problems:
            problems = load_problems(args.problems)
        else:
            from emergence.crucible.sources import training_problems

            problems, skipped = training_problems(check=not args.no_check, corpus=args.corpus, seed=args.seed)
            print(f"training problems: {len(problems)} (left out: {dict(skipped) or 'none'})", flush=True)
            args.sources = args.sources or DEFAULTS["sources"]
        if args.sources:  # a file given with --problems is kept whole unless --sources says otherwise
            problems = [p for p in problems if p.provenance.get("source") in args.sources]
            if not problems:
                raise SystemExit(f"--sources {' '.join(args.sources)}: no problem comes from these sources")
        save_problems(problems, problems_path)
    problems = load_problems(problems_path)
    if not enc_path.exists():
        engine = Engine.load(args.engine)
        encs = engine.encode([p.description for p in problems])
        words = [e.words if e.words is not None else np.zeros((0, len(e.vector)), np.float16) for e in encs]
        write_encodings(str(enc_path), [p.id for p in problems], np.stack([e.vector for e in encs]), words)
    import torch

    with np.load(enc_path) as z:
        text_dim = int(z["pooled"].shape[1])
    d = int(torch.load(args.engine, map_location="cpu", weights_only=False)["config"]["d"])
    return {"problems": str(problems_path), "encodings": str(enc_path), "count": len(problems),
            "levels": sorted({p.difficulty for p in problems}), "sha256": digest(problems_path),
            "layout": {"text_dim": text_dim, "d": d, "max_words": args.max_words}}


def build_config(args, data: dict, start_level: int):
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    from training.crucible_rl import CrucibleLearner, CrucibleModule, make_env

    register_env("emergence-crucible", make_env)
    env_config = {"problems": data["problems"], "encodings": data["encodings"], "seed": args.seed, "group": args.group,
                  "reward": json.loads(args.reward) if args.reward else {},
                  "curriculum": {"start": start_level}, "layout": data["layout"]}
    model_config = {"engine_path": args.engine, **data["layout"], "steps": args.steps, "seed": args.seed}
    return (PPOConfig()
            .environment("emergence-crucible", env_config=env_config)
            # one env runner: the local one (2 cores: a remote runner would wait for a CPU the driver holds)
            .env_runners(num_env_runners=0, num_envs_per_env_runner=args.num_envs,
                         gym_env_vectorize_mode="vector_entry_point", sample_timeout_s=900,
                         rollout_fragment_length=max(1, args.programs // args.num_envs))
            .learners(num_learners=0, num_gpus_per_learner=1 if args.use_gpu else 0, learner_class=CrucibleLearner,
                      learner_config_dict={"kl_ref_coeff": args.kl_ref})
            .resources(num_cpus_for_main_process=1)
            .rl_module(rl_module_spec=RLModuleSpec(module_class=CrucibleModule, model_config=model_config))
            # one-step episodes: the return is the reward, the value head is the problem's baseline
            .training(train_batch_size_per_learner=args.programs, minibatch_size=args.minibatch,
                      num_epochs=args.epochs, lr=args.lr, entropy_coeff=args.entropy, clip_param=args.clip,
                      gamma=1.0, lambda_=1.0, use_kl_loss=False, vf_loss_coeff=0.5, grad_clip=1.0)
            .debugging(seed=args.seed))


def env_of(algo):
    """The local env runner's crucible environment (num_env_runners=0)."""
    return algo.env_runner_group.local_env_runner.env.unwrapped


def probe(algo, draws: int) -> dict:
    """{problem id: share of `draws` programs the starting policy draws for it that pass every
    test}, for every problem of the environment."""
    import torch

    env, module = env_of(algo), algo.get_module()
    rng = np.random.default_rng(0)
    pairs = [(p, k) for p in env.problems for k in range(draws)]
    wins: dict = {p.id: 0 for p in env.problems}
    for i in range(0, len(pairs), 512):
        chunk = [p for p, _ in pairs[i:i + 512]]
        obs = torch.as_tensor(np.stack([env.observation(p) for p in chunk]))
        actions = module.policy.explore(obs, rng)["actions"].numpy()
        for v in env.judge.judge([(p, program_ops(a)) for p, a in zip(chunk, actions)]):
            wins[v["problem"]] += v["level"] == "all_right"
    return {pid: w / draws for pid, w in wins.items()}


def summarize(verdicts: list[dict]) -> dict:
    if not verdicts:
        return {"programs": 0}
    out = {"programs": len(verdicts), "success": float(np.mean([v["level"] == "all_right" for v in verdicts]))}
    for k in sorted(RESULTS):
        out[k] = float(np.mean([v[k] for v in verdicts]))
    for lv in ("does_not_build", "raises", "wrong", "partly_right", "all_right", "sandbox_failure"):
        out[f"share_{lv}"] = float(np.mean([v["level"] == lv for v in verdicts]))
    out["cached"] = float(np.mean([v["cached"] for v in verdicts]))
    return out


def write_engine(base: str, algo, out: Path, info: dict, recalibrate: bool = False, scorer=None) -> str:
    """The tuned engine: the base engine's file with the policy's denoiser, and where it came from.
    With `recalibrate`, its ranking weights and answer-confidence model are fitted again for the
    tuned draws, as `training.emergence` fits them: on the base engine's calibration split (held-out
    corpus programs in held-out wordings; never an evaluation set)."""
    import torch

    state = torch.load(base, map_location="cpu", weights_only=False)
    den = algo.get_module().policy.denoiser
    state["denoiser"] = {k: v.detach().cpu().clone() for k, v in den.state_dict().items()}
    if scorer is not None:
        state["scorer"] = {k: v.detach().cpu().clone() for k, v in scorer.state_dict().items()}
    if recalibrate:
        from emergence.synthesis.fit import Bundle
        from training.emergence import calibrate

        calib, encodings = calibration_split(base, state)
        ranking = calibrate(Bundle.from_state(state), state.get("encoder_name", "minilm"), calib, encodings)
        info["recalibrated"] = {"rank_weights": ranking["weights"], "top1": ranking["top1"],
                                "was": state.get("rank_weights"), "records": ranking["records"]}
        state["rank_weights"] = ranking["weights"]
        if ranking["confidence"].get("model"):
            state["confidence"] = ranking["confidence"]["model"]
    state["crucible"] = info
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out)
    return str(out)


def tune_scorer(args, data: dict, episodes: list):
    """The base engine's coherence scorer fine-tuned on this run's verdicts (`emergence.crucible.scorer`)."""
    from emergence.crucible.problems import load_problems
    from emergence.crucible.scorer import fit_scorer, verdict_pairs
    from training.crucible_rl import load_bundle

    problems = load_problems(data["problems"])
    with np.load(data["encodings"]) as z:
        pooled = dict(zip(z["ids"].tolist(), z["pooled"]))
    return fit_scorer(load_bundle(args.engine).scorer, verdict_pairs(episodes), pooled,
                      {p.id: p.arity for p in problems}, epochs=args.tune_scorer, seed=args.seed)


def calibration_split(base: str, state: dict):
    """The base engine's calibration records and their encodings (cached beside its corpus)."""
    from emergence.synthesis import corpus
    from emergence.synthesis.engine import Encoding
    from training.emergence import corpus_dir, encode_cached

    folder = corpus_dir(base, state, need="calibration.jsonl")
    calib = corpus.load(os.path.join(folder, "calibration.jsonl"))
    name = state.get("encoder_name", "minilm")
    vecs, words = encode_cached([r.description for r in calib], name, os.path.join(folder, f"calibration-{name}.npz"),
                                words=True)
    return calib, [Encoding(v, w) for v, w in zip(vecs, words)]


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--engine", default=None, help="engine file to start from (default: the shipped engine)")
    ap.add_argument("--problems", help="problem file (default: the training sources, see emergence.crucible.sources)")
    ap.add_argument("--corpus", type=int, default=DEFAULTS["corpus"], help="problems generated from the corpus")
    ap.add_argument("--no-check", action="store_true", help="skip running MBPP references on their tests")
    ap.add_argument("--quick", action="store_true", help=f"small run: {QUICK}")
    ap.add_argument("--iterations", type=int, help=f"PPO iterations in all (default {DEFAULTS['iterations']})")
    ap.add_argument("--programs", type=int, help=f"programs per iteration (default {DEFAULTS['programs']})")
    ap.add_argument("--num-envs", type=int, help="environment copies stepped together (one sandbox batch)")
    ap.add_argument("--minibatch", type=int)
    ap.add_argument("--group", type=int, default=DEFAULTS["group"],
                    help="programs drawn per problem at a time (environment copies sharing a problem)")
    ap.add_argument("--skip-mastered", action=argparse.BooleanOptionalAction, default=True,
                    help="leave out problems the starting engine passes on every one of --group draws")
    # off by default: on the validation intents (one run) refitting them made the service answer more
    # often (0.875 -> 0.925 of requests) and be right less often when it did (precision 0.757 -> 0.716)
    ap.add_argument("--recalibrate", action=argparse.BooleanOptionalAction, default=False,
                    help="refit the tuned engine's ranking weights and answer confidence (as training.emergence)")
    ap.add_argument("--tune-scorer", type=int, default=0, metavar="EPOCHS",
                    help="after PPO, fine-tune the coherence scorer on the run's judged programs for EPOCHS epochs")
    ap.add_argument("--promote-at", type=float, default=0.6, help="curriculum: success rate that promotes a level")
    ap.add_argument("--sources", nargs="+", choices=SOURCES, help="train only on problems from these sources (corpus, written, mbpp; "
                                                 f"default with the gathered problems: {' '.join(DEFAULTS['sources'])})")
    ap.add_argument("--epochs", type=int, default=DEFAULTS["epochs"], help="PPO epochs per iteration")
    ap.add_argument("--lr", type=float, default=DEFAULTS["lr"])
    ap.add_argument("--entropy", type=float, default=DEFAULTS["entropy"], help="entropy bonus coefficient")
    ap.add_argument("--kl-ref", type=float, default=DEFAULTS["kl_ref"], help="KL penalty to the supervised engine")
    ap.add_argument("--clip", type=float, default=DEFAULTS["clip"])
    ap.add_argument("--reward", help='reward weights as JSON, e.g. \'{"speed": 0.0}\' (see emergence.crucible.reward)')
    ap.add_argument("--steps", type=int, default=3, help="DDIM steps of the policy's draws (the engine's default)")
    ap.add_argument("--max-words", type=int, default=40, help="intent word vectors the observation holds")
    ap.add_argument("--checkpoint-every", type=int, default=DEFAULTS["checkpoint_every"], help="iterations")
    ap.add_argument("--seed", type=int, default=DEFAULTS["seed"])
    ap.add_argument("--name", help="run name; an existing run of this name is resumed from its latest checkpoint")
    ap.add_argument("--storage", default=runs_path("crucible"), help=f"where runs go (default: crucible/ under {HELP})")
    ap.add_argument("--out", help="tuned engine file (default: <run>/engine.pt)")
    ap.add_argument("--use-gpu", action="store_true", help="the learner on one GPU")
    ap.add_argument("--pool-size", type=int, default=2, help="sandbox workers")
    ap.add_argument("--address", help="Ray cluster (default: RAY_ADDRESS, else a private local Ray)")
    args = ap.parse_args(argv)
    base = {**DEFAULTS, **(QUICK if args.quick else {})}
    for k in ("iterations", "programs", "num_envs", "minibatch"):
        if getattr(args, k) is None:
            setattr(args, k, base[k])
    if args.quick and args.corpus == DEFAULTS["corpus"]:
        args.corpus = QUICK["corpus"]
    for k in ("iterations", "programs", "num_envs", "minibatch", "epochs", "group", "checkpoint_every", "steps",
              "max_words"):
        if getattr(args, k) < 1:
            ap.error(f"--{k.replace('_', '-')} must be at least 1")
    if args.tune_scorer < 0 or args.corpus < 0:
        ap.error("--tune-scorer and --corpus must be >= 0")
    if not 0 < args.promote_at <= 1:
        ap.error("--promote-at must be in (0, 1]")
    if args.problems and not os.path.isfile(args.problems):
        ap.error(f"--problems: no file at {args.problems}")
    if args.reward:
        from emergence.crucible.reward import RewardWeights

        try:
            RewardWeights.from_dict(json.loads(args.reward))
        except (ValueError, TypeError) as exc:  # not JSON, not an object, an unknown or out-of-order weight
            ap.error(f"--reward: {exc}")
    if args.num_envs % args.group:
        ap.error("--num-envs must be a multiple of --group")
    if args.programs % args.num_envs:
        ap.error("--programs must be a multiple of --num-envs (each step draws one program per environment copy)")
    args.engine = os.path.abspath(args.engine or engine_default())
    if not os.path.exists(args.engine):
        ap.error(f"--engine: no engine file at {args.engine}")
    return args


def main(argv=None, report=None) -> dict:
    """`report(row)`: called with each iteration's row (Tune's `tune.report` in `tune.crucible`)."""
    args = parse_args(argv)
    import ray
    import torch

    from actors.sandbox_worker import get_or_create_pool
    from emergence.crucible.curriculum import Curriculum
    from emergence.crucible.monitor import plot_run
    from emergence.energy.observability import write_parquet
    from emergence.progress import EpochProgress, duration

    torch.set_num_threads(1)
    name = args.name or f"crucible-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}"
    run = Path(args.storage) / name
    run.mkdir(parents=True, exist_ok=True)
    started = ensure_ray(args.address, log_to_driver=False)
    pool = get_or_create_pool(size=args.pool_size)  # held here; the environment finds it by name
    t_start = time.time()
    try:
        ray.get(pool.stats.remote(), timeout=300)  # its workers started (a sandbox that can't start says so now)
        data = prepare(run, args)
        ckpt = run / "checkpoint"
        state = json.loads((ckpt / STATE).read_text()) if (ckpt / STATE).exists() else {}
        curriculum = Curriculum.from_state(state["curriculum"]) if state else None
        algo = build_config(args, data, curriculum.level if curriculum else data["levels"][0]).build_algo()
        if state:
            algo.restore_from_path(str(ckpt))
            print(f"resumed {name} at iteration {state['iteration']}", flush=True)
        else:
            t0 = time.time()
            solved = probe(algo, args.group)
            kept = [p for p in env_of(algo).problems if solved[p.id] < 1.0] if args.skip_mastered else \
                env_of(algo).problems
            if not kept:
                raise SystemExit("the starting engine passes every problem on every draw: nothing to learn here")
            levels = sorted({p.difficulty for p in kept})
            rates = {lv: float(np.mean([solved[p.id] for p in kept if p.difficulty == lv])) for lv in levels}
            start = Curriculum.starting_level(rates, args.promote_at)
            # the success rate over one iteration's programs decides a promotion (a window of a few
            # groups would promote on one lucky problem)
            curriculum = Curriculum(levels, promote_at=args.promote_at, window=args.programs, start=start)
            state = {"iteration": 0, "seconds": 0.0, "programs": 0, "start_success": rates,
                     "kept": [p.id for p in kept], "probe_s": time.time() - t0}
            print(f"starting engine: {sum(v == 1.0 for v in solved.values())} of {len(solved)} problems passed on "
                  f"all {args.group} draws" + (" (left out)" if args.skip_mastered else "") + "; success per level: "
                  + ", ".join(f"{k}: {v:.2f}" for k, v in rates.items()) + f" -> level {start}", flush=True)
        env_of(algo).keep(state["kept"])
        env_of(algo).set_curriculum(curriculum.level, curriculum.review)
        rows = _read_rows(ckpt / "metrics.parquet") if state else []
        episodes = _read_rows(ckpt / "episodes.parquet") if state else []
        gauges = _gauges()
        progress = EpochProgress("crucible", args.iterations, start=state["iteration"])
        recent: list = list(state.get("recent", []))  # the moving average's window, carried through checkpoints
        for it in range(state["iteration"] + 1, args.iterations + 1):
            t0 = time.time()
            result = algo.train()
            verdicts = env_of(algo).drain()
            promoted = [e for v in verdicts if (e := curriculum.record(v["difficulty"], v["level"] == "all_right"))]
            env_of(algo).set_curriculum(curriculum.level)
            recent = (recent + [v["level"] == "all_right" for v in verdicts])[-2048:]
            learner = result.get("learners", {}).get("default_policy", {})
            row = {"iteration": it, **summarize(verdicts), "success_avg": float(np.mean(recent)) if recent else 0.0,
                   "level": curriculum.level, "promotions": len(promoted),
                   "kl_ref": float(learner.get("kl_ref", float("nan"))),
                   "entropy": float(learner.get("entropy", float("nan"))),
                   "policy_loss": float(learner.get("policy_loss", float("nan"))),
                   "vf_loss": float(learner.get("vf_loss", float("nan"))), "seconds": time.time() - t0,
                   "sandbox_failures": env_of(algo).judge.counts["sandbox_failures"]}
            rows.append(row)
            episodes += [{"iteration": it, **{k: v[k] for k in EPISODE_KEYS}} for v in verdicts]
            _publish(gauges, row)
            if report is not None:
                report(row)
            state["iteration"], state["programs"], state["recent"] = it, state["programs"] + row["programs"], recent
            state["seconds"] += row["seconds"]
            print(progress.line(it, {"reward": row.get("reward"), "success": row.get("success"),
                                     "avg": row["success_avg"], "level": row["level"], "kl": row["kl_ref"],
                                     "entropy": row["entropy"]}), flush=True)
            for e in promoted:
                print(f"curriculum: level {e['from']} -> {e['to']} (success {e['rate']:.2f})", flush=True)
            if it % args.checkpoint_every == 0 or it == args.iterations:
                _checkpoint(algo, run, {**state, "curriculum": curriculum.state()}, rows, episodes)
        out = Path(args.out) if args.out else run / "engine.pt"
        info = {"tuned": True, "method": "crucible PPO", "run": name, "run_path": str(run),
                "command": "python -m training.crucible " + " ".join(sys.argv[1:] if argv is None else argv),
                "base": args.engine, "base_sha256": digest(args.engine),
                "problems": {"file": data["problems"], "count": data["count"], "sha256": data["sha256"]},
                "iterations": state["iteration"], "programs": state["programs"], "seconds": round(state["seconds"], 1),
                "seed": args.seed, "finished": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "config": {k: getattr(args, k) for k in ("programs", "num_envs", "minibatch", "epochs", "lr", "entropy",
                                                         "kl_ref", "clip", "steps", "reward")},
                "curriculum": curriculum.state()["events"], "final_level": curriculum.level,
                "problems_kept": len(state["kept"]), "start_success": state["start_success"]}
        scorer = None
        if args.tune_scorer:
            scorer, info["scorer"] = tune_scorer(args, data, episodes)
            print(f"scorer fine-tuned on {info['scorer']['pairs']} judged programs: held-out ROC-AUC "
                  f"{info['scorer']['held_out_auc_before']} -> {info['scorer']['held_out_auc_after']}", flush=True)
        path = write_engine(args.engine, algo, out, info, recalibrate=args.recalibrate, scorer=scorer)
        write_parquet(rows, run / "metrics.parquet")
        write_parquet(episodes, run / "episodes.parquet")
        plots = plot_run(rows, episodes, run)
        print(f"tuned engine: {path} ({state['iteration']} iterations, {state['programs']} programs, "
              f"{duration(state['seconds'])} of PPO in all, {duration(time.time() - t_start)} this time); "
              f"metrics: {run / 'metrics.parquet'}", flush=True)
        algo.stop()
        return {"engine_path": path, "run": str(run), "rows": rows, "episodes": len(episodes), "plots": plots,
                "info": info}
    finally:
        if started:
            ray.shutdown()


def _read_rows(path: Path) -> list:
    if not path.exists():
        return []
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def _checkpoint(algo, run: Path, state: dict, rows: list, episodes: list) -> None:
    """The algorithm (save_to_path) with the driver's state and tables in the same directory,
    swapped in whole: a resumed run never pairs one checkpoint with another's state."""
    from emergence.energy.observability import write_parquet

    tmp, ckpt = run / "checkpoint.tmp", run / "checkpoint"
    shutil.rmtree(tmp, ignore_errors=True)
    algo.save_to_path(str(tmp))
    write_parquet(rows, tmp / "metrics.parquet")
    write_parquet(episodes, tmp / "episodes.parquet")
    (tmp / STATE).write_text(json.dumps(state, default=float))
    old = run / "checkpoint.old"
    shutil.rmtree(old, ignore_errors=True)
    if ckpt.exists():
        os.replace(ckpt, old)
    os.replace(tmp, ckpt)
    shutil.rmtree(old, ignore_errors=True)


def _gauges() -> dict:
    """The iteration's figures as Ray metrics (dashboard / Prometheus)."""
    from ray.util.metrics import Gauge

    names = {"reward": "Mean reward per program", "success": "Share of programs passing every test",
             "success_avg": "Success rate, moving average", "level": "Curriculum level",
             "kl_ref": "KL(policy || supervised engine)", "entropy": "Policy entropy"}
    return {k: Gauge(f"emergence_crucible_{k}", doc) for k, doc in names.items()}


def _publish(gauges: dict, row: dict) -> None:
    for k, g in gauges.items():
        v = row.get(k)
        if v is not None and np.isfinite(v):
            g.set(float(v))


if __name__ == "__main__":
    main(sys.argv[1:])
