"""Asides: what people add to a request that asks for no step of its own.

Real requests carry more than the operations: a word about the input ("a sentence in
lowercase", "a list of ints, possibly empty") and a remark on behaviour ("keep the order they
came in", "an empty input gives 0"). Such words name operations (lowercase, order, empty) that
the program must not contain, and a model trained only on the bare descriptions reads them as
steps. The corpus adds them to some descriptions, so training sees operation words that ask
for nothing.

A remark on behaviour is only said when it is true of the program: `facts` runs it on
generated inputs and on an empty one. The phrases were written from what the operations do;
they are not taken from any evaluation set. Lists of four or more keep their last entry out of
training, for held-out calibration wordings (`corpus.held_out_phrases`).
"""

from __future__ import annotations

import random

from . import inputs
from .ops import OPS
from .program import Program
from .runtime import build_callable

QUALIFIER_PROB = 0.15  # how often the input phrase gets a qualifier
ASIDE_PROB = 0.3  # how often a description gets a remark on behaviour

# said of the input, true of any input a caller may pass
QUALIFIERS = {
    "ints": [", possibly empty", " (negatives allowed)", ", in no particular order", " that may repeat",
             " of any length"],
    "nums": [", possibly empty", " (ints and floats mixed)", ", in no particular order",
             " that may include negatives", " of any length"],
    "words": [", possibly empty", " in mixed case", " that may contain repeats", ", unsorted", " of any length"],
    "text": [" in lowercase", " with punctuation", " in mixed case", " that may span several lines",
             " of any length"],
    "html": [" with scripts and styles", " of any size", ", possibly messy", " as one string"],
    "json": [", possibly nested", " as one string", " with nested objects", " from an API"],
    "csv": [" as one string", " from a spreadsheet", " exported by a tool", " with a header"],
    "url": [" (http or https)", " with a path", " as a string", " with a query string"],
    "urls": [", possibly repeated", " (http and https)", ", some of them relative", " in no particular order"],
    "path": [],
}

# remarks that hold for the program (see `facts`); {v} is the result on an empty input
REMARKS = {
    "order": ["keep the order they came in", "preserve the input order", "don't reorder anything",
              "the original order stays", "leave the order as it is"],
    "per_item": ["one output per element", "each item is handled on its own",
                 "the result has as many items as the input", "work element by element"],
    "empty": ["an empty input gives {v}", "return {v} if the input is empty", "if there is nothing, the answer is {v}",
              "{v} for an empty input"],
    "copes_with_empty": ["the input may be empty", "it must cope with empty input", "empty input is allowed",
                         "it should not fail on empty input"],
    "any": ["use only the standard library", "don't modify the input", "no third-party packages",
            "keep it short and readable", "it should be a pure function"],
}

_EMPTY = {"list[int]": [], "list[num]": [], "list[str]": [], "str": ""}
_LISTS = ("list[int]", "list[num]", "list[str]")


def _subsequence(small: list, big: list) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def _itemwise(fn, runs, prog: Program) -> bool:
    """Whether each output item is the program run on that input item alone (a map, not a sort)."""
    if len(prog.params) > 1:
        return False  # the probes' other arguments are gone; say nothing
    try:
        return all(fn([x]) == [r] for xs, rs in runs for x, r in zip(xs, rs))
    except Exception:
        return False


def _say(value) -> str | None:
    """An empty input's result as a request would say it; None when it would not be said."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, float)) and value == int(value) and abs(value) < 1000:
        return str(int(value))
    return {"[]": "an empty list", "''": "an empty string", "{}": "an empty dict"}.get(repr(value))


def facts(prog: Program, start_hint: str = "", n_probe: int = 6, seed: int = 0) -> dict:
    """What can truly be said of a pure program's behaviour, found by running it: `order` (a list
    comes back as a subsequence of the input, in order), `per_item` (each output item is the
    program on that input item alone),
    `copes_with_empty` and `empty` (the result on an empty input, when it can be said and needs
    no other parameter). An effectful program, or one that won't build, has no facts."""
    if any(OPS[s.op].effects for s in prog.steps):
        return {}
    try:
        _, fn = build_callable(prog)
    except Exception:
        return {}
    rng = random.Random(seed)
    ptype = prog.params[0][1]
    out: dict = {}
    runs = []
    for _ in range(n_probe):
        args = [inputs.value_of(ptype, rng, start_hint)] + [inputs.value_of(t, rng) for _, t in prog.params[1:]]
        try:
            runs.append((args[0], fn(*args)))
        except Exception:
            return {}  # a program that fails on ordinary input: say nothing of it
    if ptype in _LISTS and all(isinstance(r, list) for _, r in runs):
        if all(_subsequence(r, x) for x, r in runs) and any(r for _, r in runs):
            out["order"] = True
        if all(len(r) == len(x) for x, r in runs) and any(r != x for x, r in runs) and _itemwise(fn, runs, prog):
            out["per_item"] = True
    if ptype in _EMPTY:
        extra = [inputs.value_of(t, rng) for _, t in prog.params[1:]]
        try:
            result = fn(_EMPTY[ptype], *extra)
        except Exception:
            return out
        out["copes_with_empty"] = True
        said = _say(result)
        if said is not None and len(prog.params) == 1:
            out["empty"] = said
    return out


def qualify(phrase: str, start: str, pick) -> str:
    """The input phrase with a qualifier after it ("some integers, possibly empty")."""
    options = QUALIFIERS.get(start) or [""]
    return phrase + pick(options)


def remark(known: dict, pick, rng: random.Random) -> str:
    """One true remark on the program (`known` from `facts`), or a general one ("use only the
    standard library") that holds for any program."""
    kinds = [k for k in ("order", "per_item", "empty", "copes_with_empty") if k in known] + ["any"]
    kind = rng.choice(kinds)
    return pick(REMARKS[kind]).format(v=known.get("empty", ""))


def attach(text: str, aside: str, rng: random.Random) -> str:
    """`text` with the remark after it: as a sentence of its own or in brackets."""
    body = text.rstrip()
    end = body[-1] if body.endswith((".", "?")) else "."
    body = body.rstrip(".?")
    if rng.random() < 0.5:
        return f"{body} ({aside}){end}"
    return f"{body}{end} {aside[:1].upper()}{aside[1:]}."
