"""Type-constrained rounding: a denoised latent -> the nearest *well-typed* programs.

The denoiser's last step gives each slot a distribution over the operations. Taking each slot's
most likely operation on its own can yield a program that doesn't type (a list operation after
a number), so a beam search walks the slots keeping only prefixes that type from some parameter
type, and returns the best complete programs by summed log-probability. A tool of arity a also
needs a - 1 arguments that a parameter can bind (`parameter_slots`): that is a constraint of the
rounding too, since the argument reader can't invent a parameter for a program without one.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .corpus import REF_PARAM
from .ops import OPS
from .types import match, parse, substitute

# what a tool's first parameter may be (what callers pass: lists, text, numbers)
PARAM_TYPES = ("list[int]", "list[num]", "list[str]", "str")
_PARSED = {t: parse(t) for t in PARAM_TYPES}


@lru_cache(maxsize=None)
def step_type(flow, op: str):
    """The type after `op` when `flow` comes in, or None (types are hashable: memoized)."""
    spec = OPS[op]
    env: dict = {}
    if not match(spec.inp, flow, env):
        return None
    return substitute(spec.out, env)


def sequence_type(ops: list[str]) -> str | None:
    """The first parameter type from which `ops` types (args aside), or None."""
    if not ops:
        return None
    for name, t in _PARSED.items():
        flow = t
        for op in ops:
            flow = step_type(flow, op)
            if flow is None:
                break
        else:
            return name
    return None


def no_repeats(ops: list[str]) -> bool:
    """Never the same operation twice in a row (no tool needs that; the corpus has none)."""
    return all(a != b for a, b in zip(ops, ops[1:]))


def well_formed(ops: list[str]) -> bool:
    """Types, and never repeats an operation in a row."""
    return bool(sequence_type(ops)) and no_repeats(ops)


@lru_cache(maxsize=None)
def _bindable(op: str) -> int:
    return sum(a in REF_PARAM for a, _ in OPS[op].args) if op in OPS else 0


def parameter_slots(ops) -> int:
    """How many of the arguments of `ops` a tool parameter could bind ("above k", "split on sep")."""
    return sum(_bindable(op) for op in ops)


@lru_cache(maxsize=None)
def _typed_after(vocab: tuple, flow) -> np.ndarray:
    """Which of `vocab` type after `flow` (`flow` None: as a program's first operation, from some
    parameter type); index 0, the end token, is never in it."""
    ok = np.zeros(len(vocab), dtype=bool)
    for v, op in enumerate(vocab[1:], start=1):
        if flow is None:
            ok[v] = any(step_type(t, op) is not None for t in _PARSED.values())
        else:
            ok[v] = step_type(flow, op) is not None
    return ok


@lru_cache(maxsize=None)
def _token_index(vocab: tuple) -> dict:
    return {op: i for i, op in enumerate(vocab)}


def beam_decode(logp: np.ndarray, vocab: list[str], beam: int = 8, keep: int = 4, min_slots: int = 0) -> list[tuple]:
    """logp (L, V) per-slot log-probabilities (token 0 = <end>) -> up to `keep` programs
    [(ops, score, param type)], best first; every one types and has at least `min_slots`
    parameter slots (a tool of arity a: a - 1), else none is returned."""
    L, V = logp.shape
    vocab_key = tuple(vocab)
    index = _token_index(vocab_key)  # built once per vocabulary, not per call: this runs once per draw
    # state: (score, ops, flow type, param type, ended)
    states = [(0.0, (), None, None, False)]
    order = np.argsort(-logp, axis=1)
    for i in range(L):
        nxt = {}
        for score, ops, flow, ptype, ended in states:
            if ended:
                key = (ops, ptype)
                cand = (score + logp[i, 0], ops, flow, ptype, True)
                if key not in nxt or nxt[key][0] < cand[0]:
                    nxt[key] = cand
                continue
            # the `beam` likeliest tokens that extend this state (in the slot's order): ending needs a
            # program with the slots its parameters bind to; an operation must type after the flow and
            # never repeat the one before it. Masked in one go: most operations don't type here.
            ok = _typed_after(vocab_key, flow if ops else None).copy()
            if ops:
                ok[index[ops[-1]]] = False
                ok[0] = parameter_slots(ops) >= min_slots
            for v in order[i][ok[order[i]]][:beam].tolist():
                s = score + logp[i, v]
                if v == 0:
                    cands = [(s, ops, flow, ptype, True)]
                elif not ops:  # the first operation fixes what the parameter may be
                    cands = [(s, (vocab[v],), out, pt, False) for pt, t in _PARSED.items()
                             if (out := step_type(t, vocab[v])) is not None]
                else:
                    cands = [(s, ops + (vocab[v],), step_type(flow, vocab[v]), ptype, False)]
                for cand in cands:
                    key = (cand[1], cand[3])
                    if key not in nxt or nxt[key][0] < cand[0]:
                        nxt[key] = cand
        states = sorted(nxt.values(), key=lambda c: -c[0])[:beam]
    best: dict = {}
    for score, ops, _, ptype, _ in states:  # one entry per program: its best parameter type
        if ops and parameter_slots(ops) >= min_slots and (ops not in best or best[ops][1] < score):
            best[ops] = (list(ops), float(score), ptype)
    return sorted(best.values(), key=lambda c: -c[1])[:keep]
