"""Shares: "What fraction of the numbers are positive?"

The model predicts the part that is kept (FILTER.positive). The request's cue ("fraction of",
"proportion of", "share of") says that the answer is how many are kept over how many there were:
the count of what comes out of the filters over the count of what reached the first of them.
`share_form` marks that with the pseudo-step SHARE at the end of the model's operations (SHARE is
not an operation: the model never predicts it, and it is not in the vocabulary; read back, it
says how many steps before it the whole is, {"of": {"const": n}});
`Engine.typed_program` writes it as steps the type checker and the compiler know
(`share_tail`), and `engine.linear_form` reads those steps back as SHARE, so composition and
refinement edit such a program like any pipeline.

A percentage is not read as a share: the DSL has no step that scales a number by 100, and a
fraction given where a percentage was asked would be wrong by that factor. A share of nothing
(an empty list) divides by zero and raises, as a mean of nothing does.
"""

from __future__ import annotations

import re

from .ops import RETRIEVE, STORE
from .program import Step

SHARE = "SHARE"
COUNT, RATIO = "REDUCE.count", "REDUCE.ratio"
# "the fraction of the lines that ...", "what proportion of them are ...", not "each value's
# share of the total" (that divides by a sum), "a proportion of the maximum", "the nearest
# fraction of 0.5", nor "a fraction of it"
ASKED = re.compile(r"(?<!'s )(?<!nearest )\b(?:fraction|proportion|share)\s+of\s+"
                   r"(?!(?:the\s+|its\s+|their\s+)?(?:total|sum|whole|overall|it|max|maximum|largest|biggest|"
                   r"highest|smallest|lowest|minimum|min|\d)\b)", re.IGNORECASE)


def asks_share(intent: str) -> bool:
    """Does the request ask what fraction of some values pass a test?"""
    return bool(ASKED.search(intent or ""))


def is_filter(op: str) -> bool:
    return op.startswith("FILTER.")


def share_form(ops) -> list | None:
    """The model's operations read as a share: a final count is the share's own, so it is taken
    off, and SHARE ends them. None when nothing is filtered (there is no part to take a share of)."""
    ops = list(ops)
    if ops and ops[-1] == COUNT:
        ops.pop()
    return ops + [SHARE] if any(is_filter(op) for op in ops) and SHARE not in ops else None


def whole_at(ops: list, args: list, share_index: int) -> int | None:
    """The index of the step whose input is the whole a SHARE at `share_index` counts: `of`
    steps before it when its arguments say ({"of": {"const": n}}, as `linear_form` reads a
    share back, so splicing and editing keep what it counts), else the first filter after any
    earlier SHARE; None when there is none."""
    start = max((i + 1 for i, op in enumerate(ops[:share_index]) if op == SHARE), default=0)
    of = (args[share_index] if share_index < len(args) else {}).get("of", {}).get("const")
    if of is not None:
        w = share_index - of if isinstance(of, int) and not isinstance(of, bool) else -1
        return w if start <= w < share_index else None
    return next((i for i in range(start, share_index) if is_filter(ops[i])), None)


def share_tail(whole: str, fresh) -> list[Step]:
    """The steps of a SHARE: count what flows in, count `whole`, divide. `fresh(base)` names a value."""
    kept, total = fresh("count"), fresh("total")
    return [Step(COUNT), Step(STORE, name=kept), Step(RETRIEVE, name=whole), Step(COUNT), Step(STORE, name=total),
            Step(RETRIEVE, name=kept), Step(RATIO, {"other": {"ref": total}})]


def read_tail(steps: list, wholes: set) -> bool:
    """Do these 7 steps make a `share_tail` of one of `wholes` (the names a whole may have)?"""
    if len(steps) != 7 or [s.op for s in steps] != [s.op for s in share_tail("w", lambda b: b)]:
        return False
    kept, whole, total = steps[1].name, steps[2].name, steps[4].name
    return whole in wholes and steps[5].name == kept and steps[6].args == {"other": {"ref": total}}
