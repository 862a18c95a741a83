"""Asides in the corpus (remarks and qualifiers that ask for no step) and unit conversions."""

import random

import pytest

from emergence.synthesis import asides, corpus, language
from emergence.synthesis.arguments import fill_arguments
from emergence.synthesis.program import Program, Step


def _facts(ops, start):
    return asides.facts(corpus.make_program(ops, start), corpus.START[start][2])


def test_facts_are_found_by_running_the_program():
    assert _facts(("FILTER.negative",), "ints") == {"order": True, "copes_with_empty": True, "empty": "an empty list"}
    assert _facts(("MAP.double",), "ints")["per_item"] is True
    sort = _facts(("SORT.asc",), "ints")
    assert "per_item" not in sort and "order" not in sort  # same length, but not item by item
    assert "per_item" not in _facts(("MAP.cumulative_sum",), "ints")  # each item depends on those before
    assert _facts(("REDUCE.sum",), "nums")["empty"] == "0"
    assert _facts(("TRANSFORM.length",), "text")["empty"] == "0"
    assert _facts(("REDUCE.max",), "ints") == {}  # max() of nothing raises: no claim about empty input


def test_facts_say_nothing_that_hangs_on_another_parameter():
    prog = Program("tool", [("numbers", "list[int]"), ("k", "num")], [Step("MAP.add", {"k": {"ref": "k"}})])
    known = asides.facts(prog)
    assert "empty" not in known and "per_item" not in known
    fetch = Program("tool", [("url", "str")], [Step("HTTP_GET.text", {})])
    assert asides.facts(fetch) == {}  # effectful: never run here


def test_descriptions_without_facts_have_no_asides():
    rng = random.Random(0)
    remarks = [r for kind in asides.REMARKS.values() for r in kind if "{v}" not in r]
    for _ in range(300):
        text = corpus.describe(("FILTER.even", "REDUCE.sum"), "ints", [{}, {}], rng).lower()
        assert not any(r in text for r in remarks)


def test_some_descriptions_carry_a_true_remark_and_a_qualified_input():
    rng = random.Random(1)
    seq, start = ("FILTER.negative",), "ints"
    known = _facts(seq, start)
    texts = [corpus.describe(seq, start, [{}], rng, known=known) for _ in range(600)]
    said = lambda options: sum(any(o.lower() in t.lower() for o in options[:-1]) for t in texts)  # noqa: E731
    assert 60 < said(asides.REMARKS["order"] + asides.REMARKS["any"] + asides.REMARKS["copes_with_empty"]
                     + [r.format(v="an empty list") for r in asides.REMARKS["empty"]]) < 300
    assert 20 < said(asides.QUALIFIERS["ints"]) < 150
    # a remark never claims what running the program did not show
    max_texts = [corpus.describe(("REDUCE.max",), "ints", [{}], rng, known={}) for _ in range(300)]
    claims = asides.REMARKS["order"] + asides.REMARKS["per_item"] + asides.REMARKS["copes_with_empty"]
    assert not any(c.lower() in t.lower() for c in claims for t in max_texts)
    assert not any("empty input gives" in t for t in max_texts)


def test_held_out_remarks_are_never_trained_on():
    rng = random.Random(2)
    known = _facts(("MAP.double",), "ints")
    texts = [corpus.describe(("MAP.double",), "ints", [{}], rng, known=known) for _ in range(800)]
    last = [options[-1].format(v="an empty list").lower() for options in asides.REMARKS.values()]
    assert not any(w in t.lower() for w in last for t in texts)
    held = [corpus.describe(("MAP.double",), "ints", [{}], rng, held_out=True, known=known) for _ in range(800)]
    assert any(w in t.lower() for w in last for t in held)


def test_attach_keeps_one_sentence_end():
    rng = random.Random(0)
    outs = {asides.attach("Sum the list?", "the input may be empty", rng) for _ in range(20)}
    assert outs == {"Sum the list (the input may be empty)?", "Sum the list? The input may be empty."}


def test_conversions_are_described_and_read_back():
    records = corpus.build(max_len=1, per_program=12, seed=3, with_traces=False)
    converted = [r for r in records if r.ops == ["MAP.multiply"]
                 and any(b in r.description for _, b, _ in language.CONVERSIONS)]
    assert len(converted) >= 3
    for r in converted:
        k = r.program["steps"][0]["args"]["k"]["const"]
        assert fill_arguments(r.description, r.ops, r.arity)[0][0]["k"] == {"const": k}, r.description


@pytest.mark.parametrize("text,factor", [("Convert the durations from seconds to milliseconds", 1000),
                                         ("turn prices in cents into dollars", 0.01),
                                         ("lengths in km, as meters", 1000),
                                         ("multiply every value by 3", 3)])
def test_unit_pairs_give_the_factor(text, factor):
    assert fill_arguments(text, ["MAP.multiply"], 1)[0] == [{"k": {"const": factor}}]


def test_an_unknown_conversion_makes_nothing_up():
    assert fill_arguments("convert meters to feet", ["MAP.multiply"], 1) == []


def test_phrases_for_words_only_known_factors_as_conversions():
    rng = random.Random(0)
    conv = language.phrases_for("MAP.multiply", {"k": {"const": 1000}}, rng)
    assert all("{a}" not in t and "{b}" not in t for ts in conv.values() for t in ts)
    assert any("milli" in t or "meters" in t or "grams" in t for t in conv["vp"])
    assert language.phrases_for("MAP.multiply", {"k": {"const": 3}}, rng) is language.PHRASES["MAP.multiply"]
    assert language.phrases_for("MAP.multiply", {"k": {"const": 1000}}) is language.PHRASES["MAP.multiply"]
