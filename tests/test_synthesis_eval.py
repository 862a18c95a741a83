"""The synthesis benchmark's library: pass@k, task files, the enumerative baseline, and scoring
candidates in process and in the sandbox (skipped where bubblewrap can't run). No Ray."""

from __future__ import annotations

import json
import math

import pytest

from emergence.sandbox import bwrap_missing, open_executor
from emergence.synthesis import EffectsRefused, Program, Step, compile_program
from emergence.synthesis.enumerative import enumerate_programs, guided_programs, infer_params
from emergence.synthesis.evaluation import load_tasks, pass_at_k, passes_in_process, score_candidates, summarize

NO_BWRAP = bwrap_missing()


# --- pass@k -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,c,k,want", [
    (10, 1, 1, 0.1), (10, 0, 1, 0.0), (10, 0, 10, 0.0), (10, 10, 1, 1.0), (10, 10, 10, 1.0),
    (10, 5, 1, 0.5), (10, 1, 10, 1.0),  # n - c < k: every draw of 10 holds the correct one
    (20, 3, 10, 1 - math.comb(17, 10) / math.comb(20, 10)),  # = 17/19
    (200, 13, 100, 1 - math.comb(187, 100) / math.comb(200, 100)),
])
def test_pass_at_k_matches_the_exact_formula(n, c, k, want):
    assert pass_at_k(n, c, k) == pytest.approx(want, abs=1e-12)


def test_pass_at_k_validates_its_arguments():
    for bad in [(0, 0, 1), (10, 11, 1), (10, -1, 1), (10, 1, 0), (10, 1, 11), (10.0, 1, 1), (10, True, 1)]:
        with pytest.raises(ValueError):
            pass_at_k(*bad)


# --- task files ---------------------------------------------------------------------------------
GOOD = {"id": "t1", "intent": "add them", "family": "numbers", "arity": 1,
        "tests": [{"args": [[1, 2]], "expected": 3}]}


def write(tmp_path, rows) -> str:
    p = tmp_path / "tasks.jsonl"
    p.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return str(p)


def test_load_tasks_reads_rows_and_defaults_the_family(tmp_path):
    other = {k: v for k, v in GOOD.items() if k != "family"} | {"id": "t2"}
    tasks = load_tasks(write(tmp_path, [GOOD, "", other]))
    assert [(t.id, t.family, t.arity) for t in tasks] == [("t1", "numbers", 1), ("t2", "other", 1)]
    assert tasks[0].tests == GOOD["tests"]


@pytest.mark.parametrize("row,match", [
    ("{not json", r"line 2: not valid JSON"),
    ([1, 2], r"line 2: need a JSON object"),
    ({**GOOD, "id": ""}, r"line 2: field 'id'"),
    ({k: v for k, v in GOOD.items() if k != "intent"}, r"line 2: field 'intent'"),
    ({**GOOD, "arity": 0}, r"line 2: field 'arity'"),
    ({**GOOD, "arity": True}, r"line 2: field 'arity'"),
    ({**GOOD, "tests": []}, r"line 2: field 'tests'"),
    ({**GOOD, "tests": [{"expected": 1}]}, r"line 2: field tests\[0\]"),
    ({**GOOD, "tests": [{"args": [[1]]}]}, r"line 2: field tests\[0\]: no 'expected'"),
    ({**GOOD, "arity": 2}, r"line 2: field tests\[0\].args: 1 arguments, arity is 2"),
    (GOOD, r"line 2: field 'id': 't1' appears twice"),
])
def test_load_tasks_names_the_line_and_field(tmp_path, row, match):
    with pytest.raises(ValueError, match=match):
        load_tasks(write(tmp_path, [GOOD, row]))


def test_summarize_means_overall_and_per_family():
    rows = [{"family": "a", "pass@1": 1.0, "pass@10": 1.0}, {"family": "a", "pass@1": 0.0, "pass@10": 0.5},
            {"family": "b", "pass@1": 0.5}]
    s = summarize(rows)
    assert s["tasks"] == 3 and s["pass@1"] == pytest.approx(0.5) and s["pass@10"] == pytest.approx(0.75)
    assert s["families"]["a"] == {"tasks": 2, "pass@1": 0.5, "pass@10": 0.75}
    assert s["families"]["b"] == {"tasks": 1, "pass@1": 0.5, "pass@10": None}


# --- the enumerative baseline -------------------------------------------------------------------
def ex(*cases):
    return [{"args": list(args), "expected": out} for *args, out in cases]


def test_parameter_types_and_names_come_from_the_examples():
    assert infer_params(3, ex(([1, 2.5], ["a"], "x", 0))) == [
        ("numbers", "list[num]"), ("words", "list[str]"), ("text", "str")]
    assert infer_params(2, ex(([1, 2], 3, 0), ([], 4.5, 0))) == [("numbers", "list[int]"), ("threshold", "num")]


SOLVABLE = [  # (arity, examples, held-out tests the first program found must pass too)
    (1, ex(([1, 2, 3, 4, 7], 6), ([10, -3, 5, 8], 18)), ex(([2, 2, 9], 4), ([], 0), ([-4, 1], -4))),
    (1, ex(("hello there", "HELLO THERE"), ("MiXed 9", "MIXED 9")), ex(("abc", "ABC"), ("", ""))),
    (2, ex(([1, 5, 7, 2], 2, 2), ([9, 9, 0, 4, 10], 5, 3)), ex(([3, 4, 5], 3, 2), ([1], 1, 0), ([6, 7], 0, 2))),
]


@pytest.mark.parametrize("arity,examples,held_out", SOLVABLE, ids=["sum_even", "upper", "count_above_k"])
def test_enumeration_finds_a_program_that_generalizes(arity, examples, held_out):
    programs = enumerate_programs(arity, examples, budget_s=5.0, limit=3)
    assert 1 <= len(programs) <= 3
    for p in programs:
        assert passes_in_process(p, examples)
        assert len(p.steps) <= 3
    assert passes_in_process(programs[0], held_out), programs[0].to_dict()
    assert [len(p.steps) for p in programs] == sorted(len(p.steps) for p in programs)  # shortest first


def test_every_parameter_is_used():
    # the result ignores k, but a two-parameter tool that ignores one is not a candidate
    programs = enumerate_programs(2, ex(([1, 2, 3], 0, 6), ([4, 5], 0, 9)), budget_s=5.0, limit=3)
    assert programs
    assert all(any(a.get("ref") == "k" for s in p.steps for a in s.args.values()) for p in programs)


def test_no_solution_gives_an_empty_list():
    assert enumerate_programs(1, ex(([1, 2], "zebra"), ([3], "quux")), budget_s=0.5) == []
    assert enumerate_programs(1, ex(([1, 2], 3), ([1, 2], 4)), budget_s=0.5) == []  # contradictory


def test_enumeration_rejects_malformed_examples():
    with pytest.raises(ValueError, match=r"examples\[0\].args"):
        enumerate_programs(2, ex(([1], 1)), budget_s=0.1)
    with pytest.raises(ValueError, match="examples"):
        enumerate_programs(1, [], budget_s=0.1)


# --- the search guided by an operation prior ------------------------------------------------------
ACRONYM = ex(("portable network graphics", "PNG"), ("as soon as possible", "ASAP"))
ACRONYM_PRIOR = {"TRANSFORM.words": 0.9, "MAP.first_char": 0.9, "REDUCE.join": 0.8, "TRANSFORM.upper": 0.7}


def test_guided_search_reaches_four_steps_the_prior_names():
    programs = guided_programs(1, ACRONYM, ACRONYM_PRIOR, budget_s=30.0, limit=1)
    assert len(programs) == 1
    assert len(programs[0].steps) == 4 and {s.op for s in programs[0].steps} <= set(ACRONYM_PRIOR)
    assert passes_in_process(programs[0], ex(("ray", "R"), ("new york city", "NYC")))


def test_guided_search_gives_the_likelier_of_two_solutions_first():
    sorts = ex(([3, 1, 2], [1, 2, 3]), ([5, 4], [4, 5]))  # both SORT.asc and SORT.unique_sorted fit
    for first, second in (("SORT.asc", "SORT.unique_sorted"), ("SORT.unique_sorted", "SORT.asc")):
        programs = guided_programs(1, sorts, {first: 0.9, second: 0.1}, budget_s=30.0, limit=2)
        assert [[s.op for s in p.steps] for p in programs] == [[first], [second]]


def test_guided_search_still_uses_every_parameter_and_finds_nothing_when_nothing_fits():
    programs = guided_programs(2, ex(([1, 2, 3], 0, 6), ([4, 5], 0, 9)), {"REDUCE.sum": 0.9}, budget_s=5.0, limit=2)
    assert programs and all(any(a.get("ref") == "k" for s in p.steps for a in s.args.values()) for p in programs)
    assert guided_programs(1, ex(([1, 2], "zebra"), ([3], "quux")), {"REDUCE.sum": 0.5}, budget_s=0.5) == []


@pytest.mark.parametrize("prior,match", [({}, "non-empty"), ([("REDUCE.sum", 1.0)], "non-empty"),
                                         ({"REDUCE.summ": 0.5}, "unknown operation 'REDUCE.summ'"),
                                         ({"REDUCE.sum": 1.5}, r"prior\['REDUCE.sum'\]"),
                                         ({"REDUCE.sum": "high"}, "probability")])
def test_guided_search_rejects_a_bad_prior(prior, match):
    with pytest.raises(ValueError, match=match):
        guided_programs(1, ex(([1, 2], 3)), prior, budget_s=0.1)
    with pytest.raises(ValueError, match=r"examples\[0\].args"):
        guided_programs(2, ex(([1], 1)), {"REDUCE.sum": 0.5}, budget_s=0.1)


# --- scoring ------------------------------------------------------------------------------------
SUM_EVEN = Program("sum_even", [("numbers", "list[int]")], [Step("FILTER.even"), Step("REDUCE.sum")])
TESTS = ex(([1, 2, 3, 4], 6), ([5], 0))


def test_passes_in_process():
    assert passes_in_process(SUM_EVEN, TESTS)
    assert not passes_in_process(SUM_EVEN, ex(([1, 2], 3)))
    assert not passes_in_process(SUM_EVEN, ex(("not a list", 0)))  # raises inside: a failure
    assert not passes_in_process(Program("bad", [("text", "str")], [Step("REDUCE.sum")]), TESTS)  # ill-typed
    with pytest.raises(EffectsRefused):
        passes_in_process(Program("fetch", [("url", "str")], [Step("HTTP_GET.text")]), ex(("http://x", "")))


@pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")
def test_score_candidates_in_the_sandbox():
    good = compile_program(SUM_EVEN)
    candidates = [
        (good.code, good.function_name),
        ("def sum_even(numbers):\n    return sum(numbers)\n", "sum_even"),  # wrong answer
        ("def sum_even(numbers:\n", "sum_even"),  # doesn't compile
        ("def sum_even(numbers):\n    while True:\n        pass\n", "sum_even"),  # times out
        (good.code, "not a name"),  # no such entry
    ]
    with open_executor(limits={"wall_s": 0.5, "cpu_s": 0.5}) as sb:
        assert score_candidates(sb, candidates, TESTS) == [True, False, False, False, False]
        with pytest.raises(ValueError, match="tests"):
            score_candidates(sb, candidates, [])
