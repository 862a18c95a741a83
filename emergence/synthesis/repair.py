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

Candidates with effects (HTTP, files) or named values (STORE / RETRIEVE), and any that do not
type-check, are not edited (nor counted among the `top`): the first cannot run here, the second
are not linear pipelines.
"""

from __future__ import annotations

import time

from .enumerative import (MAX_CONST_LEN, MAX_EXAMPLE_CONSTS, PRIOR_FLOOR, _program, _Search, _State, _validate,
                          _verify, infer_params, validate_prior)
from .ops import OPS
from .program import Program, check
from .types import TypeCheckError

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

    def values_of(self, args: dict, n: int) -> list | None:
        """Each argument's value on the `n` examples, in the op's order; None for one neither a
        constant nor a parameter."""
        values = []
        for src in args.values():
            if "const" in src:
                values.append([src["const"]] * n)
            elif src.get("ref") in self.arg_values:
                values.append(self.arg_values[src["ref"]])
            else:
                return None
        return values

    def apply(self, state: _State, op_name: str, args: dict) -> _State | None:
        """`state` after the candidate's own step (op with `args`)."""
        fits = self.search.applicable(OPS[op_name], state)
        if fits is None:
            return None
        ordered = {a: args[a] for a, _ in OPS[op_name].args if a in args}
        values = self.values_of(ordered, len(state.values))
        if values is None or len(ordered) != len(OPS[op_name].args):
            return None
        return self.search.step(state, op_name, args, values, fits)

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


def _editable_steps(program, arity: int) -> list | None:
    """[(op name, args)] when the program type-checks with `arity` parameters and every step is an
    effect-free operation of the DSL, else None."""
    try:
        params, steps = list(program.params), list(program.steps)
        check(Program("candidate", params, steps))
    except (TypeCheckError, AttributeError, TypeError, ValueError):
        return None
    if len(params) != arity or any(OPS.get(s.op) is None or OPS[s.op].effects for s in steps):
        return None
    return [(s.op, dict(s.args)) for s in steps]


def _constants(editable: list) -> list:
    """The candidates' own constants (read from the intent), the first few numbers and strings."""
    consts = [src["const"] for _, steps in editable for _, args in steps for src in args.values()
              if _offerable(src.get("const"))]
    consts = list(dict.fromkeys((type(c), c) for c in consts))
    nums = [c for t, c in consts if t is not str][:MAX_EXAMPLE_CONSTS]
    return nums + [c for t, c in consts if t is str][:MAX_EXAMPLE_CONSTS]


def _edits(cands: list[_Editable], ops_by_prior: list, deadline: float):
    """(candidate, state reached by one edit of it): drops, then insertions and replacements by
    operation (likeliest first), candidates in rank order."""
    for c in cands:
        for i in range(len(c.steps) if len(c.steps) > 1 else 0):
            if time.monotonic() > deadline:
                return
            yield c, c.run(c.prefix[i], c.steps[i + 1:])
    for op in ops_by_prior:
        for c in cands:
            for i in range(len(c.steps) + 1):
                if c.prefix[i] is None:
                    continue
                fits = c.search.applicable(op, c.prefix[i])
                if fits is None:
                    continue
                for args, arg_values in c.search.choices[op.name]:
                    if time.monotonic() > deadline:
                        return
                    # insert before step i, and (i < len) replace step i
                    edited = c.search.step(c.prefix[i], op.name, args, arg_values, fits)
                    yield c, c.run(edited, c.steps[i:])
                    if i < len(c.steps) and (op.name, args) != c.steps[i]:
                        yield c, c.run(edited, c.steps[i + 1:])


def repairs(candidates, examples: list[dict], arity: int, prior: dict | None = None, budget_s: float = 0.5,
            top: int = DEFAULT_TOP, limit: int = DEFAULT_LIMIT) -> list[Program]:
    """Programs one edit away from one of the best `top` editable candidates (objects with a
    `.program`, or Programs, best first) that reproduce every example, in the order found; at most
    `limit`, searched for `budget_s` seconds (a program found is still verified end to end).
    `prior`: {operation: probability}, the order operations are tried in."""
    _validate(arity, examples)
    validate_prior(prior or {}, allow_empty=True)
    if isinstance(budget_s, bool) or not isinstance(budget_s, (int, float)) or not budget_s >= 0:
        raise ValueError(f"budget_s: need a number of seconds ≥ 0, got {budget_s!r}")
    for name, value in (("top", top), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}: need an integer ≥ 1, got {value!r}")
    deadline = time.monotonic() + budget_s
    types = [t for _, t in infer_params(arity, examples)]
    editable = []  # (the candidate's parameters, its steps), the first `top` that can be edited
    for cand in candidates:
        program = getattr(cand, "program", cand)
        steps = _editable_steps(program, arity)
        if steps is not None:
            # the candidate's parameter names (its steps refer to them), the examples' types
            editable.append(([(name, t) for (name, _), t in zip(program.params, types)], steps))
            if len(editable) >= top:
                break
    consts = _constants(editable)  # may fill an inserted or replaced step
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
        # a tool uses every parameter it has
        if state is None or not state.steps or not c.search.extra <= state.used:
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
