"""Compositional building and refinement (no Ray): splitting an intent into clauses, chaining
sub-tools (memory first, seams, adapters), the edits feedback asks for, and both through the
synthesis service.

The engine here is a stand-in that reads operations from keywords, so what is tested is the
composition and refinement logic itself, exactly; how well the trained engine reads clauses is
measured by `benchmarks.synthesis` (the "composition" rows)."""

from __future__ import annotations

import copy
import json
import re

import numpy as np
import pytest

from emergence.memory.hierarchical import HierarchicalMemory, LocalBackend, ToolRecord
from emergence.synthesis.compiler import compile_program
from emergence.synthesis.compose import ADAPTERS, clause_splits, compose
from emergence.synthesis.encoder import DIM, HashingEncoder
from emergence.synthesis.engine import Candidate, Encoding, Engine, SynthesisInputError, Synthesis, tool_name
from emergence.synthesis.pipeline import CannotSynthesize, SynthesisService
from emergence.synthesis.program import Program, Step
from emergence.synthesis.refine import previous_program, refine
from emergence.synthesis.runtime import build_callable

from test_synthesis_engine import in_process_verifier  # runs our compiler's output in the restricted namespace


class KeywordEngine:
    """Stands in for the trained engine: each (pattern, ops, coherence) whose pattern occurs in
    the text is a candidate, with arguments read from the text as the real engine reads them.
    A text that several patterns match (several steps in one breath) gets each coherence divided
    by their number: no one of those programs is the whole request."""

    threshold = 0.5

    def __init__(self, table):
        self.table = [(re.compile(p, re.I), ops, c) for p, ops, c in table]
        self.encoder = HashingEncoder()
        self.calls = []

    reads_words = False

    def encode(self, texts):
        return [Encoding(v) for v in self.encoder.encode(texts)]

    def encode_request(self, intent):
        return self.encode([intent])[0]

    def synthesize(self, intent, arity=1, examples=None, n_candidates=10, encoding=None, **_):
        self.calls.append(intent)
        cands = []
        hits = [(ops, coherence) for pat, ops, coherence in self.table if pat.search(intent)]
        for ops, coherence in hits:
            for prog in Engine.programs(ops, intent, arity, tool_name(intent)):
                t = compile_program(prog)
                cands.append(Candidate(list(ops), prog, t.code, t.function_name, t.signature, t.docstring,
                                       coherence / len(hits), 1))
        cands.sort(key=lambda c: -c.coherence)
        return Synthesis(intent, cands[:n_candidates], [c.ops for c in cands], self.threshold, 0.0)

    def judge(self, intent_vector, arity, op_lists):
        # alignment: 1 for an op some pattern of the judged text proposes (the vector is the text's)
        text = self._texts.get(np.asarray(intent_vector).tobytes(), "")
        hits = {op for pat, ops, _ in self.table if pat.search(text) for op in ops}
        align = [1.0 if set(o) & hits else 0.0 for o in op_lists]
        return [0.9 if a else 0.1 for a in align], align

    # the hashing encoder, remembering which text made which vector (for `judge`)
    _texts: dict = {}

    def remember(self):
        enc = self.encoder
        real = enc.encode

        def encode(texts):
            vecs = real(texts)
            for t, v in zip(texts, vecs):
                self._texts[np.asarray(v).tobytes()] = t
            return vecs
        enc.encode = encode
        return self


TABLE = [
    (r"\beven\b", ["FILTER.even"], 0.9),
    (r"\bodd\b", ["FILTER.odd"], 0.2),
    (r"\bsquare", ["MAP.square"], 0.8),
    (r"\badd (?:them|it) up|\bsum\b|\btotal\b", ["REDUCE.sum"], 0.85),
    (r"\bparse the csv\b", ["PARSE_CSV.rows"], 0.9),
    (r"\bcolumn\b", ["PARSE_CSV.rows", "EXTRACT_ELEMENTS.column"], 0.7),
    (r"\baverage\b", ["REDUCE.mean"], 0.8),
    (r"\bwords\b", ["TRANSFORM.word_tokens"], 0.9),
    (r"\bsort\b(?!.*\bdescending\b)", ["SORT.asc"], 0.8),
    (r"\bdescending\b", ["SORT.desc"], 0.8),
    (r"\bfirst \d+|\bfirst (?:three|two|five)\b", ["LIMIT.first"], 0.9),
    (r"\bjoin\b", ["REDUCE.join"], 0.8),
    (r"\bcount\b", ["REDUCE.count"], 0.8),
    (r"\babove\b", ["FILTER.greater"], 0.85),
]


@pytest.fixture
def engine():
    return KeywordEngine(TABLE).remember()


@pytest.fixture
def memory(tmp_path):
    backend = LocalBackend(str(tmp_path / "memory"))
    yield HierarchicalMemory(backend, dim=DIM)
    backend.close()


def run(program, *args):
    return build_callable(program)[1](*copy.deepcopy(list(args)))


# --- clauses -----------------------------------------------------------------------------------
@pytest.mark.parametrize("intent,expected", [
    ("Sort the words and then join them with commas", [["Sort the words", "join them with commas"]]),
    ("Parse the CSV. After that, take the price column; finally average it",
     [["Parse the CSV", "take the price column", "average it"]]),
    ("First lowercase the text, then split it into words", [["lowercase the text", "split it into words"]]),
    # the input-only clause belongs to the first step; "then" splits strictly, commas loosely
    ("Given a list of ints, drop the odd ones, square each, then sum.",
     [["Given a list of ints, drop the odd ones", "square each", "sum"]]),
    ("keep the even numbers and square them", [["keep the even numbers", "square them"]]),
    ("keep the words longer than four letters", []),
    ("a, b, c, d, e, f", []),  # more parts than MAX_PARTS: not read as steps
])
def test_clause_splits(intent, expected):
    assert clause_splits(intent) == expected


# --- composition -------------------------------------------------------------------------------
def test_compose_chains_the_clauses_and_the_program_runs(engine):
    comps = compose(engine, "keep the even numbers, square them, then add them up")
    best = comps[0]
    assert [s.op for s in best.program.steps] == ["FILTER.even", "MAP.square", "REDUCE.sum"]
    assert best.coherence == pytest.approx(0.8)  # the least confident part's
    assert [p["found_by"] for p in best.parts] == ["engine"] * 3
    assert [p["intent"] for p in best.parts] == ["keep the even numbers", "square them", "add them up"]
    assert run(best.program, [1, 2, 3, 4]) == 20
    assert f"def {best.function_name}(" in best.code
    # ranked most confident first, and every composition type-checks and compiles
    assert [c.coherence for c in comps] == sorted((c.coherence for c in comps), reverse=True)
    assert all(c.code and c.signature for c in comps)


def test_compose_keeps_a_repeated_seam_once_and_adds_an_adapter(engine):
    comps = compose(engine, "parse the CSV, then take the price column, then average it")
    best = comps[0]
    ops = [s.op for s in best.program.steps]
    assert ops == ["PARSE_CSV.rows", "EXTRACT_ELEMENTS.column", "MAP.to_number", "REDUCE.mean"]
    assert best.adapters == ["MAP.to_number"] and "MAP.to_number" in ADAPTERS
    assert best.program.steps[1].args == {"name": {"const": "price"}}
    assert run(best.program, "item,price\na,2\nb,4.5\n") == pytest.approx(3.25)


def test_a_part_with_a_derived_threshold_is_spliced_whole(engine):
    # "above the average" is computed from the values (mean, keep it, back to them, filter):
    # as a part it keeps its threshold, and the chain computes it from what reaches the filter
    comps = compose(engine, "keep the numbers above the average, then add them up")
    best = next(c for c in comps if [p["intent"] for p in c.parts][0] == "keep the numbers above the average")
    assert [s.op for s in best.program.steps] == ["REDUCE.mean", "STORE", "RETRIEVE", "FILTER.greater", "REDUCE.sum"]
    assert run(best.program, [1, 2, 3, 10]) == 10


def test_refine_edits_a_program_with_a_derived_threshold(engine):
    prev = engine.synthesize("keep the numbers above the average").best.program
    assert [s.op for s in prev.steps] == ["REDUCE.mean", "STORE", "RETRIEVE", "FILTER.greater"]
    e = refine(engine, prev, "then sum them")[0]
    assert [s.op for s in e.program.steps] == ["REDUCE.mean", "STORE", "RETRIEVE", "FILTER.greater", "REDUCE.sum"]
    assert run(e.program, [1, 2, 3, 10]) == 10
    # a tree that is not a derived threshold is still refused, by name
    tree = Program("t", [("numbers", "list[int]")], [Step("REDUCE.max"), Step("STORE", name="hi"),
                                                      Step("RETRIEVE", name="numbers"), Step("REDUCE.min"),
                                                      Step("REDUCE.minus", {"other": {"ref": "hi"}})])
    with pytest.raises(SynthesisInputError, match="linear pipelines"):
        refine(engine, tree, "then double it")


def test_refine_edits_a_share(engine):
    # "what fraction of them are above 3?" -> "above 5 instead": the filter's value changes,
    # and the answer is still the kept count over the whole
    from emergence.synthesis.shares import share_form

    prev = Engine.typed_program(share_form(["FILTER.greater"]), [{"k": {"const": 3}}, {}],
                                "what fraction of the numbers are above 3?")
    assert run(prev, [1, 4, 6, 10]) == 0.75
    e = refine(engine, prev, "above 5 instead")[0]
    assert e.kind == "value" and run(e.program, [1, 4, 6, 10]) == 0.5
    assert [s.op for s in e.program.steps] == [s.op for s in prev.steps]
    # "just count them instead": the share becomes a count, said in words
    e = next(e for e in refine(engine, prev, "just count them instead") if e.kind == "replacement")
    assert e.description == "step 2: the share -> REDUCE.count" and run(e.program, [1, 4, 6, 10]) == 3


def test_compose_reuses_a_verified_stored_sub_tool(engine, memory):
    stored = compose(engine, "keep the even numbers, then square them")[0]
    vec = engine.encoder.encode(["keep the even numbers"])[0]
    sub = Engine.programs(["FILTER.even"], "keep the even numbers", 1, "keep_even")[0]
    tool = compile_program(sub)
    tid = memory.store_tool(vec, ToolRecord(intent="keep the even numbers", code=tool.code,
                                            function_name=tool.function_name, program=sub.to_dict(),
                                            verified={"passed": 2, "total": 2}))
    comps = compose(engine, "keep the even numbers, then square them", memory=memory)
    best = comps[0]
    assert best.parts[0]["found_by"] == "memory" and best.parts[0]["tool_id"] == tid
    assert [s.op for s in best.program.steps] == [s.op for s in stored.program.steps]
    # an unverified stored tool is not reused
    square = Engine.programs(["MAP.square"], "square them", 1, "square_them")[0]
    sq_tool = compile_program(square)
    memory.store_tool(engine.encoder.encode(["square them"])[0], ToolRecord(
        intent="square them", code=sq_tool.code, function_name=sq_tool.function_name, program=square.to_dict()))
    assert compose(engine, "keep the even numbers, then square them", memory=memory)[0].parts[1]["found_by"] == "engine"


def test_compose_answers_nothing_for_one_clause_or_untyped_chains(engine):
    assert compose(engine, "square every number") == []
    # a count can't be joined, and no adapter makes a number a list
    assert compose(engine, "count them, then join them") == []
    # strings can't be squared, but one adapter step makes them numbers
    adapted = compose(engine, "split into words, then square them")[0]
    assert adapted.ops == ["TRANSFORM.word_tokens", "MAP.to_number", "MAP.square"]
    assert run(adapted.program, "2 3") == [4, 9]


# --- refinement --------------------------------------------------------------------------------
def _program(intent, ops, args=None, ptype="list[int]", pname="numbers"):
    return {"name": "tool", "intent": intent, "params": [{"name": pname, "type": ptype}],
            "steps": [{"op": o, **({"args": a} if a else {})} for o, a in zip(ops, args or [{}] * len(ops))]}


def test_refine_adds_a_step_the_feedback_asks_for(engine):
    edits = refine(engine, _program("sort the numbers", ["SORT.asc"]), "then keep the first 3")
    e = edits[0]
    assert e.kind == "addition" and [s.op for s in e.program.steps] == ["SORT.asc", "LIMIT.first"]
    assert e.program.steps[1].args == {"n": {"const": 3}}
    assert run(e.program, [5, 1, 4, 2]) == [1, 2, 4]
    assert e.program.intent == "sort the numbers (then keep the first 3)"


def test_refine_prepends_when_the_feedback_says_first(engine):
    e = refine(engine, _program("add them up", ["REDUCE.sum"]), "only the even ones first")[0]
    assert e.kind == "addition" and [s.op for s in e.program.steps] == ["FILTER.even", "REDUCE.sum"]
    assert run(e.program, [1, 2, 3, 4]) == 6


def test_refine_changes_a_value_the_feedback_states(engine):
    prev = _program("keep numbers above 5, sorted", ["FILTER.greater", "SORT.asc"], [{"k": {"const": 5}}, {}])
    e = refine(engine, prev, "above 10 instead")[0]
    assert e.kind == "value" and e.confidence is None
    assert e.program.steps[0].args == {"k": {"const": 10}}
    assert run(e.program, [3, 12, 7, 11]) == [11, 12]


def test_refine_removes_a_negated_step(engine):
    prev = _program("keep numbers above 5, sorted", ["FILTER.greater", "SORT.asc"], [{"k": {"const": 5}}, {}])
    e = refine(engine, prev, "don't sort them")[0]
    assert e.kind == "removal" and [s.op for s in e.program.steps] == ["FILTER.greater"]
    assert e.confidence > 0.9


def test_refine_replaces_a_step_of_the_same_family(engine):
    e = refine(engine, _program("sort the numbers", ["SORT.asc"]), "descending instead")[0]
    assert e.kind == "replacement" and [s.op for s in e.program.steps] == ["SORT.desc"]
    assert e.description == "step 1: SORT.asc -> SORT.desc"


def test_refine_never_returns_the_previous_program_and_checks_input(engine):
    prev = _program("sort the numbers", ["SORT.asc"])
    assert all(e.program.to_dict()["steps"] != prev["steps"] for e in refine(engine, prev, "sort them"))
    with pytest.raises(SynthesisInputError, match="feedback"):
        refine(engine, prev, "   ")
    with pytest.raises(SynthesisInputError, match="program"):
        refine(engine, _program("x", ["REDUCE.sum"], ptype="str"), "then count")  # sum of a string
    # a long history of refinements: no rewrite of an over-long intent, the other readings still work
    long_prev = _program("sort the numbers " * 150, ["SORT.asc"])
    assert refine(engine, long_prev, "then keep the first 2")[0].kind == "addition"
    with pytest.raises(SynthesisInputError, match="linear"):
        previous_program({"name": "t", "params": [{"name": "numbers", "type": "list[int]"}],
                          "steps": [{"op": "STORE", "as": "kept"}, {"op": "REDUCE.sum"}]})


# --- through the service -----------------------------------------------------------------------
def test_service_answers_with_a_composition_when_no_single_program_is_confident(memory):
    eng = KeywordEngine(TABLE).remember()
    service = SynthesisService(eng, memory=memory)
    answer = service.synthesize("keep the even numbers, square them, then add them up")
    assert answer["found_by"] == "composition"
    assert [s["op"] for s in answer["program"]["steps"]] == ["FILTER.even", "MAP.square", "REDUCE.sum"]
    assert answer["confidence"] == pytest.approx(0.8) and len(answer["parts"]) == 3
    assert answer["tool_id"] is not None and memory.get_tool(answer["tool_id"])["code"] == answer["code"]
    off = SynthesisService(eng, memory=memory, compose=False)
    with pytest.raises(CannotSynthesize):
        off.synthesize("keep the odd numbers, square them, then add them up")


def test_service_verifies_compositions_against_examples(memory):
    eng = KeywordEngine(TABLE).remember()
    service = SynthesisService(eng, memory=memory, verify=in_process_verifier, search_s=0)
    examples = [{"args": [[1, 2, 3, 4]], "expected": 20}, {"args": [[6]], "expected": 36}]
    # no single candidate of the whole intent passes (the stand-in has none for the whole text)
    answer = service.synthesize("keep the even numbers, square them, then add them up", examples=examples)
    assert answer["verified"] == {"passed": 2, "total": 2}
    assert answer["found_by"] == "composition"
    assert in_process_verifier(answer["code"], answer["function_name"], examples) == 2


def test_service_refines_a_program_or_a_stored_tool(memory):
    eng = KeywordEngine(TABLE).remember()
    service = SynthesisService(eng, memory=memory, verify=in_process_verifier)
    first = service.synthesize("sort the numbers")
    assert first["program"]["steps"] == [{"op": "SORT.asc"}]
    by_program = service.refine("then keep the first 2", program=first["program"])
    assert by_program["found_by"] == "refinement" and by_program["edit"]["kind"] == "addition"
    assert by_program["refined_from"] is None
    by_id = service.refine("then keep the first 2", tool_id=first["tool_id"],
                           examples=[{"args": [[3, 1, 2]], "expected": [1, 2]}])
    assert by_id["verified"] == {"passed": 1, "total": 1} and by_id["refined_from"] == first["tool_id"]
    assert memory.get_tool(by_id["tool_id"])["intent"] == "sort the numbers (then keep the first 2)"
    # examples no edit reproduces: a clear refusal naming what was tried
    with pytest.raises(CannotSynthesize) as exc:
        service.refine("then keep the first 2", program=first["program"],
                       examples=[{"args": [[3, 1, 2]], "expected": "nope"}])
    assert exc.value.detail["edits_considered"]


@pytest.mark.parametrize("kwargs,field", [
    ({"feedback": "", "program": {"name": "t"}}, "feedback"),
    ({"feedback": "then count"}, "program"),  # neither program nor tool_id
    ({"feedback": "then count", "program": {"a": 1}, "tool_id": 3}, "program"),  # both
    ({"feedback": "then count", "program": "SORT.asc"}, "program"),
    ({"feedback": "then count", "program": {"name": "t", "params": [], "steps": []}}, "program"),
    ({"feedback": "then count", "tool_id": -1}, "tool_id"),
    ({"feedback": "then count", "tool_id": 12345}, "tool_id"),  # nothing stored under it
    ({"feedback": "x" * 1001, "program": {"name": "t"}}, "feedback"),
    # no intent and no word the encoder reads: a clear 422, not a memory error
    ({"feedback": "!!!", "program": {"name": "t", "intent": "", "params": [{"name": "numbers", "type": "list[int]"}],
                                     "steps": [{"op": "SORT.asc"}]}}, "feedback"),
])
def test_service_refine_rejects_bad_requests(memory, kwargs, field):
    service = SynthesisService(KeywordEngine(TABLE).remember(), memory=memory)
    with pytest.raises(SynthesisInputError) as exc:
        service.refine(**kwargs)
    assert exc.value.field == field


# --- the refinement measurement ----------------------------------------------------------------
def test_refinement_cases_are_well_formed_and_held_out():
    from emergence.synthesis import corpus
    from emergence.synthesis.fit import TrainData
    from emergence.synthesis.program import Program, check
    from emergence.synthesis.refine_eval import evaluate, make_cases

    records = corpus.build(max_len=2, per_program=1, with_traces=False, seed=4, val_fraction=0.3, calibration=2)
    calib = [r for r in records if r.split == "calib"]
    assert calib and {r.split for r in records} == {"train", "val", "calib"}
    # calibration wordings are the held-out phrases: never a training description
    assert not {r.description for r in calib} & {r.description for r in records if r.split == "train"}
    # ... and never training data
    with pytest.raises(ValueError, match="calibration"):
        TrainData.from_records(records, np.zeros((len(records), 4)))
    cases = make_cases(calib, limit_per_kind=10)
    kinds = {c["kind"] for c in cases}
    assert kinds == {"addition", "value", "removal"}
    for c in cases:
        check(Program.from_dict(c["previous"]))
        prev_steps = c["previous"]["steps"]
        if c["kind"] == "addition":
            assert c["expected"][:-1] == prev_steps and c["feedback"].startswith("then ")
        elif c["kind"] == "removal":
            assert c["expected"] == prev_steps[:-1] and c["feedback"].startswith("no need to ")
        else:
            assert [s["op"] for s in c["expected"]] == [s["op"] for s in prev_steps] and c["expected"] != prev_steps
    # scored exactly: an engine that reads nothing solves only what needs no reading (values)
    blank = KeywordEngine([]).remember()
    got = evaluate(blank, cases)
    assert got["addition"]["solved"] == 0 and got["all"]["cases"] == len(cases)
    assert 0 <= got["value"]["solved"] <= got["value"]["cases"]


def test_cli_reads_the_program_to_refine_from_text_a_file_or_a_whole_answer(tmp_path):
    from emergence.synthesis.__main__ import _program

    prog = {"name": "t", "intent": "", "params": [{"name": "numbers", "type": "list[int]"}],
            "steps": [{"op": "SORT.asc"}]}
    path = tmp_path / "answer.json"
    path.write_text(json.dumps({"code": "...", "program": prog}))
    assert _program(json.dumps(prog)) == prog == _program(str(path))
    with pytest.raises(SynthesisInputError, match="--refine"):
        _program("{not json")


def test_a_share_part_chains_only_where_its_number_is_taken():
    # a share gives a number: chained before a filter it does not type (refused, not a crash);
    # after a part that gives the list it counts, it does
    from emergence.synthesis.compose import Option, _chain
    from emergence.synthesis.shares import SHARE

    share = Option(["FILTER.positive", SHARE], [{}, {}], 0.9, "engine")
    assert _chain([share, Option(["FILTER.even"], [{}], 0.9, "engine")]) is None
    ops, args, _ = _chain([Option(["MAP.square"], [{}], 0.9, "engine"), share])
    prog = Engine.typed_program(ops, args, "square them; what fraction are positive?")
    assert run(prog, [1, -2, 3, 0]) == 0.75
