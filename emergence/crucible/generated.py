"""Problems generated from the engine's corpus: a program, described in held-out wordings, with
tests from running it on generated inputs.

Programs are the corpus's distinct pure pipelines (`corpus.programs`); each description is drawn
with `held_out=True`, i.e. from the phrase lists and sentence frames the engine is never trained
on; inputs come from `synthesis.inputs` (texts, pages, JSON, CSV, numbers with negatives and
repeats); expected outputs from running the program itself. A program whose outputs are all the
same on its tests (nothing to learn from them) or not JSON-representable is passed over.

Difficulty: the number of steps (capped at 3), one level more when the input is a page, a JSON
document or a CSV table (the structure must be read before anything else).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import random

from ..sandbox.compare import values_equal
from .problems import Problem, parse_problem

STRUCTURED = ("html", "json", "csv")


def _json_round_trips(value) -> bool:
    try:
        return values_equal(json.loads(json.dumps(value, allow_nan=False)), value)
    except (TypeError, ValueError):
        return False


def difficulty(steps: int, start: str) -> int:
    return min(steps, 3) + (1 if start in STRUCTURED else 0)


@functools.lru_cache(maxsize=4)
def _pure_programs(max_len: int) -> tuple:
    """The corpus's distinct pure pipelines (seconds to enumerate at 3 steps: computed once)."""
    from ..synthesis import corpus
    from ..synthesis.ops import OPS

    return tuple((tuple(seq), start) for seq, start in corpus.programs(max_len, seed=0)
                 if start in corpus.PURE_STARTS and not any(OPS[op].effects for op in seq))


def corpus_problems(n: int, seed: int = 0, max_len: int = 3, tests: int = 6) -> list[Problem]:
    """Up to `n` problems from distinct corpus programs, as many of each length as there are,
    reproducible from `seed`."""
    from ..synthesis import corpus, inputs
    from ..synthesis.program import check
    from ..synthesis.runtime import build_callable

    if n < 0 or tests < 2:
        raise ValueError(f"need n >= 0 and tests >= 2, got n={n}, tests={tests}")
    rng = random.Random(seed)
    progs = [(list(seq), start) for seq, start in _pure_programs(max_len)]
    # round-robin over pipeline lengths: the corpus holds far more 3-step programs than 1-step ones
    by_len: dict[int, list] = {}
    for prog in progs:
        by_len.setdefault(len(prog[0]), []).append(prog)
    for group in by_len.values():
        rng.shuffle(group)
    order = [g[i] for i in range(max(map(len, by_len.values()), default=0)) for _, g in sorted(by_len.items())
             if i < len(g)]
    out = []
    for seq, start in order:
        if len(out) >= n:
            break
        args = [corpus.canonical_args(op, seq[i + 1] if i + 1 < len(seq) else None, rng) for i, op in enumerate(seq)]
        description = corpus.describe(seq, start, args, rng, held_out=True)
        pid = "c_" + hashlib.sha1(f"{seed}:{start}:{'/'.join(seq)}".encode()).hexdigest()[:10]
        try:
            program = corpus.make_program(seq, start, args, name="tool", intent=description)
            check(program)
            fn = build_callable(program)[1]
        except Exception:  # noqa: BLE001 -- a program the corpus itself would skip
            continue
        _, ptype, hint = corpus.START[start]
        cases, outputs = [], []
        for _ in range(4 * tests):
            call = [inputs.value_of(ptype, rng, hint)] + [inputs.value_of(t, rng) for _, t in program.params[1:]]
            try:
                got = fn(*copy.deepcopy(call))
            except Exception:  # noqa: BLE001 -- an input this program does not take
                continue
            if _json_round_trips(call) and _json_round_trips(got):
                cases.append(call)
                outputs.append(got)
            if len(cases) == tests:
                break
        if len(cases) < tests or len({json.dumps(o, sort_keys=True) for o in outputs}) < 2:
            continue
        out.append(parse_problem({
            "id": pid, "title": " then ".join(seq), "description": description,
            "difficulty": difficulty(len(seq), start), "test_cases": cases, "expected_outputs": outputs,
            "family": start, "reference": {"program": program.to_dict()},
            "provenance": {"source": "corpus", "ops": list(seq), "start": start, "seed": seed,
                           "wording": "held-out phrases and frames"}}, f"corpus problem {pid}"))
    return out
