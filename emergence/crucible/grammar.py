"""The DSL's type grammar as action masks: which operation may fill the next slot of a program.

The crucible's policy writes a program slot by slot (`models.MAX_OPS` slots, each an operation or
`<end>`). A slot may hold an operation only if it types after the operations before it from some
parameter type (`decode.PARAM_TYPES`) and does not repeat the one before it; `<end>` only after at
least one operation, and only once the program has the arguments a tool of its arity binds to its
extra parameters (`decode.parameter_slots`); after `<end>` every slot is `<end>`; and an operation
only if a well-formed program can still be finished from it in the slots left. So every
program sampled under these masks is one `decode.well_formed` accepts -- the same programs the
engine's own rounding (`beam_decode`) can return. Only where no program of the arity fits in
the slots at all does a state allow nothing; it then allows `<end>`, and the program is judged as
not building.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..synthesis.decode import PARAM_TYPES, _bindable, _typed_after, step_type
from ..synthesis.models import VOCAB, untokens
from ..synthesis.types import parse

_STARTS = tuple(parse(t) for t in PARAM_TYPES)
V = len(VOCAB)
_VOCAB = tuple(VOCAB)


# a state: (flows, last token, argument slots so far, ended); flows: the types the value has
# after the operations so far, one per parameter type they still type from (() before any)
START = ((), 0, 0, False)


@lru_cache(maxsize=None)
def _typed(state: tuple) -> np.ndarray:
    """Which operations type after any of the state's flows (`decode._typed_after`, from some
    parameter type before any) and don't repeat its last one."""
    flows, last = state[0], state[1]
    ok = np.logical_or.reduce([_typed_after(_VOCAB, f) for f in (flows or (None,))])
    ok[last] = False  # last is 0 (<end>, never typed anyway) before any operation
    return ok


@lru_cache(maxsize=None)
def _completable(state: tuple, left: int, need: int) -> bool:
    """Can a program in `state` with `left` slots to go still end well-formed with `need`
    argument slots?"""
    if state[0] and state[2] >= need:
        return True
    return left > 0 and any(_completable(_advance(state, v), left - 1, need) for v in np.flatnonzero(_typed(state)))


@lru_cache(maxsize=None)
def _allowed(state: tuple, left: int, need: int) -> np.ndarray:
    """`left`: the slots after this one."""
    flows, _, slots, ended = state
    ok = np.zeros(V, dtype=bool)
    if ended:
        ok[0] = True
        return ok
    for v in np.flatnonzero(_typed(state)):
        ok[v] = _completable(_advance(state, int(v)), left, need)
    ok[0] = bool(flows) and slots >= need
    if not ok.any():  # a dead end (only where no program of this arity fits): end, judged as not building
        ok[0] = True
    ok.setflags(write=False)
    return ok


@lru_cache(maxsize=None)
def _advance(state: tuple, token: int) -> tuple:
    flows, last, slots, ended = state
    if ended or token == 0:
        return (flows, last, slots, True)
    op = VOCAB[token]
    after = tuple(sorted({t for f in (flows or _STARTS) if (t := step_type(f, op)) is not None}, key=repr))
    return (after, token, slots + _bindable(op), False)


def allowed(state: tuple, arity: int, left: int) -> np.ndarray:
    """(V,) bool: the tokens a slot may take in `state`, with `left` slots after it, for a tool
    of `arity` parameters: only those from which a well-formed program can still be finished."""
    return _allowed(state, left, max(0, arity - 1))


def advance(state: tuple, token: int) -> tuple:
    return _advance(state, int(token))


def masks(actions: np.ndarray, arity: np.ndarray) -> np.ndarray:
    """(B, K) chosen tokens and (B,) arities -> (B, K, V) bool: what each slot was allowed given
    the tokens before it (teacher forcing: the masks a sampler saw when it chose `actions`)."""
    actions = np.asarray(actions)
    B, K = actions.shape
    out = np.empty((B, K, V), dtype=bool)
    for b in range(B):
        state, a = START, int(arity[b])
        for k in range(K):
            out[b, k] = allowed(state, a, K - 1 - k)
            state = advance(state, actions[b, k])
    return out


def sample(logits: np.ndarray, arity: np.ndarray, rng: np.random.Generator,
           greedy: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(B, K, V) slot logits -> (actions (B, K), masks (B, K, V)): each slot drawn (or, `greedy`,
    taken at its most likely) among the tokens its state allows, slot after slot."""
    B, K, _ = logits.shape
    actions = np.zeros((B, K), dtype=np.int64)
    out = np.empty((B, K, V), dtype=bool)
    # argmax of logits + Gumbel noise over the allowed tokens is a draw from their softmax
    z = logits if greedy else logits + rng.gumbel(size=logits.shape)
    for b in range(B):
        state, a = START, int(arity[b])
        for k in range(K):
            ok = allowed(state, a, K - 1 - k)
            out[b, k] = ok
            t = int(np.argmax(np.where(ok, z[b, k], -np.inf)))
            actions[b, k] = t
            state = advance(state, t)
    return actions, out


# the operations a row of tokens spells (up to the first <end>)
program_ops = untokens
