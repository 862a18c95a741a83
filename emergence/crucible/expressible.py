"""Can the DSL express a problem at all? Search from its tests, then check against its reference.

A problem counts as expressible only when a program found by search on its tests (no intent)
1. copies no expected output as a constant (a constant equal to an expected output that is not
   also one of the tests' arguments), and
2. agrees with the problem's reference code on at least `need` generated inputs, both run in the
   sandbox (inputs on which the reference itself fails are not counted).
Three tests are easy to pass by accident; agreement on fresh inputs is what says the program does
what the task means.
"""

from __future__ import annotations

import random
import string

from ..sandbox.compare import values_equal
from .problems import Problem

NEED = 20  # generated inputs a program must agree on
TRIES = 60  # inputs generated to find that many the reference accepts


def _mutate(v, rng: random.Random, depth: int = 0):
    """A value of the same shape as `v`, drawn near it."""
    if isinstance(v, bool):
        return rng.random() < 0.5
    if isinstance(v, int):
        span = max(5, 2 * abs(v))
        return rng.randint(-span, span) if v < 0 or rng.random() < 0.2 else rng.randint(0, span)
    if isinstance(v, float):
        return round(v * rng.uniform(0.5, 1.5) + rng.uniform(-1, 1), 3)
    if isinstance(v, str):
        alphabet = sorted(set(v)) or list(string.ascii_lowercase)
        if rng.random() < 0.3:
            alphabet += list(string.ascii_lowercase[:6])
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, len(v) + 3)))
    if isinstance(v, list):
        if not v or depth > 3:
            return [rng.randint(-5, 9) for _ in range(rng.randint(0, 4))] if not v else list(v)
        return [_mutate(rng.choice(v), rng, depth + 1) for _ in range(rng.randint(0, len(v) + 3))]
    if isinstance(v, dict):
        return {k: _mutate(x, rng, depth + 1) for k, x in v.items()}
    return v


def generated_inputs(problem: Problem, n: int, seed: int = 0) -> list[list]:
    """`n` argument lists shaped like the problem's tests (each drawn from a random test)."""
    rng = random.Random(seed)
    return [[_mutate(a, rng) for a in rng.choice(problem.test_cases)] for _ in range(n)]


def copied_constants(program: dict, problem: Problem) -> list:
    """Constants of a program that copy an expected output (and are not an argument value)."""
    args = [v for case in problem.test_cases for a in case for v in (a if isinstance(a, list) else [a])]
    consts = [spec["const"] for step in program.get("steps", []) for spec in (step.get("args") or {}).values()
              if isinstance(spec, dict) and "const" in spec]
    return [c for c in consts if any(values_equal(c, e) for e in problem.expected_outputs)
            and not any(values_equal(c, a) for a in args)]


def _returned(executor, code: str, entry: str, inputs: list[list], limits: dict) -> list:
    """What `entry` returned on each input, run in the sandbox; None where it failed."""
    result = executor.run(code, entry, [{"args": a, "expected": None} for a in inputs], limits)
    out = [None] * len(inputs)
    for t in result.tests:
        if t.status in ("passed", "failed"):  # it returned (judged against None, which means nothing here)
            out[t.index] = ("ok", t.returned)
    return out


def check(problem: Problem, executor, budget_s: float = 2.0, max_steps: int = 3, need: int = NEED,
          tries: int = TRIES, seed: int = 0, limit: int = 10) -> dict:
    """{"id", "expressible", "reason", "program", "candidates", "agreed_on"} for one problem with a
    code reference."""
    from ..synthesis.compiler import compile_program
    from ..synthesis.enumerative import enumerate_programs
    from ..synthesis.program import Program

    if not problem.reference or "code" not in problem.reference:
        raise ValueError(f"problem {problem.id!r}: needs a reference with code to check against")
    out = {"id": problem.id, "expressible": False, "program": None, "candidates": 0, "agreed_on": 0}
    try:
        found = enumerate_programs(problem.arity, problem.tests, budget_s=budget_s, max_steps=max_steps, limit=limit)
    except ValueError as exc:  # tests the search cannot take (say, mixed argument types)
        return {**out, "reason": f"search refused the tests: {exc}"}
    out["candidates"] = len(found)
    if not found:
        return {**out, "reason": "no program passes the tests"}
    honest = [p for p in found if not copied_constants(p.to_dict(), problem)]
    if not honest:
        return {**out, "reason": "every program passing the tests copies an expected output"}
    inputs = generated_inputs(problem, tries, seed)
    ref = _returned(executor, problem.reference["code"], problem.reference["entry"], inputs, problem.limits)
    valid = [(a, r[1]) for a, r in zip(inputs, ref) if r is not None]
    if len(valid) < need:
        return {**out, "reason": f"the reference fails on most generated inputs (fewer than {need} of {tries} ran)",
                "reference_ran_on": len(valid)}
    valid = valid[:need]
    for program in honest:
        tool = compile_program(Program.from_dict(program.to_dict()))
        got = _returned(executor, tool.code, tool.function_name, [a for a, _ in valid], problem.limits)
        agreed = sum(g is not None and values_equal(g[1], r) for g, (_, r) in zip(got, valid))
        out["agreed_on"] = max(out["agreed_on"], agreed)
        if agreed == len(valid):
            return {**out, "expressible": True, "reason": "agrees with the reference", "program": program.to_dict()}
    return {**out, "reason": "passes the tests but disagrees with the reference on generated inputs"}
