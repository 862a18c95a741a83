"""A checked program -> readable, standalone Python (stdlib only).

The tool is one function with a docstring that states the intent, its arguments and what it
returns; each step is one assignment named after what it holds; helpers (HTML parsing, CSV,
HTTP through urllib, ...) are written into the same source only when a step needs them.
"""

from __future__ import annotations

from dataclasses import dataclass

from .helpers import HELPERS
from .ops import OPS, RETRIEVE, RETURN, STORE
from .program import Checked, Program, check
from .types import python_name, show

DESCRIBE = {"int": "an integer", "float": "a number", "num": "a number", "bool": "true or false", "str": "text",
            "html": "a parsed HTML page", "json": "a JSON value", "dict": "a mapping of item to count",
            "any": "any value"}


def describe(t) -> str:
    if isinstance(t, tuple):
        inner = t[1]
        plural = {"int": "integers", "float": "numbers", "num": "numbers", "str": "strings", "bool": "booleans",
                  "dict": "rows (column -> text)", "any": "values"}.get(inner if isinstance(inner, str) else "",
                                                                         describe(inner))
        return f"a list of {plural}"
    return DESCRIBE.get(t, t)


@dataclass
class CompiledTool:
    code: str
    function_name: str
    signature: str
    docstring: str
    checked: Checked


def _safe_doc(text: str) -> str:
    text = " ".join(str(text).split())[:400]
    text = text.replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    if text and text[-1] not in ".!?":
        text += "."
    return text[:1].upper() + text[1:]


def _arg(src: dict) -> str:
    return src["ref"] if "ref" in src else repr(src["const"])


def compile_program(program: Program | Checked) -> CompiledTool:
    checked = program if isinstance(program, Checked) else check(program)
    prog = checked.program
    used = {n for n, _ in prog.params}
    lines, imports, helpers = [], set(), []
    current = prog.params[0][0]
    for step in prog.steps:
        if step.op == STORE:
            if step.name != current:  # a value kept under the name it already has needs no line
                lines.append(f"{step.name} = {current}")
            used.add(step.name)
            continue
        if step.op == RETRIEVE:
            current = step.name
            continue
        if step.op == RETURN:
            continue
        op = OPS[step.op]
        imports.update(op.imports)
        for h in op.helpers:
            if h not in helpers:
                helpers.append(h)
        var = op.var
        n = 2
        while var in used:
            var, n = f"{op.var}_{n}", n + 1
        used.add(var)
        expr = op.expr.format(v=current, **{a: _arg(step.args[a]) for a, _ in op.args})
        lines.append(f"{var} = {expr}")
        current = var
    lines.append(f"return {current}")

    params = ", ".join(f"{n}: {python_name(t)}" for (n, _), t in zip(prog.params, checked.param_types))
    signature = f"{prog.name}({params}) -> {python_name(checked.returns)}"
    args_doc = "\n".join(f"        {n}: {describe(t)}." for (n, _), t in zip(prog.params, checked.param_types))
    doc = (f"{_safe_doc(prog.intent or 'Generated tool')}\n\n    Args:\n{args_doc}\n\n"
           f"    Returns:\n        {describe(checked.returns)}.\n    ")
    head = [f"import {m}" for m in sorted(imports)]
    parts = []
    if head:
        parts.append("\n".join(head))
    parts += [HELPERS[h].strip() for h in helpers]
    body = "\n".join(f"    {line}" for line in lines)
    parts.append(f'def {signature}:\n    """{doc}"""\n{body}')
    code = "\n\n\n".join(parts) + "\n"
    return CompiledTool(code, prog.name, signature, doc.strip(), checked)


def program_types(checked: Checked) -> list[str]:
    return [show(t) for t in checked.step_types]
