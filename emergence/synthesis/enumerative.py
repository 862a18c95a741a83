"""The baseline synthesizer: breadth-first enumeration of typed pipelines, given only examples.

    enumerate_programs(1, [{"args": [[1, 2, 4]], "expected": 6}, ...], budget_s=2.0)

Pipelines of OPS (no effects) of length 1..max_steps start from the first parameter; each op
argument comes from a small pool (the other parameters, constants seen in the examples, 0..5,
a few separators). Bottom-up observational-equivalence pruning keeps one pipeline per distinct
(type, parameters used, outputs on the examples), so each level only extends behaviours not seen
before. Every op runs through `runtime.build_callable` -- one compiled one-step tool per
(op, input type), its arguments passed as parameters -- so only compiler output is executed;
each program found is type-checked and re-run end to end before it is returned.

`guided_programs` is the same search made best-first by a prior over the operations (the
engine's belief that each appears in the intent's program, `Synthesis.op_prior`): a pipeline's
cost is the sum of its operations' -log prior, and the cheapest pipeline is extended next
(DeepCoder's idea, with the diffusion sampler as the guide). It reaches the 4- and 5-step
pipelines that breadth-first search never gets to in a second, when the intent names their steps.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import math
import time
from dataclasses import dataclass

from ..sandbox.compare import values_equal
from .ops import OPS
from .program import OPS_RESERVED, Program, Step, check
from .runtime import build_callable
from .types import TypeCheckError, match, parse, show, substitute

SMALL_INTS = (0, 1, 2, 3, 4, 5)
SEPARATORS = (" ", ",", "\n", "")
MAX_EXAMPLE_CONSTS = 4  # per kind: more constants multiply the branching of every op with arguments
MAX_CONST_LEN = 12
MAX_SIZE = 10_000  # a value longer than this is dropped: no pipeline we want builds it
# readable parameter names by type; the fallback is arg1, arg2, ...
NAMES = {"list[int]": ("numbers", "values", "others"), "list[num]": ("numbers", "values", "others"),
         "list[str]": ("words", "items", "others"), "list[any]": ("items", "others"),
         "str": ("text", "target", "replacement"),
         "int": ("k", "m", "count"), "num": ("threshold", "amount"), "float": ("threshold", "amount"),
         "bool": ("flag",), "json": ("document",), "any": ("value",)}


def _value_type(v) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "num"  # num, not float: other examples may give an int for the same parameter
    if isinstance(v, str):
        return "str"
    if isinstance(v, list):
        elems = {_value_type(x) for x in v}
        return f"list[{_join(elems)}]" if elems else "list[]"
    if isinstance(v, dict):
        return "json"
    return "any"


def _join(types: set) -> str:
    """The narrowest type covering all of `types` ("list[]" is an empty list, element unknown)."""
    lists = {t for t in types if t.startswith("list[")}
    if lists and lists != types:
        return "any"
    if lists:
        inner = {t[5:-1] for t in lists} - {""}
        return f"list[{_join(inner) if inner else 'any'}]"
    if len(types) == 1:
        return next(iter(types))
    return "num" if types <= {"int", "num"} else "any"


def infer_params(arity: int, examples: list[dict]) -> list[tuple[str, str]]:
    """[(name, type)] from the example arguments: readable, distinct names by type."""
    params, taken = [], set()
    for i in range(arity):
        t = _join({_value_type(ex["args"][i]) for ex in examples})
        name = next((n for n in NAMES.get(t, ()) if n not in taken and n not in OPS_RESERVED), f"arg{i + 1}")
        taken.add(name)
        params.append((name, t))
    return params


def _constants(examples: list[dict]) -> list:
    """Ints and short strings that appear in the arguments (the most frequent few), then 0..5
    and the separators."""
    counts: dict = {}

    for ex in examples:
        for a in ex["args"]:
            for v in a if isinstance(a, list) else [a]:
                short_text = isinstance(v, str) and 0 < len(v) <= MAX_CONST_LEN
                if short_text or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                    counts[(type(v), v)] = counts.get((type(v), v), 0) + 1
    ranked = sorted(counts, key=lambda tv: -counts[tv])
    nums = [v for t, v in ranked if t in (int, float) and v not in SMALL_INTS][:MAX_EXAMPLE_CONSTS]
    strs = [v for t, v in ranked if t is str and v not in SEPARATORS][:MAX_EXAMPLE_CONSTS]
    return [*SMALL_INTS, *nums, *SEPARATORS, *strs]


@dataclass
class _State:
    type: object  # parsed type of the flowing value
    values: list  # the flowing value on each example
    steps: tuple  # ((op name, {arg: {"const": v} | {"ref": name}}), ...)
    used: frozenset  # extra parameters referenced so far


class _Search:
    def __init__(self, params, examples, deadline, more_consts=()):
        """`more_consts`: constants to offer beside those of the examples (a repair offers its
        candidates' own arguments, read from the intent)."""
        self.deadline = deadline
        self.expected = [ex["expected"] for ex in examples]
        consts = _constants(examples)
        have = {(type(c), c) for c in consts}
        consts += [c for c in more_consts if (type(c), c) not in have]
        # (source, type, value per example): refs to the extra parameters, then constants
        self.pool = [({"ref": n}, parse(t), [ex["args"][i] for ex in examples])
                     for i, (n, t) in enumerate(params) if i > 0]
        self.pool += [({"const": c}, parse("float" if isinstance(c, float) else _value_type(c)),
                       [c] * len(examples)) for c in consts]
        self.ops = [op for op in OPS.values() if not op.effects]
        self.tools: dict = {}  # (op name, input type) -> compiled one-step callable
        self.choices = {op.name: self._fill(op) for op in self.ops}
        self.extra = frozenset(n for n, _ in params[1:])  # a solution uses every extra parameter
        self.root = _State(parse(params[0][1]), [ex["args"][0] for ex in examples], (), frozenset())

    def _tool(self, op, in_type):
        """A one-step program running `op` on a value of `in_type`, its arguments as parameters;
        compiled once and reused for every argument choice."""
        key = (op.name, show(in_type))
        if key not in self.tools:
            prog = Program("step", [("value", show(in_type)), *((f"arg_{a}", show(t)) for a, t in op.args)],
                           [Step(op.name, {a: {"ref": f"arg_{a}"} for a, _ in op.args})])
            try:
                self.tools[key] = build_callable(prog)[1]
            except TypeCheckError:  # the op can't take this input after all: skip it
                self.tools[key] = None
        return self.tools[key]

    def _fill(self, op):
        """Every way to fill op's arguments from the pool: [(args, values per argument)]."""
        out = [({}, [])]
        for a, atype in op.args:
            out = [({**args, a: src}, vals + [v]) for args, vals in out
                   for src, t, v in self.pool if match(atype, t, {})]
        return out

    def _run(self, fn, values, arg_values):
        """The op on every example, or None if it raises or builds something absurdly large."""
        out = []
        for i, v in enumerate(values):
            try:
                r = fn(v, *(av[i] for av in arg_values))
            except Exception:  # noqa: BLE001 -- a candidate that fails on an example is just not a solution
                return None
            if isinstance(r, (str, list, dict)) and len(r) > MAX_SIZE:
                return None
            out.append(r)
        return out

    def solves(self, values) -> bool:
        try:
            return all(values_equal(g, e) for g, e in zip(values, self.expected))
        except (RecursionError, TypeError, ValueError, OverflowError):
            return False

    def applicable(self, op, state: _State):
        """(op's output type on `state`'s value, its compiled one-step tool), or None when op can't take it."""
        env: dict = {}
        if not match(op.inp, state.type, env):
            return None
        fn = self._tool(op, state.type)
        return None if fn is None else (substitute(op.out, env), fn)

    def step(self, state: _State, op_name: str, args: dict, arg_values: list, applicable) -> _State | None:
        """`state` one op longer (`applicable`: what `applicable` gave for op on it), or None if it
        fails on an example."""
        out_type, fn = applicable
        values = self._run(fn, state.values, arg_values)
        if values is None:
            return None
        used = state.used | {s["ref"] for s in args.values() if "ref" in s}
        return _State(out_type, values, state.steps + ((op_name, args),), used)

    def extensions(self, state: _State):
        """States one op longer than `state`."""
        for op in self.ops:
            fits = self.applicable(op, state)
            if fits is None:
                continue
            for args, arg_values in self.choices[op.name]:
                if time.monotonic() > self.deadline:
                    return
                new = self.step(state, op.name, args, arg_values, fits)
                if new is not None:
                    yield new


def _key(state: _State):
    try:
        shown = repr(state.values)
    except Exception:  # noqa: BLE001 -- a value too deep to show: keep it, unpruned
        shown = id(state)
    return show(state.type), state.used, shown


def _program(params, state: _State) -> Program:
    steps = [Step(op, copy.deepcopy(args)) for op, args in state.steps]
    return Program("enumerated", list(params), steps, "Found by enumerative search over the DSL from examples.")


def _verify(program: Program, examples: list[dict]) -> bool:
    """Type-check the whole program and run its compiled code on the examples."""
    try:
        check(program)
        fn = build_callable(program)[1]
        return all(values_equal(fn(*copy.deepcopy(ex["args"])), ex["expected"]) for ex in examples)
    except Exception:  # noqa: BLE001 -- a program that doesn't hold up end to end is not returned
        return False


def _validate(arity: int, examples: list[dict]) -> None:
    if isinstance(arity, bool) or not isinstance(arity, int) or arity < 1:
        raise ValueError(f"arity: need a positive integer, got {arity!r}")
    if not examples:
        raise ValueError("examples: need at least one {'args': [...], 'expected': ...}")
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or not isinstance(ex.get("args"), list) or "expected" not in ex:
            raise ValueError(f"examples[{i}]: need {{'args': [...], 'expected': ...}}")
        if len(ex["args"]) != arity:
            raise ValueError(f"examples[{i}].args: {len(ex['args'])} arguments, arity is {arity}")


def enumerate_programs(arity: int, examples: list[dict], budget_s: float, max_steps: int = 3,
                       limit: int = 10) -> list[Program]:
    """Programs (shortest first, at most `limit`) consistent with every example, found within
    `budget_s` seconds of wall time; [] when none is found."""
    _validate(arity, examples)
    params = infer_params(arity, examples)
    search = _Search(params, examples, time.monotonic() + budget_s)
    found: list[Program] = []
    level = [search.root]
    seen = {_key(search.root)}
    for depth in range(1, max_steps + 1):
        nxt = []
        for state in level:
            for new in search.extensions(state):
                if new.used == search.extra and search.solves(new.values):
                    program = _program(params, new)
                    if _verify(program, examples):
                        found.append(program)
                        if len(found) >= limit:
                            return found
                    continue  # a solution's extensions are the solution plus redundant steps
                key = _key(new)
                if depth < max_steps and key not in seen:
                    seen.add(key)
                    nxt.append(new)
            if time.monotonic() > search.deadline:
                return found
        level = nxt
    return found


PRIOR_FLOOR = 1e-3  # an operation the guide rules out still costs only so much: the search may need it


def validate_prior(prior, allow_empty: bool = False) -> None:
    """{operation name: probability in [0, 1]}, else ValueError naming the entry."""
    if not isinstance(prior, dict) or not (prior or allow_empty):
        raise ValueError("prior: need a non-empty {operation name: probability} dict")
    for op, p in prior.items():
        if op not in OPS:
            raise ValueError(f"prior: unknown operation {op!r}")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p <= 1:
            raise ValueError(f"prior[{op!r}]: need a probability in [0, 1], got {p!r}")


def guided_programs(arity: int, examples: list[dict], prior: dict, budget_s: float, max_steps: int = 5,
                    limit: int = 10) -> list[Program]:
    """Programs consistent with every example (at most `limit`, cheapest first), the search
    extending the cheapest pipeline under `prior` first ({operation: the probability that it is
    in the program}; operations it leaves out get `PRIOR_FLOOR`), within `budget_s` seconds; []
    when none is found."""
    _validate(arity, examples)
    validate_prior(prior)
    cost = {op: -math.log(max(float(prior.get(op, 0.0)), PRIOR_FLOOR)) for op in OPS}
    params = infer_params(arity, examples)
    search = _Search(params, examples, time.monotonic() + budget_s)
    search.ops.sort(key=lambda op: cost[op.name])  # the likeliest extensions first
    found: list[Program] = []
    root_key = _key(search.root)
    best = {root_key: 0.0}  # per behaviour, the cheapest pipeline found to it
    tie = itertools.count()  # equal costs: first come, first served
    # (cost, tie, state, key | None for a solution): a solution waits in the queue for its turn,
    # so solutions come out cheapest first (two examples often admit a far-fetched one as well)
    frontier = [(0.0, next(tie), search.root, root_key)]
    while frontier and time.monotonic() <= search.deadline:
        c, _, state, key = heapq.heappop(frontier)
        if key is None:
            program = _program(params, state)
            if _verify(program, examples):
                found.append(program)
                if len(found) >= limit:
                    break
            continue
        if c > best[key]:
            continue  # a cheaper pipeline to the same behaviour was queued after this one
        for new in search.extensions(state):
            c_new = c + cost[new.steps[-1][0]]
            if new.used == search.extra and search.solves(new.values):
                heapq.heappush(frontier, (c_new, next(tie), new, None))
                continue  # a solution's extensions are the solution plus redundant steps
            k = _key(new)
            if len(new.steps) < max_steps and c_new < best.get(k, math.inf):
                best[k] = c_new
                heapq.heappush(frontier, (c_new, next(tie), new, k))
    return found


def search_programs(arity: int, examples: list[dict], budget_s: float, prior: dict | None = None,
                    limit: int = 10) -> list[Program]:
    """Programs consistent with the examples: best-first by `prior` when there is one
    (`guided_programs`), else breadth-first (`enumerate_programs`)."""
    if prior:
        return guided_programs(arity, examples, prior, budget_s=budget_s, limit=limit)
    return enumerate_programs(arity, examples, budget_s=budget_s, limit=limit)
