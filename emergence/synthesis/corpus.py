"""The training corpus: programs sampled from the DSL, described in varied words, with traces.

1. `programs()` walks the operations by kind (`language.KINDS`: a URL gets URL operations) from
   every kind of input, up to `max_len` steps, and keeps one program per *behaviour*: each
   candidate runs on the same generated inputs, and a program whose outputs match a shorter one's
   (sort-then-sum is sum) or never vary is dropped.
2. `build()` gives each kept program several descriptions (`describe`), each with its own
   arguments (constants or extra parameters), and an execution trace ("animation") on generated
   inputs. Splits are by program, so validation measures programs never seen in training.

No evaluation intents are read here.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass, field

from . import asides, inputs
from .language import CONVERSIONS, IDIOM_KINDS, IDIOMS, INPUT_PHRASES, KINDS, phrases_for, render_arg
from .ops import OPS
from .program import Program, Step, check
from .runtime import build_callable, trace

# start kind -> (parameter name, type, input-generator hint)
START = {"ints": ("numbers", "list[int]", ""), "nums": ("values", "list[num]", ""), "words": ("words", "list[str]", ""),
         "text": ("text", "str", "text"), "html": ("html", "str", "html"), "json": ("document", "str", "json"),
         "csv": ("table", "str", "csv"), "url": ("url", "str", "url"), "urls": ("urls", "list[str]", "urls"),
         "path": ("path", "str", "path")}
EFFECT_STARTS = {"url": "HTTP_GET.text", "path": "FILE_READ.text"}  # fetched/read, then an ordinary pipeline
# kinds a pure pipeline can start from: a URL is also taken apart without fetching it ("the host of a
# URL"); a path is only ever read
PURE_STARTS = tuple(k for k in START if any(k_in == k and not OPS[op].effects
                                            for op, pairs in KINDS.items() for k_in, _ in pairs))

# pointless neighbours (same op twice is always skipped)
_SKIP_PAIRS = {("SORT.asc", "SORT.desc"), ("SORT.desc", "SORT.asc"), ("TRANSFORM.lower", "TRANSFORM.upper"),
               ("TRANSFORM.upper", "TRANSFORM.lower"), ("MAP.upper", "MAP.lower"), ("MAP.lower", "MAP.upper")}

# a parameter that stands for an argument gets this name (n, s, ... are the templates' loop names)
# (not `column` or `path`: those name the generated code's own variables)
REF_PARAM = {"k": "k", "n": "limit", "sub": "substring", "old": "old", "new": "new", "sep": "separator",
             "prefix": "prefix", "other": "other", "name": "column_name", "path": "key_path"}
REF_TYPES = {"k": "num", "n": "int", "sub": "str", "old": "str", "new": "str", "sep": "str", "prefix": "str",
             "other": "num", "name": "str", "path": "str"}


CONVERSION_PROB = 0.35  # how often a described scaling is a unit conversion


def canonical_args(op: str, next_op: str | None, rng: random.Random | None = None) -> dict:
    """Arguments for an operation: fixed ones for behaviour fingerprints, random ones (rng) for
    descriptions. JSON paths and CSV columns follow the generated documents' shape."""
    r = rng
    out = {}
    for a, _ in OPS[op].args:
        if a == "n":
            v = r.randint(1, 6) if r else 2
        elif a == "k" and op == "MAP.multiply" and r and r.random() < CONVERSION_PROB:
            v = r.choice(CONVERSIONS)[2]  # a unit conversion, described as one (`language.phrases_for`)
        elif a == "k":
            v = r.choice([0, 1, 2, 3, 5, 10, 50, -1, 4, 7]) if r else 3
        elif a == "sep":
            v = r.choice([",", " ", "-", ";", "\n", "|", ", "]) if r else " "
        elif a in ("sub", "prefix"):
            v = r.choice(["e", "an", "ing", "st", "http", "re", "o"]) if r else "e"
        elif a == "old":
            v = r.choice(["a", "the", "cat", "old"]) if r else "a"
        elif a == "new":
            v = r.choice(["o", "a", "dog", "new"]) if r else "o"
        elif a == "path":
            if next_op == "TRANSFORM.as_number":
                v = r.choice(["id", "price", "score", "count", "meta.size"]) if r else "id"
            elif next_op == "TRANSFORM.as_list":
                v = r.choice(["owner.tags", "items", "scores", "data.values"]) if r else "owner.tags"
            else:
                v = r.choice(["name", "owner.name", "status", "title", "author.email"]) if r else "owner.name"
        elif a == "name":
            if next_op == "MAP.to_number":
                v = r.choice(["age", "score", "price", "amount", "height"]) if r else "age"
            else:
                v = r.choice(["city", "name", "country", "email", "status"]) if r else "city"
        elif a == "pattern":
            v = r"\d+"
        else:
            v = 1
        out[a] = {"const": v}
    return out


DOCUMENTS = ("html", "json", "csv")  # parsing is a step of its own: one more step allowed


def _steps(seq, kind: str):
    """(op, kind after it) for every pure op that may follow `seq`, which yields `kind`: never the
    same op twice in a row, nor a pair that undoes itself (`_SKIP_PAIRS`)."""
    for op, pairs in KINDS.items():
        if OPS[op].effects or (seq and (seq[-1] == op or (seq[-1], op) in _SKIP_PAIRS)):
            continue
        yield from ((op, k_out) for k_in, k_out in pairs if k_in == kind)


def walks(max_len: int):
    """Every kind-respecting op sequence from every start kind, shortest first."""
    frontier = [((), k, k) for k in PURE_STARTS]
    for level in range(max_len + 1):
        nxt = []
        for seq, kind, start in frontier:
            if level == max_len and start not in DOCUMENTS:
                continue
            nxt += [(seq + (op,), k_out, start) for op, k_out in _steps(seq, kind)]
        yield from ((seq, start) for seq, _, start in nxt)
        frontier = nxt


def start_kind(seq) -> str:
    first = seq[0]
    kinds = {k_in for k_in, _ in KINDS[first]}
    for k in START:
        if k in kinds:
            return k
    raise ValueError(f"{first} does not start from an input")


def make_program(seq, start: str, args: list[dict] | None = None, name: str = "tool", intent: str = "") -> Program:
    pname, ptype, _ = START[start]
    if args is None:
        args = [canonical_args(op, seq[i + 1] if i + 1 < len(seq) else None) for i, op in enumerate(seq)]
    params = [(pname, ptype)]
    for a in args:
        for arg_name, src in a.items():
            if "ref" in src and all(src["ref"] != p for p, _ in params):
                params.append((src["ref"], REF_TYPES[arg_name]))
    return Program(name, params, [Step(op, dict(a)) for op, a in zip(seq, args)], intent)


def _fingerprint(prog: Program, probe: list) -> tuple | None:
    try:
        _, fn = build_callable(prog)
    except Exception:
        return None
    outs = []
    for value in probe:
        try:
            outs.append(repr(fn(value)))
        except Exception as exc:  # an input a program can't take is part of its behaviour
            outs.append(type(exc).__name__)
    if len(set(outs)) == 1:  # constant or always failing: says nothing about its input
        return None
    return tuple(outs)


def probe_inputs(n_probe: int = 10, seed: int = 0) -> dict:
    """{start kind: generated inputs}: what `programs()` runs candidates on to tell behaviours apart."""
    rng = random.Random(seed)
    return {k: [inputs.value_of(START[k][1], rng, START[k][2]) for _ in range(n_probe)] for k in PURE_STARTS}


def kind_after(seq, start: str) -> str:
    """The kind of value a kind-respecting op sequence yields from `start`."""
    kind = start
    for op in seq:
        kind = next(k_out for k_in, k_out in KINDS[op] if k_in == kind)
    return kind


def programs(max_len: int = 3, n_probe: int = 10, seed: int = 0, longer: int = 0) -> list[tuple]:
    """[(op sequence, start kind)], one per distinct behaviour, shortest first; plus, per start
    kind, up to `longer` sampled programs one step past the walk (a kept longest one extended by
    one operation: the full walk a step deeper is ~30x larger), and the effectful variants
    (fetch a URL / read a file, then a kept pipeline over html / text)."""
    probes = probe_inputs(n_probe, seed)
    seen, kept = set(), []

    def keep(seq, start) -> bool:
        fp = _fingerprint(make_program(seq, start), probes[start])
        if fp is None or (start, fp) in seen:
            return False
        seen.add((start, fp))
        kept.append((seq, start))
        return True

    for seq, start in walks(max_len):
        keep(seq, start)
    rng = random.Random(seed)
    for start in PURE_STARTS if longer else ():
        deepest = max_len + (start in DOCUMENTS)
        ends = [seq for seq, st in kept if st == start and len(seq) == deepest]
        grown = [seq + (op,) for seq in ends for op, _ in _steps(seq, kind_after(seq, start))]
        rng.shuffle(grown)
        added = 0
        for seq in grown:
            if added >= longer:
                break
            added += keep(seq, start)
    effectful = []
    for seq, start in kept:
        if len(seq) < max_len:
            for eff_start, op in EFFECT_STARTS.items():
                if start == KINDS[op][0][1]:
                    effectful.append(((op,) + seq, eff_start))
    return kept + effectful


# -- descriptions -----------------------------------------------------------------------------

LEADS = ["Return", "Compute", "Give me", "Find", "Get", "Produce", "Output", "Calculate", "Write a function that returns",
         "I need", "Determine", "Work out", "Create a tool returning", "Build a helper that gives", "Report"]
GIVENS = ["Given {p}, ", "Take {p}, ", "Starting from {p}, ", "For {p}: ", "With {p} as input, ", "From {p}, "]
# how a request may open before an imperative ("can you sort the list descending?")
REQUESTS = ["I need to", "Can you", "Please", "Help me", "I want to", "Write code to", "Could you", "Go ahead and",
            "Quickly"]
REQUEST_PROB = 0.3
# people often ask rather than order: "what's the median of the list?", "how many words are there?"
QUESTIONS = {"one": ["What's {x}?", "Tell me {x}.", "Can you tell me {x}?", "I want to know {x}.", "Do you know {x}?"],
             "many": ["What are {x}?", "Tell me {x}.", "Can you list {x}?", "Show me {x}.", "Which are {x}?"]}
COUNT_QUESTIONS = ["How many {x} are there?", "How many {x} are there in total?", "How many {x}?",
                   "So how many {x} are there?"]
COUNT_ALL_QUESTIONS = ["How many items are in {p}?", "How many entries does {p} have?", "How many are in {p}?",
                       "How big is {p}?"]
QUESTION_PROB = 0.35  # of the nested-noun-phrase style
LIST_KINDS = {"ints", "nums", "words", "urls", "chars", "pieces", "column", "rows"}
# how a description may point at its input once it has been named, or without naming it at all
SHORT_INPUTS = {"ints": ["the list", "the numbers", "a list", "the ints"], "nums": ["the values", "the list", "the numbers"],
                "words": ["the strings", "the list", "the words"], "text": ["the text", "the string", "a string"],
                "html": ["the page", "the HTML", "the markup"], "json": ["the JSON", "the document"],
                "csv": ["the CSV", "the table"], "url": ["the URL", "the link"], "urls": ["the URLs", "the links"],
                "path": ["the file", "the path"]}


def held_out_phrases(options: list, held_out: bool) -> list:
    """Wordings are split like programs: of any list of four or more, the last is kept out of
    training and used only to describe held-out programs for calibration, so the ranking is
    fitted on phrasings the networks never read (as real requests will be)."""
    if len(options) < 4:
        return options
    return options[-1:] if held_out else options[:-1]


def _fill(template: str, x: str, op: str, args: dict, rng) -> str:
    words = {a: render_arg(a, args[a], rng) for a, _ in OPS[op.split("+")[-1]].args}  # an idiom: its last step's
    return template.format(x=x, **words)


# parsing and conversions: steps people leave unsaid when the next one can't work without them
# ("the mean of the age column of a CSV" parses the CSV and reads the ages as numbers)
PLUMBING = ("PARSE_CSV.rows", "PARSE_HTML.page", "PARSE_JSON.document", "MAP.to_number", "TRANSFORM.as_number",
            "TRANSFORM.as_text", "TRANSFORM.as_list")
UNSAID_PROB = 0.5  # how often a description leaves each such step unsaid
# lower-casing before other steps is often said as a manner, not a step ("count the distinct
# words, case-insensitively")
CASE_STEPS = ("TRANSFORM.lower", "MAP.lower")
CASE_PHRASES = ["case-insensitively", "regardless of capitalization", "without regard to case",
                "treating capitals and small letters alike", "not case-sensitive"]
CASE_PROB = 0.4
IDIOM_PROB = 0.5  # how often a pair in `language.IDIOMS` is said as one ("the 3 largest")


def kinds_in(seq, start: str) -> list:
    """The kind of value that reaches each step (None past a step the kinds don't cover)."""
    out, kind = [], start
    for op in seq:
        out.append(kind)
        kind = next((k_out for k_in, k_out in KINDS.get(op, []) if k_in == kind), None)
    return out


def implied_steps(seq) -> list[int]:
    """Positions of plumbing steps the next operation makes necessary: it takes none of the
    kinds the plumbing step takes, so the step can't be dropped and needn't be said."""
    out = []
    for i, op in enumerate(seq[:-1]):
        if op in PLUMBING and not {k for k, _ in KINDS[op]} & {k for k, _ in KINDS[seq[i + 1]]}:
            out.append(i)
    return out


def describe(seq, start: str, args: list[dict], rng: random.Random, held_out: bool = False,
             known: dict | None = None) -> str:
    """One description of a pipeline, in one of five styles (`held_out`: with the wordings and
    sentence frames that training never sees; see `held_out_phrases`). Each implied plumbing
    step (`implied_steps`) is left unsaid half the time, and a lower-casing step before others is
    sometimes said as a manner instead ("..., case-insensitively"), and a pair people name at once
    (`language.IDIOMS`: "the 3 largest") is said as one half the time. Given `known` (the program's
    `asides.facts`), some descriptions qualify their input and end with a true remark that asks
    for no step (`asides.py`)."""
    pick = lambda options: rng.choice(held_out_phrases(options, held_out))  # noqa: E731
    p = pick(INPUT_PHRASES[start])
    if rng.random() < 0.15:  # the input named briefly, as people often do
        p = rng.choice(SHORT_INPUTS[start])
    elif known is not None and rng.random() < asides.QUALIFIER_PROB:
        p = asides.qualify(p, start, pick)
    unsaid = {i for i in implied_steps(seq) if rng.random() < UNSAID_PROB}
    manner = None
    lowered = [i for i, op in enumerate(seq[:-1]) if op in CASE_STEPS]
    if lowered and rng.random() < CASE_PROB:
        unsaid.add(lowered[0])
        manner = pick(CASE_PHRASES)
    # the rest reads as if the unsaid steps were not there (the last step is always said)
    reaching = [k for i, k in enumerate(kinds_in(seq, start)) if i not in unsaid]
    seq = [op for i, op in enumerate(seq) if i not in unsaid]
    args = [a for i, a in enumerate(args) if i not in unsaid]
    for i in range(len(seq) - 2, -1, -1):  # a pair said as one idiom, with its second step's arguments
        if (seq[i], seq[i + 1]) in IDIOMS and reaching[i] in IDIOM_KINDS and rng.random() < IDIOM_PROB:
            seq[i:i + 2], args[i:i + 2] = [f"{seq[i]}+{seq[i + 1]}"], [args[i + 1]]

    def nested(upto: int) -> str:
        x = p
        for i in range(upto):
            x = _fill(pick(phrases_for(seq[i], args[i], rng)["np"]), x, seq[i], args[i], rng)
        return x

    def clauses(ops, op_args) -> list[str]:
        return [_fill(pick(phrases_for(op, a, rng)["then"]), "", op, a, rng) for op, a in zip(ops, op_args)]

    def request(imperative: str) -> str:  # sometimes opened as people ask ("can you ...?")
        if rng.random() >= REQUEST_PROB:
            return imperative
        frame = pick(REQUESTS)
        return f"{frame} {imperative}" + ("?" if frame in ("Can you", "Could you") else "")

    style = rng.random()
    last = len(seq) - 1
    if held_out and style < 0.1 and asks(seq):  # a question in the held-out question frames
        text = question(seq, nested, p, pick)
    elif held_out and style < 0.35:  # frames of held-out descriptions only
        text = rng.choice([f"What is {nested(len(seq))}?", f"A function that takes {p} and returns {nested(len(seq))}",
                           f"Input: {p}. Output: {nested(len(seq))}."])
    elif held_out and style < 0.5 and len(seq) > 1:
        first = _fill(pick(phrases_for(seq[0], args[0], rng)["vp"]), p, seq[0], args[0], rng)
        rest = clauses(seq[1:], args[1:])
        text = first + "".join(f". {w} " + r for w, r in zip(["After that,", "Next,", "Finally,"][-len(rest):], rest))
    elif style < 0.3 and asks(seq) and rng.random() < QUESTION_PROB:
        text = question(seq, nested, p, pick)
    elif style < 0.3:
        text = f"{pick(LEADS)} {nested(len(seq))}"
    elif style < 0.55:
        text = request(_fill(pick(phrases_for(seq[last], args[last], rng)["vp"]), nested(last), seq[last], args[last], rng))
    elif style < 0.8 or len(seq) == 1:
        parts = clauses(seq, args)
        joined = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + rng.choice([" and ", ", then ", " and then "]) + parts[-1]
        # bare clauses: input implied
        text = pick(GIVENS).format(p=p) + joined if rng.random() < 0.8 else request(joined)
    else:
        first = _fill(pick(phrases_for(seq[0], args[0], rng)["vp"]), p, seq[0], args[0], rng)
        rest = clauses(seq[1:], args[1:])
        text = request(first + "".join(rng.choice([", then ", " and ", "; "]) + r for r in rest))
    text = " ".join(text.split())
    text = text[:1].upper() + text[1:] if rng.random() < 0.85 else text[:1].lower() + text[1:]
    if manner:  # before the closing mark: "..., regardless of capitalization."
        end = text[-1] if text.endswith((".", "?")) else ""
        text = text[:len(text) - len(end)] + rng.choice([f", {manner}", f" ({manner})", f" {manner}"]) + end
    if rng.random() < 0.7 and not text.endswith((".", "?")):
        text += "."
    if known is not None and rng.random() < asides.ASIDE_PROB:
        text = asides.attach(text, asides.remark(known, pick, rng), rng)
    return text


def asks(seq) -> bool:
    """Whether `question` words this (said) pipeline: not a count of a few kept items ("how many
    of the first 3 ...?" is no one's question)."""
    return not (seq[-1] == "REDUCE.count" and len(seq) > 1 and (seq[-2].startswith("LIMIT.") or "+" in seq[-2]))


def question(seq, nested, p: str, pick) -> str:
    """The request asked as a question: "how many ... are there?" for a count, else "what's ...?"
    (or "what are ...?" for a list)."""
    if seq[-1] == "REDUCE.count":
        if len(seq) == 1:
            return pick(COUNT_ALL_QUESTIONS).format(p=p)
        x = nested(len(seq) - 1)
        for article in ("the ", "a ", "an "):
            if x.startswith(article):
                x = x[len(article):]
                break
        return pick(COUNT_QUESTIONS).format(x=x)
    many = all(out in LIST_KINDS for _, out in KINDS.get(seq[-1].split("+")[-1], []))
    return pick(QUESTIONS["many" if many else "one"]).format(x=nested(len(seq)))


@dataclass
class Record:
    id: str
    ops: list
    start: str
    program: dict
    description: str
    arity: int
    split: str
    traces: list = field(default_factory=list)


def _split_of(seq, start, val_fraction: float) -> str:
    h = int(hashlib.sha1(f"{start}:{'/'.join(seq)}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_fraction else "train"


def _trace_rows(prog: Program, start: str, rng) -> list:
    if any(OPS[s.op].effects for s in prog.steps):
        return []
    rows = []
    _, ptype, hint = START[start]
    for _ in range(2):
        args = [inputs.value_of(ptype, rng, hint)] + [inputs.value_of(t, rng) for _, t in prog.params[1:]]
        try:
            steps = trace(prog, args)
        except Exception as exc:
            steps = [("error", type(exc).__name__)]
        rows.append({"input": _short(args), "steps": [[op, _short(v)] for op, v in steps]})
    return rows


def _short(value, limit: int = 200) -> str:
    text = json.dumps(value, default=repr) if not isinstance(value, str) else value
    return text if len(text) <= limit else text[:limit] + "..."


def _stratified(progs, total: int, rng) -> list:
    """All programs of 1-2 steps; longer ones shared out across (start kind, length) groups,
    a 3-step group weighing twice a longer one (integer pipelines would otherwise crowd out HTML,
    JSON and CSV ones, and the many 4-5 step programs the 3-step ones that requests more often are)."""
    short = [p for p in progs if len(p[0]) <= 2]
    groups: dict = {}
    for p in progs:
        if len(p[0]) > 2:
            groups.setdefault((p[1], len(p[0])), []).append(p)
    room = max(0, total - len(short))
    weight = {key: 2 if key[1] == 3 else 1 for key in groups}
    left = sum(weight.values())
    chosen = []
    # smallest groups (for their weight) first: what they can't fill passes to the rest
    for key in sorted(groups, key=lambda k: (len(groups[k]) / weight[k], k)):
        group = groups[key]
        share = room * weight[key] // left
        rng.shuffle(group)
        chosen += group[:share]
        room -= len(group[:share])
        left -= weight[key]
    return short + chosen


LENGTH_WEIGHT = {1: 4, 2: 2}


def build(max_len: int = 3, per_program: int = 6, max_programs: int | None = None, ref_prob: float = 0.3,
          val_fraction: float = 0.1, seed: int = 0, with_traces: bool = True, calibration: int = 0,
          longer: int = 0) -> list[Record]:
    """The corpus: `per_program` described variants of every kept program (x4 for one step, x2 for
    two; all programs of 1-2 steps, longer ones -- `longer` per start kind one step past `max_len`
    among them, see `programs` -- sampled down to `max_programs` in all), split
    "train" / "val" by program; plus `calibration` descriptions of each validation program in
    held-out wordings (split "calib"), for fitting the ranking only -- never trained on."""
    rng = random.Random(seed)
    progs = programs(max_len, seed=seed, longer=longer)
    if max_programs is not None and len(progs) > max_programs:
        progs = _stratified(progs, max_programs, rng)
    records = []
    for seq, start in progs:
        split = _split_of(seq, start, val_fraction)
        known = asides.facts(make_program(seq, start), START[start][2], seed=seed)
        # what an empty input gives, or whether it is allowed, can hang on the arguments
        known_with_args = {k: v for k, v in known.items() if k in ("order", "per_item")}
        # short programs are few but are what most requests ask for: more wordings of each
        n = per_program * LENGTH_WEIGHT.get(len(seq), 1)
        for j in range(n + (calibration if split == "val" else 0)):
            held_out = j >= n
            args = []
            for i, op in enumerate(seq):
                a = canonical_args(op, seq[i + 1] if i + 1 < len(seq) else None, rng)
                for name in a:
                    if name in REF_PARAM and rng.random() < ref_prob:
                        a[name] = {"ref": REF_PARAM[name]}
                args.append(a)
            has_args = any(a for a in args)
            desc = describe(seq, start, args, rng, held_out=held_out,
                            known=known_with_args if has_args else known)
            try:
                prog = make_program(seq, start, args, name="tool", intent=desc)
                check(prog)
            except Exception:
                continue  # e.g. the same parameter twice with two types
            rid = hashlib.sha1(f"{start}:{'/'.join(seq)}:{j}".encode()).hexdigest()[:12]
            records.append(Record(rid, list(seq), start, prog.to_dict(), desc, len(prog.params),
                                  "calib" if held_out else split,
                                  _trace_rows(prog, start, rng) if with_traces and j == 0 else []))
    # a held-out description may still read word for word like a training one (bare clauses name no
    # input, and short phrase lists are not split): calibration keeps only wordings never trained on
    trained = {r.description for r in records if r.split == "train"}
    return [r for r in records if r.split != "calib" or r.description not in trained]


def save(records: list[Record], path) -> None:
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(asdict(r)) + "\n")


def load(path) -> list[Record]:
    with open(path) as f:
        return [Record(**json.loads(line)) for line in f if line.strip()]
