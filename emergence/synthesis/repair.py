"""One-edit repairs of the engine's candidates, checked on the caller's examples.

    repairs(synthesis.candidates, examples, arity, synthesis.op_prior, budget_s=0.5)

When examples are given and none of the engine's candidates reproduces them, the best candidates
are often one step away from the program the request describes: a step left out (the lowercase of
"distinct hashtags, case-insensitive", the filter of "the positive entries"), one step too many,
or one operation in place of a neighbour. `repairs` tries the programs one edit away from each of
the best `top` candidates -- drop a step, insert one, replace one -- and returns those that
reproduce every example:

- drops first (few and cheap), then insertions and replacements with the operations taken in
  order of the engine's operation prior (`Synthesis.op_prior`), each over the candidates in rank
  order, until `budget_s` is spent or `limit` programs are found;
- each edit runs on the examples in process through compiled one-step tools, as the search
  baseline does (`enumerative._Search`): only compiler output runs, and a candidate's prefix is
  run once per candidate, not once per edit;
- a program found is type-checked and run end to end before it is returned. The caller still
  runs what it takes in the sandbox.

Candidates with effects (HTTP, files) or named values (STORE / RETRIEVE) are not edited: the first
cannot run here, the second are not one-step pipelines.
"""

from __future__ import annotations

import time

from .enumerative import MAX_CONST_LEN, PRIOR_FLOOR, _program, _Search, _State, _validate, _verify, infer_params
from .ops import OPS
from .program import Program
from .types import match, substitute

DEFAULT_TOP = 8  # candidates edited: deeper ones are rarely one edit from the right program
DEFAULT_LIMIT = 3


class _Editable:
    """One candidate, ready to edit: its steps, and the value flowing after each on the examples."""

    def __init__(self, search: _Search, params, steps, examples):
        self.search, self.params, self.steps = search, params, steps
        self.arg_values = {name: [ex["args"][i] for ex in examples] for i, (name, _) in enumerate(params)}
        self.prefix = [search.root]  # prefix[k]: the state after the first k steps (None: it failed)
        for op, args in steps:
            last = self.prefix[-1]
            self.prefix.append(None if last is None else self.apply(last, op, args))

    def apply(self, state: _State, op_name: str, args: dict) -> _State | None:
        op = OPS[op_name]
        env: dict = {}
        if not match(op.inp, state.type, env):
            return None
        fn = self.search._tool(op, state.type)
        if fn is None:
            return None
        values = []
        for a, _ in op.args:
            src = args.get(a)
            if src is None:
                return None
            if "const" in src:
                values.append([src["const"]] * len(state.values))
            elif src.get("ref") in self.arg_values:
                values.append(self.arg_values[src["ref"]])
            else:
                return None
        out = self.search._run(fn, state.values, values)
        if out is None:
            return None
        used = state.used | {s["ref"] for s in args.values() if "ref" in s}
        return _State(substitute(op.out, env), out, state.steps + ((op_name, args),), used)

    def run(self, state: _State | None, steps) -> _State | None:
        for op, args in steps:
            if state is None:
                return None
            state = self.apply(state, op, args)
        return state


def _offerable(value) -> bool:
    """A constant worth offering to other steps: a number or a short string."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float)) or (isinstance(value, str) and 0 < len(value) <= MAX_CONST_LEN)


def _editable_steps(program: Program) -> list | None:
    """[(op name, args)] when every step is an effect-free operation, else None."""
    steps = []
    for s in program.steps:
        op = OPS.get(s.op)
        if op is None or op.effects:
            return None
        steps.append((s.op, dict(s.args)))
    return steps


def _edits(cands: list[_Editable], ops_by_prior: list, deadline: float):
    """(candidate, state reached by one edit of it): drops, then insertions and replacements by
    operation (likeliest first), candidates in rank order."""
    for c in cands:
        for i in range(len(c.steps)):
            if len(c.steps) > 1:
                yield c, c.run(c.prefix[i], c.steps[i + 1:])
    for op in ops_by_prior:
        for c in cands:
            for i in range(len(c.steps) + 1):
                for args, _ in c.search.choices[op.name]:
                    if time.monotonic() > deadline:
                        return
                    # insert before step i, and (i < len) replace step i
                    if c.prefix[i] is None:
                        continue
                    edited = c.apply(c.prefix[i], op.name, args)
                    yield c, c.run(edited, c.steps[i:])
                    if i < len(c.steps) and (op.name, args) != c.steps[i]:
                        yield c, c.run(edited, c.steps[i + 1:])


def repairs(candidates, examples: list[dict], arity: int, prior: dict | None = None, budget_s: float = 0.5,
            top: int = DEFAULT_TOP, limit: int = DEFAULT_LIMIT) -> list[Program]:
    """Programs one edit away from one of the best `top` candidates (objects with a `.program`,
    or Programs) that reproduce every example, in the order found; at most `limit`, within
    `budget_s` seconds. `prior`: {operation: probability}, the order operations are tried in."""
    _validate(arity, examples)
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or budget_s < 0:
        raise ValueError(f"budget_s: need a number of seconds ≥ 0, got {budget_s!r}")
    for name, value in (("top", top), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: need an integer ≥ 1, got {value!r}")
    deadline = time.monotonic() + budget_s
    types = [t for _, t in infer_params(arity, examples)]
    editable = []  # (the candidate's parameters, its steps)
    for cand in candidates[:top]:
        program = getattr(cand, "program", cand)
        steps = _editable_steps(program)
        if steps is not None and len(program.params) == arity:
            # the candidate's parameter names (its steps refer to them), the examples' types
            editable.append(([(name, t) for (name, _), t in zip(program.params, types)], steps))
    # the candidates' own constants (read from the intent) may fill an inserted or replaced step
    consts = list(dict.fromkeys(src["const"] for _, steps in editable for _, args in steps
                                for src in args.values() if _offerable(src.get("const"))))
    searches: dict = {}  # one search (its argument pool and compiled tools) per parameter naming
    cands: list[_Editable] = []
    for params, steps in editable:
        key = tuple(params)
        if key not in searches:
            searches[key] = _Search(params, examples, deadline, consts)
        cands.append(_Editable(searches[key], params, steps, examples))
    if not cands:
        return []
    prior = prior or {}
    ops_by_prior = sorted(cands[0].search.ops, key=lambda op: -max(float(prior.get(op.name, 0.0)), PRIOR_FLOOR))
    known = {tuple((op, repr(args)) for op, args in c.steps) for c in cands}
    found: list[Program] = []
    for c, state in _edits(cands, ops_by_prior, deadline):
        if state is None or not state.steps or state.used != c.search.extra:
            continue
        key = tuple((op, repr(args)) for op, args in state.steps)
        if key in known or not c.search.solves(state.values):
            continue
        known.add(key)
        program = _program(c.params, state)
        program.name, program.intent = "repaired", "One edit from a candidate of the engine, found from examples."
        if _verify(program, examples):
            found.append(program)
            if len(found) >= limit:
                break
    return found
