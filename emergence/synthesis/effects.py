"""Which side effects an intent asks for.

A tool that downloads something or touches the disk when it was asked to work on a value it is
given is wrong, and unsafe: "the links in this HTML" must parse the HTML passed in, not fetch a
page. People leave parsing and conversions unsaid, never a download or a file, so an effectful
step is allowed only when the intent's words call for that effect. The cues are broad on purpose
(they allow, they never force): "the URLs mentioned in a text" alone does not ask for a fetch,
"the title of the page at a URL" does.
"""

from __future__ import annotations

import re

from .ops import OPS

_URL = r"(?:url|link|address|web\s+address|endpoint|site|website)"
# a fetch verb, an upper-case GET (only that one is case-sensitive), or "the page at a URL"
_FETCH = (r"\b(?:fetch\w*|download\w*|scrap\w*|crawl\w*|retriev\w*|request\w*|respon\w*|visit\w*|over\s+http|http\s+get)\b"
          r"|(?-i:\bGET\b)|\b(?:page|site|html|content|contents|body|document|markup)\s+(?:at|behind|served\s+at|found\s+at|"
          rf"located\s+at|hosted\s+at|of|from)\s+(?:a|an|the|this|that|some|each|every|given)?\s*{_URL}\b")
# or a URL named as what the tool is given or gets ("given a URL, ...", "the title from a link"); a list of
# them ("the URLs in a text") is not a page to fetch
_GIVEN_URL = r"\b(?:given|takes?|taking|accepts?|for|with|from|at|into|get|gets|open|opens)\s+(?:a|an|the|this|that|some|one)?\s*(?:url|link|web\s+address|address)\b(?!s)"
_SEND = r"\b(?:post\w*|send\w*|submit\w*|upload\w*|publish\w*)\b"
_FILE = r"\b(?:files?|filenames?|paths?|disk|directory|folder|load\w*)\b|\.(?:txt|log|csv|json|html?|md)\b"

# operation -> what an intent must say for it to happen (case-insensitive)
CUES = {
    "HTTP_GET.text": re.compile(_FETCH + "|" + _GIVEN_URL, re.I),
    "HTTP_POST.text": re.compile(_SEND, re.I),
    "FILE_READ.text": re.compile(_FILE, re.I),
    "FILE_WRITE.text": re.compile(r"\b(?:writ\w*|sav\w*|dump\w*)\b", re.I),
}
assert set(CUES) == {name for name, op in OPS.items() if op.effects}, "every effect needs its cue"


def asked_effects(intent: str) -> frozenset:
    """The effectful operations whose effect the intent's words ask for."""
    return frozenset(op for op, cue in CUES.items() if cue.search(intent))


def without_unasked(ops: tuple, asked: frozenset) -> tuple:
    """`ops` less every effectful step the intent did not ask for (the rest may no longer type;
    the caller checks)."""
    return tuple(op for op in ops if not OPS[op].effects or op in asked)
