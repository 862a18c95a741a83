"""The served engine through HTTP against the synthesis benchmark's `service` rows for the same model.

    python -m benchmarks.synthesis_http --url http://127.0.0.1:8000 \
        --tasks benchmarks/tasks/intents_val.jsonl --against benchmarks/results/synthesis-val.json [--json PATH]

Each task's intent goes to POST /synthesize as a user would send it (arity given; all tasks, then
all again with their first two tests as examples), and the answer's code runs on all the task's tests in a local
sandbox, as the benchmark scores it. A refusal (422 cannot_synthesize) counts as a failure. The
targets say whether the served figures equal the benchmark's `service` and `service_examples`
rows, which must have measured the same model file (its sha256, from GET /synthesize/model's card
or --model). Start the server with an empty memory root, or remembered tools change the answers.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import requests

from benchmarks.common import print_targets, target, write_report


def ask(url: str, task, examples: bool) -> dict:
    body = {"intent": task.intent, "arity": task.arity}
    if examples:
        body["examples"] = task.tests[:2]
    t0 = time.perf_counter()
    r = requests.post(f"{url}/synthesize", json=body, timeout=300)
    wall = time.perf_counter() - t0
    if r.status_code == 422 and "cannot_synthesize" in r.json():
        return {"answered": False, "wall_s": wall}
    if r.status_code != 200:
        raise RuntimeError(f"task {task.id}: HTTP {r.status_code}: {r.text[:300]}")
    return {"answered": True, "answer": r.json(), "wall_s": wall}


def rates(rows: list[dict]) -> dict:
    answered = [r for r in rows if r["answered"]]
    right = sum(r["right"] for r in answered)
    return {"tasks": len(rows), "answer_pass": right / len(rows), "answered": len(answered),
            "precision": right / len(answered) if answered else float("nan")}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="the running app (make run)")
    ap.add_argument("--tasks", required=True, help="JSONL task file (id, intent, arity, tests)")
    ap.add_argument("--against", required=True, help="the synthesis benchmark's JSON for the same tasks and model")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)

    from benchmarks.synthesis import Scorer
    from emergence.sandbox import open_executor
    from emergence.synthesis.evaluation import load_tasks

    with open(args.against) as f:
        bench = json.load(f)
    served = requests.get(f"{args.url}/synthesize/model", timeout=60).json()
    sha = (served.get("card") or {}).get("sha256")
    if not served.get("loaded") or sha != bench["figures"]["model"].get("sha256"):
        ap.error(f"the server's engine (sha256 {sha}, loaded {served.get('loaded')}) is not the model "
                 f"{args.against} measured ({bench['figures']['model'].get('sha256')})")
    if bench["figures"].get("task_file") and bench["figures"]["task_file"].split("/")[-1] != args.tasks.split("/")[-1]:
        ap.error(f"{args.against} measured {bench['figures']['task_file']}, not {args.tasks}")
    tasks = load_tasks(args.tasks)
    rows = {"service": [], "service_examples": []}
    with open_executor() as ex:
        scorer = Scorer(ex)
        # every intent without examples first: answers verified on examples are stored in the
        # server's memory, and one stored early could otherwise answer a later request
        for name, examples in (("service", False), ("service_examples", True)):
            for task in tasks:
                row = ask(args.url, task, examples)
                a = row.pop("answer", None)
                row["right"] = bool(a) and scorer.passes(a["code"], a["function_name"], task.tests)
                rows[name].append(row)
    figures = {"url": args.url, "tasks": len(tasks), "task_file": args.tasks, "model": {"sha256": sha},
               "against": args.against, **{k: rates(v) for k, v in rows.items()},
               "benchmark": {k: bench["figures"][k] for k in rows}}
    targets = {f"{k}: |served - benchmark| pass@1": target(abs(figures[k]["answer_pass"] -
                                                               bench["figures"][k]["answer_pass"]), 0.0, "<=")
               for k in rows}
    for k in rows:
        print(f"{k:<18} served {figures[k]['answer_pass']:.3f} (precision {figures[k]['precision']:.3f}, "
              f"{figures[k]['answered']}/{len(tasks)} answered)   benchmark {bench['figures'][k]['answer_pass']:.3f}")
    report = write_report(args.json, "synthesis_http", figures, targets, sys.argv[1:] if argv is None else list(argv))
    print_targets(targets)
    return report


if __name__ == "__main__":
    main()
