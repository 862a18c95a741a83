"""Compositional building: an intent read as a sequence of steps, built from sub-tools.

    compositions = compose(engine, "parse the CSV, take the price column, then average it", arity=1,
                           memory=memory)
    compositions[0].program, compositions[0].coherence, compositions[0].parts

An intent such as "X, then Y" or "X; Y" is split into clauses (`clause_splits`: explicit
sequence words first, then commas and "and"). Each clause becomes a sub-tool (read alone, and read after the clause before it,
whose steps are then not repeated): a verified tool
stored in procedural memory for a near-identical request (its operations, with arguments read
again from the clause when the clause names them), or the engine's best candidates for the
clause alone. Sub-tools are chained when each one's output type is the next one's input, and
the chain is type-checked as a whole; where two parts' types don't meet, one conversion or
parser step (`ADAPTERS`) may join them, and a step both sides repeat at the seam is kept once. A composition is only as confident as its least
confident part: `coherence` is the minimum of the parts' (the scorer's probability for an
engine part, the cosine similarity for a reused one).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np

from .arguments import fill_arguments
from .compiler import compile_program
from .decode import no_repeats
from .engine import Engine, linear_form, tool_name
from .ops import OPS
from .program import Program

MAX_PARTS = 4
# explicit sequence words: "X, then Y", "X; Y", "X. After that, Y"
SEQUENCE = re.compile(r"\s*(?:;|\.\s+|,?\s*\b(?:and\s+)?then\b,?|,?\s*\b(?:after that|afterwards|finally|next)\b,?)\s*",
                      re.I)
# looser: commas and "and" ("keep the even ones, square them and add them up")
LOOSE = re.compile(r"\s*(?:,\s*and\b|,|\band\b)\s*", re.I)
LEADING = re.compile(r"^(?:first(?:ly)?|then|and|next|finally|also|after that|afterwards)\b[,:]?\s*", re.I)
# a clause that only names the input ("Given a list of ints, ...") belongs to the next one
INPUT_ONLY = re.compile(r"^(?:given|for|from|with|take|taking|starting from|input:?)\b", re.I)


def _clean(clause: str) -> str:
    clause = clause.strip(" ,.;:")
    while True:
        stripped = LEADING.sub("", clause).strip(" ,.;:")
        if stripped == clause:
            return clause
        clause = stripped


def _merge_input(parts: list[str]) -> list[str]:
    if len(parts) > 1 and INPUT_ONLY.match(parts[0]):
        return [f"{parts[0]}, {parts[1]}"] + parts[2:]
    return parts


def clause_splits(intent: str, max_parts: int = MAX_PARTS) -> list[list[str]]:
    """Ways to read an intent as 2..max_parts steps, most explicit first; [] when it reads as one."""
    strict = _merge_input([c for c in (_clean(p) for p in SEQUENCE.split(intent)) if c])
    loose = _merge_input([c for p in strict for c in (_clean(q) for q in LOOSE.split(p)) if c])
    out = []
    for parts in (strict, loose):
        if 2 <= len(parts) <= max_parts and all(re.search(r"[A-Za-z]{2}", p) for p in parts) and parts not in out:
            out.append(parts)
    return out


@dataclass
class Option:
    """One reading of one clause: its operations with their arguments."""
    ops: list
    args: list
    coherence: float
    found_by: str  # "engine" | "memory"
    tool_id: int | None = None


@dataclass
class Composition:
    program: Program
    coherence: float  # the least confident part's
    parts: list  # [{"intent", "ops", "found_by", "tool_id", "coherence"}]
    code: str = ""
    function_name: str = ""
    signature: str = ""
    docstring: str = ""
    ops: list = field(default_factory=list)
    adapters: list = field(default_factory=list)  # steps added where two parts' types didn't meet


def _memory_options(memory, vec, clause: str, min_similarity: float) -> list[Option]:
    out = []
    for m in memory.find_tools(vec, k=2, min_similarity=min_similarity, verified_only=True):
        prog = m.program or {}
        steps = prog.get("steps") or []
        if len(prog.get("params", [])) != 1 or not steps or any(s.get("op") not in OPS for s in steps):
            continue  # a one-parameter linear pipeline chains; STORE/RETRIEVE trees don't
        ops = [s["op"] for s in steps]
        stored = [dict(s.get("args") or {}) for s in steps]
        read = fill_arguments(clause, ops, 1, limit=1)  # this request's own values, when it says them
        out.append(Option(ops, read[0] if read else stored, float(m.similarity), "memory", m.tool_id))
    return out


def engine_parts(candidates) -> list[Option]:
    """The engine's candidates that are linear pipelines (`linear_form`), as parts to splice;
    other trees don't chain."""
    forms = [(linear_form(c.program), c) for c in candidates]
    return [Option(form[0], form[1], c.coherence, "engine") for form, c in forms if form]


def _engine_options(engine: Engine, clause: str, encoding, per_part: int) -> list[Option]:
    return engine_parts(engine.synthesize(clause, 1, n_candidates=per_part, encoding=encoding).candidates)


def _assemble(ops, args, intent, arity, name, pname: str | None = None) -> Program | None:
    """A checked program of these steps, its first parameter typed as the first step needs."""
    if arity > 1:  # extra parameters are bound over the whole chain, from the whole intent
        progs = Engine.programs(ops, intent, arity, name, limit=1)
        return progs[0] if progs else None
    return Engine.typed_program(ops, args, intent, name, pname)


# one step that may join two sub-tools whose types don't meet ("take the price column" gives
# strings, "average it" wants numbers): conversions and parsers, nothing that changes meaning
ADAPTERS = ("MAP.to_number", "TRANSFORM.word_tokens", "PARSE_CSV.rows", "PARSE_JSON.document", "PARSE_HTML.page",
            "TRANSFORM.as_number", "TRANSFORM.as_text", "TRANSFORM.as_list")


def _chain(options) -> tuple[list, list, list] | None:
    """Join the parts left to right: as they are, else without a repeated step at the seam (both
    sides parse the CSV), else with one adapter between. (ops, args, adapters) or None."""
    ops, args, adapters = list(options[0].ops), [dict(a) for a in options[0].args], []
    if _assemble(ops, args, "", 1, "chain") is None:
        return None
    for o in options[1:]:
        tries = [(o.ops, o.args, None)]
        for k in range(min(len(ops), len(o.ops) - 1), 0, -1):  # the seam's overlap, kept once
            if ops[-k:] == list(o.ops[:k]):
                tries.insert(0, (o.ops[k:], o.args[k:], None))
                break
        tries += [([a] + o.ops, [{}] + o.args, a) for a in ADAPTERS]
        for more_ops, more_args, adapter in tries:
            if _assemble(ops + list(more_ops), args + [dict(a) for a in more_args], "", 1, "chain") is not None:
                ops, args = ops + list(more_ops), args + [dict(a) for a in more_args]
                adapters += [adapter] if adapter else []
                break
        else:
            return None
    return ops, args, adapters


def _rank(comp: Composition) -> tuple:
    """Sort key: the least confident part, then the parts' mean (a reused tool counts its similarity)."""
    return -comp.coherence, -sum(p["coherence"] for p in comp.parts) / len(comp.parts)


def compose(engine: Engine, intent: str, arity: int = 1, memory=None, per_part: int = 3,
            part_reuse: float = 0.9, limit: int = 16) -> list[Composition]:
    """Well-typed chains of sub-tools for an intent that reads as several steps, most confident
    first (at most `limit`); [] when it doesn't read as steps or no chain types."""
    name = tool_name(intent)
    found: dict = {}
    for parts in clause_splits(intent):
        encodings = engine.encode(parts)
        options = []
        for i, (clause, enc) in enumerate(zip(parts, encodings)):
            vec = enc.vector
            opts = _memory_options(memory, vec, clause, part_reuse) if memory is not None and np.any(vec) else []
            opts += _engine_options(engine, clause, enc, per_part)
            if i:  # "take the price column" means little alone: read it after the clause before
                opts += _engine_options(engine, f"{parts[i - 1]}, then {clause}", None, per_part)
            options.append(opts)
        for combo in itertools.product(*options):
            chained = _chain(combo)
            if chained is None or len(chained[0]) > 8:
                continue
            ops, args, adapters = chained
            prog = _assemble(ops, args, intent, arity, name)
            if prog is None:
                continue
            if not no_repeats(ops):
                continue  # "sort them" read twice over a seam is not a two-step tool
            key = repr(prog.to_dict()["steps"])
            coherence = min(o.coherence for o in combo)
            if key in found and _rank(found[key]) <= (-coherence, -sum(o.coherence for o in combo) / len(combo)):
                continue
            found[key] = Composition(prog, coherence, [
                {"intent": clause, "ops": o.ops, "found_by": o.found_by, "tool_id": o.tool_id,
                 "coherence": round(o.coherence, 4)} for clause, o in zip(parts, combo)], ops=ops, adapters=adapters)
    ranked = sorted(found.values(), key=lambda c: (*_rank(c), len(c.adapters), len(c.ops)))[:limit]
    for comp in ranked:
        tool = compile_program(comp.program)
        comp.code, comp.function_name, comp.signature, comp.docstring = (tool.code, tool.function_name,
                                                                         tool.signature, tool.docstring)
    return ranked
