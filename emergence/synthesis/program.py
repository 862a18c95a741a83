"""Programs: typed pipelines of operations, with a type checker.

    {"name": "sum_even", "intent": "...",
     "params": [{"name": "numbers", "type": "list[int]"}],
     "steps": [{"op": "FILTER.even"}, {"op": "REDUCE.sum"}]}

The value flows from the first parameter through the steps; the last step's value is returned.
An argument is a constant ({"const": 3}) or a named value ({"ref": "k"}: a parameter, or a value
kept by an earlier {"op": "STORE", "as": "name"}). {"op": "RETRIEVE", "from": "name"} continues
from a named value, so a pipeline can branch and combine: max, STORE hi, RETRIEVE numbers, min,
REDUCE.minus(other=hi) ... `check()` rejects an ill-typed program before any code exists.
"""

from __future__ import annotations

import builtins
import keyword
import re
from dataclasses import dataclass, field

from .ops import OPS, RETRIEVE, RETURN, STORE
from .types import TypeCheckError, is_subtype, match, parse, show, substitute

IDENT = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_STEPS = 32


@dataclass
class Step:
    op: str
    args: dict = field(default_factory=dict)  # name -> {"const": v} | {"ref": name}
    name: str | None = None  # STORE: the name kept; RETRIEVE: the name continued from

    def to_dict(self) -> dict:
        if self.op == STORE:
            return {"op": STORE, "as": self.name}
        if self.op == RETRIEVE:
            return {"op": RETRIEVE, "from": self.name}
        return {"op": self.op, **({"args": self.args} if self.args else {})}


@dataclass
class Program:
    name: str
    params: list  # [(name, type string)]
    steps: list
    intent: str = ""

    def to_dict(self) -> dict:
        return {"name": self.name, "intent": self.intent,
                "params": [{"name": n, "type": t} for n, t in self.params],
                "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict) -> "Program":
        if not isinstance(d, dict):
            raise TypeCheckError(f"a program is an object, got {type(d).__name__}")
        try:
            params = [(p["name"], p["type"]) for p in d["params"]]
            steps = []
            for s in d["steps"]:
                if s["op"] == STORE:
                    steps.append(Step(STORE, name=s["as"]))
                elif s["op"] == RETRIEVE:
                    steps.append(Step(RETRIEVE, name=s["from"]))
                else:
                    steps.append(Step(s["op"], dict(s.get("args") or {})))
            return cls(d["name"], params, steps, d.get("intent", ""))
        except (KeyError, TypeError) as exc:
            raise TypeCheckError(f"malformed program: missing or wrong {exc}") from None

    def signature(self) -> str:
        return f"{self.name}({', '.join(n for n, _ in self.params)})"


@dataclass
class Checked:
    """A program that passed `check`: the type after every step."""
    program: Program
    param_types: list
    step_types: list  # type of the value after each step
    returns: object

    @property
    def effects(self) -> bool:
        return any(OPS[s.op].effects for s in self.program.steps if s.op in OPS)


def _ident(name, what: str) -> None:
    if not isinstance(name, str) or not IDENT.match(name) or keyword.iskeyword(name) or name in OPS_RESERVED:
        raise TypeCheckError(f"{what} {name!r} is not a usable Python name (lower-case letters, digits, _)")


# module names the tools import, the loop variables of operation templates, and builtins: a
# parameter or stored value with one of these names would shadow what the code relies on
OPS_RESERVED = {"re", "json", "math", "string", "itertools", "x", "row", "w", "c", "s", "n", "v",
                *dir(builtins)}


def _const_type(value):
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    raise TypeCheckError(f"constant {value!r}: only numbers, strings and booleans")


def check(program: Program) -> Checked:
    """Types of every step, or TypeCheckError naming the first step that doesn't fit."""
    _ident(program.name, "tool name")
    if not program.params:
        raise TypeCheckError("a tool needs at least one parameter (the value the pipeline starts from)")
    if not program.steps or len(program.steps) > MAX_STEPS:
        raise TypeCheckError(f"a tool has 1..{MAX_STEPS} steps, got {len(program.steps)}")
    names: dict = {}
    for pname, ptype in program.params:
        _ident(pname, "parameter")
        if pname in names:
            raise TypeCheckError(f"parameter {pname!r} appears twice")
        names[pname] = parse(ptype)
    param_types = list(names.values())
    flow = param_types[0]
    step_types = []
    for i, step in enumerate(program.steps):
        where = f"step {i + 1} ({step.op})"
        if step.op == STORE:
            _ident(step.name, f"{where}: name")
            if step.name in names:
                raise TypeCheckError(f"{where}: {step.name!r} is already a name")
            names[step.name] = flow
        elif step.op == RETRIEVE:
            if step.name not in names:
                raise TypeCheckError(f"{where}: nothing named {step.name!r} (known: {', '.join(names)})")
            flow = names[step.name]
        elif step.op == RETURN:
            if i != len(program.steps) - 1:
                raise TypeCheckError(f"{where}: RETURN must be the last step")
        else:
            op = OPS.get(step.op)
            if op is None:
                raise TypeCheckError(f"{where}: unknown operation")
            env: dict = {}
            if not match(op.inp, flow, env):
                raise TypeCheckError(f"{where}: needs {show(op.inp)}, gets {show(flow)}")
            given = set(step.args)
            wanted = {a for a, _ in op.args}
            if given != wanted:
                raise TypeCheckError(f"{where}: takes arguments {sorted(wanted) or 'none'}, got {sorted(given) or 'none'}")
            for a, atype in op.args:
                src = step.args[a]
                if not isinstance(src, dict) or len(src) != 1 or not ({"const", "ref"} & set(src)):
                    raise TypeCheckError(f"{where}: argument {a} must be {{'const': value}} or {{'ref': name}}")
                if "ref" in src:
                    if src["ref"] not in names:
                        raise TypeCheckError(f"{where}: argument {a} refers to unknown {src['ref']!r}")
                    got = names[src["ref"]]
                else:
                    got = _const_type(src["const"])
                if not is_subtype(got, atype):
                    raise TypeCheckError(f"{where}: argument {a} needs {show(atype)}, gets {show(got)}")
            flow = substitute(op.out, env)
        step_types.append(flow)
    return Checked(program, param_types, step_types, flow)
