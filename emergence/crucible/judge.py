"""Judging the policy's programs: build each as the engine would answer it, run its tests in the
sandbox (many at once), score the outcome (`reward.py`).

`run_batch` is any callable taking a list of jobs {"code", "entry", "tests", "limits"} and
returning one sandbox result dict per job (`RunResult.to_dict()` keys, or status "invalid" /
"sandbox_error" for a job that could not be judged): the sandbox pool actor's `run_batch` in a
training run, a local executor in tests. Results are cached by (problem, code), so a program drawn
again costs nothing and scores the same; a sandbox failure is marked, counted and never cached.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..synthesis.compiler import compile_program
from ..synthesis.decode import parameter_slots, well_formed
from ..synthesis.engine import Engine, tool_name
from ..synthesis.evaluation import passes_in_process
from ..synthesis.runtime import EffectsRefused
from .problems import Problem
from .reward import Outcome, RewardWeights, score


@dataclass
class Built:
    """A program as the engine would answer it: its code, or why there is none."""
    ops: tuple
    program: object = None  # a checked `Program`, or None when it does not build
    code: str = ""
    entry: str = ""


def build(problem: Problem, ops) -> Built:
    """The operations as a tool for the problem: arguments read from its description (the first
    reading, as the engine's raw draws are scored), type-checked, compiled; or not built."""
    ops = tuple(ops)
    if not ops or not well_formed(list(ops)) or parameter_slots(ops) < problem.arity - 1:
        return Built(ops)
    try:
        progs = Engine.programs(list(ops), problem.description, problem.arity, tool_name(problem.description),
                                limit=1)
        if not progs:
            return Built(ops)
        tool = compile_program(progs[0])
    except (ValueError, KeyError):  # an argument reading the checker or compiler refuses
        return Built(ops)
    return Built(ops, progs[0], tool.code, tool.function_name)


class Judge:
    def __init__(self, run_batch, weights: RewardWeights | None = None):
        self.run_batch = run_batch
        self.weights = weights or RewardWeights()
        self._built: dict = {}  # (problem id, ops) -> Built: a program drawn again is not rebuilt
        self._cache: dict = {}  # (problem id, code) -> sandbox result
        self._dead: dict = {}  # (problem id, code) -> dead steps of a correct program
        self._best: dict = {}  # problem id -> (fastest seconds, fewest steps) of its correct programs
        self.counts: Counter = Counter()  # runs, cache_hits, sandbox_failures, not_built

    def judge(self, pairs: list[tuple[Problem, list]]) -> list[dict]:
        """[(problem, ops)] -> one scored outcome each: `reward.score`'s dict plus "problem",
        "difficulty", "ops", "code" and "cached"."""
        built = [self._build(p, ops) for p, ops in pairs]
        todo: dict = {}
        for (p, _), b in zip(pairs, built):
            key = (p.id, b.code)
            if b.program is not None and key not in self._cache and key not in todo:
                todo[key] = {"code": b.code, "entry": b.entry, "tests": p.tests, "limits": p.limits}
        fresh: dict = {}  # this batch's results (a sandbox failure is used once, never cached)
        if todo:
            try:
                results = self.run_batch(list(todo.values()))
                if len(results) != len(todo):
                    raise RuntimeError(f"run_batch returned {len(results)} results for {len(todo)} jobs")
            except Exception as exc:  # noqa: BLE001 -- the sandbox failed, not the programs: marked, training goes on
                results = [{"status": "sandbox_error", "error": f"{type(exc).__name__}: {exc}"}] * len(todo)
            self.counts["runs"] += len(todo)
            for key, res in zip(todo, results):
                fresh[key] = res
                if res.get("status") == "sandbox_error":
                    self.counts["sandbox_failures"] += 1
                else:
                    self._cache[key] = res
        out = []
        for (p, _), b in zip(pairs, built):
            key = (p.id, b.code)
            res = None if b.program is None else fresh.get(key) or self._cache.get(key)
            cached = b.program is not None and key not in fresh
            self.counts["cache_hits"] += cached
            outcome = self._outcome(p, b, res)
            self.counts["not_built"] += not outcome.built
            best = self._best.get(p.id)
            scored = score(outcome, self.weights, *(best or (None, None)))
            if scored["level"] == "all_right":
                self._best[p.id] = (min(outcome.seconds, best[0]) if best else outcome.seconds,
                                    min(outcome.steps, best[1]) if best else outcome.steps)
            out.append({**scored, "problem": p.id, "difficulty": p.difficulty, "ops": list(b.ops), "code": b.code,
                        "cached": cached})
        return out

    def _build(self, problem: Problem, ops) -> Built:
        key = (problem.id, tuple(ops))
        if key not in self._built:
            self._built[key] = build(problem, ops)
        return self._built[key]

    def _outcome(self, problem: Problem, b: Built, res: dict | None) -> Outcome:
        steps = max(1, len(b.ops))
        if b.program is None or res is None or res.get("status") == "invalid":
            return Outcome(built=False, steps=steps)
        if res.get("status") == "sandbox_error":
            return Outcome(built=True, sandbox_failed=True, steps=steps)
        n = len(problem.test_cases)
        tests = res.get("tests") or []
        if res.get("status") == "error" or len(tests) != n:  # the code did not load: every test raised
            return Outcome(built=True, statuses=("error",) * n, steps=steps)
        statuses = tuple(t["status"] for t in tests)
        seconds = float(sum(t.get("duration_s") or 0.0 for t in tests))
        dead = 0
        if all(s == "passed" for s in statuses):
            key = (problem.id, b.code)
            if key not in self._dead:
                self._dead[key] = self._dead_steps(problem, b)
            dead = self._dead[key]
        return Outcome(built=True, statuses=statuses, seconds=seconds, steps=steps, dead_steps=dead)

    def _dead_steps(self, problem: Problem, b: Built) -> int:
        """Steps of a correct program that can go with every test still passing (checked here, in
        process: the DSL's own operations; a program with effects is left to the sandbox and
        counted as having none)."""
        dead = 0
        for i in range(len(b.ops)):
            shorter = b.ops[:i] + b.ops[i + 1:]
            other = self._build(problem, shorter)
            try:
                dead += other.program is not None and passes_in_process(other.program, problem.tests)
            except EffectsRefused:
                return 0
        return dead
