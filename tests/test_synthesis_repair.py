"""One-edit repairs of candidates (emergence.synthesis.repair): pure library, no model."""

from __future__ import annotations

import pytest

from emergence.synthesis import Program, Step
from emergence.synthesis.evaluation import passes_in_process
from emergence.synthesis.repair import repairs


def ex(*cases):
    return [{"args": list(args), "expected": out} for *args, out in cases]


def prog(*ops, params=(("numbers", "list[int]"),)):
    steps = [s if isinstance(s, Step) else Step(s) for s in ops]
    return Program("candidate", list(params), steps)


def ops_of(program):
    return [s.op for s in program.steps]


SUM_POSITIVE = ex(([1, -2, 3], 4), ([-1, 5, -7, 2], 7))


def test_a_missing_step_is_inserted_the_likeliest_operation_first():
    found = repairs([prog("REDUCE.sum")], SUM_POSITIVE, 1, {"FILTER.positive": 0.9, "REDUCE.sum": 0.9})
    assert found and ops_of(found[0]) == ["FILTER.positive", "REDUCE.sum"]
    assert passes_in_process(found[0], ex(([0, 3, -3, 4], 7), ([], 0)))


def test_a_surplus_step_is_dropped():
    found = repairs([prog("MAP.double", "REDUCE.sum")], ex(([1, 2, 3], 6), ([10, -4], 6)), 1)
    assert [ops_of(p) for p in found][0] == ["REDUCE.sum"]


def test_a_wrong_step_is_replaced():
    sum_even = ex(([1, 2, 3, 4], 6), ([5, 8, 10, 7], 18))
    found = repairs([prog("FILTER.odd", "REDUCE.sum")], sum_even, 1, {"FILTER.even": 0.5})
    assert found and ops_of(found[0]) == ["FILTER.even", "REDUCE.sum"]


def test_an_extra_parameter_must_still_be_used():
    # count the numbers at least k: the candidate counts those above k; every repair must read k
    params = (("numbers", "list[int]"), ("k", "int"))
    cand = prog(Step("FILTER.greater", {"k": {"ref": "k"}}), "REDUCE.count", params=params)
    examples = ex(([1, 5, 7, 2], 5, 2), ([9, 9, 0, 4, 10], 9, 3))
    found = repairs([cand], examples, 2, {"FILTER.at_least": 0.6})
    assert found
    for p in found:
        assert any(a.get("ref") == "k" for s in p.steps for a in s.args.values()), p.to_dict()
        assert passes_in_process(p, examples)
    assert ops_of(found[0]) == ["FILTER.at_least", "REDUCE.count"]
    assert passes_in_process(found[0], ex(([3, 4, 5], 4, 2), ([], 1, 0)))


def test_a_replaced_step_may_take_the_candidates_own_constant():
    # "how many are at least 7": 7 is the intent's, read into the candidate; the examples' most
    # frequent numbers (20, 30, 40, 50) crowd it out of their own constants
    at_least_7 = ex(([20, 20, 30, 30, 40, 40, 50, 50, 7], 9), ([6, 20, 30, 40, 50], 4))
    cand = prog(Step("FILTER.greater", {"k": {"const": 7}}), "REDUCE.count")
    found = repairs([cand], at_least_7, 1, {"FILTER.at_least": 0.5})
    assert found and [s.to_dict() for s in found[0].steps][0] == {"op": "FILTER.at_least", "args": {"k": {"const": 7}}}


def test_operations_are_tried_likeliest_first_over_the_candidates_in_rank_order():
    sum_even = ex(([1, 2, 3, 4], 6), ([5, 8, 10, 7], 18))
    # two candidates, each one replacement from summing the even numbers; their parameter names
    # tell which one a repair came from
    cands = [prog("FILTER.odd", "REDUCE.sum"), prog("FILTER.even", "REDUCE.max", params=(("values", "list[int]"),))]
    for prior, name in (({"FILTER.even": 0.5, "REDUCE.sum": 0.4}, "numbers"),
                        ({"FILTER.even": 0.4, "REDUCE.sum": 0.5}, "values")):
        found = repairs(cands, sum_even, 1, prior, limit=1)
        assert len(found) == 1
        assert ops_of(found[0]) == ["FILTER.even", "REDUCE.sum"] and found[0].params[0][0] == name, prior


def test_the_limit_holds_and_the_candidates_themselves_are_not_returned():
    sum_even = ex(([1, 2, 3, 4], 6), ([5, 8, 10, 7], 18))
    cands = [prog("FILTER.even", "REDUCE.sum"), prog("FILTER.odd", "REDUCE.sum")]
    found = repairs(cands, sum_even, 1, budget_s=5.0, limit=2)
    assert len(found) == 2 and all(passes_in_process(p, sum_even) for p in found)
    # the second candidate's obvious repair is the first candidate: already tried, not returned
    assert all(ops_of(p) != ["FILTER.even", "REDUCE.sum"] for p in found)
    assert len({repr(p.to_dict()["steps"]) for p in found}) == 2  # no program twice


def test_nothing_one_edit_away_gives_an_empty_list():
    # the length of a string backwards is two edits from anything a sum could become
    assert repairs([prog("REDUCE.sum")], ex(([1, 2], "zebra"), ([3], "quux")), 1, budget_s=2.0) == []


def test_candidates_with_effects_or_the_wrong_arity_are_not_edited():
    # dropping the fetch would fit the examples, but a program that fetches is never edited
    fetch = Program("fetch", [("url", "str")], [Step("HTTP_GET.text"), Step("TRANSFORM.upper")])
    upper = ex(("abc", "ABC"), ("x y", "X Y"))
    assert repairs([fetch], upper, 1) == []
    assert ops_of(repairs([Program("up", [("text", "str")], [Step("TRANSFORM.lower"), Step("TRANSFORM.upper")])],
                          upper, 1)[0]) == ["TRANSFORM.upper"]
    two = prog(Step("FILTER.greater", {"k": {"ref": "k"}}), "REDUCE.sum",
               params=(("numbers", "list[int]"), ("k", "int")))
    assert repairs([two], SUM_POSITIVE, 1) == []


def test_candidates_that_are_not_programs_are_read_through_their_program_attribute():
    class Candidate:
        program = prog("REDUCE.sum")

    found = repairs([Candidate()], SUM_POSITIVE, 1, {"FILTER.positive": 0.9})
    assert found and ops_of(found[0]) == ["FILTER.positive", "REDUCE.sum"]


def test_candidates_that_do_not_type_check_are_skipped_not_raised_on():
    bad_args = prog(Step("FILTER.greater", {"k": "oops"}), "REDUCE.count")
    no_arg = prog(Step("FILTER.greater"), "REDUCE.count")
    ill_typed = prog("REDUCE.sum", "REDUCE.sum")
    found = repairs([bad_args, no_arg, ill_typed, prog("REDUCE.sum")], SUM_POSITIVE, 1, {"FILTER.positive": 0.9},
                    top=1)
    assert found and ops_of(found[0]) == ["FILTER.positive", "REDUCE.sum"]  # the skipped ones took no slot


@pytest.mark.parametrize("kwargs,match", [
    ({"budget_s": -1}, "budget_s"), ({"budget_s": True}, "budget_s"), ({"budget_s": float("nan")}, "budget_s"),
    ({"top": 0}, "top"), ({"limit": 1.5}, "limit"), ({"limit": True}, "limit"),
    ({"prior": {"REDUCE.sum": "x"}}, r"prior\['REDUCE.sum'\]"), ({"prior": {"REDUCE.summ": 0.5}}, "unknown operation"),
    ({"prior": [("REDUCE.sum", 1.0)]}, "prior")])
def test_bad_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        repairs([prog("REDUCE.sum")], SUM_POSITIVE, 1, **kwargs)


def test_malformed_examples_are_refused():
    with pytest.raises(ValueError, match=r"examples\[0\].args"):
        repairs([prog("REDUCE.sum")], ex(([1], 2, 1)), 1)
    with pytest.raises(ValueError, match="examples"):
        repairs([prog("REDUCE.sum")], [], 1)
