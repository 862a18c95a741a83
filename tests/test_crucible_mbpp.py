"""MBPP as crucible problems: asserts parsed with ast (never run), only literal tests, only the
train and validation splits, references checked on their converted tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emergence.crucible.mbpp import SPLITS, Skip, convert, difficulty, load_mbpp, parse_assert
from emergence.sandbox import bwrap_missing

MBPP = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mbpp" / "mbpp_train_validation.jsonl"
NO_BWRAP = bwrap_missing()


def record(task_id=601, code="def add(a, b):\n    return a + b", tests=None, split="train", setup=""):
    return {"task_id": task_id, "text": "Write a function to add two numbers.", "code": code, "split": split,
            "test_list": tests or ["assert add(1, 2) == 3", "assert add(-1, 1) == 0", "assert 5 == add(2, 3)"],
            "test_setup_code": setup, "challenge_test_list": []}


def test_asserts_parse_to_entry_args_and_expected():
    assert parse_assert("assert f([1, 2], 'x') == (3, 'y')") == ("f", [[1, 2], "x"], [3, "y"])  # tuples as lists
    assert parse_assert("assert 7 == f(3)") == ("f", [3], 7)
    assert parse_assert("assert f({'a': (1,)}) == None") == ("f", [{"a": [1]}], None)


@pytest.mark.parametrize("line, why", [
    ("assert f(x) == 3", "not a literal"), ("assert f(1) != 2", "is not `f"),
    ("assert math.isclose(f(1), 2)", "is not `f"), ("print(f(1))", "one assert"),
    ("assert f(1, k=2) == 3", "keyword"), ("assert f({1, 2}) == 3", "set value"),
    ("assert f({1: 'a'}) == 3", "non-string keys"), ("assert f(1) == float('inf')", "not a literal"),
    ("assert f() == 1", "no arguments"), ("assert f(1 ==", "does not parse"),
    ("assert obj.f(1) == 2", "is not `f"), ("__import__('os').system('x')", "one assert"),
])
def test_other_tests_are_skipped_with_a_reason(line, why):
    with pytest.raises(Skip, match=why):
        parse_assert(line)


def test_difficulty_by_the_length_of_the_reference():
    assert difficulty("def f(x):\n    return x") == 1
    assert difficulty("def f(x):\r\n" + "    y = x\r\n" * 6 + "    return y") == 2
    assert difficulty("def f(x):\n" + "    # note\n    y = x\n" * 10 + "    return y") == 3


def test_a_record_converts_with_its_provenance():
    p = convert(record())
    assert p.id == "mbpp_601" and p.arity == 2 and p.tests[2] == {"args": [2, 3], "expected": 5}
    assert p.reference == {"code": "def add(a, b):\n    return a + b", "entry": "add"} and p.family == "mbpp"
    assert p.provenance["source"] == "mbpp" and p.provenance["split"] == "train" and "CC BY 4.0" in p.provenance["license"]
    for bad, why in [(record(setup="import x"), "test_setup_code"),
                     (record(tests=["assert add(1, 2) == 3", "assert sub(1, 2) == -1"]), "more than one function"),
                     (record(tests=["assert add(1, 2) == 3", "assert add(1) == 1"]), "different numbers")]:
        with pytest.raises(Skip, match=why):
            convert(bad)


def test_only_the_named_split_and_its_ids_are_read(tmp_path):
    path = tmp_path / "mbpp.jsonl"
    rows = [record(601), record(520, split="validation"), record(3, split="prompt"),
            record(602, tests=["assert add(x, 2) == 3"])]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    train, skipped = load_mbpp(path, "train", check=False)
    assert [p.id for p in train] == ["mbpp_601"] and skipped == {"argument or expected value not a literal": 1}
    assert [p.id for p in load_mbpp(path, "validation", check=False)[0]] == ["mbpp_520"]
    with pytest.raises(ValueError, match="only \\['train', 'validation'\\]"):
        load_mbpp(path, "prompt")
    path.write_text(json.dumps(record(100)) + "\n")  # an evaluation-split id labelled train
    with pytest.raises(ValueError, match="line 1: task 100 is labelled 'train' but is outside its ids 601-974"):
        load_mbpp(path, "train", check=False)


@pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")
def test_a_reference_that_fails_its_converted_tests_is_skipped(tmp_path):
    tuple_aware = "def count_tuples(xs):\n    return sum(isinstance(x, tuple) for x in xs)"
    path = tmp_path / "mbpp.jsonl"
    path.write_text(json.dumps(record(601)) + "\n" + json.dumps(record(
        603, code=tuple_aware, tests=["assert count_tuples([(1, 2), 3]) == 1", "assert count_tuples([]) == 0"])) + "\n")
    problems, skipped = load_mbpp(path, "train")
    assert [p.id for p in problems] == ["mbpp_601"] and skipped == {"reference fails its converted tests": 1}


@pytest.mark.skipif(not MBPP.exists(), reason=f"no MBPP data at {MBPP}")
def test_the_real_train_split_converts_mostly():
    problems, skipped = load_mbpp(MBPP, "train", check=False)
    ids = [p.provenance["task_id"] for p in problems]
    assert all(i in SPLITS["train"] for i in ids) and len(ids) + sum(skipped.values()) == 374
    assert len(problems) >= 350  # 362 of 374 when written; the asserts parse, none is executed
