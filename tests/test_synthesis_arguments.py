"""Arguments read out of an intent: numbers by their cue words, quoted strings, separator names,
JSON paths and CSV columns; extra tool parameters bound as references; nothing invented. Every
assignment type-checks, and the corpus's own descriptions read back to their arguments."""

from __future__ import annotations

import random

import pytest

from emergence.synthesis import corpus
from emergence.synthesis.arguments import extract_numbers, extract_quoted, fill_arguments
from emergence.synthesis.program import check

JSON = ["PARSE_JSON.document", "EXTRACT_ELEMENTS.field"]
CSV = ["PARSE_CSV.rows", "EXTRACT_ELEMENTS.column"]


def c(v):
    return {"const": v}


def r(name):
    return {"ref": name}


def start_of(ops):
    return "text" if ops[0] == "FILE_WRITE.text" else corpus.start_kind(ops)


def fill(intent, ops, arity=1, limit=4, start=None):
    """fill_arguments, checking that every alternative makes a well-typed program of `arity`."""
    alts = fill_arguments(intent, ops, arity, limit)
    assert len(alts) <= limit
    for args in alts:
        assert len(args) == len(ops)
        checked = check(corpus.make_program(ops, start or start_of(ops), args))
        assert len(checked.program.params) == arity, (intent, args)
    return alts


# (intent, ops, the expected best assignment) -- our own wording, one case per rule
BEST = [
    ("keep the values above 7", ["FILTER.greater"], [{"k": c(7)}]),
    ("only numbers smaller than -2.5 please", ["FILTER.less"], [{"k": c(-2.5)}]),
    ("how many of the codes are 400 or higher", ["FILTER.at_least", "REDUCE.count"], [{"k": c(400)}, {}]),
    ("keep scores of at most 10", ["FILTER.at_most"], [{"k": c(10)}]),
    ("first 4 items", ["LIMIT.first"], [{"n": c(4)}]),
    ("give me the final three entries", ["LIMIT.last"], [{"n": c(3)}]),
    ("the words with more than five letters", ["FILTER.longer"], [{"n": c(5)}]),
    ("bump every number up: add 10 to each", ["MAP.add"], [{"k": c(10)}]),
    ("keep the first 2 once the ones over 40 are kept", ["FILTER.greater", "LIMIT.first"], [{"k": c(40)}, {"n": c(2)}]),
    ("take the top 6 after removing anything under 9", ["FILTER.less", "LIMIT.first"], [{"k": c(9)}, {"n": c(6)}]),
    ("multiply them by 4, then add 1", ["MAP.multiply", "MAP.add"], [{"k": c(4)}, {"k": c(1)}]),
    ("the most frequent pair of words", ["TRANSFORM.words", "LIMIT.top_frequent"], None),  # "pair" alone is no count
    ("the a couple of most common words", ["TRANSFORM.words", "LIMIT.top_frequent"], [{}, {"n": c(2)}]),
    ("join with dashes", ["REDUCE.join"], [{"sep": c("-")}]),
    ("glue the words together using a comma and a space", ["REDUCE.join"], [{"sep": c(", ")}]),
    ("join the words", ["REDUCE.join"], [{"sep": c(" ")}]),  # the documented default
    ("join them with '\\t'", ["REDUCE.join"], [{"sep": c("\t")}]),
    ("split the line on semicolons", ["TRANSFORM.split"], [{"sep": c(";")}]),
    ("break the record apart at each '|'", ["TRANSFORM.split"], [{"sep": c("|")}]),
    ("replace 'cat' with 'dog'", ["TRANSFORM.replace"], [{"old": c("cat"), "new": c("dog")}]),
    ('substitute "dog" for "cat" everywhere', ["TRANSFORM.replace"], [{"old": c("cat"), "new": c("dog")}]),
    ("the words beginning with `pre`", ["FILTER.startswith"], [{"prefix": c("pre")}]),
    ("count how often 'ab' occurs in the text", ["TRANSFORM.count_substring"], [{"sub": c("ab")}]),
    ("keep the lines that contain 'error'", ["TRANSFORM.lines", "FILTER.contains"], [{}, {"sub": c("error")}]),
    ("read the 'price' field", JSON, [{}, {"path": c("price")}]),
    ("look up user.address.zip in the payload", JSON, [{}, {"path": c("user.address.zip")}]),
    ("the name inside owner", JSON, [{}, {"path": c("owner.name")}]),
    ("the title field stored under meta in the payload", JSON, [{}, {"path": c("meta.title")}]),
    ("the version nested within the package", JSON, [{}, {"path": c("package.version")}]),
    ("fetch the 'zip' that is nested under 'address'", JSON, [{}, {"path": c("address.zip")}]),
    ("how many entries are in the 'items' array", JSON, [{}, {"path": c("items")}]),
    ("get the repository's license", JSON, [{}, {"path": c("repository.license")}]),
    ("the id key of the document", JSON, [{}, {"path": c("id")}]),
    ("the 'city' column", CSV, [{}, {"name": c("city")}]),
    ("pull out the country column from the table", CSV, [{}, {"name": c("country")}]),
    ("average the score values", CSV + ["MAP.to_number", "REDUCE.mean"], [{}, {"name": c("score")}, {}, {}]),
]


@pytest.mark.parametrize("intent,ops,best", BEST, ids=[b[0][:40] for b in BEST])
def test_best_reading(intent, ops, best):
    alts = fill(intent, ops)
    assert (alts[0] if alts else None) == best


def test_other_numbers_stay_as_alternatives():
    alts = fill("keep those above 12 and then the first 3", ["FILTER.greater", "LIMIT.first"])
    assert alts[0] == [{"k": c(12)}, {"n": c(3)}]
    assert [{"k": c(3)}, {"n": c(12)}] in alts  # the swapped reading, lower down
    assert fill("keep those above 10", ["FILTER.greater"]) == [[{"k": c(10)}]]  # one mention fills one argument


def test_nested_path_offers_both_orders_and_replace_both_directions():
    assert fill("the name inside owner", JSON)[:2] == [[{}, {"path": c("owner.name")}], [{}, {"path": c("name.owner")}]]
    assert [{"old": c("dog"), "new": c("cat")}] in fill("replace 'cat' with 'dog'", ["TRANSFORM.replace"])


def test_extra_parameters_bind_as_references():
    ops = ["FILTER.greater", "LIMIT.first"]
    assert fill("keep the values above a given threshold k, then the first 3", ops, arity=2)[0] == \
        [{"k": r("k")}, {"n": c(3)}]
    assert fill("keep values over 5 and take the first n", ops, arity=2)[0] == [{"k": c(5)}, {"n": r("limit")}]
    assert fill("keep values above k, then the first n", ops, arity=3)[0] == [{"k": r("k")}, {"n": r("limit")}]
    # two arguments of the same name share one parameter, or take one each
    both = ["FILTER.greater", "MAP.add"]
    assert fill("keep those above k and add k to each", both, arity=2)[0] == [{"k": r("k")}, {"k": r("k")}]
    assert fill("keep those above k and add j to each", both, arity=3)[0] == [{"k": r("k")}, {"k": r("k2")}]
    assert fill("replace 'x' with a given new text", ["TRANSFORM.replace"], arity=2)[0] == \
        [{"old": c("x"), "new": r("new")}]
    assert fill("join the words with a given separator", ["REDUCE.join"], arity=2) == [[{"sep": r("separator")}]]


def test_a_column_or_key_path_can_be_a_parameter():
    csv_max = CSV + ["MAP.to_number", "REDUCE.max"]
    assert fill("Given CSV text and the name of a numeric column, return its largest value", csv_max, arity=2)[0] == \
        [{}, {"name": r("column_name")}, {}, {}]
    assert fill("look up a given key path in a JSON document", JSON, arity=2)[0] == [{}, {"path": r("key_path")}]
    # a parameter never takes the name the generated code gives the column itself
    assert "column" not in corpus.REF_PARAM.values() and "path" not in corpus.REF_PARAM.values()


def test_nothing_is_invented():
    assert fill("keep values above the threshold", ["FILTER.greater"]) == []
    assert fill("take each one and sort them", ["LIMIT.first"]) == []  # "each one" is no count
    assert fill("split the text", ["TRANSFORM.split"]) == []  # no default separator for a split
    assert fill("replace the word", ["TRANSFORM.replace"]) == []
    assert fill("read a field of the JSON document", JSON) == []
    words = ["TRANSFORM.words", "LIMIT.first", "FILTER.contains"]
    assert fill("the first 3 words containing 'x'", words) == [[{}, {"n": c(3)}, {"sub": c("x")}]]
    assert fill("the first three words containing an x", words) == []


def test_every_extra_parameter_must_be_used():
    assert fill("keep values above 3", ["FILTER.greater"], arity=3) == []  # one argument, two extras
    assert fill("sum the numbers", ["REDUCE.sum"], arity=2) == []  # nothing to stand for
    assert fill("sum the numbers", ["REDUCE.sum"]) == [[{}]]  # no arguments needed


def test_helpers():
    assert extract_numbers("top 3, then -2 and 4.5; three or a couple of h1 tags") == [3, -2, 4.5, 3, 2]
    assert extract_quoted("it's 'a b', \"c\" and `d` -- don't") == ["a b", "c", "d"]
    assert extract_quoted("join with ', ' or ''") == [", ", ""]


@pytest.fixture(scope="module")
def records():
    return corpus.build(max_programs=300, per_program=2, with_traces=False, seed=3)


def test_corpus_descriptions_read_back(records):
    sample = random.Random(0).sample(records, 300)
    found = top = with_args = found_args = 0
    for rec in sample:
        actual = [s.get("args", {}) for s in rec.program["steps"]]
        alts = fill(rec.description, rec.ops, rec.arity, start=rec.start)
        found += actual in alts
        top += bool(alts) and alts[0] == actual
        if any(actual):
            with_args += 1
            found_args += actual in alts
    print(f"round trip: {found / len(sample):.1%} among alternatives, {top / len(sample):.1%} first; "
          f"{found_args}/{with_args} of the records with arguments")
    assert found / len(sample) >= 0.98
    assert found_args / with_args >= 0.95


@pytest.mark.parametrize("intent,ops,want", [
    ("How many values are above the list's own average?", ["FILTER.greater", "REDUCE.count"], "REDUCE.mean"),
    ("keep the numbers below their median", ["FILTER.less"], "REDUCE.median"),
    ("keep those above average", ["FILTER.greater"], "REDUCE.mean"),
    ("the values at least the mean value", ["FILTER.at_least"], "REDUCE.mean"),
])
def test_a_threshold_may_be_a_statistic_of_the_values(intent, ops, want):
    read = fill_arguments(intent, ops, 1, derived=True)
    assert read[0][0] == {"k": {"derived": want}}
    assert fill_arguments(intent, ops, 1) == []  # only for a caller that writes it out


@pytest.mark.parametrize("intent,ops", [
    ("keep the numbers above 4 and return their mean", ["FILTER.greater", "REDUCE.mean"]),  # the mean is a step
    ("what do you mean, above what", ["FILTER.greater"]),  # a bare "mean" is the verb
    ("take the average of the values above", ["FILTER.greater"]),  # no threshold said by the cue
])
def test_a_statistic_is_not_read_where_it_is_not_the_threshold(intent, ops):
    read = fill_arguments(intent, ops, 1, derived=True)
    assert not any("derived" in a.get("k", {}) for args in read for a in args)
