"""Measuring refinement on held-out programs, with feedback in held-out wordings.

From the corpus's calibration records (validation programs, never trained on) three kinds of
request are made, each with one right answer:
- addition: the program without its last step, and feedback "then <the last step, in words>";
- value: the program with one constant changed, and feedback "<that step with the right value,
  in words> instead";
- removal: the whole program, and feedback "no need to <its last step, in words>"; the program
  without that step is right.
The words come from `language.PHRASES` through `corpus.held_out_phrases(..., held_out=True)`:
the phrasings the networks never read. A case counts as solved when the edit the service would
pick without examples (the first with a stated value or a confidence over the threshold) is the
right program, operations and arguments.
"""

from __future__ import annotations

import random

from .corpus import _fill, held_out_phrases, make_program
from .language import PHRASES
from .ops import OPS
from .refine import refine

NEW_VALUES = {"k": [0, 1, 2, 3, 5, 10, 50, -1, 4, 7], "n": [1, 2, 3, 4, 5, 6], "sep": [",", " ", "-", ";", "|"]}


def _phrase(op: str, args: dict, rng, saying: str | None = None) -> str | None:
    """A held-out follow-on phrase for a step (one that says argument `saying`, if given)."""
    options = [t for t in held_out_phrases(PHRASES[op]["then"], True) if saying is None or "{" + saying + "}" in t]
    return _fill(rng.choice(options), "", op, args, rng) if options else None


def make_cases(records, limit_per_kind: int = 100, seed: int = 0) -> list[dict]:
    """[{kind, previous (program dict), feedback, expected (program steps)}] from calibration records."""
    rng = random.Random(seed)
    recs = [r for r in records if r.arity == 1 and not any(OPS[o].effects for o in r.ops)]
    rng.shuffle(recs)
    cases = {"addition": [], "value": [], "removal": []}
    for r in recs:
        args = [dict(s.get("args") or {}) for s in r.program["steps"]]
        seq = list(r.ops)
        full = make_program(seq, r.start, args, name="tool").to_dict()["steps"]
        if len(seq) >= 2 and len(cases["addition"]) < limit_per_kind:
            prev = make_program(seq[:-1], r.start, args[:-1], name="tool", intent="")
            cases["addition"].append({"kind": "addition", "previous": prev.to_dict(), "expected": full,
                                      "feedback": "then " + _phrase(seq[-1], args[-1], rng)})
        if len(seq) >= 2 and len(cases["removal"]) < limit_per_kind:
            short = make_program(seq[:-1], r.start, args[:-1], name="tool").to_dict()["steps"]
            cases["removal"].append({"kind": "removal", "previous": make_program(seq, r.start, args, name="tool").to_dict(),
                                     "expected": short, "feedback": "no need to " + _phrase(seq[-1], args[-1], rng)})
        consts = [(i, a) for i, st in enumerate(args) for a, v in st.items()
                  if "const" in v and a in NEW_VALUES]
        if consts and len(cases["value"]) < limit_per_kind:
            i, a = rng.choice(consts)
            said = _phrase(seq[i], args[i], rng, saying=a)
            if said is None:
                continue
            wrong = [dict(x) for x in args]
            wrong[i] = {**wrong[i], a: {"const": rng.choice([v for v in NEW_VALUES[a] if v != args[i][a]["const"]])}}
            prev = make_program(seq, r.start, wrong, name="tool")
            cases["value"].append({"kind": "value", "previous": prev.to_dict(), "expected": full,
                                   "feedback": said + " instead"})
    return [c for kind in cases.values() for c in kind]


def evaluate(engine, cases, threshold: float | None = None) -> dict:
    """{kind: {"cases", "solved", "in_top3"}} and "all"."""
    threshold = engine.threshold if threshold is None else threshold
    out: dict = {}
    for c in cases:
        edits = refine(engine, c["previous"], c["feedback"])
        picked = next((e for e in edits if e.confidence is None or e.confidence >= threshold), None)
        steps = lambda e: e.program.to_dict()["steps"]  # noqa: E731
        row = out.setdefault(c["kind"], {"cases": 0, "solved": 0, "in_top3": 0})
        row["cases"] += 1
        row["solved"] += picked is not None and steps(picked) == c["expected"]
        row["in_top3"] += any(steps(e) == c["expected"] for e in edits[:3])
    total = {k: sum(r[k] for r in out.values()) for k in ("cases", "solved", "in_top3")}
    out["all"] = total
    for r in out.values():
        r["solved_rate"] = r["solved"] / max(1, r["cases"])
        r["top3_rate"] = r["in_top3"] / max(1, r["cases"])
    return out
