"""The main clause of a request: what it asks for, without its asides.

People follow a request with remarks that ask for no step of their own: a bracketed note, a
second sentence on edge cases, a clause after a semicolon or a dash ("Sum the order totals.
Empty list -> 0."; "keep the negative values (their order stays)"). Those words name operations
(order, empty, case) and pull the sampler towards surplus steps. When its answer is unsure, the
engine draws more samples from the main clause (`Engine.synthesize`), pools them with the
request's own, and judges every candidate against both texts; arguments are still read from the
whole request, so nothing the remarks say is lost.
"""

from __future__ import annotations

import re

_BRACKETS = re.compile(r"\s*[(\[][^()\[\]]*[)\]]")
# a sentence end (not a decimal point, "e.g." or "i.e."), a semicolon, or a spaced dash
_BREAK = re.compile(r"(?<=[^\s.][.?!])(?<!e\.g\.)(?<!i\.e\.)\s+(?=\S)|;\s*|\s+(?:--|—|–)\s+")
MIN_WORDS = 3  # a shorter main clause ("Sum them.") leaves too much to the remarks
# a later clause that goes on with the steps ("Next, sort them") belongs to the request
_NEXT_STEP = re.compile(r"^(?:then|next|after\s+that|afterwards|finally|lastly|and\s+then)\b", re.I)
# a clause that only names the input ("Input: the losses and the threshold.") asks for nothing
_INPUT = re.compile(r"^inputs?\s*:", re.I)


def main_clause(intent: str) -> str | None:
    """The request without its asides: bracketed notes go, and of its clauses the first that
    does not merely name the input stays, with any later clause that goes on with the steps.
    None when that is the whole request, or too short to stand alone."""
    text = " ".join(intent.split())
    bare = _BRACKETS.sub("", text).strip()
    clauses = [c.strip() for c in _BREAK.split(bare) if c.strip()]
    clauses = [c for c in clauses if not _INPUT.match(c)]
    if not clauses:
        return None
    kept = [clauses[0]] + [c for c in clauses[1:] if _NEXT_STEP.match(c)]
    main = " ".join(kept)
    if len(main.split()) < MIN_WORDS or _plain(main) == _plain(text):
        return None
    return main


def _plain(text: str) -> str:
    return re.sub(r"[\s.;?!]+", " ", text).strip().lower()
