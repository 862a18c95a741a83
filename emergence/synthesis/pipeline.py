"""The synthesis pipeline: memory first, then the engine, then verification, then memory again.

    service = SynthesisService(engine, memory=HierarchicalMemory(...), verify=sandbox_verifier(executor))
    service.synthesize("collect the image sources of an HTML page", arity=1, examples=[...])

1. A verified tool stored for a near-identical intent (cosine ≥ `reuse_similarity`, same arity,
   and passing the caller's examples if any) is returned as is: `reused: true`.
2. Otherwise the engine proposes ranked candidates. With examples, it draws wider
   (`example_samples`, `example_keep`, `example_temperature`), candidates run in the sandbox in
   rank order and the first that passes them all is the answer (if none does, a second, much
   wider round of draws is tried the same way (`wide_samples`, ...), then the compositions
   of the intent's clauses are tried, then programs one edit from the best candidates for
   `repair_s` seconds (`repair.py`), then a search over the DSL gets `search_s` seconds,
   best-first by the engine's belief in each operation, `Synthesis.op_prior`); without,
   the best candidate is the answer if the scorer finds it coherent enough, else the best
   composition (`compose.py`: every part confident) -- found_by "composition", with its parts.
3. The answer goes into declarative and procedural memory; every request, answered or not, is
   an episode.

Failures are answers too: `CannotSynthesize` names why and the closest capabilities.

`refine(feedback, program=... | tool_id=..., examples=...)` edits a previous tool as the
feedback says (`refine.py`), with the same verification and memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..memory.hierarchical import HierarchicalMemory, ToolRecord
from .engine import Engine, SynthesisInputError, capabilities, validate_request

MAX_EXAMPLES = 20


class CannotSynthesize(Exception):
    """No tool that the engine would stand behind; `detail` is the JSON-able explanation."""

    def __init__(self, reason: str, detail: dict):
        super().__init__(reason)
        self.detail = {"error": "cannot_synthesize", "message": reason, **detail}


def validate_examples(examples, arity: int) -> list:
    if examples is None:
        return []
    if not isinstance(examples, list) or len(examples) > MAX_EXAMPLES:
        raise SynthesisInputError("examples", f"must be a list of at most {MAX_EXAMPLES} {{args, expected}} objects")
    for i, ex in enumerate(examples):
        if not isinstance(ex, dict) or "args" not in ex or "expected" not in ex:
            raise SynthesisInputError(f"examples[{i}]", "needs 'args' (a list) and 'expected'")
        if not isinstance(ex["args"], list) or len(ex["args"]) != arity:
            raise SynthesisInputError(f"examples[{i}].args", f"must be a list of {arity} argument(s)")
    return examples


def sandbox_verifier(run):
    """verify(code, function_name, tests) -> passed count, from a sandbox `run(code, entry, tests)`
    returning a RunResult-like object or its dict."""
    def verify(code: str, function_name: str, tests: list) -> int:
        res = run(code, function_name, tests)
        res = res if isinstance(res, dict) else res.to_dict()
        if res.get("status") != "passed" and not res.get("tests"):
            return 0
        return sum(1 for t in res.get("tests", []) if t.get("status") == "passed")
    return verify


def _tool_answer(tool, program: dict, confidence, verified, found_by: str, coherence=None, **extra) -> dict:
    """An answer from anything compiled (a candidate, composition, edit or found program).
    `coherence`: the scorer's, when it differs from `confidence` (an engine answer's fitted
    probability of being right)."""
    return {"code": tool.code, "function_name": tool.function_name, "signature": tool.signature,
            "docstring": tool.docstring, "program": program,
            "coherence": confidence if coherence is None else coherence, "confidence": confidence,
            "verified": verified, "reused": False, "found_by": found_by, **extra}


@dataclass
class SynthesisService:
    engine: Engine
    memory: HierarchicalMemory | None = None
    verify: object = None  # verify(code, function_name, tests) -> passed count
    reuse_similarity: float = 0.95
    max_verified: int = 32  # candidates tried against the examples
    # with examples, draw wider: 256 draws, each read by sampling its slots at temperature 1.5
    # and keeping its best 5 well-typed readings. Chosen against 64 draws, 3 readings at
    # temperature 1 by `python -m benchmarks.synthesis_sampling` (held-out programs in held-out
    # wordings: the described program among the first 32 candidates at least as often, at about
    # 3x the engine's time) and on the dev and validation intents (more tasks passed in the first
    # round); the figures are in benchmarks/README.md.
    example_samples: int = 256
    example_keep: int = 5
    example_temperature: float = 1.5
    # with examples, when none of those candidates passes: one more round of draws, much wider
    # (1024 draws, slots at temperature 2.5, 8 readings each), and its best untried candidates
    # run on the examples. About 1.5 s of the engine's time on one thread, spent only where the
    # first round failed; `wide_samples = 0` turns it off.
    wide_samples: int = 1024
    wide_keep: int = 8
    wide_temperature: float = 2.5
    # with examples, when no candidate or composition passes: programs one edit (a step dropped,
    # inserted or replaced) from the best candidates, checked on the examples for this long
    repair_s: float = 0.5
    search_s: float = 1.0  # then guided search over the whole DSL this long
    compose: bool = True  # when no candidate will do: build the intent's clauses as chained sub-tools

    def synthesize(self, intent, arity=1, examples=None, n_candidates: int = 10) -> dict:
        t0 = time.perf_counter()
        intent, arity = validate_request(intent, arity)
        examples = validate_examples(examples, arity)
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or not 1 <= n_candidates <= 64:
            raise SynthesisInputError("n_candidates", f"must be an integer from 1 to 64, got {n_candidates!r}")
        if examples and self.verify is None:
            raise SynthesisInputError("examples", "this service has no sandbox to check examples with")
        encoding = self.engine.encode_request(intent)
        vec = encoding.vector
        if not np.any(vec):
            raise SynthesisInputError("intent", "has no words the intent encoder can read")
        try:
            answer = self._reuse(vec, intent, arity, examples) or self._synthesize(encoding, intent, arity, examples,
                                                                                  n_candidates)
        except CannotSynthesize as exc:
            self._episode(vec, intent, None, "cannot_synthesize", t0)
            exc.detail["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
            raise
        if not answer["reused"]:
            self._store(vec, intent, answer)
        self._episode(vec, intent, answer.get("tool_id"), "reused" if answer["reused"] else
                      ("verified" if answer["verified"] else "unverified"), t0)
        answer["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return answer

    def _reuse(self, vec, intent, arity, examples) -> dict | None:
        if self.memory is None:
            return None
        for m in self.memory.find_tools(vec, k=3, min_similarity=self.reuse_similarity, verified_only=True):
            prog = m.program or {}
            if len(prog.get("params", [])) != arity:
                continue
            verified = m.verified
            if examples:
                passed = self.verify(m.code, m.function_name, examples)
                if passed != len(examples):
                    continue
                verified = {"passed": passed, "total": len(examples)}
            return {"code": m.code, "function_name": m.function_name, "signature": m.signature,
                    "docstring": m.docstring, "program": prog, "coherence": None, "confidence": m.similarity,
                    "verified": verified, "reused": True, "tool_id": m.tool_id, "reused_from": m.intent,
                    "found_by": "memory"}
        return None

    def _synthesize(self, encoding, intent, arity, examples, n_candidates) -> dict:
        vec = encoding.vector
        result = self.engine.synthesize(intent, arity, n_candidates=max(n_candidates, self.max_verified),
                                        n_samples=self.example_samples if examples else None, encoding=encoding,
                                        keep=self.example_keep if examples else 1, sample_slots=bool(examples),
                                        slot_temperature=self.example_temperature if examples else 1.0)
        if examples:
            cand, verified = self._first_passing(result.candidates, examples)
            tried, round_ = {c.code for c in result.candidates[:self.max_verified]}, 1
            if cand is None:
                wide = self.wide_candidates(intent, arity, encoding, tried)
                cand, verified = self._first_passing(wide, examples)
                tried.update(c.code for c in wide)
                round_ = 2
            if cand is not None:
                return self._answer(cand, verified, round=round_)
            comp, verified = self._first_passing(self._compositions(intent, arity), examples)
            if comp is not None:
                return self._composed(comp, verified)
            found = self._repair(result, intent, arity, examples) or \
                self._search(intent, arity, examples, result.op_prior)
            if found is not None:
                return found
            raise CannotSynthesize(f"none of the engine's {len(tried)} best candidates "
                                   "reproduces the examples", {"closest_capabilities": capabilities(self.engine, vec),
                                                               "best_coherence": result.best and result.best.coherence,
                                                               "best_confidence": result.confidence})
        if result.ok:
            return self._answer(result.best, None)
        # not one confident program: perhaps confident steps ("X, then Y" built from sub-tools)
        comps = self._compositions(intent, arity)
        if comps and comps[0].coherence >= self.engine.threshold:
            return self._composed(comps[0], None)
        if not result.candidates:
            raise CannotSynthesize("no well-typed program with arguments found in the intent",
                                   {"closest_capabilities": capabilities(self.engine, vec)})
        raise CannotSynthesize("the best candidate is not a confident match for this intent",
                               {"closest_capabilities": capabilities(self.engine, vec),
                                "best_coherence": result.best.coherence, "best_confidence": result.confidence,
                                "threshold": result.threshold})

    def wide_candidates(self, intent, arity, encoding, tried: set) -> list:
        """The engine's second round with examples: up to `max_verified` of its candidates from
        `wide_samples` draws (`wide_keep` readings each, slots sampled at `wide_temperature`)
        whose code is not in `tried` (the first round's, already run on the examples)."""
        if self.wide_samples <= 0:
            return []
        result = self.engine.synthesize(intent, arity, n_candidates=len(tried) + self.max_verified,
                                        n_samples=self.wide_samples, encoding=encoding, keep=self.wide_keep,
                                        sample_slots=True, slot_temperature=self.wide_temperature)
        return [c for c in result.candidates if c.code not in tried][:self.max_verified]

    def _compositions(self, intent, arity) -> list:
        if not self.compose:
            return []
        from .compose import compose
        return compose(self.engine, intent, arity, memory=self.memory)

    @staticmethod
    def _composed(comp, verified) -> dict:
        return _tool_answer(comp, comp.program.to_dict(), comp.coherence, verified, "composition",
                            parts=list(comp.parts), adapters=comp.adapters)

    def _first_passing(self, tools, examples) -> tuple:
        """(the first of up to `max_verified` tools that passes every example, its verification),
        or (None, None)."""
        for tool in tools[:self.max_verified]:
            passed = self.verify(tool.code, tool.function_name, examples)
            if passed == len(examples):
                return tool, {"passed": passed, "total": len(examples)}
        return None, None

    def _store(self, vec, intent: str, answer: dict) -> None:
        """Into declarative and procedural memory; the answer gets its `tool_id`."""
        if self.memory is not None:
            answer["tool_id"] = self.memory.store_tool(vec, ToolRecord(
                intent=intent, code=answer["code"], function_name=answer["function_name"],
                signature=answer["signature"], docstring=answer["docstring"], program=answer["program"],
                verified=answer["verified"]))

    # -- refinement ----------------------------------------------------------------------------

    def refine(self, feedback, program=None, tool_id=None, examples=None) -> dict:
        """A previous program (or a stored tool's) changed as the feedback says: the first edit
        that passes the examples, or without examples the first the engine is confident in (a
        value the feedback states needs no confidence). Stored and recorded like a synthesis."""
        from .refine import previous_program, refine, validate_feedback

        t0 = time.perf_counter()
        feedback = validate_feedback(feedback)
        prev = previous_program(self._previous(program, tool_id))
        examples = validate_examples(examples, len(prev.params))
        if examples and self.verify is None:
            raise SynthesisInputError("examples", "this service has no sandbox to check examples with")
        intent = f"{prev.intent} ({feedback})" if prev.intent else feedback
        vec = self.engine.encoder.encode([intent])[0]
        if not np.any(vec):  # nothing to file it under in memory, and nothing to read
            raise SynthesisInputError("feedback", "has no words the intent encoder can read")
        edits = refine(self.engine, prev, feedback)
        if examples:
            chosen, verified = self._first_passing(edits, examples)
        else:
            chosen = next((e for e in edits[:self.max_verified]
                           if e.confidence is None or e.confidence >= self.engine.threshold), None)
            verified = None
        if chosen is None:
            self._episode(vec, intent, None, "cannot_refine", t0)
            why = ("no edit the feedback reads as passes the examples" if examples
                   else "no edit the feedback reads as is a confident match")
            raise CannotSynthesize(why, {"edits_considered": [
                {"kind": e.kind, "description": e.description, "confidence": e.confidence} for e in edits[:5]],
                "latency_ms": round((time.perf_counter() - t0) * 1000, 2)})
        answer = _tool_answer(chosen, chosen.program.to_dict(), chosen.confidence, verified, "refinement",
                              edit={"kind": chosen.kind, "description": chosen.description}, refined_from=tool_id)
        self._store(vec, intent, answer)
        self._episode(vec, intent, answer.get("tool_id"), "refined", t0)
        answer["latency_ms"] = round((time.perf_counter() - t0) * 1000, 2)
        return answer

    def _previous(self, program, tool_id) -> dict:
        if (program is None) == (tool_id is None):
            raise SynthesisInputError("program", "give exactly one of 'program' (a previous answer's program) "
                                                 "or 'tool_id' (a stored tool)")
        if program is not None:
            if not isinstance(program, dict):
                raise SynthesisInputError("program", "must be a program object as /synthesize returns it")
            return program
        if isinstance(tool_id, bool) or not isinstance(tool_id, int) or tool_id < 0:
            raise SynthesisInputError("tool_id", f"must be a non-negative integer, got {tool_id!r}")
        stored = self.memory.get_tool(tool_id) if self.memory is not None else None
        if stored is None or not stored.get("program"):
            raise SynthesisInputError("tool_id", f"no stored tool {tool_id} with a program")
        return stored["program"]

    def _repair(self, result, intent, arity, examples) -> dict | None:
        """A program one edit from one of the engine's best candidates that reproduces the
        examples (`repair.repairs`, the operations tried in the order of the engine's prior)."""
        from .repair import repairs

        if self.repair_s <= 0:
            return None
        found = repairs(result.candidates, examples, arity, result.op_prior, budget_s=self.repair_s)
        return self._found(found, intent, examples, "repair")

    def _search(self, intent, arity, examples, prior=None) -> dict | None:
        """Search over the DSL for a program that reproduces the examples (the engine's
        candidates all failed them), best-first by the engine's operation prior when there is
        one (`enumerative.guided_programs`); what it finds is still run in the sandbox."""
        from .enumerative import search_programs

        if self.search_s <= 0:
            return None
        return self._found(search_programs(arity, examples, self.search_s, prior, limit=3), intent, examples,
                           "search")

    def _found(self, programs, intent, examples, found_by: str) -> dict | None:
        """The first of `programs` (found from the examples in process) that passes them in the
        sandbox too, named for the intent."""
        from .compiler import compile_program
        from .engine import tool_name

        for prog in programs:
            prog.name, prog.intent = tool_name(intent), intent
            tool, verified = self._first_passing([compile_program(prog)], examples)
            if tool is not None:
                return _tool_answer(tool, prog.to_dict(), None, verified, found_by)
        return None

    @staticmethod
    def _answer(cand, verified, **extra) -> dict:
        """An engine candidate's answer; with examples, `round`: the round of draws it came from."""
        return _tool_answer(cand, cand.program.to_dict(), cand.stated_confidence, verified, "engine",
                            coherence=cand.coherence, **extra)

    def _episode(self, vec, intent, tool_id, outcome, t0) -> None:
        if self.memory is not None:
            self.memory.record_episode(vec, {"intent": intent, "tool_id": tool_id, "outcome": outcome,
                                             "latency_ms": round((time.perf_counter() - t0) * 1000, 2)})
