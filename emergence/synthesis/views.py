"""The main clause of a request: what it asks for, without its asides.

People follow a request with remarks that ask for no step of their own: a bracketed note, a
second sentence on edge cases, a clause after a semicolon or a dash ("Sum the order totals.
Empty list -> 0."; "keep the negative values (their order stays)"). Those words name operations
(order, empty, case) and pull the sampler towards surplus steps. The engine draws some of its
samples from the main clause as well as from the whole request (`Engine.synthesize`), and ranks
their pooled candidates against the whole request, so nothing the remarks say is lost.
"""

from __future__ import annotations

import re

_BRACKETS = re.compile(r"\s*[(\[][^()\[\]]*[)\]]")
# a sentence end (not a decimal point or "e.g."), a semicolon, or a spaced dash
_BREAK = re.compile(r"(?<=[^\s.]{2}[.?!])\s+(?=\S)|;\s*|\s+(?:--|—|–)\s+")
MIN_WORDS = 3  # a shorter main clause ("Sum them.") leaves too much to the remarks


def main_clause(intent: str) -> str | None:
    """The request's first clause without bracketed notes, or None when that is the whole request
    or too short to stand alone."""
    text = " ".join(intent.split())
    bare = _BRACKETS.sub("", text).strip()
    first = _BREAK.split(bare, maxsplit=1)[0].strip() if bare else ""
    if len(first.split()) < MIN_WORDS or first.rstrip(".?!") == text.rstrip(".?!"):
        return None
    return first
