"""Which network and file effects an intent asks for (emergence.synthesis.effects)."""

import pytest

from emergence.synthesis.effects import CUES, asked_effects, without_unasked
from emergence.synthesis.ops import OPS


def test_every_effectful_operation_has_a_cue():
    assert set(CUES) == {name for name, op in OPS.items() if op.effects}


@pytest.mark.parametrize("intent", [
    "download the page and count its links",
    "fetch https://example.com and return its title",
    "Given a URL, return the page title",
    "the headings of the page at a link",
    "GET the endpoint and read the status field",
    "scrape the image sources from a website",
])
def test_fetching_is_asked_for(intent):
    assert "HTTP_GET.text" in asked_effects(intent)


@pytest.mark.parametrize("intent", [
    "pull every href out of this html",
    "Find all the URLs mentioned in a chunk of text",
    "get the domain of a url",  # taking a URL apart needs no download
    "the title of an HTML document",
    "Get the max of the list",
])
def test_working_on_a_given_value_asks_for_no_fetch(intent):
    assert "HTTP_GET.text" not in asked_effects(intent)


def test_files_are_read_only_when_a_file_is_named():
    assert "FILE_READ.text" in asked_effects("read a log file and count its lines")
    assert "FILE_READ.text" in asked_effects("load notes.txt and upper-case it")
    assert "FILE_READ.text" not in asked_effects("count the lines of a text")
    assert asked_effects("sum a list of integers") == frozenset()


def test_without_unasked_keeps_asked_effects_and_everything_pure():
    ops = ("HTTP_GET.text", "PARSE_HTML.page", "EXTRACT_ELEMENTS.title")
    assert without_unasked(ops, frozenset()) == ops[1:]
    assert without_unasked(ops, frozenset({"HTTP_GET.text"})) == ops
    assert without_unasked(("REDUCE.sum",), frozenset()) == ("REDUCE.sum",)
