"""Operations a request's words rule out: the opposite of what it names.

Sentence vectors put "lowercase" next to "uppercase" and "ascending" next to "descending", and
the sampler sometimes draws the opposite of what was asked ("normalize the labels to lowercase"
-> MAP.upper). When the request names one side of such a pair and never the other, candidates
with the other side's operation are ranked after the rest (`Engine._rank`), not dropped. Only
pairs whose words are not turned around by a filter are here: "drop the odd numbers" keeps the
even ones, so even/odd is not; a case or a sort order is said as what it is. A word under a
negation ("not in descending order", "non-increasing") names nothing.
"""

from __future__ import annotations

import re

_LOWER = r"\blower[\s-]?case[sd]?\b|\blower[\s-]?cas(?:ing|e)\b|\bsmall\s+letters\b|\blower\b(?!\s+(?:than|bound|limit))"
_UPPER = (r"\bupper[\s-]?case[sd]?\b|\bupper[\s-]?cas(?:ing|e)\b|\ball[\s-]?caps\b|\bcapital\s+letters\b|"
          r"\bcapitals\b|\bupper\b(?!\s+(?:bound|limit))|\bshout\w*\b")
_ASC = r"\bascending\b|\bincreasing\b|\bsmallest\s+first\b|\blowest\s+first\b|\blow(?:est)?\s+to\s+high(?:est)?\b"
_DESC = (r"\bdescending\b|\bdecreasing\b|\blargest\s+first\b|\bhighest\s+first\b|\bbiggest\s+first\b|"
         r"\bhigh(?:est)?\s+to\s+low(?:est)?\b")
_DECIMALS = r"\bdecimals?\b|\bfloats?\b|\bfloating[\s-]point\b|\bfractional\b|\breal\s+numbers\b"
_INTEGERS = r"\bintegers?\b|\bints?\b|\bwhole\s+numbers?\b"

# operation -> (words that name its opposite, words that name it)
OPPOSED = {
    "MAP.upper": (_LOWER, _UPPER), "TRANSFORM.upper": (_LOWER, _UPPER),
    "MAP.lower": (_UPPER, _LOWER), "TRANSFORM.lower": (_UPPER, _LOWER),
    "SORT.asc": (_DESC, _ASC), "SORT.desc": (_ASC, _DESC),
    "EXTRACT.integers": (_DECIMALS, _INTEGERS),
}
_COMPILED = {op: (re.compile(a, re.IGNORECASE), re.compile(f, re.IGNORECASE)) for op, (a, f) in OPPOSED.items()}


# a word said under a negation names nothing: "not in descending order", "non-increasing", "numbers, not floats"
_NEGATED = re.compile(r"(?:\b(?:not|no|never|without|nor)\s+(?:\w+\s+){0,2}|\bnon[\s-]?)$", re.IGNORECASE)


def _said(pattern: re.Pattern, text: str) -> bool:
    return any(not _NEGATED.search(text[:m.start()]) for m in pattern.finditer(text))


def ruled_out(intent: str) -> frozenset:
    """The operations whose opposite the request names while never naming them."""
    text = intent or ""
    return frozenset(op for op, (against, named) in _COMPILED.items()
                     if _said(against, text) and not _said(named, text))
