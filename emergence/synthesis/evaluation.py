"""Scoring a synthesizer on a task file: loading tasks, running candidates, pass@k.

A task file has one JSON object a line:
    {"id": "...", "intent": "...", "family": "numbers", "arity": 1,
     "tests": [{"args": [...], "expected": ...}, ...]}

A candidate passes a task when its code returns the expected value on every test, judged in a
sandbox (`score_candidates`); `passes_in_process` is a cheap pre-filter for programs of the DSL.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..sandbox import Executor, parse_tests, values_equal
from .program import Checked, Program
from .runtime import build_callable
from .types import TypeCheckError


@dataclass
class Task:
    id: str
    intent: str
    arity: int
    tests: list = field(default_factory=list)  # [{"args": [...], "expected": ...}]
    family: str = "other"


def _task(row, where: str) -> Task:
    if not isinstance(row, dict):
        raise ValueError(f"{where}: need a JSON object, got {type(row).__name__}")
    for name in ("id", "intent"):
        if not isinstance(row.get(name), str) or not row[name].strip():
            raise ValueError(f"{where}: field {name!r} must be a non-empty string")
    family = row.get("family", "other")
    if not isinstance(family, str) or not family:
        raise ValueError(f"{where}: field 'family' must be a non-empty string")
    arity = row.get("arity")
    if not isinstance(arity, int) or isinstance(arity, bool) or arity < 1:
        raise ValueError(f"{where}: field 'arity' must be a positive integer, got {arity!r}")
    tests = row.get("tests")
    if not isinstance(tests, list) or not tests:
        raise ValueError(f"{where}: field 'tests' must be a non-empty list")
    try:
        parse_tests(tests)
    except ValueError as exc:
        raise ValueError(f"{where}: field {exc}") from None
    for i, t in enumerate(tests):
        if "expected" not in t:
            raise ValueError(f"{where}: field tests[{i}]: no 'expected' value")
        if len(t["args"]) != arity:
            raise ValueError(f"{where}: field tests[{i}].args: {len(t['args'])} arguments, arity is {arity}")
    return Task(row["id"], row["intent"], arity, tests, family)


def load_tasks(path) -> list[Task]:
    """The tasks of a JSON-lines file; a malformed line raises ValueError naming it and the field."""
    tasks, ids = [], set()
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}, line {n}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not valid JSON ({exc})") from None
            task = _task(row, where)
            if task.id in ids:
                raise ValueError(f"{where}: field 'id': {task.id!r} appears twice")
            ids.add(task.id)
            tasks.append(task)
    return tasks


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimate from n samples of which c are correct (Chen et al. 2021):
    1 - C(n-c, k) / C(n, k), as a product so large n neither overflows nor loses precision."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{name}: need an integer, got {v!r}")
    if n < 1 or not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need n >= 1, 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0  # every draw of k samples holds a correct one
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def score_candidates(executor: Executor, codes: list[tuple[str, str]], tests) -> list[bool]:
    """For each (code, function name): did it return the expected value on every test in the
    sandbox? Code that doesn't load, raises or times out fails. A sandbox that can't run at all
    raises (SandboxUnavailable / SandboxError) rather than failing every candidate quietly."""
    if not tests:
        raise ValueError("tests: need at least one test; with none every candidate would pass")
    cases = parse_tests(tests)
    verdicts = []
    for code, entry in codes:
        try:
            result = executor.run(code, entry, cases)
        except ValueError:  # not source text, or the entry is not a function name
            verdicts.append(False)
            continue
        verdicts.append(result.status == "passed" and all(t.status == "passed" for t in result.tests))
    return verdicts


def passes_in_process(program: Program | Checked | dict, tests) -> bool:
    """Whether a DSL program (without effects) passes every test, run here through
    `build_callable`: cheap enough to pre-filter candidates before the sandbox. Programs with
    effects raise EffectsRefused: only the sandbox can judge them."""
    try:
        fn = build_callable(program)[1]
    except TypeCheckError:
        return False
    for case in parse_tests(tests):
        try:
            # a copy per call: a tool that changed its arguments must not change the next test
            if not values_equal(fn(*copy.deepcopy(case.args)), case.expected):
                return False
        except Exception:  # noqa: BLE001 -- whatever the program raises, it failed this test
            return False
    return bool(tests)


def _means(rows: list[dict], keys: list[str]) -> dict:
    out: dict = {"tasks": len(rows)}
    for k in keys:
        vals = [r[k] for r in rows if r.get(k) is not None]
        out[k] = sum(vals) / len(vals) if vals else None
    return out


def summarize(per_task: list[dict]) -> dict:
    """Mean of every pass@k field ({"family": ..., "pass@1": ..., "pass@10": ...} per task),
    overall and per family; a task without a field (too few samples for that k) is left out of
    its mean."""
    # the same fields everywhere, so a family without pass@10 shows None rather than nothing
    keys = sorted({k for r in per_task for k in r if k.startswith("pass@") and k[5:].isdigit()},
                  key=lambda k: int(k[5:]))
    families: dict = {}
    for r in per_task:
        families.setdefault(r.get("family") or "other", []).append(r)
    return {**_means(per_task, keys), "families": {f: _means(rows, keys) for f, rows in sorted(families.items())}}
