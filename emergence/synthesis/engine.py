"""The Emergence Engine: intent -> ranked, type-checked candidate tools.

    engine = Engine.load("runs/emergence/model")
    result = engine.synthesize("keep the words longer than four letters", arity=1)
    result.ok, result.best.code, result.best.coherence

One synthesis: encode the intent (its pooled vector and, when the denoiser reads them, its word
vectors: `Engine.encode`); draw `n_samples` action-sequence latents with the diffusion sampler
(DDIM, conditioned on the intent and the arity); round each to its nearest well-typed
programs; fill the operations' arguments from the intent's words; compile; rank by the
coherence scorer. When the answer's confidence is below the threshold and the request has asides
("Sum the totals. Empty list -> 0."), half as many draws again come from its main clause
(`views.py`), and the pooled candidates are judged against both texts. With examples,
candidates are tried in order and the first that reproduces them all wins. When even the best candidate is not coherent enough, the answer is "cannot
synthesize", with the closest capabilities named -- never a random program called a success.
Every synthesis also carries `op_prior`, the sampler's belief that each operation is in the
program, which guides the search from examples when no candidate passes (`enumerative.py`).
"""

from __future__ import annotations

import hashlib
import keyword
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.nn import functional as F

from .arguments import STATISTICS, fill_arguments
from .compiler import compile_program
from .confidence import features, probability
from .decode import PARAM_TYPES, beam_decode, parameter_slots, well_formed
from .effects import asked_effects, without_unasked
from .fit import Bundle
from .given import agrees, answers, asks_count, given_shape
from .models import MAX_OPS, VOCAB, condition, pad_words, tokens, untokens
from .opposites import ruled_out
from .ops import OPS, RETRIEVE, STORE
from .program import OPS_RESERVED, Program, Step, check
from .shares import SHARE, asks_share, read_tail, share_form, share_tail, whole_at
from .types import TypeCheckError, show
from .views import main_clause

MAX_INTENT_CHARS = 2000
STATISTIC_OPS = frozenset(STATISTICS.values())  # what a derived threshold is computed with
PARAM_NAMES = {"list[int]": "numbers", "list[num]": "numbers", "list[str]": "items", "str": "text"}


class SynthesisInputError(ValueError):
    """A request the engine cannot take (empty or huge intent, bad arity, bad examples)."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class Encoding:
    """An intent as the networks read it: its pooled vector (memory keys, ranking, the scorer)
    and, for a denoiser that attends to words, its word vectors (L, dim). `clause`: its main
    clause's encoding (`views.main_clause`), when it has one and was encoded with it in one pass
    (`Engine.encode_request`)."""
    vector: np.ndarray
    words: np.ndarray | None = None
    clause: tuple | None = None  # (main clause text, its Encoding)


@dataclass
class Candidate:
    ops: list
    program: Program
    code: str
    function_name: str
    signature: str
    docstring: str
    coherence: float  # the scorer's probability that this program is a tool for the intent
    votes: int  # how many of the sampler's draws rounded to these operations
    alignment: float = 0.0  # cosine of intent and program in the action encoder's space
    rank_score: float = 0.0  # what the ranking sorts by (see Engine.rank_weights)
    # the answer's (first candidate's) probability of being right, from the fitted confidence
    # model (`confidence.py`); None for the others and for engines trained before it existed
    confidence: float | None = None
    returns: str = ""  # the type the tool returns ("int", "list[str]", ...)

    @property
    def stated_confidence(self) -> float:
        """What an answer says of itself: the fitted probability when there is one, else coherence."""
        return self.coherence if self.confidence is None else self.confidence


@dataclass
class Synthesis:
    intent: str
    candidates: list  # ranked, best first
    samples: list  # the sampler's raw draws, as op lists (None: nothing typed); for pass@k
    threshold: float
    latency_s: float
    timings: dict = field(default_factory=dict)
    # {operation: the probability that it is in the program}, from the sampler's slot
    # distributions averaged over the draws: what guides the search when no candidate will do
    op_prior: dict = field(default_factory=dict)

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    @property
    def confidence(self) -> float | None:
        """How sure the engine is of its answer: the fitted probability that it is right, or
        the scorer's coherence for an engine without a confidence model."""
        return None if self.best is None else self.best.stated_confidence

    @property
    def ok(self) -> bool:
        return self.best is not None and self.confidence >= self.threshold


def validate_request(intent, arity) -> tuple[str, int]:
    if not isinstance(intent, str) or not intent.strip():
        raise SynthesisInputError("intent", "must be a non-empty string describing the tool")
    if len(intent) > MAX_INTENT_CHARS:
        raise SynthesisInputError("intent", f"is {len(intent)} characters; at most {MAX_INTENT_CHARS}")
    if isinstance(arity, bool) or not isinstance(arity, int) or not 1 <= arity <= 4:
        raise SynthesisInputError("arity", f"must be an integer from 1 to 4, got {arity!r}")
    return " ".join(intent.split()), arity


def tool_name(intent: str) -> str:
    words = [w for w in "".join(c.lower() if c.isalnum() else " " for c in intent).split()
             if w.isascii() and w.isalpha()][:5]
    name = "_".join(words) or "tool"
    if not name[0].isalpha() or keyword.iskeyword(name) or name in OPS_RESERVED:
        name = "tool_" + name  # `sum`, `class`, `x` would shadow what the code relies on
    return name[:40].rstrip("_")


# ranking: rank_score = w_scorer * logit(coherence) + w_align * alignment + w_votes * log(votes);
# the weights are fitted after training on held-out programs described in held-out wordings
# (`calibrate_ranking`)
DEFAULT_RANK_WEIGHTS = {"scorer": 1.0, "align": 10.0, "votes": 1.0}


class Engine:
    # 3 DDIM steps: on held-out corpus programs, 2-3 steps round to the described program as often
    # as 10-20 do (benchmarks.synthesis reports the sweep), at a third of the cost
    def __init__(self, bundle: Bundle, encoder, steps: int = 3, n_samples: int = 16, guidance: float = 1.0,
                 threshold: float = 0.5, temperature: float = 1.0, rank_weights: dict | None = None,
                 confidence_model: dict | None = None, clause_samples: float = 0.5, read_cues: bool = True):
        self.bundle, self.encoder = bundle, encoder
        if isinstance(clause_samples, bool) or not isinstance(clause_samples, (int, float)) or clause_samples < 0:
            raise ValueError(f"clause_samples must be a number ≥ 0 (a share of n_samples), got {clause_samples!r}")
        # draws from a request's main clause (`views.main_clause`) when the answer is unsure, as a
        # share of n_samples; 0: never
        self.clause_samples = clause_samples
        self.steps, self.n_samples, self.guidance = steps, n_samples, guidance
        self.threshold, self.temperature = threshold, temperature
        self.rank_weights = dict(rank_weights or DEFAULT_RANK_WEIGHTS)
        self.confidence_model = confidence_model  # None: the answer's coherence is its confidence
        self.tuning: dict | None = None  # set by `load` for a crucible-tuned engine file
        # rank last the candidates that contradict the request's cues: the input it names, "how
        # many", an operation's opposite (`given.py`, `opposites.py`)
        self.read_cues = bool(read_cues)

    @classmethod
    def load(cls, path: str, encoder=None, **options) -> "Engine":
        from .encoder import make_encoder
        state = torch.load(path, map_location="cpu", weights_only=False)
        options.setdefault("rank_weights", state.get("rank_weights"))
        options.setdefault("confidence_model", state.get("confidence"))
        engine = cls(Bundle.from_state(state), encoder or make_encoder(state.get("encoder_name", "minilm")), **options)
        # how the file was made past supervised training: {"tuned": True, "run", "base", ...} from
        # `training.crucible`, else None
        engine.tuning = state.get("crucible")
        return engine

    @property
    def reads_words(self) -> bool:
        return bool(self.bundle.config.words)

    def encode(self, texts: list[str]) -> list[Encoding]:
        """Encodings of texts, with word vectors when the denoiser attends to them (one pass)."""
        if self.reads_words:
            pooled, words = self.encoder.encode_words(list(texts))
            return [Encoding(p, w) for p, w in zip(pooled, words)]
        return [Encoding(v) for v in self.encoder.encode(list(texts))]

    def encode_request(self, intent: str) -> Encoding:
        """The request's encoding, with its main clause's (when it has one and the engine reads
        it) from the same encoder pass: an unsure answer then costs no second pass, and a batch
        of two short texts costs little more than one. (The clause goes unused when the answer
        is sure, when a stored tool is reused, and by the direct sampler.)"""
        clause = main_clause(intent) if self.clause_samples else None
        if not clause:
            return self.encode([intent])[0]
        whole, part = self.encode([intent, clause])
        return Encoding(whole.vector, whole.words, (clause, part))

    # -- sampling ----------------------------------------------------------------------------

    @torch.no_grad()
    def _draws(self, cond: torch.Tensor, words, n: int, sampler: str, seed: int) -> np.ndarray:
        """(n, L, V) per-slot log-probabilities from the sampler."""
        den = self.bundle.denoiser
        # one row of words for all n draws: the denoiser projects them once and broadcasts
        w, mask = pad_words([words]) if words is not None else (None, None)
        if sampler == "ddim":
            g = torch.Generator().manual_seed(seed)
            _, logits = den.sample(cond.expand(n, -1), steps=self.steps, guidance=self.guidance, generator=g,
                                   words=w, words_mask=mask)
        elif sampler == "direct":  # no diffusion: one prediction from the condition and a zero latent
            logits = den(torch.zeros(1, MAX_OPS, den.d), torch.tensor([den.T - 1]), cond, w, mask)
        else:
            raise ValueError(f"sampler: unknown {sampler!r}; 'ddim' or 'direct'")
        return F.log_softmax(logits / self.temperature, dim=-1).numpy()

    @torch.no_grad()
    def synthesize(self, intent: str, arity: int = 1, n_candidates: int = 10,
                   n_samples: int | None = None, sampler: str = "ddim", use_scorer: bool = True,
                   encoding: Encoding | None = None, keep: int = 1, sample_slots: bool = False,
                   slot_temperature: float = 1.0) -> Synthesis:
        """`encoding`: the intent's, when the caller has it already (else it is encoded here).
        `keep`: well-typed programs read from each draw (its best first). `sample_slots`: read
        each draw by sampling every slot's operation from its predicted distribution (Gumbel-max,
        seeded by the intent), not by taking the most likely one; `slot_temperature` > 1
        flattens that distribution first. All three widen the candidates when examples will
        choose among them (`SynthesisService`)."""
        intent, arity = validate_request(intent, arity)
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be an integer ≥ 1, got {keep!r}")
        if isinstance(slot_temperature, bool) or not isinstance(slot_temperature, (int, float)) \
                or not 0 < slot_temperature <= 10:
            raise ValueError(f"slot_temperature must be a number in (0, 10], got {slot_temperature!r}")
        if slot_temperature != 1 and not sample_slots:
            raise ValueError("slot_temperature applies to sampled slots: pass sample_slots=True with it")
        t0 = time.perf_counter()
        encoding = encoding if encoding is not None else self.encode_request(intent)
        if self.reads_words and encoding.words is None:
            raise ValueError("this engine's denoiser attends to word vectors: encode the intent with Engine.encode")
        t_enc = time.perf_counter()
        n = n_samples or self.n_samples
        seed = int.from_bytes(hashlib.sha256(intent.encode()).digest()[:4], "little")
        votes: Counter = Counter()
        samples: list = []
        reading = dict(votes=votes, samples=samples, variants={}, asked=asked_effects(intent), arity=arity,
                       sampler=sampler, keep=keep, sample_slots=sample_slots,
                       slot_temperature=float(slot_temperature))
        view = self._view(encoding, arity)
        logp = self._draws(view[0], encoding.words if self.reads_words else None, n, sampler, seed)
        prior = op_prior(logp)
        self._read(logp, seed, **reading)
        t_sample = time.perf_counter()
        judged_by = [view]
        ranked = self._rank(intent, arity, votes, judged_by, use_scorer, n_candidates, len(samples))
        # an answer the engine is unsure of, for a request with asides: draw again from its main
        # clause (`views.py`), pool the draws, and judge every candidate against both texts
        clause = main_clause(intent) if self.clause_samples and sampler != "direct" else None
        if clause and use_scorer and (not ranked or ranked[0].stated_confidence < self.threshold):
            known = encoding.clause
            c_enc = known[1] if known and known[0] == clause else self.encode([clause])[0]
            c_view = self._view(c_enc, arity)
            judged_by.append(c_view)
            c_logp = self._draws(c_view[0], c_enc.words if self.reads_words else None,
                                 max(1, round(n * self.clause_samples)), sampler, seed + 1)
            self._read(c_logp, seed + 1, **reading)
            ranked = self._rank(intent, arity, votes, judged_by, use_scorer, n_candidates, len(samples))
        t_end = time.perf_counter()
        return Synthesis(intent, ranked, samples, self.threshold if use_scorer else 0.0, t_end - t0,
                         {"encode_s": t_enc - t0, "sample_s": t_sample - t_enc, "rank_s": t_end - t_sample,
                          "views": len(judged_by)}, prior)

    @staticmethod
    def _view(encoding: Encoding, arity: int) -> tuple:
        """(denoiser condition, pooled embedding) of one text the engine reads."""
        emb = torch.as_tensor(encoding.vector, dtype=torch.float32)[None]
        return condition(emb, torch.tensor([arity])), emb

    def _read(self, logp, seed, votes, samples, variants, asked, arity, sampler, keep, sample_slots,
              slot_temperature) -> None:
        """Round each draw to well-typed programs and count a vote for each of their variants."""
        if sample_slots:  # argmax of log p + Gumbel noise is a sample from p, slot by slot
            if slot_temperature != 1.0:  # p^(1/T), renormalized: the same as softmax(logits / T)
                logp = logp / slot_temperature
                logp = logp - np.logaddexp.reduce(logp, axis=-1, keepdims=True)
            logp = logp + np.random.default_rng(seed).gumbel(size=logp.shape)
        slots = arity - 1  # a parameter beyond the first binds an argument of some step
        for lp in logp:
            greedy = untokens(lp.argmax(-1))
            if sampler != "direct" and keep == 1 and well_formed(greedy) and parameter_slots(greedy) >= slots:
                decoded = [(greedy, 0.0, None)]  # the most likely ops already type, with room for the parameters
            else:
                decoded = beam_decode(lp, VOCAB, beam=8, keep=3 if sampler == "direct" else keep, min_slots=slots)
            samples.append(decoded[0][0] if decoded else None)
            for ops, _, _ in decoded:
                # a draw also supports its shorter readings (`_variants`); the ranking chooses
                key = tuple(ops)
                if key not in variants:  # draws often agree: each distinct one's variants once
                    variants[key] = self._variants(key, asked)
                for variant in variants[key]:
                    votes[variant] += 1

    def _rank(self, intent, arity, votes, judged_by, use_scorer, n_candidates, n_draws) -> list[Candidate]:
        cands = self._candidates(intent, arity, votes, judged_by, use_scorer, max(1, n_candidates))
        ranked = sorted(cands, key=self.rank_key(intent))[:max(1, n_candidates)]
        if ranked and self.confidence_model is not None and use_scorer:
            ranked[0].confidence = probability(self.confidence_model, features(ranked, n_draws))
        return ranked

    def rank_key(self, intent: str):
        """The candidates' sort key: by ranking score, after those that contradict none of the
        request's cues. A candidate whose parameter is not what the request says it is given, that
        gives no count where "how many" was asked (`given.py`), or with the opposite of an
        operation the request names (`opposites.py`) comes after the rest."""
        shape = given_shape(intent) if self.read_cues else None
        count = asks_count(intent) if self.read_cues else False
        ruled = ruled_out(intent) if self.read_cues else frozenset()
        return lambda c: (not agrees(shape, c.program.params[0][1]), not answers(count, c.returns),
                          bool(ruled.intersection(c.ops)), -c.rank_score, -c.votes)

    @staticmethod
    def _variants(ops: tuple, asked: frozenset) -> list[tuple]:
        """The programs a draw supports: itself, its well-typed prefixes, itself less any one
        step (a surplus step is the sampler's commonest slip on unfamiliar wording, and a step
        whose argument the intent never gives can't be filled) and itself with two neighbouring
        steps swapped (the right steps in the wrong order: "lowercase, then unique" drawn as
        "unique, then lowercase"). A network or file step not in
        `asked` (the intent's `effects.asked_effects`) is taken out first."""
        bare = without_unasked(ops, asked)
        if bare != ops:
            if not bare or not well_formed(list(bare)):
                return []
            ops = bare
        out = [ops[:k] for k in range(1, len(ops) + 1) if k == len(ops) or well_formed(list(ops[:k]))]
        for i in range(len(ops)):
            shorter = ops[:i] + ops[i + 1:]
            if shorter and shorter not in out and well_formed(list(shorter)):
                out.append(shorter)
        for i in range(len(ops) - 1):  # the denoiser's slots also come out of order: two neighbours swapped
            swapped = ops[:i] + (ops[i + 1], ops[i]) + ops[i + 2:]
            if swapped not in out and well_formed(list(swapped)):
                out.append(swapped)
        return out

    def _candidates(self, intent, arity, votes, judged_by, use_scorer, n_candidates) -> list[Candidate]:
        """Score every distinct op sequence (cheap: tokens only) against each (condition,
        embedding) in `judged_by`, then fill arguments (from the whole intent) and compile in rank
        order until `n_candidates` tools exist."""
        seqs = [list(o) for o, _ in votes.most_common()]
        if not seqs:
            return []
        counts = torch.tensor([float(c) for _, c in votes.most_common()])
        # scorer logit and alignment averaged over the texts the candidates are judged against
        # (the request, and its main clause when it has asides)
        feats = [self._features(cond, emb, seqs) for cond, emb in judged_by]
        logits = torch.stack([f[0] for f in feats]).mean(0)
        align = torch.stack([f[1] for f in feats]).mean(0)
        w = self.rank_weights
        score = (w["scorer"] * logits if use_scorer else 0) + w["align"] * align + w["votes"] * torch.log(counts)
        name = tool_name(intent)
        share, read = asks_share(intent), set()
        # a request read as asking a share that no draw can answer so is read as it is (the cue misread)
        share = share and any(share_form(q) is not None for q in seqs)
        out = []
        for i in score.argsort(descending=True).tolist():
            steps = seqs[i]
            if share:  # "what fraction of them are ...": a part kept, counted over the whole
                steps = share_form(steps)
                if steps is None or tuple(steps) in read:
                    continue  # nothing filtered answers no share; the same share read twice is one
                read.add(tuple(steps))
            for rank, prog in enumerate(self.programs(steps, intent, arity, name)):
                tool = compile_program(prog)
                out.append(Candidate(seqs[i], prog, tool.code, tool.function_name, tool.signature, tool.docstring,
                                     float(torch.sigmoid(logits[i])), int(counts[i]), float(align[i]),
                                     float(score[i]) - 1e-3 * rank,  # argument readings in their order
                                     returns=show(tool.checked.returns)))
            if len(out) >= n_candidates:
                break
        return out

    @torch.no_grad()
    def judge(self, intent_vector, arity: int, op_lists: list) -> tuple[list[float], list[float]]:
        """(coherence, alignment) of each op sequence for an intent: the scorer's probability and
        the action encoder's cosine, as the ranking sees them."""
        if not op_lists:
            return [], []
        emb = torch.as_tensor(intent_vector, dtype=torch.float32)[None]
        logits, align = self._features(condition(emb, torch.tensor([arity])), emb, op_lists)
        return torch.sigmoid(logits).tolist(), align.tolist()

    def _features(self, cond, emb, op_lists) -> tuple[torch.Tensor, torch.Tensor]:
        """(scorer logit, alignment) per op sequence, for one intent's condition and embedding."""
        tok = torch.tensor([tokens(list(o)) for o in op_lists])
        enc = self.bundle.encoder
        return (self.bundle.scorer(cond.expand(len(op_lists), -1), tok),
                (enc.encode_texts(emb) @ enc.encode_programs(tok).T)[0])

    @staticmethod
    def programs(ops: list[str], intent: str, arity: int, name: str = "tool", limit: int = 3) -> list[Program]:
        """Concrete, type-checked programs for an op sequence: arguments from the intent."""
        out = []
        for args in fill_arguments(intent, ops, arity, limit=limit, derived=True):
            prog = Engine.typed_program(ops, args, intent, name)
            if prog is not None and len(prog.params) == arity:
                out.append(prog)
        return out

    @staticmethod
    def typed_program(ops: list[str], args: list[dict], intent: str, name: str = "tool",
                      pname: str | None = None) -> Program | None:
        """These steps as a checked program: the first parameter typed as the first step needs
        (named `pname`, else after its type), one more parameter per distinct {"ref"}; or None.
        A {"derived": op} argument (a statistic of the values, `arguments.STATISTICS`) is
        computed first from the value flowing into its step and kept by name (`derived_steps`)."""
        for ptype in PARAM_TYPES:
            params = [(pname or PARAM_NAMES[ptype], ptype)]
            for op, a in zip(ops, args):
                for arg_name, src in a.items():
                    if "ref" in src and all(src["ref"] != p for p, _ in params):
                        params.append((src["ref"], show(dict(OPS[op].args)[arg_name])))
            prog = Program(name, params, derived_steps(ops, args, [p for p, _ in params]), intent)
            try:
                check(prog)
                return prog
            except TypeCheckError:
                continue
        return None


def derived_steps(ops: list[str], args: list[dict], taken: list[str]) -> list[Step]:
    """Steps for `ops`, where an argument {"derived": op} becomes a value computed just before
    its step from the value flowing in, kept under the statistic's own name: "above their
    average" on the input is REDUCE.mean, STORE mean, RETRIEVE numbers, FILTER.greater(k=mean);
    later in a pipeline the flowing value is kept first (STORE values ... RETRIEVE values).
    A SHARE (`shares.py`) keeps the value reaching its first filter, and ends as that filter's
    kept count over that value's count. `linear_form` reads such steps back. (A mean or median
    of an empty list raises, as those operations do anywhere.)"""
    steps, names = [], set(taken)

    def fresh(base: str) -> str:
        name, i = base, 2
        while name in names:
            name, i = f"{base}{i}", i + 1
        names.add(name)
        return name

    shares = {i: whole_at(ops, args, i) for i, op in enumerate(ops) if op == SHARE}
    counted = set(shares.values()) - {None}  # steps whose input a share counts
    wholes = {}  # step index -> the name its input is kept under
    for i, (op, a) in enumerate(zip(ops, args)):
        if op == SHARE:
            w = shares[i]
            steps += share_tail(wholes[w], fresh) if w in wholes else [Step(SHARE)]  # the checker refuses a bare one
            continue
        stored = None
        if i in counted:
            stored = wholes[i] = taken[0] if i == 0 else fresh(OPS[ops[i - 1]].var if ops[i - 1] in OPS else "values")
            steps += [] if i == 0 else [Step(STORE, name=stored)]
        a = dict(a)
        for arg_name, src in list(a.items()):
            if "derived" not in src:
                continue
            before = stored or (taken[0] if i == 0 else fresh("values"))
            kept = fresh(OPS[src["derived"]].var)
            steps += ([] if i == 0 or stored else [Step(STORE, name=before)]) + \
                [Step(src["derived"]), Step(STORE, name=kept), Step(RETRIEVE, name=before)]
            a[arg_name] = {"ref": kept}
        steps.append(Step(op, a))
    return steps


def linear_form(program: Program) -> tuple[list, list] | None:
    """(ops, args) of a program that is a linear pipeline, its derived thresholds (`derived_steps`)
    read back as {"derived": op} and its shares as SHARE {"of": steps back to the whole}; None
    for any other use of STORE/RETRIEVE/RETURN. What composition and refinement splice."""
    steps, first = program.steps, program.params[0][0]
    ops, args, pending, j = [], [], {}, 0
    kept_at = {first: 0}  # a name a share's whole may have -> the step whose input it is
    while j < len(steps):
        s, rest = steps[j], steps[j + 1:j + 4]
        if j == 0 and s.op in STATISTIC_OPS and len(rest) >= 2 and rest[0].op == STORE and \
                rest[1].op == RETRIEVE and rest[1].name == first:
            pending[rest[0].name], j = s.op, j + 3
        elif s.op == STORE and len(rest) == 3 and rest[0].op in STATISTIC_OPS and rest[1].op == STORE and \
                rest[2].op == RETRIEVE and rest[2].name == s.name:
            pending[rest[1].name], j = rest[0].op, j + 4
            kept_at[s.name] = len(ops)
        elif s.op == STORE and j + 1 < len(steps) and steps[j + 1].op in OPS:
            kept_at[s.name] = len(ops)  # what a share will count (checked below)
            j += 1
        elif s.op == "REDUCE.count" and read_tail(steps[j:j + 7], set(kept_at)):
            args.append({"of": {"const": len(ops) - kept_at[steps[j + 2].name]}})
            ops.append(SHARE)
            j += 7
        elif s.op in OPS:
            a = {n: {"derived": pending.pop(src["ref"])} if src.get("ref") in pending else dict(src)
                 for n, src in s.args.items()}
            ops.append(s.op), args.append(a)
            j += 1
        else:
            return None
    if not ops or pending:
        return None
    # the steps read back must be the ones these ops are written as, up to the names chosen
    again = derived_steps(ops, args, [p for p, _ in program.params])
    return (ops, args) if _canonical(again, program.params) == _canonical(steps, program.params) else None


def _canonical(steps: list, params: list) -> list:
    """Steps with every name replaced by the order it was first given in (parameters first), so
    two programs that differ only in what they call their values compare equal."""
    names = {p: f"p{i}" for i, (p, _) in enumerate(params)}

    def name(n):
        return names.setdefault(n, f"v{len(names)}") if n is not None else None
    out = []
    for s in steps:
        a = {k: ({"ref": name(v["ref"])} if "ref" in v else v) for k, v in sorted(s.args.items())}
        out.append((s.op, name(s.name), repr(a)))
    return out


def op_prior(logp: np.ndarray) -> dict:
    """(n, L, V) slot log-probabilities -> {operation: P(it fills some slot)}, averaged over the
    n draws (each slot read independently, as the sampler predicts them)."""
    p = np.exp(logp[:, :, 1:])  # token 0 is <end>
    present = 1.0 - np.prod(1.0 - np.clip(p, 0.0, 1.0), axis=1)  # (n, V-1)
    return {op: float(v) for op, v in zip(VOCAB[1:], present.mean(axis=0))}


def capabilities(engine: Engine, intent_vector, k: int = 5) -> list[str]:
    """The operations nearest an intent, in words (what to say when it can't be synthesized)."""
    ops = VOCAB[1:]
    _, align = engine.judge(intent_vector, 1, [[op] for op in ops])
    best = np.argsort(-np.asarray(align), kind="stable")[:k].tolist()
    return [f"{ops[i]}: {OPS[ops[i]].doc}" for i in best]
