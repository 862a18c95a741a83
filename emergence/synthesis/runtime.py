"""Running programs in this process, safely enough for code we generated ourselves.

`build_callable(program)` compiles a type-checked program and executes *that* source -- never
text from outside -- in a namespace with a short list of builtins and importable modules. A
program with effects (HTTP, files) is refused here: run its code in the sandbox instead.

`trace(program, args)` evaluates the same step expressions one by one and records every
intermediate value: the execution traces ("animations") of the training corpus.
"""

from __future__ import annotations

import builtins

from .compiler import compile_program
from .helpers import HELPERS
from .ops import OPS, RETRIEVE, RETURN, STORE
from .program import Checked, Program, check

ALLOWED_MODULES = {"re", "json", "math", "string", "itertools", "csv", "io", "html.parser", "urllib.parse"}
SAFE_BUILTINS = ("abs", "all", "any", "bool", "dict", "enumerate", "filter", "float", "int", "isinstance", "len",
                 "list", "map", "max", "min", "range", "reversed", "round", "set", "sorted", "str", "sum", "tuple",
                 "zip", "super", "object", "ValueError", "KeyError", "IndexError", "TypeError", "ZeroDivisionError",
                 "__build_class__")


class EffectsRefused(RuntimeError):
    """The program touches the network or files: run it in the sandbox."""


def _import(name, globals=None, locals=None, fromlist=(), level=0):
    if name not in ALLOWED_MODULES:
        raise ImportError(f"generated tools may not import {name!r} here")
    return __import__(name, globals, locals, fromlist, level)


def namespace() -> dict:
    safe = {k: getattr(builtins, k) for k in SAFE_BUILTINS}
    safe["__import__"] = _import
    return {"__builtins__": safe, "__name__": "emergence_tool"}


def _checked(program) -> Checked:
    if isinstance(program, Checked):
        return program
    if isinstance(program, dict):
        program = Program.from_dict(program)
    return check(program)


def build_callable(program):
    """(code, function) for a program (dict, Program or Checked) without effects."""
    checked = _checked(program)
    if checked.effects:
        raise EffectsRefused(f"{checked.program.name} uses the network or files; run its code in the sandbox")
    tool = compile_program(checked)
    ns = namespace()
    exec(compile(tool.code, f"<tool {tool.function_name}>", "exec"), ns)  # our compiler's output only
    return tool.code, ns[tool.function_name]


def trace(program, args: list) -> list[tuple[str, object]]:
    """[(step op, value after it)] for one run; raises what the step raised."""
    checked = _checked(program)
    if checked.effects:
        raise EffectsRefused(f"{checked.program.name} uses the network or files")
    ns = namespace()
    helpers = {h for s in checked.program.steps if s.op in OPS for h in OPS[s.op].helpers}
    for h in helpers:
        exec(HELPERS[h], ns)
    for m in {m for s in checked.program.steps if s.op in OPS for m in OPS[s.op].imports}:
        ns[m] = _import(m)
    prog = checked.program
    values = dict(zip((n for n, _ in prog.params), args))
    current = values[prog.params[0][0]]
    out = []
    for step in prog.steps:
        if step.op == STORE:
            values[step.name] = current
        elif step.op == RETRIEVE:
            current = values[step.name]
        elif step.op != RETURN:
            op = OPS[step.op]
            local = {"__v": current, **{f"__a_{a}": (values[s["ref"]] if "ref" in s else s["const"])
                                          for a, s in step.args.items()}}
            expr = op.expr.format(v="__v", **{a: f"__a_{a}" for a, _ in op.args})
            # one mapping for globals and locals: comprehensions in `expr` see the arguments
            current = eval(expr, {**ns, **local})  # noqa: S307 -- our own operation table, not input
        out.append((step.op, current))
    return out
