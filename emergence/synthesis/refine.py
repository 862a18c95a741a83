"""Refinement: a previous program plus feedback in words -> edited programs, best first.

    edits = refine(engine, previous_program, "only keep the first three")
    edits[0].program, edits[0].kind, edits[0].description, edits[0].confidence

Feedback is read five ways; each proposes well-typed edits of the previous program:
- value: the feedback says a value that one of the program's steps takes ("use semicolons",
  "above 10 instead") -> that step with the new value. No confidence (None): the operations are
  the previous program's and the value is the feedback's own word, not a model's judgement.
- removal: the feedback negates ("don't sort them", "without lowercasing", "no need to ...") ->
  the step the remaining words point at (the action encoder's alignment, softmax over the
  program's steps: that probability is the confidence), removed.
- addition: the feedback asks for more ("then keep the first 3", "also sort them") -> the
  engine's candidates for the feedback alone, appended; prepended when it says "first" or
  "before". Confidence: the engine's coherence for the feedback.
- replacement: the feedback names a different step ("descending instead") -> a step swapped for
  one of the engine's one-step readings of the feedback, keeping the program well typed; a step
  of the same family (SORT.asc -> SORT.desc) first. Confidence: the engine's coherence.
- rewrite: the engine on the previous intent and the feedback together; last.

Cue words decide which reading goes first ("instead", "rather", "use": value, then replacement;
a negation: removal; otherwise value, then addition). An edit never returns the previous program.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from .arguments import fill_arguments
from .compiler import compile_program
from .compose import Option, _assemble, _chain, engine_parts
from .decode import no_repeats
from .engine import MAX_INTENT_CHARS, Engine, SynthesisInputError, derived_steps, linear_form
from .shares import SHARE
from .models import VOCAB
from .ops import OPS
from .program import Program, check
from .types import TypeCheckError

MAX_FEEDBACK_CHARS = 1000
NEGATION = re.compile(r"\b(?:don'?t|do not|doesn'?t|does not|no longer|without|never|stop|skip|omit|leave out|"
                      r"no need to|not|shouldn'?t|should not)\b\s*", re.I)
INSTEAD = re.compile(r"\b(?:instead|rather|change|switch|make it|should be|use)\b", re.I)
# "lowercase it first", "first lowercase it", "before that, ..." (not "the first 3")
BEFORE = re.compile(r"^\s*(?:first\b|before\b[^,]*,|beforehand\b|to begin with\b)|\b(?:first|beforehand|before that|"
                    r"at the start)\s*[.!]?\s*$", re.I)
# "descending instead of ascending": the words after "instead of" name what goes, not what comes
ALTERNATIVE = re.compile(r"\b(?:instead of|rather than|not)\b[^,.;]*", re.I)
FILLER = re.compile(r"\b(?:please|also|and|then|instead|rather|actually|just|but|the result|it|them)\b[,.]?\s*", re.I)


@dataclass
class Edit:
    program: Program
    kind: str  # value | removal | addition | replacement | rewrite
    description: str
    confidence: float | None  # None for a value edit: the value is the feedback's own word, not a judgement
    code: str = ""
    function_name: str = ""
    signature: str = ""
    docstring: str = ""


def validate_feedback(feedback) -> str:
    if not isinstance(feedback, str) or not feedback.strip():
        raise SynthesisInputError("feedback", "must be a non-empty string saying what to change")
    if len(feedback) > MAX_FEEDBACK_CHARS:
        raise SynthesisInputError("feedback", f"is {len(feedback)} characters; at most {MAX_FEEDBACK_CHARS}")
    return " ".join(feedback.split())


def previous_program(program) -> Program:
    """The program to refine, from a Program or its dict; SynthesisInputError if it is not a checked,
    linear pipeline of the DSL's operations."""
    try:
        prog = program if isinstance(program, Program) else Program.from_dict(program)
        check(prog)
    except TypeCheckError as exc:
        raise SynthesisInputError("program", f"is not a valid program: {exc}") from None
    if linear_form(prog) is None:
        raise SynthesisInputError("program", "refinement edits linear pipelines (no STORE/RETRIEVE/RETURN steps "
                                             "but those of a threshold computed from the values or of a share)")
    return prog


def _typed(prev: Program, ops: list, args: list, intent: str) -> Program | None:
    """The edited steps as a checked program: the previous parameters, or (one parameter) the
    same name with whatever type the new first step takes."""
    if not ops:
        return None
    prog = Program(prev.name, list(prev.params), derived_steps(ops, args, [p for p, _ in prev.params]), intent)
    try:
        check(prog)
        return prog
    except TypeCheckError:
        pass
    return _assemble(ops, args, intent, 1, prev.name, pname=prev.params[0][0]) if len(prev.params) == 1 else None


def _value_edits(prev, ops, args, feedback, intent) -> list[Edit]:
    out = []
    for i, op in enumerate(ops):
        if op not in OPS or not OPS[op].args:  # SHARE (`shares.py`) takes nothing
            continue
        defaults = fill_arguments("", [op], 1, limit=4)
        for read in fill_arguments(feedback, [op], 1, limit=2):
            new = read[0]
            if new in [d[0] for d in defaults]:
                continue  # a default, not something the feedback said
            new = {a: (args[i][a] if "ref" in args[i].get(a, {}) else v) for a, v in new.items()}
            if new == args[i]:
                continue  # no change (a parameter stays a parameter)
            prog = _typed(prev, ops, args[:i] + [new] + args[i + 1:], intent)
            if prog is not None:
                said = ", ".join(f"{a}={v['const']!r}" for a, v in new.items() if "const" in v)
                out.append(Edit(prog, "value", f"step {i + 1} ({op}) now takes {said}", None))
    return out


def _removal_edits(engine, prev, ops, args, core_vec, intent) -> list[Edit]:
    steps = [i for i, o in enumerate(ops) if o in VOCAB]  # not SHARE: it is no operation the encoder knows
    if len(ops) < 2 or not steps:
        return []
    _, align = engine.judge(core_vec, 1, [[ops[i]] for i in steps])
    z = np.exp((np.array(align) - max(align)) / 0.1)  # cosines -> a distribution over the steps
    prob = z / z.sum()
    out = []
    for k in np.argsort(-prob):
        i = steps[k]
        prog = _typed(prev, ops[:i] + ops[i + 1:], args[:i] + args[i + 1:], intent)
        if prog is not None:
            out.append(Edit(prog, "removal", f"removed step {i + 1} ({ops[i]})", float(prob[k])))
    return out


def _addition_edits(prev, ops, args, readings, before: bool, intent) -> list[Edit]:
    out = []
    here = Option(ops, args, 1.0, "previous")
    for r in readings:
        chained = _chain([r, here] if before else [here, r])
        if chained is None:
            continue
        prog = _typed(prev, chained[0], chained[1], intent)
        if prog is not None:
            where = "before the first step" if before else "after the last step"
            out.append(Edit(prog, "addition", f"added {' -> '.join(r.ops)} {where}", r.coherence))
    return out


def _replacement_edits(prev, ops, args, readings, intent) -> list[Edit]:
    out = []
    for r in readings:
        if len(r.ops) != 1:
            continue
        new_op, new_args = r.ops[0], r.args[0]
        for i, op in enumerate(ops):
            if op == new_op:
                continue
            prog = _typed(prev, ops[:i] + [new_op] + ops[i + 1:], args[:i] + [new_args] + args[i + 1:], intent)
            if prog is not None:
                family = op.split(".")[0] == new_op.split(".")[0]
                out.append((family, Edit(prog, "replacement", f"step {i + 1}: {'the share' if op == SHARE else op} -> {new_op}", r.coherence)))
    return [e for _, e in sorted(out, key=lambda fe: (not fe[0], -fe[1].confidence))]


def refine(engine: Engine, program, feedback: str, n_readings: int = 4, limit: int = 16) -> list[Edit]:
    """Edits of `program` that the feedback asks for, best first (at most `limit`)."""
    feedback = validate_feedback(feedback)
    prev = previous_program(program)
    ops, args = linear_form(prev)
    intent = f"{prev.intent} ({feedback})" if prev.intent else feedback
    swap = bool(INSTEAD.search(feedback))
    negated = not swap and bool(NEGATION.search(feedback))
    core = ALTERNATIVE.sub("", feedback) if swap else NEGATION.sub("", feedback)
    before = bool(BEFORE.search(feedback))
    core = " ".join(FILLER.sub("", BEFORE.sub(" ", core)).split()) or feedback
    enc_core = engine.encode([core])[0]
    vec_core = enc_core.vector
    syn = engine.synthesize(core, 1, n_candidates=n_readings, encoding=enc_core)
    readings = engine_parts(syn.candidates)

    values = _value_edits(prev, ops, args, feedback, intent)
    removals = _removal_edits(engine, prev, ops, args, vec_core, intent) if np.any(vec_core) else []
    additions = _addition_edits(prev, ops, args, readings, before, intent)
    replacements = _replacement_edits(prev, ops, args, readings, intent)
    rewrites = []
    if len(intent) <= MAX_INTENT_CHARS and 1 <= len(prev.params) <= 4:  # what the engine takes as a request
        rewrite = engine.synthesize(intent, len(prev.params), n_candidates=3)
        rewrites = [Edit(c.program, "rewrite", f"rewritten as {' -> '.join((linear_form(c.program) or [c.ops])[0])}",
                         c.coherence) for c in rewrite.candidates]
    for e in rewrites:
        e.program.name = prev.name
    if swap:
        order = values + replacements + additions + removals + rewrites
    elif negated:
        order = removals + values + replacements + additions + rewrites
    else:
        order = values + additions + replacements + rewrites + removals
    out, seen = [], {repr(prev.to_dict()["steps"])}
    for e in order:
        key = repr(e.program.to_dict()["steps"])
        if key in seen or not no_repeats([st.op for st in e.program.steps]):  # sort, sort: not an edit
            continue
        if e.confidence is not None and not math.isfinite(e.confidence):
            continue
        seen.add(key)
        tool = compile_program(e.program)
        e.code, e.function_name, e.signature, e.docstring = tool.code, tool.function_name, tool.signature, tool.docstring
        out.append(e)
        if len(out) >= limit:
            break
    return out
