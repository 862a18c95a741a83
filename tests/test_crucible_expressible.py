"""Whether the DSL can express a problem: search from its tests, no copied outputs, agreement with
the reference on generated inputs in the sandbox."""

from __future__ import annotations

import json

import pytest

from emergence.crucible import parse_problem
from emergence.crucible.expressible import check, copied_constants, generated_inputs
from emergence.sandbox import bwrap_missing

NO_BWRAP = bwrap_missing()


def problem(cases, outputs, code=None, entry="f"):
    return parse_problem({"id": "p", "title": "p", "description": "p", "difficulty": 1, "test_cases": cases,
                          "expected_outputs": outputs, **({"reference": {"code": code, "entry": entry}} if code else {})})


def test_generated_inputs_keep_the_tests_shapes_and_are_seeded():
    p = problem([[[1, 2, 3], "ab", 4, 2.5, True]], [0])
    inputs = generated_inputs(p, 30, seed=3)
    assert inputs == generated_inputs(p, 30, seed=3) and inputs != generated_inputs(p, 30, seed=4)
    for args in inputs:
        assert [type(a) for a in args] == [list, str, int, float, bool]
        assert all(isinstance(v, int) for v in args[0]) and set(args[1]) <= set("ab") | set("abcdef")


def test_a_constant_copying_an_expected_output_is_found():
    p = problem([[[1, 2]], [[7]]], [42, 7])
    prog = {"steps": [{"op": "A", "args": {"k": {"const": 42}}}, {"op": "B", "args": {"k": {"const": 7}}},
                      {"op": "C", "args": {"k": {"param": "x"}}}]}
    assert copied_constants(prog, p) == [42]  # 7 is also an argument: not a copy


@pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")
def test_expressible_only_when_it_agrees_with_the_reference():
    from emergence.sandbox import open_executor

    upper = problem([["abc"], ["Hi there"], ["x y"]], ["ABC", "HI THERE", "X Y"],
                    "def f(s):\n    return s.upper()\n")
    # the tests (lists of up to 3 numbers) are passed by summing; the reference differs on longer lists
    tricky = problem([[[1, 2, 3]], [[4, 5]], [[10]]], [6, 9, 10],
                     "def f(xs):\n    return sum(xs) if len(xs) < 4 else 0\n")
    nothing = problem([[[1, 2, 3]]], [17], "def f(xs):\n    return 17\n")
    with open_executor() as ex:
        yes, no, none = (check(p, ex, budget_s=1.0) for p in (upper, tricky, nothing))
    assert yes["expressible"] and yes["agreed_on"] == 20 and [s["op"] for s in yes["program"]["steps"]] == \
        ["TRANSFORM.upper"], yes
    assert not no["expressible"] and no["candidates"] >= 1 and no["reason"].startswith("passes the tests but"), no
    assert not none["expressible"], none
    with pytest.raises(ValueError, match="reference with code"):
        check(problem([[1]], [1]), None)


@pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")
def test_the_coverage_benchmark_reports_a_computed_target(tmp_path):
    from benchmarks.dsl_coverage import main

    rows = [{"task_id": 601, "text": "Uppercase a string.", "code": "def up(s):\n    return s.upper()",
             "test_list": ["assert up('ab') == 'AB'", "assert up('x y') == 'X Y'", "assert up('q') == 'Q'"],
             "test_setup_code": "", "split": "train"},
            {"task_id": 602, "text": "A set.", "code": "def s(x):\n    return set(x)",
             "test_list": ["assert s([1]) == {1}"], "test_setup_code": "", "split": "train"}]
    data = tmp_path / "mbpp.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    report = main(["--data", str(data), "--budget-s", "1", "--json", str(tmp_path / "r.json")])
    f = report["figures"]
    assert f["tasks"] == 2 and f["converted"] == 1 and f["expressible"] == 1 and f["expressible_share"] == 0.5
    assert f["not_expressible_by_reason"] == {"does not convert: set value": 1}
    (t,) = report["targets"].values()
    assert t == {"value": 0.5, "goal": ">= 0.5", "met": True}
    assert json.loads((tmp_path / "r.json").read_text())["figures"] == f
