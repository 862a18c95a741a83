"""The crucible's benchmark: the supervised engine against crucible-tuned engines, same run, same
sampling budget, on tasks never trained on.

    python -m benchmarks.crucible --tuned runs/crucible/s0/engine.pt runs/crucible/s1/engine.pt \\
        runs/crucible/s2/engine.pt --json benchmarks/results/crucible-val.json
    python -m benchmarks.crucible --tuned ... --tasks benchmarks/tasks/intents_test.jsonl \\
        --json benchmarks/results/crucible-test.json       # once, at the end: appended to test-runs.jsonl

Per engine (the base, then each tuned one: one per training seed) and task, without examples:
- answer: the engine's first candidate passes every test (sandbox); top-10: one of its first ten;
- raw-draw pass@1 and pass@10: the sampler's draws, each rounded to one program (HumanEval's
  estimator over `--samples` draws);
- the served configuration (`SynthesisService`: the engine's answer when confident, else a
  composition, else a refusal): answer pass@1 (refusals count wrong) and precision when answering
  (right answers / answers given);
- with `--examples`: the engine's answer with two examples (as `benchmarks.synthesis`), on the
  intents.
The tuned engines' figures are the mean over seeds; each difference to the base has a paired 95 %
bootstrap interval over tasks (the task's mean over seeds minus the base). Per family, the tuned
mean minus the base. Latency: p50 of the engine's synthesis (no verification), base and tuned.
The PPO iteration time is what the tuned engines' runs recorded (seconds per iteration of their
programs), not re-timed here. `--mbpp` adds MBPP's validation split as a task set, `--written-dev`
the written problems kept for choices (another writer's plain words than those trained on).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import print_targets, target, write_report
from benchmarks.synthesis import Scorer, engine_task, percentile, service_task, with_examples

ROOT = Path(__file__).resolve().parents[1]
VAL = ROOT / "benchmarks" / "tasks" / "intents_val.jsonl"
TEST = ROOT / "benchmarks" / "tasks" / "intents_test.jsonl"
TEST_RUNS = ROOT / "benchmarks" / "results" / "test-runs.jsonl"
KEYS = ("answer", "top10", "pass@1", "pass@10", "service", "service_answered", "examples")
# the supervised engine's figures the targets are stated against (benchmarks.synthesis, shipped
# engine): answer pass@1 on the second held-out set, raw-draw pass@1 on validation
BASE_STATED = {"test_answer": 0.367, "val_raw": 0.533}


def paired_interval(diffs, reps: int = 4000, seed: int = 0) -> list:
    """95 % bootstrap interval of the mean of per-task differences."""
    d = np.asarray(diffs, dtype=float)
    if not len(d):
        return [float("nan"), float("nan")]
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), (reps, len(d)))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def evaluate(engine, scorer, tasks, samples: int, examples: bool) -> list[dict]:
    from emergence.synthesis.pipeline import SynthesisService

    verify = lambda code, fn, tests: len(tests) if scorer.passes(code, fn, tests) else 0  # noqa: E731
    service = SynthesisService(engine, verify=verify)
    rows = []
    for task in tasks:
        e = engine_task(engine, scorer, task, samples)
        s = service_task(service, scorer, task, examples=False)
        row = {"id": task.id, "family": task.family, "answer": float(e["answer"]), "top10": float(e["top10"]),
               "pass@1": e["pass@1"], "pass@10": e["pass@10"], "latency_s": e["latency_s"],
               "service": float(s["answer"]), "service_answered": float(s["answered"])}
        if examples:
            row["examples"] = float(with_examples(engine, scorer, task, wide=service)["answer"])
        rows.append(row)
    return rows


def figures_of(rows: list[dict]) -> dict:
    out = {k: float(np.mean([r[k] for r in rows])) for k in KEYS if k in rows[0]}
    answered = sum(r["service_answered"] for r in rows)
    out["service_precision"] = (sum(r["service"] for r in rows) / answered) if answered else float("nan")
    out["latency_p50_ms"] = 1000 * percentile([r["latency_s"] for r in rows], 50)
    return out


def families(rows: list[dict], key: str) -> dict:
    fam: dict = {}
    for r in rows:
        fam.setdefault(r["family"], []).append(r[key])
    return {f: float(np.mean(v)) for f, v in sorted(fam.items())}


def compare(base: list[dict], tuned: list[list[dict]]) -> dict:
    """Tuned (mean over seeds) against base, per figure, with paired intervals and per family."""
    keys = [k for k in KEYS if k in base[0]]
    mean_tuned = [{k: float(np.mean([t[i][k] for t in tuned])) for k in keys} | {"family": base[i]["family"]}
                  for i in range(len(base))]
    out = {}
    for k in keys:
        diffs = [m[k] - b[k] for m, b in zip(mean_tuned, base)]
        out[k] = {"base": float(np.mean([b[k] for b in base])), "tuned": float(np.mean([m[k] for m in mean_tuned])),
                  "per_seed": [float(np.mean([r[k] for r in t])) for t in tuned],
                  "difference": float(np.mean(diffs)), "interval95": paired_interval(diffs)}
    fam_base, fam_tuned = families(base, "pass@1"), families(mean_tuned, "pass@1")
    out["families_raw_pass@1"] = {f: {"base": fam_base[f], "tuned": fam_tuned[f], "difference": fam_tuned[f] - fam_base[f]}
                                  for f in fam_base}
    fam_base, fam_tuned = families(base, "answer"), families(mean_tuned, "answer")
    out["families_answer"] = {f: {"base": fam_base[f], "tuned": fam_tuned[f], "difference": fam_tuned[f] - fam_base[f]}
                              for f in fam_base}
    return out


def run_info(path: str) -> dict:
    """What a tuned engine file says of its training run, and its iteration times."""
    import torch

    info = torch.load(path, map_location="cpu", weights_only=False).get("crucible")
    if not info:
        raise ValueError(f"{path} is not a crucible-tuned engine (no 'crucible' record)")
    from emergence.models import digest

    out = {k: info.get(k) for k in ("run", "seed", "iterations", "programs", "seconds", "final_level", "base_sha256")}
    out["sha256"] = digest(path)
    metrics = Path(info.get("run_path", "")) / "metrics.parquet"
    if metrics.exists():
        import pyarrow.parquet as pq

        rows = pq.read_table(metrics).to_pylist()
        out["iteration_s_p50"] = float(np.median([r["seconds"] for r in rows]))
        out["programs_per_iteration"] = float(np.median([r["programs"] for r in rows]))
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tuned", nargs="+", required=True, help="crucible-tuned engine files (one per training seed)")
    ap.add_argument("--base", help="the supervised engine (default: the shipped one)")
    ap.add_argument("--tasks", default=str(VAL), help="JSONL task file (default: the validation intents)")
    ap.add_argument("--mbpp", action="store_true", help="also MBPP's validation split (../shared/datasets/mbpp)")
    ap.add_argument("--written-dev", action="store_true",
                    help="also the written problems kept for choices (emergence/crucible/data/written-dev.jsonl)")
    ap.add_argument("--samples", type=int, default=16, help="diffusion draws per synthesis (the engine's default)")
    ap.add_argument("--examples", action="store_true", help="also the answer with two examples (slower)")
    ap.add_argument("--quick", action="store_true", help="the first 20 tasks")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from emergence.models import default_path
    from emergence.sandbox import open_executor
    from emergence.synthesis.engine import Engine
    from emergence.synthesis.evaluation import load_tasks

    base_path = args.base or str(default_path("engine"))
    sets = {"intents": load_tasks(args.tasks)}
    mbpp_left_out = 0
    if args.mbpp:
        from emergence.crucible.mbpp import load_mbpp
        from emergence.crucible.problems import as_task
        from emergence.crucible.sources import MBPP

        if not MBPP.exists():
            ap.error(f"--mbpp: no MBPP file at {MBPP}")
        mbpp = [as_task(p) for p in load_mbpp(MBPP, "validation")[0]]
        sets["mbpp_validation"] = [t for t in mbpp if t.arity <= 4]  # the engine takes 1 to 4 parameters
        mbpp_left_out = len(mbpp) - len(sets["mbpp_validation"])
    if args.written_dev:
        from emergence.crucible.problems import as_task, load_problems
        from emergence.crucible.sources import WRITTEN_DEV

        if not WRITTEN_DEV.exists():
            ap.error(f"--written-dev: no file at {WRITTEN_DEV}")
        sets["written_dev"] = [as_task(p) for p in load_problems(WRITTEN_DEV)]
    if args.quick:
        sets = {k: v[:20] for k, v in sets.items()}
    infos = [run_info(p) for p in args.tuned]
    encoder = None
    figures: dict = {"base": base_path, "tuned": args.tuned, "runs": infos, "samples": args.samples, "sets": {},
                     "targets_stated_against": BASE_STATED, "mbpp_left_out_arity_over_4": mbpp_left_out}
    per_task: dict = {}
    with open_executor() as ex:
        scorer = Scorer(ex)
        engines = [("base", base_path)] + [(f"tuned{i}", p) for i, p in enumerate(args.tuned)]
        for name, path in engines:
            engine = Engine.load(path, encoder=encoder)
            encoder = engine.encoder  # one sentence encoder for all
            if name == "base" and engine.tuning:
                print(f"warning: the base engine {path} is itself crucible-tuned (run {engine.tuning.get('run')}); "
                      "to compare with the supervised engine, pass it with --base (docs/crucible.md says where "
                      "the shipped one's supervised base is)", file=sys.stderr, flush=True)
            engine.encoder.encode(["warm up"])
            for set_name, tasks in sets.items():
                t0 = time.time()
                # with examples on the intents only: on MBPP the answer with examples is nearly always a
                # second, wider round that finds nothing (the DSL expresses few of its tasks), at minutes a set
                per_task[(name, set_name)] = evaluate(engine, scorer, tasks, args.samples,
                                                      args.examples and set_name == "intents")
                print(f"{name} on {set_name}: {figures_of(per_task[(name, set_name)])} ({time.time() - t0:.0f}s)",
                      flush=True)
    for set_name, tasks in sets.items():
        base = per_task[("base", set_name)]
        tuned = [per_task[(f"tuned{i}", set_name)] for i in range(len(args.tuned))]
        figures["sets"][set_name] = {"tasks": len(tasks), "base": figures_of(base),
                                     "tuned_per_seed": [figures_of(t) for t in tuned], "compare": compare(base, tuned)}
    main_set = figures["sets"]["intents"]
    c, tuned_figs = main_set["compare"], main_set["tuned_per_seed"]
    is_test = Path(args.tasks).resolve() == TEST.resolve()
    targets = {}
    # +10 points over the supervised engine measured in this run (the issue stated them against an
    # earlier engine's figures, BASE_STATED; the shipped supervised engine is measured here beside)
    if is_test:
        targets["answer pass@1 without examples, second held-out set (tuned, mean of seeds)"] = target(
            c["answer"]["tuned"], round(c["answer"]["base"] + 0.10, 4), ">=")
        targets["service precision when answering, second held-out set (tuned, mean of seeds)"] = target(
            float(np.nanmean([f["service_precision"] for f in tuned_figs])), 0.8, ">=")
    else:
        targets["raw-draw pass@1 on validation (tuned, mean of seeds)"] = target(
            c["pass@1"]["tuned"], round(c["pass@1"]["base"] + 0.10, 4), ">=")
        worst = min(v["difference"] for v in c["families_raw_pass@1"].values())
        targets["worst validation family, raw-draw pass@1 change (mean of seeds)"] = target(worst, -0.05, ">=")
        worst_a = min(v["difference"] for v in c["families_answer"].values())
        targets["worst validation family, answer pass@1 change (mean of seeds)"] = target(worst_a, -0.05, ">=")
    lat_base = main_set["base"]["latency_p50_ms"]
    lat_tuned = float(np.mean([f["latency_p50_ms"] for f in tuned_figs]))
    targets["latency p50, tuned / supervised"] = target(lat_tuned / lat_base, 1.2, "<=")
    iters = [i["iteration_s_p50"] * 512 / i["programs_per_iteration"] for i in infos if i.get("iteration_s_p50")]
    if iters:
        targets["PPO iteration of 512 programs, seconds (2 cores, from the runs' metrics)"] = target(
            float(np.median(iters)), 60, "<")
    argv = list(sys.argv[1:] if argv is None else argv)
    report = write_report(args.json, "crucible", figures, targets, argv)
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "compare"} for k, v in figures["sets"].items()},
                     indent=1, default=str)[:3000])
    print_targets(targets)
    if is_test:
        _append_test_run(report, argv)
    return report


def _append_test_run(report: dict, argv: list) -> None:
    """Every run on the second held-out set is kept: commit, command, time, figures."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = None
    row = {"when": report["when"], "commit": commit, "command": report["command"], "benchmark": "crucible",
           "targets": report["targets"],
           "figures": {k: v["compare"] for k, v in report["figures"]["sets"].items()}}
    os.makedirs(TEST_RUNS.parent, exist_ok=True)
    with open(TEST_RUNS, "a") as f:
        f.write(json.dumps(row, default=float) + "\n")


if __name__ == "__main__":
    main()
