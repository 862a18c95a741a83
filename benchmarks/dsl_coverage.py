"""How much of MBPP's train split the DSL can express at all (emergence/crucible/expressible.py).

For every task of the split: convert it (emergence/crucible/mbpp.py), search for programs that pass
its tests (breadth-first, no intent), and count it expressible only when one of them copies no
expected output and agrees with the task's reference code on 20 generated inputs, both run in the
sandbox. The baseline in the same run is the naive count: tasks where some program passes the
three tests. Tasks that don't convert count as not expressible, under their reason.

    python -m benchmarks.dsl_coverage [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from benchmarks.common import print_targets, target, write_report

MBPP = "../shared/datasets/mbpp/mbpp_train_validation.jsonl"


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    ap = argparse.ArgumentParser(prog="python -m benchmarks.dsl_coverage", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=MBPP, help="MBPP JSONL (train and validation splits)")
    ap.add_argument("--split", default="train", choices=["train", "validation"])
    ap.add_argument("--budget-s", type=float, default=2.0, help="search time per task")
    ap.add_argument("--max-steps", type=int, default=3, help="longest pipeline searched")
    ap.add_argument("--quick", action="store_true", help="the first 40 tasks, 1 s of search each")
    ap.add_argument("--json", help="write the report here")
    args = ap.parse_args(argv)
    if args.budget_s <= 0 or args.max_steps < 1:
        ap.error("--budget-s must be > 0 and --max-steps >= 1")

    from emergence.crucible.expressible import NEED, check
    from emergence.crucible.mbpp import load_mbpp
    from emergence.sandbox import open_executor

    problems, skipped = load_mbpp(args.data, args.split)  # references checked in the sandbox
    tasks = len(problems) + sum(skipped.values())
    if args.quick:
        problems, args.budget_s = problems[:40], 1.0
        tasks, skipped = len(problems), Counter()
    rows, t0 = [], time.time()
    with open_executor() as executor:
        for i, p in enumerate(problems, 1):
            r = check(p, executor, budget_s=args.budget_s, max_steps=args.max_steps)
            rows.append({**r, "difficulty": p.difficulty})
            print(f"[{i}/{len(problems)}] {p.id:<10} {'yes' if r['expressible'] else 'no ':<4} {r['reason']}",
                  flush=True)
    expressible = [r for r in rows if r["expressible"]]
    passes = [r for r in rows if r["candidates"]]
    reasons = Counter(r["reason"] for r in rows if not r["expressible"])
    reasons.update({f"does not convert: {k}": v for k, v in skipped.items()})
    by_level = {}
    for lv in sorted({r["difficulty"] for r in rows}):
        at = [r for r in rows if r["difficulty"] == lv]
        by_level[str(lv)] = {"tasks": len(at), "expressible": sum(r["expressible"] for r in at)}
    figures = {
        "split": args.split, "tasks": tasks, "converted": len(problems), "search_budget_s": args.budget_s,
        "max_steps": args.max_steps, "agreement_inputs": NEED,
        "passes_the_tests": len(passes), "passes_the_tests_share": len(passes) / max(tasks, 1),
        "expressible": len(expressible), "expressible_share": len(expressible) / max(tasks, 1),
        "by_difficulty": by_level, "not_expressible_by_reason": dict(reasons.most_common()),
        "expressible_tasks": {r["id"]: [s["op"] for s in r["program"]["steps"]] for r in expressible},
        "seconds": round(time.time() - t0, 1),
    }
    targets = {f"share of MBPP {args.split} expressible (agrees with the reference)":
               target(round(figures["expressible_share"], 4), 0.5, ">=")}
    report = write_report(args.json, "dsl_coverage", figures, targets, argv)
    print(f"\n{len(expressible)} of {tasks} tasks expressible ({figures['expressible_share']:.3f}); "
          f"{len(passes)} pass the tests ({figures['passes_the_tests_share']:.3f})")
    print_targets(targets)
    return report


if __name__ == "__main__":
    main()
