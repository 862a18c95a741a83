"""What the tool is given, and what it gives back, when the request says.

"How many words are in this sentence?" is given a string. The sampler may read it as counting
items (REDUCE.count), and a list-typed program type-checks just as well: its parameter is typed
from the first step, not from the request. When the request names its input ("this sentence",
"a string of codes", "some CSV text"; "a list of labels", "the numbers in an array"), the
candidates whose parameter is of the other shape are ranked after the rest (`Engine._rank`);
they are not dropped, since a request may name a text and still be given its words. Likewise a
request that asks "how many ...?" of the whole input wants a count back: candidates that return
something else (the kept items, not how many there are) are ranked after those that count.
"""

from __future__ import annotations

import re

# not "one" ("one string of them" is a result) nor "each" ("capitalize each word" is said of items)
_DET = r"(?:a|an|the|this|some|given|input|my|your)"  # not "that": "lines that contain ..."
_SOME = r"(?:a|an|this|some|given|input|my|your)"  # not "the": "the word error", "the title" name a part
# nouns that are the input wherever they are named; and nouns that may be a part of each item (a record's
# title, "the word error"), the input only when introduced as one ("a word", "this message")
_TEXT = r"(?:string|sentence|text|phrase|paragraph|document|passage|html|page|markup|csv|json|file\s+contents?)"
_ITEM_TEXT = r"(?:word|line|title|url|message|post|tweet|comment|body)"
_COLLECTION = r"(?:list|array|sequence|collection|tuple|vector)"
# words before a text noun that make it an argument or a result, not the input ("a target string",
# "the search text", "a given new text", "an empty list")
_NOT_INPUT = (r"(?!(?:target|replacement|search|pattern|prefix|suffix|old|new|separator|delimiter|empty|result|"
              r"output|returned)\b)")
# "a list of ...", "an array of ...", "the numbers in a list", "given numbers", "some integers"
LIST_GIVEN = re.compile(rf"\b{_DET}\s+{_NOT_INPUT}(?:{_NOT_INPUT}\w+\s+)?{_COLLECTION}\b"
                        rf"|\b(?:given|some|these|those)\s+(?:\w+\s+)?"
                        rf"(?:numbers|integers|ints|floats|values|scores|strings|words|labels|items|names)\b",
                        re.IGNORECASE)
# "this sentence", "a comma-separated string of codes", "some CSV text", "an HTML page"; not a
# list of them ("a list of sentences": LIST_GIVEN) nor "the text's words" said of one item
TEXT_GIVEN = re.compile(rf"\b{_DET}\s+(?:{_NOT_INPUT}[\w-]+\s+){{0,2}}?{_NOT_INPUT}{_TEXT}\b(?![s-])"
                        rf"(?!\s+(?:column|field|key))"
                        rf"|\b{_SOME}\s+(?:{_NOT_INPUT}[\w-]+\s+){{0,2}}?{_NOT_INPUT}{_ITEM_TEXT}\b(?![s-])",
                        re.IGNORECASE)


def given_shape(intent: str) -> str | None:
    """"str" or "list" when the request names its input as one of them (and not the other), else None."""
    text = TEXT_GIVEN.search(intent or "")
    lst = LIST_GIVEN.search(intent or "")
    if text and not lst:
        return "str"
    if lst and not text:
        return "list"
    return None


def agrees(shape: str | None, param_type: str) -> bool:
    """Does a first parameter of `param_type` ("list[int]", "str", ...) take what the request gives?"""
    return shape is None or (param_type == "str") == (shape == "str")


# "how many ...?" asks for one count, unless its sentence asks it of each item ("how many letters each
# word has", "for every line, how many commas")
COUNT_ASKED = re.compile(r"\bhow\s+many\b", re.IGNORECASE)
_EACH = re.compile(r"\b(?:each|every|per)\b", re.IGNORECASE)


def asks_count(intent: str) -> bool:
    return any(COUNT_ASKED.search(s) and not _EACH.search(s) for s in re.split(r"[.?!;]\s", intent or ""))


def answers(asked_count: bool, returns: str) -> bool:
    """Does a program that returns `returns` ("int", "list[str]", ...) give what was asked?"""
    return not asked_count or returns == "int"
