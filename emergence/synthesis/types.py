"""The DSL's types: atoms (int, float, num, bool, str, html, json, rows, any) and list[T].

`num` is int or float; `any` accepts everything. Types are written as strings ("list[num]") and
parsed into atoms or ("list", elem) tuples; patterns may use the type variable T.
"""

from __future__ import annotations

ATOMS = ("int", "float", "num", "bool", "str", "html", "json", "rows", "dict", "any")


class TypeCheckError(ValueError):
    """An ill-typed program; the message names the step and both types."""


def parse(t: str):
    t = t.replace(" ", "")
    if t.startswith("list[") and t.endswith("]"):
        return ("list", parse(t[5:-1]))
    if t in ATOMS or t == "T":
        return t
    raise TypeCheckError(f"unknown type {t!r}")


def show(t) -> str:
    return f"list[{show(t[1])}]" if isinstance(t, tuple) else t


def is_subtype(a, b) -> bool:
    """a can be used where b is expected."""
    if b == "any" or a == b:
        return True
    if isinstance(a, tuple) and isinstance(b, tuple):
        return is_subtype(a[1], b[1])
    return b == "num" and a in ("int", "float")


def match(pattern, t, env: dict) -> bool:
    """Does type `t` fit `pattern` (binding T in env)?"""
    if pattern == "T":
        if "T" in env:
            return is_subtype(t, env["T"])
        env["T"] = t
        return True
    if isinstance(pattern, tuple):
        return isinstance(t, tuple) and match(pattern[1], t[1], env)
    return is_subtype(t, pattern)


def substitute(pattern, env: dict):
    if pattern == "T":
        return env.get("T", "any")
    if isinstance(pattern, tuple):
        return ("list", substitute(pattern[1], env))
    return pattern


def python_name(t) -> str:
    """The annotation used in generated code."""
    if isinstance(t, tuple):
        return "list"
    return {"int": "int", "float": "float", "num": "int | float", "bool": "bool", "str": "str", "html": "str",
            "json": "object", "rows": "list", "dict": "dict", "any": "object"}[t]
