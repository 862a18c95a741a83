"""Argument values for a predicted pipeline, read back out of the intent.

The model predicts operation names only. `fill_arguments` supplies what those operations take
(`OPS[op].args`) from the intent's own words -- numbers, quoted strings, separator names, JSON
paths, CSV columns -- and from the tool's arity: a tool of `arity` parameters has `arity - 1`
beyond the value it works on, and each of those stands for arguments ({"ref": name}, names from
`corpus.REF_PARAM`, bound in program order). Values come from the text or from `DEFAULTS`;
nothing is made up, so an operation whose argument the intent doesn't give gets no assignment.

Ranking: a mention scores its source's base plus how near it sits to the words that introduce
that operation's argument ("above 7" for FILTER.greater, "the first 3" for LIMIT.first). Other
readings stay as lower-ranked alternatives. One mention fills at most one argument.
"""

from __future__ import annotations

import bisect
import itertools
import re

from .corpus import REF_PARAM
from .language import CONVERSIONS, NUMBER_WORDS, SEPARATOR_WORDS
from .ops import OPS

# words next to which each operation's argument is usually said ("keep those above 7")
CUES = {
    "LIMIT.first": r"first|top|leading|initial|truncate\w*|limit\w*|largest|biggest|highest|greatest|smallest|lowest"
                   r"|least|tiniest",
    "LIMIT.last": r"last|final|trailing|ending",
    "LIMIT.top_frequent": r"most|top|frequent\w*|common|popular",
    "FILTER.greater": r"above|over|exceed\w*|greater|bigger|larger|more|higher|beyond",
    "FILTER.less": r"below|under|less|fewer|smaller|lower|beneath",
    "FILTER.at_least": r"least|more|higher|greater|larger|above|up|minimum|min|smaller|from",
    "FILTER.at_most": r"most|less|fewer|lower|smaller|below|under|up|maximum|max|larger|bigger",
    "FILTER.longer": r"longer|more|over|exceed\w*|letters?|characters?|chars|length",
    "MAP.add": r"add\w*|plus|increase\w*|shift\w*|offset|by",
    "MAP.multiply": r"multipl\w*|times|scal\w*|factor|by",
    "REDUCE.minus": r"minus|subtract\w*|less",
    "REDUCE.plus": r"plus|add\w*",
    "REDUCE.ratio": r"divide\w*|over|ratio|per|by",
    "REDUCE.join": r"join\w*|glue\w*|concatenat\w*|combin\w*|separat\w*|delimit\w*|with|using|by|between",
    "TRANSFORM.split": r"split\w*|break\w*|apart|separat\w*|delimit\w*|on|at|by",
    "FILTER.contains": r"contain\w*|includ\w*|with|substring",
    "FILTER.startswith": r"start\w*|begin\w*|prefix\w*",
    "TRANSFORM.count_substring": r"occurrences?|times|often|appears?|count\w*",
    "TRANSFORM.replace": r"replac\w*|substitut\w*|swap\w*|becomes?|change\w*|with|for",
    "EXTRACT.pattern": r"match\w*|pattern|regex\w*|expression",
    "EXTRACT_ELEMENTS.field": r"field|key|entry|property|attribute|path|value at|look ?up",
    "EXTRACT_ELEMENTS.column": r"columns?|values|every|field",
    "FILE_WRITE.text": r"write|save|store|to|into|file",
    "HTTP_POST.text": r"post\w*|send\w*|body|payload",
}
# counts said without digits; "one" is too common ("each one", "every one of") to count unless
# a cue word stands right next to it ("the first one", "more than one", "the one most common")
NUMBER_PHRASES = {w: i for i, w in enumerate(NUMBER_WORDS)} | {"a couple of": 2, "a pair of": 2, "a dozen": 12}
WEAK_NUMBERS = {"one"}
NOT_COUNTING = r"\b(?:each|every|any|no|which|that)\s+$"  # before a weak number ("every one of"): no count
# separator names: language.SEPARATOR_WORDS read backwards, plus singulars and a few more marks
SEPARATORS = {w: s for s, words in SEPARATOR_WORDS.items() for w in words} | {
    "comma": ",", "space": " ", "newline": "\n", "line break": "\n", "dash": "-", "hyphen": "-",
    "semicolon": ";", "pipe": "|", "tab": "\t", "slash": "/", "colon": ":", "colons": ":",
    "underscore": "_", "underscores": "_"}
# natural defaults, offered after anything the text names ("join the words": one space each, else
# nothing between); a split without a named separator is `TRANSFORM.words`, so `split` has none
DEFAULTS = {("REDUCE.join", "sep"): (" ", "")}
# words saying an argument is one of the tool's parameters ("above a given threshold k")
REF_HINTS = (r"\b(?:[kKnN]|(?i:given|specified|supplied|provided|parameter|argument|threshold|limit|separator|sep"
             r"|delimiter|substring|sub|search|prefix|old|new|another|target|replacement))\b")
# words naming one particular argument as a parameter ("a given new text", "with another")
REF_NAMES = {"n": r"[nN]|limit|count", "k": r"k|threshold", "sep": r"sep|separator|delimiter", "prefix": r"prefix",
             "sub": r"sub|substring|search", "old": r"old|target|one substring", "new": r"new|another|replacement",
             "other": r"other|another", "name": r"column|column name", "path": r"path|key path|key"}
# words that are never a JSON field or CSV column name
GENERIC = set("""a an the its their this that these those each every all any some one of in on at to from into
with by for and or json csv html document object payload string text input table row rows record records
page file value values field fields column columns key entry number numbers word words line lines numeric
distinct unique first last inside within under named called as is are was were be been e.g i.e nested stored found""".split())
# verbs and adjectives of requests: never taken as a field or column name by the last-resort rule
NOT_NAMES = set("""return returns get find list compute give extract sort sorted count sum total average mean
show collect parse read take keep make build write produce output calculate determine report want need tool
function helper how many much most least more less than text data alphabetical ascending descending order
then next finally after afterwards""".split())
# how a kind of argument is found: arg name -> kind (`path` depends on the operation)
ARG_KIND = {"n": "count", "k": "number", "other": "number", "sep": "sep", "sub": "string", "prefix": "string",
            "old": "string", "new": "string", "pattern": "string", "body": "string", "name": "column"}
ID = r"[A-Za-z_]\w*"
DOTTED = rf"{ID}(?:\.\w+)+"
# (regex, base score) of the ways a JSON path is said: group 1 is the path
PATH_FORMS = [(rf"\b({DOTTED})\b", 6),
              (rf"\b(?:the|its|a|an)\s+({ID}(?:\.\w+)*)\s+(?:field|key|entry|property|attribute|member)\b", 6),
              (rf"\b(?:field|key|property|attribute|entry|member)\s+(?:named\s+|called\s+)?({ID}(?:\.\w+)*)", 5),
              (rf"\b(?:value|values)\s+(?:at|under|for)\s+({ID}(?:\.\w+)*)", 5),
              (rf"\blook\s*up\s+({ID}(?:\.\w+)*)", 5)]
# "A inside B" is surely nesting; "A of/in B" often names the document itself ("of the response");
# "A (field) nested/stored/found under B" is the same nesting with a verb between
NESTED = (rf"\b({ID})(?:\s+(?:field|key|entry|property|value))?"
          r"(?:\s+(?:that\s+is\s+|which\s+is\s+)?(?:nested|stored|found|located|kept|sitting|held))?"
          rf"\s+(inside|within|under|in|of|from)\s+(?:the\s+|an?\s+)?({ID})\b")
POSSESSIVE = rf"\b({ID})'s\s+({ID})\b"  # "the owner's name" -> owner.name
COLUMN_FORMS = [(rf"\b({ID})\s+column\b", 6), (rf"\bcolumn\s+(?:named\s+|called\s+)?({ID})", 5),
                (rf"\b({ID})\s+(?:values|field|entries|cells)\b", 3), (rf"\bevery\s+({ID})\b", 2)]
# unit names as people write them -> the names in `language.CONVERSIONS` (no one-letter
# abbreviations: "s", "m", "g" and "in" are ordinary words too)
UNIT_NAMES = {u: u for a, b, _ in CONVERSIONS for u in (a, b)} | {
    "second": "seconds", "sec": "seconds", "secs": "seconds", "millisecond": "milliseconds", "ms": "milliseconds",
    "msec": "milliseconds", "minute": "minutes", "min": "minutes", "mins": "minutes", "hour": "hours",
    "hr": "hours", "hrs": "hours", "day": "days", "week": "weeks", "kilometer": "kilometers", "km": "kilometers",
    "kilometre": "kilometers", "kilometres": "kilometers", "meter": "meters", "metre": "meters", "metres": "meters",
    "centimeter": "centimeters", "cm": "centimeters", "centimetre": "centimeters", "centimetres": "centimeters",
    "millimeter": "millimeters", "mm": "millimeters", "millimetre": "millimeters", "millimetres": "millimeters",
    "kilogram": "kilograms", "kg": "kilograms", "kgs": "kilograms", "gram": "grams", "dollar": "dollars",
    "cent": "cents", "liter": "liters", "litre": "liters", "litres": "liters", "milliliter": "milliliters",
    "ml": "milliliters", "millilitre": "milliliters", "millilitres": "milliliters", "foot": "feet", "ft": "feet",
    "inch": "inches", "mile": "miles", "kilobyte": "kilobytes", "kb": "kilobytes", "byte": "bytes",
    "year": "years", "month": "months"}
UNIT_PATTERN = r"\b(?:" + "|".join(sorted(map(re.escape, UNIT_NAMES), key=len, reverse=True)) + r")\b"
FACTORS = {(a, b): f for a, b, f in CONVERSIONS}
CONVERSION_BASE = 8  # two units that make a known conversion say its factor more surely than a bare number
QUOTED = re.compile(r"(?<!\w)(?:'(.*?)'|\"(.*?)\"|`(.*?)`|‘(.*?)’|“(.*?)”)(?!\w)")
NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?!\w)")
QUOTED_BASE, NUMBER_BASE, REF_BASE, WINDOW = 7, 4, 3, 6
# a threshold that is a statistic of the values themselves ("above the average", "below its
# median"): {"derived": op}, computed from the value flowing into the step (`Engine.typed_program`
# writes it as STORE/RETRIEVE steps). Said right by the comparison's cue, never made up.
STATISTICS = {"average": "REDUCE.mean", "mean": "REDUCE.mean", "median": "REDUCE.median"}
DERIVED_ARGS = {("FILTER.greater", "k"), ("FILTER.less", "k"), ("FILTER.at_least", "k"), ("FILTER.at_most", "k")}
STATISTIC = (r"\b(?P<said>(?:the|its|their|that)\s+(?:(?:list|input|data|set|sample)'s\s+)?(?:own\s+)?)?"
             r"(?:arithmetic\s+)?(?P<stat>average|mean|median)\b"
             r"(?:\s+(?:value|of\s+(?:the\s+)?(?:list|values|numbers|them|all)))?")
DERIVED_BASE = 5  # below a quoted value (7), above a bare number (4)
DERIVED_GAP = 2  # at most this many words between the cue and the statistic ("above all of their average")


def extract_quoted(text: str) -> list[str]:
    """Quoted strings ('...', "...", `...`, curly quotes) in order; apostrophes are not quotes."""
    return [_content(m) for m in QUOTED.finditer(text)]


def extract_numbers(text: str) -> list:
    """Numbers in order: digits ("3", "-2", "4.5") and number words ("three", "a couple of")."""
    return [v for _, _, v, _ in sorted(_Text(text).numbers())]


def _content(m) -> str:
    return next(g for g in m.groups() if g is not None)


def _named(word: str) -> bool:  # could be a field or column name
    return word.lower() not in GENERIC and not set(word.lower().split(".")) & GENERIC


def _singular(word: str) -> str:
    w = word.lower()
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith("s") and not w.endswith("ss") and len(w) > 3:
        return w[:-1]
    return w


def _unescape(s: str) -> str:  # a separator written as Python would: '\n', '\t'
    return re.sub(r"\\([nt\\'\"])", lambda m: {"n": "\n", "t": "\t"}.get(m[1], m[1]), s)


class _Text:
    """The intent, its quoted spans blanked out (so words inside quotes are not read as cues)."""

    def __init__(self, text: str):
        self.quotes = list(QUOTED.finditer(text))
        self.masked = QUOTED.sub(lambda m: " " * len(m[0]), text)
        # the quote marks alone taken out, offsets kept: "the 'name' inside 'user'" still reads as nesting
        self.bare = QUOTED.sub(lambda m: " " + _content(m) + " ", text)
        self.cues: dict = {}
        self.starts = sorted([m.start() for m in re.finditer(r"\w+", self.masked)] + [m.start() for m in self.quotes])

    def gap(self, a: int, b: int) -> int:  # words starting in [a, b)
        return bisect.bisect_left(self.starts, b) - bisect.bisect_left(self.starts, a)

    def find(self, pattern: str, flags=re.I):
        return list(re.finditer(pattern, self.masked, flags))

    def gaps(self, op: str, s: int, e: int) -> list:
        """Words between span s..e and each cue of `op`, fewest first (two more for a cue after
        it; 0 for one inside it)."""
        if op not in self.cues:
            self.cues[op] = self.find(rf"\b(?:{CUES.get(op, '(?!)')})\b")
        return sorted(self.gap(m.end(), s) if m.end() <= s else self.gap(e, m.start()) + 2 if m.start() >= e else 0
                      for m in self.cues[op])

    def after_cue(self, op: str, s: int):
        """Words between the nearest cue of `op` that ends before `s` and `s` (None: no such cue)."""
        self.gaps(op, s, s)  # finds the cues once
        return min((self.gap(m.end(), s) for m in self.cues[op] if m.end() <= s), default=None)

    def nearness(self, op: str, s: int, e: int):
        return min(self.gaps(op, s, e), default=None)

    def closeness(self, op: str, s: int, e: int) -> float:
        """Bonus for sitting by the operation's cues: the nearest counts, the next one half
        ("shift them by 5" beats "scale them by 5" for MAP.add: "by" and "shift" both near)."""
        return sum(w * max(0, WINDOW - g) for w, g in zip((1, 0.5), self.gaps(op, s, e)))

    def numbers(self):  # (start, end, value, weak)
        out = [(m.start(), m.end(), float(m[0]) if "." in m[0] else int(m[0]), False) for m in NUMBER.finditer(self.masked)]
        words = "|".join(sorted(map(re.escape, NUMBER_PHRASES), key=len, reverse=True))
        for m in self.find(rf"\b(?:{words})\b"):
            weak = m[0].lower() in WEAK_NUMBERS
            if not (weak and re.search(NOT_COUNTING, self.masked[:m.start()], re.I)):
                out.append((m.start(), m.end(), NUMBER_PHRASES[m[0].lower()], weak))
        return out

    def conversions(self):
        """(start, end, factor) for each unit followed later by one it converts to ("from seconds
        to milliseconds", "durations in secs ... as ms"; "in meters rather than centimeters" read
        backwards)."""
        units = [(m.start(), m.end(), UNIT_NAMES[m[0].lower()]) for m in self.find(UNIT_PATTERN)]
        out = []
        for (s1, e1, u1), (s2, e2, u2) in itertools.combinations(units, 2):
            if re.search(r"\b(?:rather\s+than|instead\s+of)\b", self.masked[e1:s2], re.I):
                u1, u2 = u2, u1  # "in meters rather than centimeters"
            if (u1, u2) in FACTORS:
                out.append((s1, e2, FACTORS[(u1, u2)]))
        return out

    def mentions(self, kind: str):
        """(start, end, value, base score, weak) for every way the text may give a `kind` argument."""
        quoted = [(m.start(), m.end(), _content(m), QUOTED_BASE, False) for m in self.quotes]
        if kind in ("count", "number"):
            return [(s, e, v, NUMBER_BASE, w) for s, e, v, w in self.numbers()
                    if kind == "number" or (isinstance(v, int) and v >= 0)]
        if kind == "string":
            return quoted
        if kind == "sep":
            names = "|".join(sorted((re.escape(w).replace(r"\ ", r"\s+") for w in SEPARATORS), key=len, reverse=True))
            words = [(m.start(), m.end(), SEPARATORS[" ".join(m[0].lower().split())], 6, False)
                     for m in self.find(rf"\b(?:{names})\b")]
            return [(s, e, _unescape(v), b, w) for s, e, v, b, w in quoted] + words
        if kind == "file":
            return quoted + [(m.start(), m.end(), m[0], 6, False) for m in self.find(r"(?<!\S)[~/\w.-]*\w\.[A-Za-z0-9]{1,5}\b")]
        forms = PATH_FORMS if kind == "path" else COLUMN_FORMS
        out = quoted + [(m.start(1), m.end(1), m[1], base, False) for pattern, base in forms for m in self.find(pattern)
                        if _named(m[1])]
        # last resort: any content word, and its singular ("the distinct cities" -> column city)
        for m in self.find(r"\b[a-z]{3,}\b"):
            if _named(m[0]) and m[0].lower() not in NOT_NAMES:
                out += [(m.start(), m.end(), w, 1, False) for w in dict.fromkeys([_singular(m[0]), m[0]])]
        if kind == "path":
            # read through quotes: a nesting of two quoted keys outranks either key quoted on its own
            for pattern in (NESTED, POSSESSIVE):
                for m in re.finditer(pattern, self.bare, re.I):
                    inner, outer = (m[1], m[3]) if pattern == NESTED else (m[2], m[1])
                    natural = 7 if pattern == NESTED and m[2].lower() in ("inside", "within", "under") else 5
                    if all(any(q.start() <= m.start(i) < q.end() for q in self.quotes) for i in (1, m.lastindex)):
                        natural = QUOTED_BASE + 1
                    if _named(inner) and _named(outer):
                        out += [(m.start(), m.end(), f"{outer}.{inner}", natural, False),
                                (m.start(), m.end(), f"{inner}.{outer}", 2, False)]
        return out


def _kind(op: str, arg: str) -> str:
    if arg == "path":
        return "file" if op == "FILE_WRITE.text" else "path"
    return ARG_KIND.get(arg, "string")


def _candidates(t: _Text, op: str, arg: str, derived: bool = False) -> list:
    """[(score, value, spans)] for one constant argument, best first (`derived`: a statistic of
    the values may stand for it)."""
    out = []
    if derived and (op, arg) in DERIVED_ARGS:
        for m in t.find(STATISTIC):
            if not m["said"] and m["stat"].lower() != "average":
                continue  # "above average" is a statistic; a bare "mean" may be the verb
            g = t.after_cue(op, m.start())  # "above the average": the statistic follows its cue
            if g is not None and g <= DERIVED_GAP:
                out.append((DERIVED_BASE + t.closeness(op, m.start(), m.end()), {"derived": STATISTICS[m["stat"].lower()]},
                            frozenset([(m.start(), m.end())])))
    if op == "MAP.multiply" and arg == "k":
        out += [(CONVERSION_BASE, f, frozenset([(s, e)])) for s, e, f in t.conversions()]
    for s, e, v, base, weak in t.mentions(_kind(op, arg)):
        g = t.nearness(op, s, e)
        if weak and (g is None or g > 2):
            continue
        out.append((base + t.closeness(op, s, e), v, frozenset([(s, e)])))
    out += [(-i, v, frozenset()) for i, v in enumerate(DEFAULTS.get((op, arg), ()))]
    best: dict = {}
    for c in sorted(out, key=lambda c: -c[0]):
        best.setdefault((repr(c[1]), c[2]), c)
    return list(best.values())[:6]


def _replace_pairs(t: _Text, op: str) -> list:
    """[(score, (old, new), spans)] from two quoted strings: "replace A with B", "A becomes B";
    "substitute B for A" / "B instead of A" read backwards. The other order stays, lower."""
    out = []
    for (i, a), (j, b) in itertools.combinations(enumerate(t.quotes), 2):
        near = t.closeness(op, *a.span()) + t.closeness(op, *b.span())
        score = 2 * QUOTED_BASE + near - 2 * (j - i - 1)
        pair = (_content(a), _content(b))
        if re.search(r"\b(?:substitut\w*|instead of|in place of)\b", t.masked[:b.start()], re.I):
            pair = pair[::-1]
        spans = frozenset([a.span(), b.span()])
        out += [(score, pair, spans), (score - 3, pair[::-1], spans)]
    return sorted(out, key=lambda c: -c[0])[:6]


def _ref_score(t: _Text, op: str, arg: str) -> int:
    """A parameter reads best where a hint ("a given value k") sits by the operation's cue, and
    better still where the hint names the argument ("a given new text", "a separator sep")."""
    g = [x for x in (t.nearness(op, m.start(), m.end()) for m in t.find(REF_HINTS, 0)) if x is not None]
    named = [x for x in (t.nearness(op, m.start(), m.end()) for m in t.find(rf"\b(?:{REF_NAMES.get(arg, arg)})\b", 0))
             if x is not None and x <= WINDOW]
    return REF_BASE + (max(0, 4 - min(g)) if g else 0) + (2 if named else 0)


def _ref_choices(refable: list, extra: int):
    """{(op index, arg): parameter name} binding exactly `extra` parameters, each one used:
    arguments of the same name may share a parameter ("above k ... add k") or be numbered."""
    for size in range(extra, len(refable) + 1):
        for chosen in itertools.combinations(refable, size):
            shared = {slot: REF_PARAM[slot[1]] for slot in chosen}
            numbered, seen = {}, {}
            for slot in chosen:
                seen[slot[1]] = seen.get(slot[1], 0) + 1
                numbered[slot] = REF_PARAM[slot[1]] + (str(seen[slot[1]]) if seen[slot[1]] > 1 else "")
            for names in ([shared] if shared == numbered else [shared, numbered]):
                if len(set(names.values())) == extra:
                    yield names


def fill_arguments(intent: str, ops: list[str], arity: int, limit: int = 4, derived: bool = False) -> list[list[dict]]:
    """Up to `limit` argument assignments for `ops`, most plausible first: each a list (one dict
    per op) of {arg: {"const": value} | {"ref": parameter}}; [] when the intent lacks a value
    or the arity asks for more parameters than the operations can use. With `derived`, a
    comparison's threshold may also be {"derived": op}, a statistic of the values it filters
    (`STATISTICS`), for a caller that writes it out (`Engine.typed_program`)."""
    t = _Text(intent or "")
    slots = [(i, a) for i, op in enumerate(ops) if op in OPS for a, _ in OPS[op].args]
    refable = [s for s in slots if s[1] in REF_PARAM]
    extra = max(arity, 1) - 1
    found = []
    for refs in _ref_choices(refable, extra):
        groups = []  # [(slots filled, [(score, values, spans)])] for the constant arguments
        for i, op in enumerate(ops):
            const = [(j, a) for j, a in slots if j == i and (j, a) not in refs]
            if op == "TRANSFORM.replace" and len(const) == 2:
                groups.append(([(i, "old"), (i, "new")], _replace_pairs(t, op)))
            else:
                groups += [([slot], [(sc, (v,), sp) for sc, v, sp in _candidates(t, op, slot[1], derived)])
                           for slot in const]
        if any(not cands for _, cands in groups):
            continue
        base = sum(_ref_score(t, ops[i], a) for i, a in refs)
        for combo in itertools.product(*(cands for _, cands in groups)):
            spans = sorted(s for _, _, sp in combo for s in sp)
            if any(s[0] < prev[1] for prev, s in zip(spans, spans[1:])):
                continue  # one mention can't fill two arguments
            value = {slot: {"ref": name} for slot, name in refs.items()}
            for (filled, _), (_, values, _) in zip(groups, combo):
                value.update((slot, v if isinstance(v, dict) else {"const": v}) for slot, v in zip(filled, values))
            args = [{} for _ in ops]
            for i, a in slots:
                args[i][a] = value[(i, a)]
            found.append((base + sum(c[0] for c in combo), args))
    out, seen = [], set()
    for _, args in sorted(found, key=lambda f: -f[0]):
        key = repr(args)
        if key not in seen:
            seen.add(key)
            out.append(args)
    return out[:limit]
