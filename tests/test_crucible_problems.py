"""Problem files of the Digital Crucible: every form loads, every bad input is named by file, line
and field, nothing half-loads, references are run on their own tests, and problems convert to and
from the task format of benchmarks/tasks."""

from __future__ import annotations

import json

import pytest

from emergence.crucible import Problem, ProblemFileError, as_task, from_task, load_problems, parse_problem, save_problems, to_task
from emergence.sandbox import bwrap_missing
from emergence.synthesis.evaluation import Task, _task

SUM_EVEN = {"id": "sum_even", "title": "Sum of the even numbers", "description": "Add up the even numbers of a list.",
            "difficulty": "easy", "test_cases": [[[1, 2, 3, 4]], [[5]], [[]]], "expected_outputs": [6, 0, 0],
            "family": "numbers", "provenance": {"source": "written"},
            "reference": {"program": {"name": "sum_even", "intent": "add up the even numbers",
                                      "params": [{"name": "numbers", "type": "list[int]"}],
                                      "steps": [{"op": "FILTER.even"}, {"op": "REDUCE.sum"}]}}}
REPEAT = {"id": "repeat", "title": "Repeat a word", "description": "Say a word n times, joined by spaces.",
          "difficulty": 2, "test_cases": [["ha", 3], ["yo", 1]], "expected_outputs": ["ha ha ha", "yo"],
          "time_limit": 1.5, "memory_limit": 128}


def write(tmp_path, text, name="problems.json"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("form", ["list", "jsonl", "one"])
def test_every_form_of_file_loads(tmp_path, form):
    rows = [SUM_EVEN] if form == "one" else [SUM_EVEN, REPEAT]
    text = {"list": json.dumps(rows, indent=2), "jsonl": "\n".join(json.dumps(r) for r in rows) + "\n",
            "one": json.dumps(SUM_EVEN, indent=2)}[form]
    problems = load_problems(write(tmp_path, text))
    assert [p.id for p in problems] == [r["id"] for r in rows]
    p = problems[0]
    assert p.difficulty == 1 and p.arity == 1 and p.time_limit == 2.0 and p.memory_limit == 256
    assert p.tests[0] == {"args": [[1, 2, 3, 4]], "expected": 6} and p.provenance == {"source": "written"}
    if form != "one":
        assert problems[1].arity == 2 and problems[1].limits == {"wall_s": 1.5, "cpu_s": 1.5, "memory_mb": 128}


def _bad(row_changes=None, drop=None):
    row = {**REPEAT, **(row_changes or {})}
    if drop:
        del row[drop]
    return row


@pytest.mark.parametrize("row, field, words", [
    (_bad(drop="description"), "description", "missing"),
    (_bad({"tags": ["x"]}), "tags", "unknown field"),
    (_bad({"title": " "}), "title", "non-empty string"),
    (_bad({"difficulty": "brutal"}), "difficulty", "is not one of"),
    (_bad({"difficulty": 0}), "difficulty", "level >= 1"),
    (_bad({"difficulty": True}), "difficulty", "level >= 1"),
    (_bad({"expected_outputs": ["ha ha ha"]}), "expected_outputs", "1 expected outputs for 2 test cases"),
    (_bad({"test_cases": []}), "test_cases", "non-empty list"),
    (_bad({"test_cases": ["ha", "yo"]}), "test_cases[0]", "list of arguments"),
    (_bad({"test_cases": [["ha", 3], ["yo"]]}), "test_cases[1]", "1 arguments, test_cases[0] has 2"),
    (_bad({"time_limit": 0}), "time_limit", "seconds in"),
    (_bad({"time_limit": float("nan")}), "time_limit", "seconds in"),
    (_bad({"memory_limit": 8}), "memory_limit", "whole number of MB"),
    (_bad({"memory_limit": 256.5}), "memory_limit", "whole number of MB"),
    (_bad({"provenance": "mbpp"}), "provenance", "must be an object"),
    (_bad({"reference": {"code": "x"}}), "reference.entry", "name the function"),
    (_bad({"reference": {"program": {"name": "r", "params": [], "steps": [{"op": "NOPE"}]}}}), "reference.program",
     "not a valid DSL program"),
    (_bad({"reference": SUM_EVEN["reference"]}), "reference.program", "takes 1 parameters, the test cases pass 2"),
])
def test_each_bad_field_is_named_with_file_and_line(tmp_path, row, field, words):
    path = write(tmp_path, json.dumps(SUM_EVEN) + "\n" + json.dumps(row) + "\n", "p.jsonl")
    with pytest.raises(ProblemFileError) as exc:
        load_problems(path)
    (error,) = exc.value.errors  # the good problem on line 1 is not in the errors, and not loaded either
    assert error.startswith(f"{path}, line 2, field {field!r}") and words in error, error


def test_file_level_errors_name_the_line(tmp_path):
    cases = {"empty.json": ("  \n", "holds no problem"),
             "broken.jsonl": (json.dumps(SUM_EVEN) + "\n{\"id\": \n", "line 2: not valid JSON"),
             "list.json": ("[\n" + json.dumps(SUM_EVEN) + ",\n 3\n]", "line 3: a problem must be a JSON object"),
             "trailing.json": (json.dumps([SUM_EVEN]) + "\n]", "text after the list"),
             "dup.jsonl": (json.dumps(SUM_EVEN) + "\n\n" + json.dumps(SUM_EVEN) + "\n",
                           "line 3, field 'id': 'sum_even' already used on line 1")}
    for name, (text, words) in cases.items():
        with pytest.raises(ProblemFileError, match="error") as exc:
            load_problems(write(tmp_path, text, name))
        assert any(words in e for e in exc.value.errors), (name, exc.value.errors)
    with pytest.raises(ProblemFileError, match="can't read it"):
        load_problems(tmp_path / "missing.json")


def test_every_error_of_a_file_is_listed_at_once(tmp_path):
    rows = [_bad(drop="title"), SUM_EVEN, _bad({"difficulty": -1}, drop=None) | {"id": "other"}]
    with pytest.raises(ProblemFileError) as exc:
        load_problems(write(tmp_path, json.dumps(rows, indent=1)))
    assert len(exc.value.errors) == 2 and "line 2, field 'title'" in exc.value.errors[0]
    assert "field 'difficulty'" in exc.value.errors[1]


def test_a_reference_program_that_fails_its_tests_is_refused_with_the_test(tmp_path):
    wrong = {**SUM_EVEN, "expected_outputs": [6, 5, 0]}
    with pytest.raises(ProblemFileError) as exc:
        load_problems(write(tmp_path, json.dumps(wrong)))
    (error,) = exc.value.errors
    assert "field 'reference': the program fails its tests (test 1: returned 0, expected 5)" in error, error


@pytest.mark.skipif(bwrap_missing() is not None, reason=f"bubblewrap unavailable: {bwrap_missing()}")
def test_reference_code_runs_in_the_sandbox(tmp_path):
    good = {**REPEAT, "reference": {"code": "def rep(w, n):\n    return ' '.join([w] * n)\n", "entry": "rep"}}
    bad = {**REPEAT, "id": "repeat_bad",
           "reference": {"code": "def rep(w, n):\n    return w * n\n", "entry": "rep"}}
    assert load_problems(write(tmp_path, json.dumps(good)))[0].reference["entry"] == "rep"
    with pytest.raises(ProblemFileError) as exc:
        load_problems(write(tmp_path, "[\n" + json.dumps(good) + ",\n" + json.dumps(bad) + "\n]", "two.json"))
    (error,) = exc.value.errors
    assert "two.json, line 3, field 'reference': the code fails its tests (test 0: failed" in error, error


def test_round_trips_through_the_task_format_and_the_file(tmp_path):
    p = parse_problem(SUM_EVEN)
    task = to_task(p)
    assert task == {"id": "sum_even", "intent": SUM_EVEN["description"], "family": "numbers", "arity": 1,
                    "tests": [{"args": [[1, 2, 3, 4]], "expected": 6}, {"args": [[5]], "expected": 0},
                              {"args": [[]], "expected": 0}]}
    assert isinstance(_task(task, "converted"), Task)  # what the benchmarks load
    assert as_task(p) == _task(task, "converted")  # the benchmarks' shortcut for a loaded problem
    back = from_task(_task(task, "converted"), difficulty=1, provenance=p.provenance, reference=p.reference,
                     title=p.title)
    assert back == p
    save_problems([p, parse_problem(REPEAT)], tmp_path / "out" / "p.jsonl")
    assert load_problems(tmp_path / "out" / "p.jsonl") == [p, parse_problem(REPEAT)]
    assert not list((tmp_path / "out").glob("*.tmp"))
    assert isinstance(p, Problem) and "reference" not in parse_problem(REPEAT).to_json()


def test_from_task_validates_like_a_file():
    with pytest.raises(ValueError, match="task 'x', field 'description'"):
        from_task({"id": "x", "intent": "", "tests": [{"args": [1], "expected": 1}]})


def test_the_documented_example_is_a_valid_problem():
    import re
    from pathlib import Path

    from emergence.crucible.problems import reference_failures

    doc = (Path(__file__).resolve().parents[1] / "docs" / "crucible.md").read_text()
    p = parse_problem(json.loads(re.search(r"```json\n(.*?)```", doc, re.S).group(1)), "docs/crucible.md")
    assert reference_failures([p]) == {}
