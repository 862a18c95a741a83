"""MBPP (Austin et al. 2021, CC BY 4.0) as crucible problems.

Only the `train` split (task ids 601-974) is a training source; `validation` (511-600) is for
choices; nothing else is read. A task converts when every assert of its `test_list` has the form
`assert f(<literals>) == <literal>` (parsed with `ast`, never evaluated as code) with one entry
function, no `test_setup_code`, and JSON-representable values (tuples become lists, as the sandbox
returns them; sets, bytes, complex numbers and dicts with non-string keys do not convert). Each
skipped task is counted under its reason.

Converted tasks whose reference then fails its tests in the sandbox are skipped too.

Difficulty (MBPP has none): by the length of the reference solution's body -- up to 3 lines 1,
up to 8 lines 2, else 3.

    python -m emergence.crucible.mbpp --split train --out runs/crucible/mbpp-train.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
import math
from collections import Counter
from pathlib import Path

from .problems import Problem, parse_problem, reference_failures, save_problems

SPLITS = {"train": range(601, 975), "validation": range(511, 601)}
LICENSE = "CC BY 4.0, Austin et al. 2021 (google-research/mbpp)"


class Skip(Exception):
    """Why a task does not convert (the message is its reason, counted)."""


def _json_value(value):
    """A literal as JSON would carry it; Skip for what JSON can't say."""
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise Skip("non-finite float")
        return value
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise Skip("dict with non-string keys")
        return {k: _json_value(v) for k, v in value.items()}
    raise Skip(f"{type(value).__name__} value")


def _literal(node):
    try:
        return _json_value(ast.literal_eval(node))
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        raise Skip("argument or expected value not a literal") from None


def parse_assert(line: str) -> tuple[str, list, object]:
    """(entry, args, expected) of `assert f(<literals>) == <literal>`; Skip otherwise."""
    try:
        tree = ast.parse(line.strip())
    except SyntaxError:
        raise Skip("assert does not parse") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        raise Skip("test is not one assert")
    test = tree.body[0].test
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        raise Skip("assert is not `f(...) == value`")
    left, right = test.left, test.comparators[0]
    if not isinstance(left, ast.Call) and isinstance(right, ast.Call):
        left, right = right, left
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name)):
        raise Skip("assert is not `f(...) == value`")
    if left.keywords or any(isinstance(a, ast.Starred) for a in left.args):
        raise Skip("keyword or starred arguments")
    if not left.args:
        raise Skip("no arguments")
    return left.func.id, [_literal(a) for a in left.args], _literal(right)


def difficulty(code: str) -> int:
    body = [ln for ln in code.replace("\r\n", "\n").split("\n") if ln.strip() and not ln.lstrip().startswith("#")]
    n = max(0, len(body) - 1)  # less the def line
    return 1 if n <= 3 else 2 if n <= 8 else 3


def convert(record: dict) -> Problem:
    """One MBPP record as a problem (reference: its code); Skip naming why it can't be."""
    if record.get("test_setup_code", "").strip():
        raise Skip("needs test_setup_code")
    parsed = [parse_assert(t) for t in record["test_list"]]
    entries = {e for e, _, _ in parsed}
    if len(entries) != 1:
        raise Skip("asserts call more than one function")
    if len({len(a) for _, a, _ in parsed}) != 1:
        raise Skip("asserts pass different numbers of arguments")
    entry = entries.pop()
    code = record["code"].replace("\r\n", "\n")
    row = {"id": f"mbpp_{record['task_id']}", "title": f"MBPP task {record['task_id']}",
           "description": record["text"].strip(), "difficulty": difficulty(code),
           "test_cases": [a for _, a, _ in parsed], "expected_outputs": [e for _, _, e in parsed], "family": "mbpp",
           "provenance": {"source": "mbpp", "task_id": record["task_id"], "split": record["split"], "license": LICENSE},
           "reference": {"code": code, "entry": entry}}
    return parse_problem(row, f"MBPP task {record['task_id']}")


def load_mbpp(path, split: str, check: bool = True, executor=None) -> tuple[list[Problem], Counter]:
    """The convertible tasks of one split, and the count of skipped ones by reason. `check`: run
    each reference on its converted tests in the sandbox and skip those that fail (a tuple the
    code tells apart from a list, say)."""
    if split not in SPLITS:
        raise ValueError(f"split {split!r}: only {sorted(SPLITS)} may be used (train to train, validation for choices)")
    problems, skipped = [], Counter()
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("split") != split:
                continue
            if record["task_id"] not in SPLITS[split]:
                raise ValueError(f"{path}, line {n}: task {record['task_id']} is labelled {split!r} but is outside "
                                 f"its ids {SPLITS[split].start}-{SPLITS[split].stop - 1}")
            try:
                problems.append(convert(record))
            except Skip as why:
                skipped[str(why)] += 1
    if check:
        failures = reference_failures(problems, executor)
        skipped["reference fails its converted tests"] += len(failures)
        problems = [p for p in problems if p.id not in failures]
    return problems, +skipped


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m emergence.crucible.mbpp", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/datasets/mbpp/mbpp_train_validation.jsonl", help="MBPP JSONL file")
    ap.add_argument("--split", choices=sorted(SPLITS), required=True)
    ap.add_argument("--out", help="write the problems here (JSONL)")
    ap.add_argument("--no-check", action="store_true", help="don't run the references in the sandbox")
    args = ap.parse_args(argv)
    problems, skipped = load_mbpp(args.data, args.split, check=not args.no_check)
    if args.out:
        save_problems(problems, args.out)
    total = len(problems) + sum(skipped.values())
    summary = {"split": args.split, "tasks": total, "converted": len(problems),
               "by_difficulty": dict(sorted(Counter(p.difficulty for p in problems).items())),
               "skipped": dict(skipped.most_common()), "out": args.out}
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
