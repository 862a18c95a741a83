"""The Emergence Engine end to end, as a library (no Ray): the phrase tables and the corpus, the
type-constrained beam decoder, the networks, training (`fit`) with its checkpoints, the engine's
request checks and candidates, the synthesis service over a local memory, and the encoders.

A tiny bundle is trained once per module (a few epochs on a small corpus, hashing encoder) and
shared; it is not meant to be good, only real. Torch runs single-threaded here: on a busy
2-core machine its thread pool otherwise spins (100x slower)."""

from __future__ import annotations

import copy
import json
import math
import random
import re
import string
from collections import defaultdict
from dataclasses import asdict

import numpy as np
import pytest
import torch

from emergence.memory.hierarchical import HierarchicalMemory, LocalBackend
from emergence.sandbox import bwrap_missing, open_executor, values_equal
from emergence.synthesis import corpus, decode, inputs, language, models
from emergence.synthesis.encoder import DIM, HashingEncoder, MiniLMEncoder, make_encoder
from emergence.synthesis.engine import Candidate, Encoding, Engine, Synthesis, SynthesisInputError, capabilities, \
    op_prior, tool_name, validate_request
from emergence.synthesis.effects import asked_effects
from emergence.synthesis.evaluation import passes_in_process
from emergence.synthesis.fit import PHASES, Bundle, FitConfig, TrainData, denoising_mse, fit, roc_auc
from emergence.synthesis.ops import OPS
from emergence.synthesis.pipeline import CannotSynthesize, SynthesisService, sandbox_verifier
from emergence.synthesis.program import Program, Step, check
from emergence.synthesis.runtime import build_callable, namespace
from emergence.synthesis.types import TypeCheckError
from emergence.synthesis.views import main_clause

VOCAB = models.VOCAB


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- language ----------------------------------------------------------------------------------
def test_every_kind_is_an_operation_with_phrases():
    assert set(language.PHRASES) == set(language.KINDS)
    for op, pairs in language.KINDS.items():
        assert op in OPS, op
        assert pairs and all(isinstance(a, str) and isinstance(b, str) for a, b in pairs), op
        phrases = language.PHRASES[op]
        for style in ("np", "vp", "then"):
            assert phrases.get(style), (op, style)
            assert all(isinstance(t, str) and t.strip() for t in phrases[style]), (op, style)


def test_phrase_templates_use_only_the_input_and_the_operation_arguments():
    assert set(language.PARAMETER_PHRASES) <= set(language.PHRASES)
    every = list(language.PHRASES.items()) + list(language.PARAMETER_PHRASES.items())
    for op, phrases in every:
        allowed = {"x"} | {a for a, _ in OPS[op].args}
        for style, templates in phrases.items():
            for t in templates:
                fields = {f for _, f, _, _ in string.Formatter().parse(t) if f is not None}
                assert fields <= allowed, (op, t)
                if style in ("np", "vp"):
                    assert "x" in fields, (op, t)  # the input is always mentioned


def test_input_phrases_cover_every_start_kind():
    for kind in corpus.START:
        assert language.INPUT_PHRASES[kind], kind


# --- corpus: programs ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def programs2():
    return corpus.programs(max_len=2, seed=3)


def test_programs_are_deterministic_for_a_seed(programs2):
    assert corpus.programs(max_len=2, seed=3) == programs2
    assert len(programs2) > 100


def test_kept_programs_have_distinct_behaviours(programs2):
    probes = corpus.probe_inputs(seed=3)
    plain = [(seq, start) for seq, start in programs2 if not OPS[seq[0]].effects]
    seen = set()
    for seq, start in plain:
        fp = corpus._fingerprint(corpus.make_program(seq, start), probes[start])
        assert fp is not None, (seq, start)  # constant / always-failing programs are dropped
        assert (start, fp) not in seen, (seq, start)
        seen.add((start, fp))
    # the dropping works: sort-then-sum behaves as sum, so it is not kept
    assert (("SORT.asc", "REDUCE.sum"), "ints") not in plain
    assert (("REDUCE.sum",), "ints") in plain


def test_programs_come_shortest_first_then_effectful_variants(programs2):
    kinds = [OPS[seq[0]].effects for seq, _ in programs2]
    first_effect = kinds.index(True)
    assert all(kinds[first_effect:]) and not any(kinds[:first_effect])
    plain, effectful = programs2[:first_effect], programs2[first_effect:]
    lengths = [len(seq) for seq, _ in plain]
    assert lengths == sorted(lengths) and lengths[0] == 1
    for seq, start in plain:
        assert corpus.start_kind(seq) in corpus.START
    for seq, start in effectful:
        assert seq[0] == corpus.EFFECT_STARTS[start]
        assert OPS[seq[0]].effects and not any(OPS[o].effects for o in seq[1:])
        assert len(seq) <= 2 and any(s == seq[1:] for s, _ in plain)


def test_longer_programs_go_one_step_past_the_walk(programs2):
    grown = corpus.programs(max_len=2, seed=3, longer=15)
    assert corpus.programs(max_len=2, seed=3, longer=15) == grown  # deterministic for a seed
    extra = [p for p in grown if p not in programs2]
    by_start = defaultdict(int)
    for seq, start in extra:
        by_start[start] += 1
        assert len(seq) == 3 + (start in corpus.DOCUMENTS)  # one past max_len (a document: its parse step)
        assert (seq[:-1], start) in programs2  # a kept program, extended
        corpus.kind_after(seq, start)  # kind-respecting (raises otherwise)
    assert set(by_start) <= set(corpus.PURE_STARTS) and max(by_start.values()) <= 15
    assert by_start["ints"] == 15 and by_start["text"] == 15
    # and each still has a behaviour of its own
    probes = corpus.probe_inputs(seed=3)
    fps = [(start, corpus._fingerprint(corpus.make_program(seq, start), probes[start]))
           for seq, start in grown if not OPS[seq[0]].effects]
    assert len(set(fps)) == len(fps) and all(fp is not None for _, fp in fps)


def test_the_cap_shares_long_programs_by_start_and_length():
    progs = [((f"S{i}",), "ints") for i in range(10)]  # short: always kept
    progs += [(("a", "b", str(i)), "ints") for i in range(100)] + [(("a", "b", "c", str(i)), "ints") for i in range(100)]
    progs += [(("p", "q", str(i)), "html") for i in range(5)]
    chosen = corpus._stratified(list(progs), 10 + 65, random.Random(0))
    count = lambda start, n: sum(s == start and len(seq) == n for seq, s in chosen)  # noqa: E731
    assert len(chosen) == 75 and count("ints", 1) == 10
    assert count("html", 3) == 5  # a small group is taken whole, its unused share passed on
    assert count("ints", 3) == 40 and count("ints", 4) == 20  # a 3-step group weighs twice a 4-step one


def test_a_column_or_key_path_parameter_is_described_as_one():
    rng = random.Random(0)
    for seq, arg in ((("PARSE_CSV.rows", "EXTRACT_ELEMENTS.column"), "name"),
                     (("PARSE_JSON.document", "EXTRACT_ELEMENTS.field"), "path")):
        start = corpus.start_kind(seq)
        for _ in range(40):
            args = [{}, {arg: {"ref": corpus.REF_PARAM[arg]}}]
            text = corpus.describe(seq, start, args, rng)
            assert "{" not in text and "column column" not in text and "a given key path field" not in text
            assert any(w in text.lower() for w in ("given", "named", "names", "requested", "path", "parameter")), text


def test_walks_respect_kinds():
    for seq, start in corpus.walks(2):
        kind = start
        for op in seq:
            outs = [b for a, b in language.KINDS[op] if a == kind]
            assert outs, (seq, start)
            kind = outs[0]
        assert all(a != b for a, b in zip(seq, seq[1:]))  # the same op twice is skipped


def test_urls_are_taken_apart_without_fetching(programs2):
    # a URL, or a list of them, is an input of its own: "the host of a URL" needs no download
    assert "url" in corpus.PURE_STARTS and "urls" in corpus.PURE_STARTS
    assert "path" not in corpus.PURE_STARTS  # a path is only ever read
    assert (("TRANSFORM.domain",), "url") in programs2
    assert (("MAP.domain",), "urls") in programs2
    assert (("FILTER.absolute_url",), "urls") in programs2
    # fetching is still a step of its own, before an HTML pipeline
    assert (("HTTP_GET.text", "PARSE_HTML.page"), "url") in programs2
    links = inputs.value_of("list[str]", random.Random(0), "urls")
    assert links and all(s.startswith(("https://", "/")) for s in links)


# --- corpus: records ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def records():
    return corpus.build(max_len=2, per_program=2, seed=5)


def test_build_records_type_check_and_carry_their_arity(records):
    assert len(records) > 500
    for r in records:
        prog = Program.from_dict(r.program)
        checked = check(prog)
        assert [s.op for s in prog.steps] == r.ops
        assert r.arity == len(prog.params) == len(checked.param_types)
        assert prog.params[0][0] == corpus.START[r.start][0]
        assert r.description.strip() and prog.intent == r.description
        assert r.split in ("train", "val")  # calibration wordings only when asked for
        extra = {n for n, _ in prog.params[1:]}
        assert extra <= set(corpus.REF_PARAM.values())
        refs = {src["ref"] for s in prog.steps for src in s.args.values() if "ref" in src}
        assert extra == refs  # every extra parameter is used, and only parameters are referenced


def test_build_is_deterministic_and_varies_descriptions(records):
    again = corpus.build(max_len=2, per_program=2, seed=5)
    assert [asdict(r) for r in again] == [asdict(r) for r in records]
    by_prog = defaultdict(set)
    for r in records:
        by_prog[(r.start, tuple(r.ops))].add(r.description)
    varied = sum(len(d) > 1 for d in by_prog.values())
    assert varied > 0.5 * len(by_prog)
    assert any(r.arity > 1 for r in records) and any(r.arity == 1 for r in records)


def test_plumbing_steps_are_sometimes_left_unsaid():
    import random
    csv_mean = ("PARSE_CSV.rows", "EXTRACT_ELEMENTS.column", "MAP.to_number", "REDUCE.mean")
    assert corpus.implied_steps(csv_mean) == [0, 2]  # the mean needs numbers; a column needs rows
    # sorting can take the column's strings, so converting them is a choice to be said
    assert corpus.implied_steps(csv_mean[:3] + ("SORT.asc",)) == [0]
    assert corpus.implied_steps(csv_mean[:3]) == [0]  # a last step is what is asked for
    assert corpus.implied_steps(("MAP.square", "REDUCE.sum")) == []
    assert all(not OPS[op].args for op in corpus.PLUMBING)  # leaving one unsaid loses no argument
    rng = random.Random(0)
    texts = []
    for _ in range(200):
        args = [corpus.canonical_args(op, nxt, rng) for op, nxt in zip(csv_mean, csv_mean[1:] + (None,))]
        texts.append(corpus.describe(csv_mean, "csv", args, rng).lower())
    said = lambda *words: sum(any(w in t for w in words) for t in texts)  # noqa: E731
    # about half the descriptions leave the parsing, and about half the conversion, unsaid
    assert 40 < said("row", "record") < 160 and 40 < said("number", "numeric") < 160
    assert said("mean", "average") == len(texts)  # what was asked for is always said


def test_imperatives_sometimes_open_as_requests():
    rng = random.Random(1)
    seq = ("FILTER.even", "REDUCE.sum")
    texts = [corpus.describe(seq, "ints", [{}, {}], rng) for _ in range(400)]
    trained_frames = corpus.REQUESTS[:-1]  # the last one is kept for held-out wordings
    opened = [t for t in texts if t.lower().startswith(tuple(f.lower() + " " for f in trained_frames))]
    assert 20 < len(opened) < 200
    assert all(t.endswith("?") for t in opened if t.lower().startswith(("can you", "could you")))
    assert not any(t.lower().startswith(corpus.REQUESTS[-1].lower() + " ") for t in texts)
    held = [corpus.describe(seq, "ints", [{}, {}], rng, held_out=True) for _ in range(400)]
    assert not any(t.lower().startswith(tuple(f.lower() + " " for f in trained_frames)) for t in held)


def test_some_requests_are_asked_as_questions():
    rng = random.Random(2)
    trained = lambda frames: tuple(f.split("{")[0] for f in frames[:-1])  # noqa: E731  (last: held out)
    counted = [corpus.describe(("FILTER.even", "REDUCE.count"), "ints", [{}, {}], rng) for _ in range(600)]
    asked = [t for t in counted if t.startswith(trained(corpus.COUNT_QUESTIONS))]
    assert 10 < len(asked) < 150
    assert all(t.endswith("?") and "even" in t and not t.startswith("How many the ") for t in asked)
    whole = [corpus.describe(("REDUCE.count",), "words", [{}], rng) for _ in range(600)]
    assert any(t.startswith(trained(corpus.COUNT_ALL_QUESTIONS)) for t in whole)
    # "what are ...?" of a list, "what's ...?" of one value
    lists = [corpus.describe(("FILTER.even",), "ints", [{}], rng) for _ in range(600)]
    values = [corpus.describe(("REDUCE.sum",), "ints", [{}], rng) for _ in range(600)]
    assert any(t.startswith("What are ") for t in lists) and not any(t.startswith("What's ") for t in lists)
    assert any(t.startswith("What's ") for t in values) and not any(t.startswith("What are ") for t in values)
    held_out_frames = tuple(f.split("{")[0] for f in (corpus.COUNT_QUESTIONS[-1], corpus.QUESTIONS["one"][-1],
                                                      corpus.QUESTIONS["many"][-1], corpus.COUNT_ALL_QUESTIONS[-1]))
    assert not any(t.startswith(held_out_frames) for t in counted + lists + values + whole)
    # descriptions of held-out programs ask in the held-out frames, and only in those
    held = [corpus.describe(seq, start, [{}] * len(seq), rng, held_out=True)
            for seq, start in ((("FILTER.even", "REDUCE.count"), "ints"), (("REDUCE.count",), "words"),
                               (("FILTER.even",), "ints"), (("REDUCE.sum",), "ints")) for _ in range(300)]
    assert {f for f in held_out_frames if any(t.startswith(f) for t in held)} == set(held_out_frames)
    assert not any(t.startswith(trained(corpus.COUNT_QUESTIONS) + trained(corpus.QUESTIONS["many"])) for t in held)
    # no one asks how many of the first few there are
    assert not corpus.asks(("SORT.desc", "LIMIT.first", "REDUCE.count"))
    assert not corpus.asks(("SORT.desc+LIMIT.first", "REDUCE.count")) and corpus.asks(("FILTER.even", "REDUCE.count"))


def test_a_pair_people_name_at_once_is_sometimes_said_as_one():
    from emergence.synthesis.arguments import fill_arguments
    from emergence.synthesis.language import IDIOMS

    rng = random.Random(4)
    seq = ("SORT.desc", "LIMIT.first")
    words = ("largest", "highest", "biggest", "greatest")
    texts = [corpus.describe(seq, "ints", [{}, {"n": {"const": 3}}], rng) for _ in range(400)]
    said = [t for t in texts if re.search(rf"\b(?:3|three) (?:{'|'.join(words)})", t)]
    assert 100 < len(said) < 300
    assert all(fill_arguments(t, list(seq), 1)[0][1] == {"n": {"const": 3}} for t in said)  # n read back
    held_out = [ps[-1].split("{x}")[0].replace("{n}", n) for ps in IDIOMS[seq].values() for n in ("3", "three")]
    assert not any(h.lower() in t.lower() for t in texts for h in held_out)
    # only of numbers: "the 3 largest words" is not how a reverse-alphabetical sort is said
    texts = [corpus.describe(seq, "words", [{}, {"n": {"const": 3}}], rng) for _ in range(200)]
    assert not any(re.search(r"\b(?:3|three) (?:largest|highest|biggest|greatest)", t) for t in texts)
    assert corpus.kinds_in(("PARSE_CSV.rows", "EXTRACT_ELEMENTS.column", "MAP.to_number", "SORT.desc"), "csv") == \
        ["csv", "rows", "column", "nums"]


def test_lowercasing_before_other_steps_is_sometimes_said_as_a_manner():
    rng = random.Random(3)
    seq = ("TRANSFORM.lower", "TRANSFORM.word_tokens", "SORT.unique", "REDUCE.count")
    texts = [corpus.describe(seq, "text", [{}] * 4, rng) for _ in range(400)]
    manner = [t for t in texts if any(p in t for p in corpus.CASE_PHRASES[:-1])]
    assert 80 < len(manner) < 240
    # said as a manner, the step is not also said as a step
    assert not any("lower" in t.lower() for t in manner)
    assert not any(corpus.CASE_PHRASES[-1] in t for t in texts)  # held out
    # only a lowering that other steps follow is a manner: one at the end is the asked-for output
    for other in (("TRANSFORM.word_tokens", "REDUCE.count"), ("TRANSFORM.word_tokens", "MAP.lower")):
        texts = [corpus.describe(other, "text", [{}] * 2, rng) for _ in range(200)]
        assert not any(p in t for t in texts for p in corpus.CASE_PHRASES)


def test_build_splits_by_program(records):
    splits = defaultdict(set)
    for r in records:
        splits[(r.start, tuple(r.ops))].add(r.split)
    assert all(len(s) == 1 for s in splits.values())
    n_val = sum(s == {"val"} for s in splits.values())
    assert 0 < n_val < len(splits)


def test_traces_for_the_first_variant_of_programs_without_effects(records):
    import hashlib
    with_trace = 0
    for r in records:
        first = r.id == hashlib.sha1(f"{r.start}:{'/'.join(r.ops)}:0".encode()).hexdigest()[:12]
        effects = any(OPS[o].effects for o in r.ops)
        if first and not effects:
            assert len(r.traces) == 2, r
            for row in r.traces:
                assert set(row) == {"input", "steps"}
                ops = [op for op, _ in row["steps"]]
                assert ops == r.ops or ops == ["error"], (r.ops, row)
            with_trace += 1
        else:
            assert r.traces == []
    assert with_trace > 100


def test_build_without_traces_and_with_a_cap(programs2):
    recs = corpus.build(max_len=1, per_program=1, with_traces=False, seed=1)
    assert recs and all(r.traces == [] for r in recs)
    # every program of 1-2 steps is kept; the longer ones (parsing a document, then two more
    # steps) are what the cap samples down, shared out across start kinds
    progs = corpus.programs(max_len=2, seed=1)
    short = sum(len(seq) <= 2 for seq, _ in progs)
    assert short < len(progs)
    for cap, longer in ((3, 0), (short + 4, 4)):
        capped = corpus.build(max_len=2, per_program=1, max_programs=cap, with_traces=False, seed=1)
        kept = {(r.start, tuple(r.ops)) for r in capped}
        assert sum(len(ops) > 2 for _, ops in kept) == longer
        assert sum(len(ops) <= 2 for _, ops in kept) >= 0.95 * short  # (a variant may fail to check)
    assert len({start for start, ops in kept if len(ops) > 2}) > 1


def test_save_load_round_trip(records, tmp_path):
    path = tmp_path / "corpus.jsonl"
    corpus.save(records[:300], path)
    assert corpus.load(path) == records[:300]


# --- decode -------------------------------------------------------------------------------------
def test_sequence_type():
    assert decode.sequence_type(["FILTER.even", "REDUCE.sum"]) == "list[int]"
    assert decode.sequence_type(["TRANSFORM.words", "REDUCE.count"]) == "str"
    assert decode.sequence_type(["MAP.upper"]) == "list[str]"
    assert decode.sequence_type(["REDUCE.sum", "FILTER.even"]) is None
    assert decode.sequence_type(["TRANSFORM.upper", "REDUCE.sum"]) is None
    assert decode.sequence_type([]) is None


def _logp(prefs: list[dict], L: int = models.MAX_OPS, floor: float = -12.0) -> np.ndarray:
    """Per-slot log-probabilities from {op: logit} preferences; unnamed tokens get `floor`."""
    logits = np.full((L, len(VOCAB)), floor)
    for i, p in enumerate(prefs):
        for op, v in p.items():
            logits[i, models.TOKEN[op]] = v
    for i in range(len(prefs), L):
        logits[i, 0] = 5.0
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def test_beam_decode_returns_well_typed_programs_best_first():
    rng = np.random.default_rng(0)
    for _ in range(5):
        raw = rng.normal(size=(models.MAX_OPS, len(VOCAB))) * 3
        logp = raw - np.log(np.exp(raw).sum(1, keepdims=True))
        out = decode.beam_decode(logp, VOCAB, beam=6, keep=4)
        assert 1 <= len(out) <= 4
        scores = [s for _, s, _ in out]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(o) for o, _, _ in out}) == len(out)
        for ops, score, ptype in out:
            assert ops and decode.sequence_type(ops) is not None
            assert ptype in decode.PARAM_TYPES
            flow = decode._PARSED[ptype]
            for op in ops:
                flow = decode.step_type(flow, op)
                assert flow is not None
            # the score is the path's log-probability: ops, then <end> in every later slot
            want = sum(logp[i, models.TOKEN[o]] for i, o in enumerate(ops)) + logp[len(ops):, 0].sum()
            assert score == pytest.approx(want)


def _beam_decode_by_the_rule(logp, vocab, beam=8, keep=4, min_slots=0):
    """The beam as its rule says, token by token in each slot's order (`decode.beam_decode`
    masks the tokens that can't extend a state first, for speed): the oracle it must equal."""
    states = [(0.0, (), None, None, False)]
    order = np.argsort(-logp, axis=1)
    for i in range(logp.shape[0]):
        nxt = {}
        for score, ops, flow, ptype, ended in states:
            if ended:
                cand = (score + logp[i, 0], ops, flow, ptype, True)
                if (ops, ptype) not in nxt or nxt[(ops, ptype)][0] < cand[0]:
                    nxt[(ops, ptype)] = cand
                continue
            tried = 0
            for v in order[i]:
                if tried >= beam:
                    break
                s = score + logp[i, v]
                if v == 0:
                    cands = [(s, ops, flow, ptype, True)] if ops and decode.parameter_slots(ops) >= min_slots else []
                elif not ops:
                    cands = [(s, (vocab[v],), out, pt, False) for pt, t in decode._PARSED.items()
                             if (out := decode.step_type(t, vocab[v])) is not None]
                elif vocab[v] == ops[-1]:
                    cands = []
                else:
                    out = decode.step_type(flow, vocab[v])
                    cands = [] if out is None else [(s, ops + (vocab[v],), out, ptype, False)]
                tried += bool(cands)
                for cand in cands:
                    if (cand[1], cand[3]) not in nxt or nxt[(cand[1], cand[3])][0] < cand[0]:
                        nxt[(cand[1], cand[3])] = cand
        states = sorted(nxt.values(), key=lambda c: -c[0])[:beam]
    best = {}
    for score, ops, _, ptype, _ in states:
        if ops and decode.parameter_slots(ops) >= min_slots and (ops not in best or best[ops][1] < score):
            best[ops] = (list(ops), float(score), ptype)
    return sorted(best.values(), key=lambda c: -c[1])[:keep]


def test_beam_decode_is_exactly_the_beam_rule():
    # float32 log-probabilities as the sampler gives them, flat to peaked, with Gumbel noise (sampled
    # slots) and without; every beam width, reading count and parameter-slot demand: same programs,
    # same scores to the bit, same order
    rng = np.random.default_rng(7)
    for _ in range(400):
        raw = rng.normal(size=(models.MAX_OPS, len(VOCAB))) * rng.uniform(0.1, 6)
        logp = (raw - np.log(np.exp(raw).sum(1, keepdims=True))).astype(np.float32)
        if rng.random() < 0.5:
            logp = logp + rng.gumbel(size=logp.shape).astype(np.float32)
        kw = dict(beam=int(rng.integers(1, 10)), keep=int(rng.integers(1, 9)), min_slots=int(rng.integers(0, 3)))
        assert decode.beam_decode(logp, VOCAB, **kw) == _beam_decode_by_the_rule(logp, VOCAB, **kw), kw


def test_beam_decode_repairs_an_ill_typed_argmax():
    # per slot: upper-case a text, then sum (ill-typed: a sum of a string); the runner-ups,
    # split into words and count them, type
    logp = _logp([{"TRANSFORM.upper": 3.0, "TRANSFORM.words": 2.0},
                  {"REDUCE.sum": 3.0, "REDUCE.count": 2.5, "<end>": -2.0}])
    argmax = [VOCAB[i] for i in logp.argmax(1) if i]
    assert argmax == ["TRANSFORM.upper", "REDUCE.sum"] and decode.sequence_type(argmax) is None
    out = decode.beam_decode(logp, VOCAB)
    assert out[0][0] == ["TRANSFORM.words", "REDUCE.count"]
    assert out[0][2] == "str"
    assert all(decode.sequence_type(o) for o, _, _ in out)


def test_beam_decode_never_returns_an_empty_program():
    logp = _logp([{"<end>": 10.0, "MAP.upper": 0.0}])  # <end> everywhere, overwhelmingly
    out = decode.beam_decode(logp, VOCAB, beam=4, keep=3)
    assert out and all(len(o) >= 1 for o, _, _ in out)
    assert out[0][0] == ["MAP.upper"]


def test_beam_decode_keeps_room_for_the_tools_parameters():
    # sort, then the maximum is likelier; a 2-parameter tool needs a step whose argument a
    # parameter binds, so sort then take the first n is the program read
    logp = _logp([{"SORT.desc": 3.0}, {"REDUCE.max": 3.0, "LIMIT.first": 1.0, "<end>": -2.0}])
    assert decode.beam_decode(logp, VOCAB)[0][0] == ["SORT.desc", "REDUCE.max"]
    out = decode.beam_decode(logp, VOCAB, min_slots=1)
    assert out[0][0] == ["SORT.desc", "LIMIT.first"]
    assert all(decode.parameter_slots(o) >= 1 for o, _, _ in out)
    assert decode.parameter_slots(["FILTER.greater", "MAP.add"]) == 2 and decode.parameter_slots(["SORT.asc"]) == 0


def test_engine_reads_draws_with_room_for_every_parameter(engine):
    for arity in (1, 2, 3):
        syn = engine.synthesize("keep the values above a threshold, then take the first few", arity)
        assert any(syn.samples) and all(decode.parameter_slots(s) >= arity - 1 for s in syn.samples if s)
        assert all(len(c.program.params) == arity for c in syn.candidates)


# --- models -------------------------------------------------------------------------------------
def test_tokens_round_trip_and_limits():
    for ops in ([], ["REDUCE.sum"], ["FILTER.even", "MAP.square", "REDUCE.sum"], ["SORT.asc"] * models.MAX_OPS):
        tok = models.tokens(ops)
        assert len(tok) == models.MAX_OPS and models.untokens(tok) == ops
        assert models.untokens(torch.tensor(tok)) == ops
    assert models.untokens([models.TOKEN["REDUCE.sum"], 0, models.TOKEN["SORT.asc"]]) == ["REDUCE.sum"]
    with pytest.raises(ValueError, match=str(models.MAX_OPS)):
        models.tokens(["SORT.asc"] * (models.MAX_OPS + 1))
    assert VOCAB[0] == models.END and set(VOCAB[1:]) == set(OPS)


@pytest.fixture(scope="module")
def small_denoiser():
    torch.manual_seed(0)
    den = models.Denoiser(d=8, width=32, layers=1, heads=4, T=20).eval()
    den.set_table(torch.randn(len(VOCAB), 8))  # the action latents (zeros until set)
    return den


def test_denoiser_sample_shape_and_steps(small_denoiser):
    cond = torch.randn(3, 384 + models.MAX_ARITY)
    for steps in (1, 5, 20):
        x, logits = small_denoiser.sample(cond, steps=steps)
        assert x.shape == (3, models.MAX_OPS, 8) and torch.isfinite(x).all()
        assert logits.shape == (3, models.MAX_OPS, len(VOCAB))
    for bad in (0, 21, -1):
        with pytest.raises(ValueError, match="steps"):
            small_denoiser.sample(cond, steps=bad)


def test_ddim_is_deterministic_for_a_seeded_generator(small_denoiser):
    cond = torch.randn(2, 384 + models.MAX_ARITY)
    for kw in ({}, {"guidance": 2.0}, {"eta": 0.5}):
        a, la = small_denoiser.sample(cond, steps=6, generator=torch.Generator().manual_seed(7), **kw)
        b, lb = small_denoiser.sample(cond, steps=6, generator=torch.Generator().manual_seed(7), **kw)
        c, _ = small_denoiser.sample(cond, steps=6, generator=torch.Generator().manual_seed(8), **kw)
        assert torch.equal(a, b) and torch.equal(la, lb)
        assert not torch.allclose(a, c)


def test_contrastive_loss_prefers_aligned_pairs():
    torch.manual_seed(0)
    z = torch.nn.functional.normalize(torch.randn(16, 32), dim=-1)
    ids = torch.arange(16)
    aligned = models.contrastive_loss(z, z, torch.tensor(10.0), ids)
    shuffled = models.contrastive_loss(z, z.roll(1, dims=0), torch.tensor(10.0), ids)
    assert aligned < shuffled
    assert aligned < np.log(16) < shuffled
    # two descriptions of one program: both are positives, the loss stays finite and lower
    ids2 = torch.tensor([0, 0] + list(range(1, 15)))
    assert torch.isfinite(models.contrastive_loss(z, z, torch.tensor(10.0), ids2))


def test_cosine_alphas_bar_decreases_inside_the_unit_interval():
    for T in (10, 50, 200, 1000):
        ab = models.cosine_alphas_bar(T)
        assert ab.shape == (T,)
        assert ((ab > 0) & (ab < 1)).all()
        assert (ab[1:] <= ab[:-1]).all() and ab[0] > 0.97 and ab[-1] < 1e-3
    ab = models.cosine_alphas_bar(200)
    assert (ab[1:] < ab[:-1]).all()


def test_predicted_x0_lies_in_the_span_of_the_operations(small_denoiser):
    torch.manual_seed(0)
    small_denoiser.set_table(torch.randn(len(VOCAB), 8))
    sure = torch.full((1, models.MAX_OPS, len(VOCAB)), -1e4)
    sure[0, torch.arange(models.MAX_OPS), torch.tensor([3, 1, 0, 0, 0])] = 0.0
    x0 = small_denoiser.x0_from_logits(sure)
    assert torch.allclose(x0[0], small_denoiser.table[[3, 1, 0, 0, 0]], atol=1e-5)


# --- fit: config and ROC-AUC --------------------------------------------------------------------
@pytest.mark.parametrize("field,value", [
    ("d", 0), ("width", 0), ("layers", 0), ("T", 0), ("batch", 0), ("sample_steps", 0),
    ("epochs_contrastive", -1), ("epochs_diffusion", -1), ("epochs_scorer", -1),
    ("lr", 0.0), ("lr", 1.0), ("cond_drop", 1.0), ("cond_drop", -0.1), ("dropout", 1.0), ("dropout", -0.1),
])
def test_fit_config_check_names_the_field(field, value):
    with pytest.raises(ValueError, match=rf"^{field} must"):
        FitConfig(**{field: value}).check()


def test_fit_config_defaults_pass():
    assert FitConfig().check() == FitConfig()
    FitConfig(epochs_contrastive=0, epochs_diffusion=0, epochs_scorer=0).check()


def test_fit_config_check_rejects_more_sample_steps_than_diffusion_steps():
    with pytest.raises(ValueError, match="sample_steps"):
        FitConfig(T=20, sample_steps=50).check()


def test_fit_config_check_rejects_a_width_the_heads_do_not_divide():
    with pytest.raises(ValueError, match="width"):
        FitConfig(width=30).check()


@pytest.mark.parametrize("scores,labels,want", [
    ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], 0.75),
    ([1, 2, 3, 4], [0, 0, 1, 1], 1.0),
    ([4, 3, 2, 1], [0, 0, 1, 1], 0.0),
    ([0.5, 0.5], [1, 0], 0.5),  # a tie counts half
    ([1, 2, 2, 3], [0, 1, 0, 1], 0.875),  # (1 + 0.5 + 1 + 1) / 4
    ([0.3, 0.3, 0.3], [1.0, 0.0, 0.0], 0.5),
])
def test_roc_auc_small_cases(scores, labels, want):
    assert roc_auc(np.array(scores, float), np.array(labels, float)) == pytest.approx(want)


def test_roc_auc_needs_both_classes():
    for labels in ([1, 1, 1], [0, 0, 0]):
        with pytest.raises(ValueError, match="positives and negatives"):
            roc_auc(np.array([0.1, 0.2, 0.3]), np.array(labels))


def test_train_data_from_records():
    recs = corpus.build(max_len=1, per_program=2, with_traces=False, seed=2)
    emb = HashingEncoder().encode([r.description for r in recs])
    data = TrainData.from_records(recs, emb)
    assert len(data) == len(recs) and data.tok.shape == (len(recs), models.MAX_OPS)
    assert len(set(data.pid.tolist())) == len({(r.start, tuple(r.ops)) for r in recs})
    assert len(data.part(True)) + len(data.part(False)) == len(data)
    with pytest.raises(ValueError, match="embeddings"):
        TrainData.from_records(recs, emb[:-1])


# --- fit: a tiny trained bundle (shared) ---------------------------------------------------------
CFG = dict(d=16, width=64, layers=1, T=50, batch=256, lr=2e-3, epochs_contrastive=2, epochs_diffusion=2,
           epochs_scorer=1, sample_steps=4, seed=0)


@pytest.fixture(scope="module")
def trained(one_torch_thread):
    recs = corpus.build(max_len=2, max_programs=150, per_program=3, with_traces=False)
    enc = HashingEncoder()
    data = TrainData.from_records(recs, enc.encode([r.description for r in recs]))
    reports, logs = [], []

    def report(phase, epoch, metrics, state):
        reports.append((phase, epoch, metrics, copy.deepcopy(state)))  # state tensors alias live weights

    bundle = fit(data, FitConfig(**CFG), report=report, log=logs.append)
    return {"bundle": bundle, "data": data, "reports": reports, "logs": logs, "encoder": enc}


def test_denoising_mse_covers_every_held_out_record(trained):
    den, val = trained["bundle"].denoiser, trained["data"].part(True)
    table = trained["bundle"].encoder.latent_table().detach()
    a = denoising_mse(den, table, val, draws=3, seed=4, batch=64)
    assert a["records"] == len(val) and a["draws"] == 3 and a["sd"] >= 0
    assert a == denoising_mse(den, table, val, draws=3, seed=4, batch=64)  # seeded: reproducible
    bands = list(a["by_t"].values())
    assert a["mean"] > 0 and len(bands) == 4
    assert bands[0] < bands[-1]  # nearly clean latents are easier to denoise than nearly pure noise
    assert min(bands) <= a["mean"] <= max(bands)


def _weights(bundle: Bundle) -> dict:
    s = bundle.state()
    return {f"{m}.{k}": v.clone() for m in ("encoder", "denoiser", "scorer") for k, v in s[m].items()}


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_fit_returns_a_bundle_and_reports_every_epoch(trained):
    b = trained["bundle"]
    assert isinstance(b, Bundle) and b.config == FitConfig(**CFG)
    assert not (b.encoder.training or b.denoiser.training or b.scorer.training)
    got = [(p, e) for p, e, _, _ in trained["reports"]]
    assert got == [("contrastive", 0), ("contrastive", 1), ("diffusion", 0), ("diffusion", 1), ("scorer", 0)]
    assert {p for p, _ in got} == set(PHASES) - {"swa"}  # no weight averaging unless asked (epochs_swa)
    assert len(trained["logs"]) == len(got)
    # one console line an epoch: phase, epoch of total, a bar, its loss
    for line, (phase, epoch) in zip(trained["logs"], got):
        total = CFG[f"epochs_{phase}"]
        assert line.startswith(f"{phase} {epoch + 1}/{total} [") and " loss " in line, line
    assert trained["logs"][-1].endswith("s") and "took" in trained["logs"][-1]
    done = {}
    for phase, epoch, metrics, state in trained["reports"]:
        done[phase] = epoch + 1
        assert state["done"] == done
        assert np.isfinite(metrics["loss"])
        if phase == "contrastive":
            assert 0 <= metrics["in_batch_accuracy"] <= 1 and 0 <= metrics["all_programs_accuracy"] <= 1
        if phase == "scorer":
            assert 0 <= metrics["roc_auc"] <= 1
    last_diffusion = [m for p, _, m, _ in trained["reports"] if p == "diffusion"][-1]
    assert {"sample_mse", "exact_program", "mse_at_half_T"} <= set(last_diffusion)
    # the last report's state is the returned bundle
    assert _same_weights(_weights(Bundle.from_state(trained["reports"][-1][3]["bundle"])), _weights(b))


def test_bundle_state_round_trip_gives_identical_outputs(trained):
    b = trained["bundle"]
    b2 = Bundle.from_state(copy.deepcopy(b.state()))
    assert _same_weights(_weights(b), _weights(b2))
    torch.manual_seed(1)
    emb = torch.randn(4, DIM)
    cond = models.condition(emb, torch.tensor([1, 2, 3, 4]))
    tok = torch.tensor([models.tokens(["FILTER.even", "REDUCE.sum"])] * 4)
    x = torch.randn(4, models.MAX_OPS, CFG["d"])
    t = torch.tensor([0, 10, 25, 49])
    with torch.no_grad():
        assert torch.equal(b.encoder.encode_texts(emb), b2.encoder.encode_texts(emb))
        assert torch.equal(b.encoder.encode_programs(tok), b2.encoder.encode_programs(tok))
        assert torch.equal(b.denoiser(x, t, cond), b2.denoiser(x, t, cond))
        assert torch.equal(b.scorer(cond, tok), b2.scorer(cond, tok))
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        assert all(torch.equal(u, v) for u, v in zip(b.denoiser.sample(cond, 4, generator=g1),
                                                     b2.denoiser.sample(cond, 4, generator=g2)))


def test_from_state_rejects_another_vocabulary(trained):
    state = trained["bundle"].state()
    for vocab in (VOCAB[:-1], VOCAB + ["REDUCE.imaginary"], None):
        bad = {**state, "vocab": vocab}
        with pytest.raises(ValueError, match="different set of operations"):
            Bundle.from_state(bad)


# fast-forwarding the diffusion phase's LR schedule on resume steps it before any optimizer step
RESUME_WARNING = "ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`"


@pytest.mark.filterwarnings(RESUME_WARNING)
def test_resume_with_every_epoch_done_trains_nothing(trained):
    final = copy.deepcopy(trained["reports"][-1][3])
    before = _weights(Bundle.from_state(final["bundle"]))
    calls, logs = [], []
    b = fit(trained["data"], FitConfig(**CFG), resume=final, report=lambda *a: calls.append(a), log=logs.append)
    assert calls == [] and logs == []
    assert _same_weights(_weights(b), before)


@pytest.mark.filterwarnings(RESUME_WARNING)
def test_resume_after_a_phase_runs_only_the_rest(trained):
    mid = copy.deepcopy(next(s for p, e, _, s in trained["reports"] if (p, e) == ("contrastive", 1)))
    enc_before = {k: v.clone() for k, v in mid["bundle"]["encoder"].items()}
    phases = []
    b = fit(trained["data"], FitConfig(**{**CFG, "epochs_diffusion": 1}), resume=mid,
            report=lambda p, e, m, s: phases.append((p, e, dict(s["done"]))), log=lambda *a: None)
    assert [(p, e) for p, e, _ in phases] == [("diffusion", 0), ("scorer", 0)]
    assert phases[-1][2] == {"contrastive": 2, "diffusion": 1, "scorer": 1}
    # the encoder (frozen after its phase) is the checkpoint's
    assert all(torch.equal(b.encoder.state_dict()[k], v) for k, v in enc_before.items())


@pytest.mark.filterwarnings(RESUME_WARNING)
def test_weight_averaging_ends_with_the_mean_of_its_epochs_and_resumes(trained):
    # from the finished tiny run: two averaging epochs; the denoiser it returns is the mean of the
    # weights at the two epochs' ends, and the scorer (its phase done) is untouched
    final = copy.deepcopy(trained["reports"][-1][3])
    cfg = FitConfig(**{**CFG, "epochs_swa": 2, "swa_lr": 1e-3})
    got = []
    b = fit(trained["data"], cfg, resume=copy.deepcopy(final),
            report=lambda p, e, m, s: got.append((p, e, m, copy.deepcopy(s))), log=lambda *a: None)
    assert [(p, e) for p, e, _, _ in got] == [("swa", 0), ("swa", 1)]
    assert got[-1][3]["done"] == {"contrastive": 2, "diffusion": 2, "swa": 2, "scorer": 1}
    assert {"loss", "sample_mse", "exact_program"} <= set(got[0][2])
    avg = got[-1][3]["swa_average"]
    assert int(avg["n_averaged"]) == 2
    for k, v in b.denoiser.state_dict().items():  # the average is the denoiser returned and saved
        assert torch.equal(v, avg[f"module.{k}"]), k
        assert torch.equal(v, got[-1][3]["bundle"]["denoiser"][k]), k
    first = got[0][3]["bundle"]["denoiser"]  # after epoch 1: the weights trained, not yet averaged
    assert any(not torch.equal(first[k], v) for k, v in b.denoiser.state_dict().items())
    assert all(torch.equal(b.scorer.state_dict()[k], v) for k, v in final["bundle"]["scorer"].items())
    # stopped after the first averaging epoch: resuming averages one more epoch into the saved average
    resumed = []
    fit(trained["data"], cfg, resume=copy.deepcopy(got[0][3]),
        report=lambda p, e, m, s: resumed.append((p, e, copy.deepcopy(s))), log=lambda *a: None)
    assert [(p, e) for p, e, _ in resumed] == [("swa", 1)] and int(resumed[0][2]["swa_average"]["n_averaged"]) == 2
    with pytest.raises(ValueError, match="swa_lr"):
        FitConfig(**{**CFG, "swa_lr": 0}).check()
    with pytest.raises(ValueError, match="epochs_swa"):
        FitConfig(**{**CFG, "epochs_swa": -1}).check()


def test_fit_needs_both_splits(trained):
    data = trained["data"]
    with pytest.raises(ValueError, match="validation"):
        fit(data.part(False), FitConfig(**CFG), log=lambda *a: None)


# --- engine: requests and names -----------------------------------------------------------------
@pytest.mark.parametrize("intent", ["", "   ", "\n\t", None, 42, "x" * 2001])
def test_validate_request_rejects_bad_intents(intent):
    with pytest.raises(SynthesisInputError) as e:
        validate_request(intent, 1)
    assert e.value.field == "intent" and str(e.value).startswith("intent:")


@pytest.mark.parametrize("arity", [0, 5, -1, True, False, "2", 2.0, None])
def test_validate_request_rejects_bad_arities(arity):
    with pytest.raises(SynthesisInputError) as e:
        validate_request("sum the numbers", arity)
    assert e.value.field == "arity"


def test_validate_request_normalises_whitespace():
    assert validate_request("  sum   the\nnumbers ", 4) == ("sum the numbers", 4)
    assert validate_request("x" * 2000, 1)[0] == "x" * 2000
    assert issubclass(SynthesisInputError, ValueError)


@pytest.mark.parametrize("intent", [
    "Keep the words longer than four letters", "ünïcode wörds only", "数一数单词", "42", "3rd largest value",
    "123 go", "  !!! ", "Return the sum of the even numbers in a list of integers please and thank you",
    "for each number, double it", "Return the MAX",
])
def test_tool_name_is_a_usable_python_name(intent):
    name = tool_name(intent)
    assert name.isidentifier() and name.isascii() and name == name.lower()
    assert 1 <= len(name) <= 40 and name[0].isalpha() and not name.endswith("_")
    check(Program(name, [("numbers", "list[int]")], [Step("REDUCE.sum")]))  # the type checker accepts it


@pytest.mark.parametrize("intent", ["sum", "Max", "class", "x"])
def test_tool_name_avoids_reserved_names(intent):
    name = tool_name(intent)
    check(Program(name, [("numbers", "list[int]")], [Step("REDUCE.sum")]))
    assert Engine.programs(["REDUCE.sum"], intent, 1, name)


def test_engine_programs_fill_arguments_from_the_intent():
    progs = Engine.programs(["FILTER.greater", "REDUCE.count"], "count the values above 3", 1)
    assert progs
    p = progs[0]
    assert p.params == [("numbers", "list[int]")]
    assert p.steps[0].args == {"k": {"const": 3}} and p.steps[1].args == {}
    assert p.intent == "count the values above 3"
    _, fn = build_callable(p)
    assert fn([1, 3, 4, 9]) == 2

    two = Engine.programs(["FILTER.greater", "REDUCE.count"], "count the values above a threshold k", 2, "above")
    assert two and all(len(q.params) == 2 for q in two)
    q = two[0]
    second = q.params[1][0]
    assert any(src.get("ref") == second for s in q.steps for src in s.args.values())
    assert q.name == "above"
    _, fn = build_callable(q)
    assert fn([1, 3, 4, 9], 3) == 2 and fn([1, 3, 4, 9], 0) == 4

    # an operation whose argument the intent doesn't give gets no program; nor does a too-big arity
    assert Engine.programs(["FILTER.greater"], "keep the big ones", 1) == []
    assert Engine.programs(["REDUCE.sum"], "add them up", 2) == []
    # every program returned type-checks and has the asked arity
    for prog in Engine.programs(["TRANSFORM.split", "REDUCE.count"], "split on commas and count", 1):
        check(prog)
        assert len(prog.params) == 1 and prog.params[0][1] == "str"


# --- engine: synthesis with the tiny bundle ------------------------------------------------------
INTENTS = ["count the words in a string", "keep the values above 3 and add them up",
           "sort the numbers descending", "upper-case the words", "find the longest word in a text",
           "the sum of the squares of a list of integers"]


@pytest.fixture(scope="module")
def engine(trained):
    return Engine(trained["bundle"], trained["encoder"], steps=4, n_samples=8, threshold=0.0)


@pytest.fixture(scope="module")
def rich_intent(engine):
    """An intent for which the tiny model proposes several candidates."""
    for intent in INTENTS:
        if len(engine.synthesize(intent).candidates) >= 2:
            return intent
    pytest.fail("the tiny engine proposed fewer than two candidates for every intent")


def _assert_candidates_sound(result: Synthesis, arity: int = 1):
    from emergence.synthesis.given import agrees, answers, asks_count, given_shape
    from emergence.synthesis.opposites import ruled_out

    assert isinstance(result, Synthesis)
    # by score, after those that contradict the request's cues (`Engine.rank_key`, spelled out)
    shape, count, ruled = given_shape(result.intent), asks_count(result.intent), ruled_out(result.intent)
    keys = [(not agrees(shape, c.program.params[0][1]), not answers(count, c.returns), bool(ruled & set(c.ops)),
             -c.rank_score) for c in result.candidates]
    assert keys == sorted(keys)
    for c in result.candidates:
        assert isinstance(c, Candidate)
        checked = check(c.program)
        assert [s.op for s in c.program.steps] == c.ops
        assert len(checked.program.params) == arity
        assert 0.0 <= c.coherence <= 1.0 and c.votes >= 1
        assert f"def {c.function_name}(" in c.code and c.signature.startswith(c.function_name + "(")
        compile(c.code, "<candidate>", "exec")
        assert decode.sequence_type(c.ops) is not None


def test_synthesize_returns_checked_ranked_candidates(engine, rich_intent):
    res = engine.synthesize(rich_intent, n_candidates=10)
    _assert_candidates_sound(res)
    assert res.intent == rich_intent and res.threshold == 0.0 and res.ok
    assert res.best is res.candidates[0] and 1 <= len(res.candidates) <= 10
    assert len(res.samples) == engine.n_samples
    assert all(s is None or decode.sequence_type(s) for s in res.samples)
    # every candidate is a draw, one of its prefixes, a draw without one step or with two
    # neighbouring steps swapped
    came_from = set()
    for s in res.samples:
        if s:
            came_from |= {tuple(s[:k]) for k in range(1, len(s) + 1)}
            came_from |= {tuple(s[:i] + s[i + 1:]) for i in range(len(s))}
            came_from |= {tuple(s[:i] + [s[i + 1], s[i]] + s[i + 2:]) for i in range(len(s) - 1)}
    assert {tuple(c.ops) for c in res.candidates} <= came_from
    assert {"encode_s", "sample_s", "rank_s"} <= set(res.timings) and res.latency_s >= 0
    assert len(engine.synthesize(rich_intent, n_samples=3).samples) == 3
    assert len(engine.synthesize(rich_intent, n_candidates=1).candidates) == 1


def test_a_draw_loses_a_download_the_intent_never_asked_for(engine):
    fetch = ("HTTP_GET.text", "PARSE_HTML.page", "EXTRACT_ELEMENTS.links")
    unasked = engine._variants(fetch, asked_effects("the links in this html"))
    assert unasked and not any("HTTP_GET.text" in v for v in unasked)
    assert ("PARSE_HTML.page", "EXTRACT_ELEMENTS.links") in unasked
    asked = engine._variants(fetch, asked_effects("download the page at a URL and list its links"))
    assert fetch in asked
    # a draw that is nothing but the unasked effect supports nothing
    assert engine._variants(("HTTP_GET.text",), asked_effects("reverse the text")) == []


def test_variants_are_prefixes_and_one_step_drops(engine):
    ops = ("FILTER.even", "MAP.square", "REDUCE.sum")
    got = engine._variants(ops, asked_effects("sum the squares of the even numbers"))
    assert got[0] == ("FILTER.even",) and ops in got
    assert {("FILTER.even", "MAP.square"), ("MAP.square", "REDUCE.sum"), ("FILTER.even", "REDUCE.sum")} <= set(got)
    # two neighbouring steps swapped only where that still types (a sum is a number: nothing maps it)
    assert ("FILTER.even", "REDUCE.sum", "MAP.square") not in got
    assert len(got) == len(set(got)) and all(decode.well_formed(list(v)) for v in got)
    # the steps of the right program in the wrong order: the right order is among them
    words = ("TRANSFORM.word_tokens", "SORT.unique_sorted", "MAP.lower")
    assert ("TRANSFORM.word_tokens", "MAP.lower", "SORT.unique_sorted") in engine._variants(words, frozenset())


def test_synthesize_is_seeded_by_the_intent(engine, rich_intent):
    a, b = engine.synthesize(rich_intent), engine.synthesize("  " + rich_intent.replace(" ", "  ") + " ")
    assert a.samples == b.samples
    assert [(c.ops, c.code, c.coherence, c.votes) for c in a.candidates] == \
           [(c.ops, c.code, c.coherence, c.votes) for c in b.candidates]


def test_synthesize_with_a_given_vector_skips_the_encoder(engine, rich_intent, trained):
    vec = trained["encoder"].encode([rich_intent])[0]
    a = engine.synthesize(rich_intent)
    b = engine.synthesize(rich_intent, encoding=Encoding(vec))
    assert [c.code for c in a.candidates] == [c.code for c in b.candidates]


def test_more_readings_per_draw_widen_the_candidates(engine, rich_intent):
    one = engine.synthesize(rich_intent, n_candidates=64)
    three = engine.synthesize(rich_intent, n_candidates=64, keep=3)
    _assert_candidates_sound(three)
    assert one.samples == three.samples  # the same draws, each's best reading first
    assert {tuple(c.ops) for c in one.candidates} <= {tuple(c.ops) for c in three.candidates}
    assert sum(c.votes for c in three.candidates) >= sum(c.votes for c in one.candidates)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="keep"):
            engine.synthesize(rich_intent, keep=bad)


def test_sampled_slots_are_seeded_by_the_intent_and_stay_well_typed(engine, rich_intent):
    a = engine.synthesize(rich_intent, n_candidates=64, n_samples=32, keep=3, sample_slots=True)
    b = engine.synthesize(rich_intent, n_candidates=64, n_samples=32, keep=3, sample_slots=True)
    _assert_candidates_sound(a)
    assert [c.code for c in a.candidates] == [c.code for c in b.candidates]  # reproducible
    greedy = engine.synthesize(rich_intent, n_candidates=64, n_samples=32, keep=3)
    assert a.samples != greedy.samples  # the draws are read differently
    assert all(s is None or decode.sequence_type(s) is not None for s in a.samples)


def test_a_slot_temperature_flattens_the_sampled_readings(engine, rich_intent):
    kw = dict(n_candidates=64, n_samples=32, keep=3, sample_slots=True)
    plain = engine.synthesize(rich_intent, **kw)
    assert [c.code for c in engine.synthesize(rich_intent, slot_temperature=1.0, **kw).candidates] == \
        [c.code for c in plain.candidates]  # 1 is plain sampling
    hot = engine.synthesize(rich_intent, slot_temperature=3.0, **kw)
    _assert_candidates_sound(hot)
    assert hot.samples != plain.samples  # the same draws and noise, read from a flatter distribution
    assert [c.code for c in engine.synthesize(rich_intent, slot_temperature=3.0, **kw).candidates] == \
        [c.code for c in hot.candidates]  # still seeded by the intent
    for bad in (0, -1.0, 10.5, True, "hot", float("nan")):
        with pytest.raises(ValueError, match="slot_temperature"):
            engine.synthesize(rich_intent, slot_temperature=bad, sample_slots=True)
    with pytest.raises(ValueError, match="sample_slots=True"):  # the most likely reading has no temperature
        engine.synthesize(rich_intent, slot_temperature=2.0)


def test_the_answer_carries_the_fitted_confidence(engine, rich_intent):
    """With a confidence model the answer's probability of being right decides `ok`, not its
    coherence; without one, coherence does (engines trained before the model existed)."""
    from emergence.synthesis.confidence import FEATURES, features

    flat = {"features": list(FEATURES), "mean": [0.0] * 4, "scale": [1.0] * 4, "coef": [0.0] * 4}
    saved = engine.confidence_model, engine.threshold
    try:
        engine.threshold = 0.5
        engine.confidence_model = None
        plain = engine.synthesize(rich_intent)
        assert plain.best.confidence is None and plain.confidence == plain.best.coherence
        for bias, ok in ((math.log(0.2 / 0.8), False), (math.log(0.9 / 0.1), True)):
            engine.confidence_model = {**flat, "bias": bias}
            syn = engine.synthesize(rich_intent)
            assert syn.confidence == pytest.approx(0.2 if not ok else 0.9) and syn.ok is ok
            assert all(c.confidence is None for c in syn.candidates[1:])  # the answer's alone
        # the features it reads are the answer's own, as the fit saw them
        engine.confidence_model = {**flat, "coef": [0.0, 0.0, 1.0, 0.0], "bias": 0.0}
        syn = engine.synthesize(rich_intent)
        share = features(syn.candidates, engine.n_samples)[2]
        assert syn.confidence == pytest.approx(1 / (1 + math.exp(-share)))
    finally:
        engine.confidence_model, engine.threshold = saved


def test_synthesize_direct_sampler_and_without_scorer(engine, rich_intent):
    d = engine.synthesize(rich_intent, sampler="direct")
    _assert_candidates_sound(d)
    assert len(d.samples) == 1  # one prediction, several roundings of it
    n = engine.synthesize(rich_intent, use_scorer=False)
    _assert_candidates_sound(n)
    assert n.threshold == 0.0
    # without the scorer, alignment and votes rank: the ranking score is exactly those two terms
    w = engine.rank_weights
    for c in n.candidates:
        want = w["align"] * c.alignment + w["votes"] * np.log(c.votes)
        assert want - 0.01 <= c.rank_score <= want + 1e-4
    with pytest.raises(ValueError, match="sampler"):
        engine.synthesize(rich_intent, sampler="nope")


def test_synthesize_validates_its_request(engine):
    with pytest.raises(SynthesisInputError, match="intent"):
        engine.synthesize("   ")
    with pytest.raises(SynthesisInputError, match="arity"):
        engine.synthesize("sum them", arity=0)


def test_synthesize_with_arity_two_gives_two_parameter_tools(engine):
    res = engine.synthesize("keep the values above a threshold k and count them", arity=2, n_samples=16)
    _assert_candidates_sound(res, arity=2)


def test_engine_load_from_a_saved_state(engine, rich_intent, trained, tmp_path):
    path = tmp_path / "model.pt"
    torch.save({**trained["bundle"].state(), "encoder_name": "hashing"}, path)
    loaded = Engine.load(str(path), steps=4, n_samples=8, threshold=0.0)
    assert isinstance(loaded.encoder, HashingEncoder)
    a, b = engine.synthesize(rich_intent), loaded.synthesize(rich_intent)
    assert [(c.code, c.coherence) for c in a.candidates] == [(c.code, c.coherence) for c in b.candidates]


def test_capabilities_name_operations(engine, trained):
    caps = capabilities(engine, trained["encoder"].encode(["sum the numbers"])[0], k=5)
    assert len(caps) == 5 and len(set(caps)) == 5
    for line in caps:
        op, doc = line.split(": ", 1)
        assert op in OPS and doc == OPS[op].doc


# --- pipeline ----------------------------------------------------------------------------------
def in_process_verifier(code: str, function_name: str, tests: list) -> int:
    """Passed-test count, running our own compiler's output in the restricted namespace."""
    ns = namespace()
    try:
        exec(compile(code, "<tool>", "exec"), ns)
        fn = ns[function_name]
    except Exception:  # noqa: BLE001 -- e.g. an effectful tool's import is refused here
        return 0
    passed = 0
    for t in tests:
        try:
            passed += values_equal(fn(*copy.deepcopy(t["args"])), t["expected"])
        except Exception:  # noqa: BLE001
            pass
    return passed


@pytest.fixture
def memory(tmp_path):
    backend = LocalBackend(str(tmp_path / "memory"))
    yield HierarchicalMemory(backend, dim=DIM)
    backend.close()


def _example_for(engine, intent, json_safe=False) -> tuple[list, Candidate]:
    """An example one of the engine's candidates reproduces (its own output on a generated input)."""
    rng = random.Random(0)
    for cand in engine.synthesize(intent, n_candidates=10).candidates:
        if check(cand.program).effects:
            continue
        ptype = cand.program.params[0][1]
        for _ in range(5):
            arg = inputs.value_of(ptype, rng, "text")
            try:
                out = build_callable(cand.program)[1](copy.deepcopy(arg))
            except Exception:  # noqa: BLE001
                continue
            if json_safe and json.loads(json.dumps(out)) != out:
                continue
            return [{"args": [arg], "expected": out}], cand
    pytest.fail(f"no candidate for {intent!r} runs on generated inputs")


def test_service_cannot_synthesize_below_the_threshold(trained, memory, rich_intent):
    strict = Engine(trained["bundle"], trained["encoder"], steps=4, n_samples=8, threshold=1.01)
    service = SynthesisService(strict, memory=memory)
    with pytest.raises(CannotSynthesize) as e:
        service.synthesize(rich_intent)
    d = e.value.detail
    assert d["error"] == "cannot_synthesize" and d["message"] and str(e.value) == d["message"]
    assert d["closest_capabilities"] and all(c.split(": ")[0] in OPS for c in d["closest_capabilities"])
    assert d["threshold"] == 1.01 and 0 <= d["best_coherence"] <= 1 and d["latency_ms"] >= 0
    json.dumps(d)  # JSON-able
    vec = trained["encoder"].encode([rich_intent])[0]
    episodes = memory.similar_episodes(vec, k=5)
    assert [(ep["intent"], ep["outcome"], ep["tool_id"]) for ep in episodes] == \
           [(rich_intent, "cannot_synthesize", None)]
    assert memory.find_tools(vec) == []  # nothing stored


def test_service_answers_stores_and_does_not_reuse_unverified_tools(trained, engine, memory, rich_intent):
    service = SynthesisService(engine, memory=memory)
    a = service.synthesize(rich_intent)
    for key in ("code", "function_name", "signature", "docstring", "program", "coherence", "tool_id", "latency_ms"):
        assert a[key] is not None, key
    assert a["verified"] is None and a["reused"] is False
    assert 0 <= a["coherence"] <= 1 and a["confidence"] == a["coherence"]
    assert f"def {a['function_name']}(" in a["code"]
    check(Program.from_dict(a["program"]))
    assert a["code"] == engine.synthesize(rich_intent).best.code
    json.dumps(a)

    vec = trained["encoder"].encode([rich_intent])[0]
    stored = memory.get_tool(a["tool_id"])
    assert stored["code"] == a["code"] and stored["verified"] is None and stored["intent"] == rich_intent
    assert [m.tool_id for m in memory.find_tools(vec)] == [a["tool_id"]]
    assert memory.find_tools(vec, verified_only=True) == []

    again = service.synthesize(rich_intent)  # an unverified tool is not handed out again
    assert again["reused"] is False and again["code"] == a["code"]
    outcomes = [ep["outcome"] for ep in memory.similar_episodes(vec, k=10)]
    assert outcomes == ["unverified", "unverified"]


def test_service_without_memory(engine, rich_intent):
    a = SynthesisService(engine).synthesize(rich_intent, n_candidates=1)
    assert a["reused"] is False and "tool_id" not in a


def _check_verified_reuse(service, memory, engine, intent, examples, vec):
    first = service.synthesize(intent, examples=examples)
    assert first["reused"] is False and first["verified"] == {"passed": 1, "total": 1}
    assert passes_in_process(first["program"], examples)
    assert memory.find_tools(vec, verified_only=True)[0].tool_id == first["tool_id"]

    reused = service.synthesize(intent)
    assert reused["reused"] is True and reused["reused_from"] == intent
    assert reused["tool_id"] == first["tool_id"] and reused["code"] == first["code"]
    assert reused["coherence"] is None and reused["confidence"] == pytest.approx(1.0, abs=1e-5)
    assert reused["verified"] == {"passed": 1, "total": 1}

    with_examples = service.synthesize(intent, examples=examples)
    assert with_examples["reused"] is True and with_examples["verified"] == {"passed": 1, "total": 1}

    # examples the stored tool fails: not reused, and no candidate reproduces them either
    wrong = [{"args": examples[0]["args"], "expected": ["certainly", "not", "this"]}]
    with pytest.raises(CannotSynthesize, match="reproduces the examples") as e:
        service.synthesize(intent, examples=wrong)
    assert e.value.detail["closest_capabilities"]

    # another arity: the stored one-parameter tool doesn't fit
    try:
        other = service.synthesize(intent, arity=2)
        assert other["reused"] is False
    except CannotSynthesize:
        pass
    outcomes = sorted(ep["outcome"] for ep in memory.similar_episodes(vec, k=10))
    assert outcomes.count("reused") == 2 and outcomes.count("verified") == 1
    assert "cannot_synthesize" in outcomes


def test_op_prior_is_each_operation_s_chance_to_fill_some_slot():
    V = len(models.VOCAB)
    logp = np.full((2, models.MAX_OPS, V), -1e9)
    tok = {op: models.VOCAB.index(op) for op in ("FILTER.even", "REDUCE.sum", "MAP.square")}
    logp[:, 2:, 0] = 0.0  # <end> from the third slot on
    logp[0, 0, tok["FILTER.even"]] = logp[0, 1, tok["REDUCE.sum"]] = 0.0  # draw 1: even, sum
    logp[1, 0, tok["MAP.square"]] = logp[1, 1, tok["REDUCE.sum"]] = 0.0  # draw 2: square, sum
    prior = op_prior(logp)
    assert set(prior) == set(models.VOCAB[1:])
    assert prior["REDUCE.sum"] == pytest.approx(1.0)
    assert prior["FILTER.even"] == pytest.approx(0.5) and prior["MAP.square"] == pytest.approx(0.5)
    assert sum(prior.values()) == pytest.approx(2.0)
    logp[0, 0] = np.log(np.full(V, 1 / V))  # a slot unsure among all V tokens
    prior = op_prior(logp)
    assert prior["FILTER.even"] == pytest.approx(1 / V / 2) and prior["MAP.square"] == pytest.approx((1 / V + 1) / 2)


def test_synthesis_carries_the_op_prior_and_the_service_searches_by_it(engine, memory, monkeypatch):
    syn = engine.synthesize("upper-case the words")
    assert set(syn.op_prior) == set(models.VOCAB[1:]) and all(0 <= p <= 1 for p in syn.op_prior.values())
    for op in syn.samples[0] or []:  # an operation some draw rounded to is somewhat likely
        assert syn.op_prior[op] > 1 / len(models.VOCAB) / 2
    # examples no candidate for this intent fits: the search finds them, guided by the prior
    from emergence.synthesis import enumerative
    calls = []

    def spy(arity, examples, prior, **kw):
        calls.append(prior)
        return enumerative.guided_programs.__wrapped__(arity, examples, prior, **kw)

    spy.__wrapped__ = enumerative.guided_programs
    monkeypatch.setattr(enumerative, "guided_programs", spy)
    # no repairs nor second round: one edit of a candidate, or a wider draw, may fit these examples
    # too, and this test is the search's
    service = SynthesisService(engine, verify=in_process_verifier, search_s=30.0, compose=False, repair_s=0,
                               wide_samples=0)
    # examples of a tool that none of the engine's candidates is (the tiny model's proposals vary
    # with its training): the first element, else the last, else the largest minus the smallest
    tries = [([[3, 1, 4, 1, 5]], 3, [[2, 7]], 2, [[9, 1]], 9), ([[3, 1, 4, 1, 5]], 5, [[2, 7]], 7, [[9, 1]], 1),
             ([[3, 1, 4, 1, 5]], 4, [[2, 7]], 5, [[9, 1]], 8)]
    cands = engine.synthesize("upper-case the words", n_candidates=service.max_verified, n_samples=service.example_samples,
                              keep=service.example_keep, sample_slots=True,
                              slot_temperature=service.example_temperature).candidates
    for a1, e1, a2, e2, a3, e3 in tries:
        examples = [{"args": a1, "expected": e1}, {"args": a2, "expected": e2}]
        if not any(in_process_verifier(c.code, c.function_name, examples) == 2 for c in cands):
            break
    else:
        pytest.fail("every example set is fitted by some candidate of the tiny model")
    answer = service.synthesize("upper-case the words", examples=examples)
    assert answer["found_by"] == "search" and answer["verified"] == {"passed": 2, "total": 2}
    assert len(calls) == 1 and set(calls[0]) == set(models.VOCAB[1:])
    assert in_process_verifier(answer["code"], answer["function_name"], [{"args": a3, "expected": e3}]) == 1


def test_with_examples_a_second_wider_round_runs_only_when_the_first_fails(engine, monkeypatch):
    # the first round's only candidate sums the numbers; the second round's best is that again
    # (tried already: not run twice), then the sum of the positive ones, which the examples want
    from emergence.synthesis.compiler import compile_program

    def candidate(steps, intent="add the numbers"):
        prog = Program("tool", [("numbers", "list[int]")], [Step(s) for s in steps], intent)
        tool = compile_program(prog)
        return Candidate(ops=steps, program=prog, code=tool.code, function_name=tool.function_name,
                         signature=tool.signature, docstring=tool.docstring, coherence=0.9, votes=1)

    first, second = [candidate(["REDUCE.sum"])], [candidate(["REDUCE.sum"]), candidate(["FILTER.positive", "REDUCE.sum"])]
    calls = []

    def synthesize(intent, arity=1, **kw):
        calls.append(kw)
        cands = second if kw["n_samples"] == 1024 else first
        return Synthesis(intent=intent, samples=[], threshold=0.5, latency_s=0.0, candidates=cands, op_prior={})

    monkeypatch.setattr(engine, "synthesize", synthesize)
    checked = []

    def verify(code, fn, tests):
        checked.append(code)
        return in_process_verifier(code, fn, tests)

    service = SynthesisService(engine, verify=verify, search_s=0, repair_s=0, compose=False)
    positive = [{"args": [[1, -2, 3]], "expected": 4}, {"args": [[-1, 5]], "expected": 5}]
    answer = service.synthesize("add up the positive numbers", examples=positive)
    assert answer["found_by"] == "engine" and answer["round"] == 2 and answer["verified"] == {"passed": 2, "total": 2}
    assert [s["op"] for s in answer["program"]["steps"]] == ["FILTER.positive", "REDUCE.sum"]
    assert [(c["n_samples"], c["keep"], c["slot_temperature"]) for c in calls] == [(256, 5, 1.5), (1024, 8, 2.5)]
    assert checked == [first[0].code, second[1].code]  # the sum once: the second round skips what was tried
    # examples the first round passes: no second round
    calls.clear()
    answer = service.synthesize("add the numbers", examples=[{"args": [[1, -2]], "expected": -1},
                                                             {"args": [[4]], "expected": 4}])
    assert answer["round"] == 1 and len(calls) == 1
    # neither round passes: refused, saying how many candidates were tried
    with pytest.raises(CannotSynthesize, match="none of the engine's 2 best candidates"):
        service.synthesize("add the numbers", examples=[{"args": [[1]], "expected": 7}, {"args": [[2]], "expected": 9}])
    # turned off: one round
    calls.clear()
    with pytest.raises(CannotSynthesize, match="none of the engine's 1 best candidates"):
        SynthesisService(engine, verify=verify, search_s=0, repair_s=0, compose=False,
                         wide_samples=0).synthesize("add up the positive numbers", examples=positive)
    assert len(calls) == 1


def test_the_service_repairs_a_candidate_one_step_from_the_examples(engine, monkeypatch):
    # the engine's only candidate sums every number; the examples sum the positive ones
    from emergence.synthesis.compiler import compile_program

    cand = Program("sum_numbers", [("numbers", "list[int]")], [Step("REDUCE.sum")], "add the numbers")
    tool = compile_program(cand)
    result = Synthesis(intent="add the numbers", samples=[["REDUCE.sum"]], threshold=0.5, latency_s=0.0,
                       candidates=[Candidate(ops=["REDUCE.sum"], program=cand, code=tool.code,
                                             function_name=tool.function_name, signature=tool.signature,
                                             docstring=tool.docstring, coherence=0.9, votes=1)],
                       op_prior={"FILTER.positive": 0.8, "REDUCE.sum": 0.9})
    monkeypatch.setattr(engine, "synthesize", lambda *a, **kw: result)
    intent = "add up the numbers that are above zero"
    examples = [{"args": [[1, -2, 3]], "expected": 4}, {"args": [[-1, 5, -7, 2]], "expected": 7}]
    service = SynthesisService(engine, verify=in_process_verifier, search_s=0, compose=False)
    answer = service.synthesize(intent, examples=examples)
    assert answer["found_by"] == "repair" and answer["verified"] == {"passed": 2, "total": 2}
    assert [s["op"] for s in answer["program"]["steps"]] == ["FILTER.positive", "REDUCE.sum"]
    assert answer["function_name"] == tool_name(intent) and answer["program"]["intent"] == intent
    assert in_process_verifier(answer["code"], answer["function_name"], [{"args": [[0, 4, -4]], "expected": 4}]) == 1
    # without repairs (nor composition or search) the same request is refused, not guessed
    with pytest.raises(CannotSynthesize, match="reproduces the examples"):
        SynthesisService(engine, verify=in_process_verifier, search_s=0, compose=False,
                         repair_s=0).synthesize(intent, examples=examples)


def test_service_reuses_a_verified_tool(trained, engine, memory, rich_intent):
    examples, _ = _example_for(engine, rich_intent)
    service = SynthesisService(engine, memory=memory, verify=in_process_verifier)
    vec = trained["encoder"].encode([rich_intent])[0]
    _check_verified_reuse(service, memory, engine, rich_intent, examples, vec)


NO_BWRAP = bwrap_missing()


@pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")
def test_service_verifies_in_the_sandbox(trained, engine, memory, rich_intent):
    examples, _ = _example_for(engine, rich_intent, json_safe=True)
    vec = trained["encoder"].encode([rich_intent])[0]
    with open_executor(limits={"wall_s": 2.0, "cpu_s": 2.0}) as sb:
        service = SynthesisService(engine, memory=memory, verify=sandbox_verifier(sb.run))
        _check_verified_reuse(service, memory, engine, rich_intent, examples, vec)


def test_service_refuses_an_intent_the_encoder_cannot_read(engine, memory):
    service = SynthesisService(engine, memory=memory)
    assert not HashingEncoder().encode(["?? !!"]).any()
    with pytest.raises(SynthesisInputError, match="intent"):
        service.synthesize("?? !!")
    # non-ASCII words are words: an answer or a refusal, never a memory error
    assert HashingEncoder().encode(["数一数单词"]).any()
    try:
        assert service.synthesize("数一数单词")["reused"] is False
    except CannotSynthesize:
        pass


def test_sandbox_verifier_counts_passed_tests():
    class Result:
        def __init__(self, d):
            self.d = d

        def to_dict(self):
            return self.d

    tests = [{"args": [1], "expected": 1}] * 3
    both = [{"status": "passed"}, {"status": "failed"}, {"status": "passed"}]
    assert sandbox_verifier(lambda *a: {"status": "failed", "tests": both})("c", "f", tests) == 2
    assert sandbox_verifier(lambda *a: Result({"status": "passed", "tests": both[:1]}))("c", "f", tests) == 1
    assert sandbox_verifier(lambda *a: {"status": "timeout", "tests": []})("c", "f", tests) == 0


def test_service_validates_requests(engine, memory, rich_intent):
    service = SynthesisService(engine, memory=memory, verify=in_process_verifier)
    cases = [
        (dict(examples=[{"args": [[1, 2], 3], "expected": 3}]), "examples[0].args"),
        (dict(examples=[{"args": [[1]], "expected": 1}, {"args": [], "expected": 0}]), "examples[1].args"),
        (dict(examples=[{"args": [[1]]}]), "examples[0]"),
        (dict(examples=["nope"]), "examples[0]"),
        (dict(examples={"args": [[1]], "expected": 1}), "examples"),
        (dict(examples=[{"args": [[1]], "expected": 1}] * 21), "examples"),
        (dict(n_candidates=0), "n_candidates"),
        (dict(n_candidates=65), "n_candidates"),
        (dict(n_candidates=True), "n_candidates"),
        (dict(arity=7), "arity"),
    ]
    for kwargs, field in cases:
        with pytest.raises(SynthesisInputError) as e:
            service.synthesize(rich_intent, **kwargs)
        assert e.value.field == field, (kwargs, e.value)
    with pytest.raises(SynthesisInputError) as e:
        service.synthesize("", examples=[])
    assert e.value.field == "intent"
    no_sandbox = SynthesisService(engine, memory=memory)
    with pytest.raises(SynthesisInputError) as e:
        no_sandbox.synthesize(rich_intent, examples=[{"args": [[1]], "expected": 1}])
    assert e.value.field == "examples" and "sandbox" in str(e.value)
    # refused requests leave no trace
    vec = engine.encoder.encode([rich_intent])[0]
    assert memory.similar_episodes(vec) == [] and memory.find_tools(vec) == []


# --- encoders ----------------------------------------------------------------------------------
def test_hashing_encoder():
    enc = HashingEncoder()
    texts = ["Sum the even numbers", "sum the even numbers", "extract the links from an HTML page", "x"]
    out = enc.encode(texts)
    assert out.shape == (4, DIM) == (4, enc.dim) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(out, HashingEncoder().encode(texts))  # deterministic, across instances
    assert np.allclose(out[0], out[1])  # case-insensitive
    assert out[0] @ out[1] > out[0] @ out[2]
    assert enc.encode([]).shape == (0, DIM)


def test_make_encoder():
    assert isinstance(make_encoder("hashing"), HashingEncoder)
    assert isinstance(make_encoder("minilm"), MiniLMEncoder)  # lazy: nothing loaded yet
    with pytest.raises(ValueError, match="nope"):
        make_encoder("nope")


@pytest.mark.slow
def test_minilm_encoder_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    enc = MiniLMEncoder(threads=1)
    out = enc.encode(["add up all the numbers in the list", "compute the sum of a list of numbers",
                      "extract the links from a web page"])
    assert out.shape == (3, 384) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-4)
    assert out[0] @ out[1] > out[0] @ out[2] + 0.2
    assert np.allclose(enc.encode(["compute the sum of a list of numbers"])[0], out[1], atol=1e-5)


# --- the main clause of a request with asides (views.py) ------------------------------------------
@pytest.mark.parametrize("intent,clause", [
    ("Sum the order totals. Empty list -> 0.", "Sum the order totals."),
    ("keep the negative values (their order stays the same)", "keep the negative values"),
    ("Count the words in a text; punctuation does not count", "Count the words in a text"),
    ("Average the scores -- there is always at least one", "Average the scores"),
    ("Round 3.5 up to the next integer value please", None),  # a decimal point ends no sentence
    ("Sum the list.", None),  # nothing but the request itself
    ("Sum them. Then double it.", None),  # a clause going on with the steps is the request's own
    ("Keep the even ones of a list. Next, square them. Also: the list may be empty.",
     "Keep the even ones of a list. Next, square them."),
    ("How many epochs had a loss below k? Input: the losses and k.", "How many epochs had a loss below k?"),
    ("Input: a list of values. Output: their mean.", "Output: their mean."),  # the input named apart
    ("Input: some values. Sum.", None),  # what is left is too short to stand alone
    ("Input: a list of values. Output: the mean of the negative ones. Return 0 if none.",
     "Output: the mean of the negative ones."),
])
def test_main_clause_drops_the_asides(intent, clause):
    assert main_clause(intent) == clause


def test_an_unsure_answer_to_a_request_with_asides_also_reads_its_main_clause(engine, rich_intent):
    with_aside = rich_intent.rstrip(".") + ". The input may be empty."
    unsure = Engine(engine.bundle, engine.encoder, steps=4, n_samples=8, threshold=1.01)  # never sure
    plain = unsure.synthesize(rich_intent)
    both = unsure.synthesize(with_aside)
    assert len(plain.samples) == 8 and plain.timings["views"] == 1  # no asides: the request alone
    assert len(both.samples) == 8 + 4 and both.timings["views"] == 2
    _assert_candidates_sound(both)
    # each candidate is judged against the request and its main clause: the mean of the two
    vecs = engine.encode([with_aside, main_clause(with_aside)])
    best = both.best
    cohs, aligns = zip(*[engine.judge(v.vector, 1, [best.ops]) for v in vecs])
    logit = lambda p: float(np.log(p[0] / (1 - p[0])))  # noqa: E731
    w = engine.rank_weights
    expected = (w["scorer"] * np.mean([logit(c) for c in cohs]) + w["align"] * np.mean([a[0] for a in aligns])
                + w["votes"] * np.log(best.votes))
    assert best.rank_score == pytest.approx(expected, abs=2e-3)
    # a sure answer (threshold 0 here), or an engine told not to, reads the request alone
    assert engine.synthesize(with_aside).timings["views"] == 1
    never = Engine(engine.bundle, engine.encoder, steps=4, n_samples=8, threshold=1.01, clause_samples=0)
    assert len(never.synthesize(with_aside).samples) == 8


def test_a_request_and_its_main_clause_are_encoded_in_one_pass(engine, rich_intent):
    with_aside = rich_intent.rstrip(".") + ". The input may be empty."
    enc = engine.encode_request(with_aside)
    clause, part = enc.clause
    assert clause == main_clause(with_aside)
    alone = engine.encode([with_aside, clause])
    np.testing.assert_allclose(enc.vector, alone[0].vector, atol=1e-5)
    np.testing.assert_allclose(part.vector, alone[1].vector, atol=1e-5)
    assert engine.encode_request(rich_intent).clause is None  # no asides: nothing more to encode
    off = Engine(engine.bundle, engine.encoder, clause_samples=0)
    assert off.encode_request(with_aside).clause is None
    # an unsure answer reads the clause from that one pass: the engine encodes nothing more
    unsure = Engine(engine.bundle, engine.encoder, steps=4, n_samples=8, threshold=1.01)
    calls = []
    unsure.encode = lambda texts: calls.append(list(texts)) or Engine.encode(unsure, texts)
    syn = unsure.synthesize(with_aside)
    assert syn.timings["views"] == 2 and calls == [[with_aside, clause]]


@pytest.mark.parametrize("bad", [-0.5, "half", None, True])
def test_a_bad_clause_share_is_refused(engine, bad):
    with pytest.raises(ValueError, match="clause_samples"):
        Engine(engine.bundle, engine.encoder, clause_samples=bad)


def test_a_derived_threshold_is_computed_from_the_value_that_reaches_its_step():
    from emergence.synthesis.engine import derived_steps, linear_form
    from emergence.synthesis.runtime import build_callable

    (prog,) = Engine.programs(["FILTER.greater", "REDUCE.count"], "how many are above the average?", 1)[:1]
    assert [s.op for s in prog.steps] == ["REDUCE.mean", "STORE", "RETRIEVE", "FILTER.greater", "REDUCE.count"]
    code, fn = build_callable(prog)
    assert fn([1, 2, 3, 10]) == 1  # mean 4
    assert "mean = mean" not in code and "x > mean" in code  # kept under the name it has: no alias line
    assert linear_form(prog) == (["FILTER.greater", "REDUCE.count"], [{"k": {"derived": "REDUCE.mean"}}, {}])
    # later in a pipeline, from the flowing value: the parsed column, not the CSV text
    intent = "sum the values of the price column that are below the median"
    ops = ["PARSE_CSV.rows", "EXTRACT_ELEMENTS.column", "MAP.to_number", "FILTER.less", "REDUCE.sum"]
    prog = next(p for p in Engine.programs(ops, intent, 1) if p.steps[1].args == {"name": {"const": "price"}})
    assert build_callable(prog)[1]("price\n1\n2\n3\n10\n") == 3  # median 2.5
    assert linear_form(prog)[0] == ops and linear_form(prog)[1][3] == {"k": {"derived": "REDUCE.median"}}
    # other trees are not linear
    tree = Program("t", [("numbers", "list[int]")], [Step("REDUCE.max"), Step("STORE", name="hi"),
                                                      Step("RETRIEVE", name="numbers"), Step("REDUCE.min"),
                                                      Step("REDUCE.minus", {"other": {"ref": "hi"}})])
    assert linear_form(tree) is None
    # names never collide with the parameters or each other
    steps = derived_steps(["FILTER.greater", "FILTER.less"], [{"k": {"derived": "REDUCE.mean"}},
                                                             {"k": {"derived": "REDUCE.mean"}}], ["average"])
    kept = [s.name for s in steps if s.op == "STORE"]
    assert len(set(kept)) == len(kept) and "mean" in kept and "mean2" in kept


# --- shares: "what fraction of them are ..." ---------------------------------------------------
@pytest.mark.parametrize("intent, asked", [
    ("What fraction of the numbers are positive?", True),
    ("the proportion of words that are longer than 3 letters", True),
    ("what share of the lines start with a #?", True),
    ("divide each value by the total: each value's share of the total", False),
    ("the fraction of the sum", False),
    ("what percentage of the numbers are even?", False),  # no step scales by 100: not read as a share
    ("what fraction of a list's values are negative?", True),
    ("express each value as a proportion of the maximum", False),
    ("round each number to the nearest fraction of 0.5", False),
    ("keep the positive numbers", False),
])
def test_a_share_is_read_only_where_one_is_asked(intent, asked):
    from emergence.synthesis.shares import asks_share

    assert asks_share(intent) is asked


def test_a_share_counts_the_kept_part_over_what_reached_the_first_filter():
    from emergence.synthesis.engine import linear_form
    from emergence.synthesis.shares import SHARE, share_form

    assert share_form(["FILTER.positive", "REDUCE.count"]) == ["FILTER.positive", SHARE]  # its own count
    assert share_form(["MAP.square", "REDUCE.sum"]) is None  # nothing kept: no share to take
    # of the input
    prog = Engine.typed_program(share_form(["FILTER.positive"]), [{}, {}], "what fraction are positive?")
    code, fn = build_callable(prog)
    assert fn([3, -1, 0, 5]) == 0.5 and fn([-2]) == 0.0
    assert linear_form(prog) == (["FILTER.positive", SHARE], [{}, {"of": {"const": 1}}])  # the whole: 1 step back
    # of the value reaching the first filter (the words, not the text's characters), kept by
    # the name it already has, and with a threshold that is a statistic of those words' lengths
    ops = share_form(["TRANSFORM.word_tokens", "FILTER.longer"])
    prog = Engine.typed_program(ops, [{}, {"n": {"const": 3}}, {}], "what fraction of the words are long?")
    code, fn = build_callable(prog)
    assert fn("an ox ate the big green apple") == pytest.approx(2 / 7)
    assert "words = words" not in code and "len(words)" in code
    assert linear_form(prog) == (ops, [{}, {"n": {"const": 3}}, {"of": {"const": 1}}])
    (prog,) = Engine.programs(share_form(["MAP.to_number", "FILTER.greater"]),
                              "what share of the values are above their average?", 1)[:1]
    assert build_callable(prog)[1](["1", "2", "3", "10"]) == 0.25  # mean 4, measured on the numbers
    assert linear_form(prog)[0] == ["MAP.to_number", "FILTER.greater", SHARE]
    assert linear_form(prog)[1][1] == {"k": {"derived": "REDUCE.mean"}}
    # read back, a share says where its whole is, so a step added before it or a filter chained
    # ahead of it does not change what it counts
    ops, args = linear_form(prog)
    again = Engine.typed_program(["FILTER.nonempty"] + ops, [{}] + args, "x")
    assert build_callable(again)[1](["", "1", "2", "3", "10"]) == 0.25  # of the four numbers, not the five strings
    plain = Engine.typed_program(["FILTER.even", "FILTER.positive", SHARE], [{}, {}, {"of": {"const": 1}}], "x")
    assert build_callable(plain)[1]([-2, 1, 2, 4, 5]) == 2 / 3  # positive among the even ones, not among all
    # a share of nothing divides by zero, as a mean of nothing does
    with pytest.raises(ZeroDivisionError):
        build_callable(Engine.typed_program(share_form(["FILTER.even"]), [{}, {}], "fraction even"))[1]([])


def test_a_share_without_a_filter_or_of_the_wrong_value_is_refused():
    from emergence.synthesis.engine import derived_steps, linear_form
    from emergence.synthesis.shares import SHARE

    # nothing filtered: the SHARE stays unwritten and the type checker refuses it by name
    with pytest.raises(TypeCheckError, match="SHARE"):
        check(Program("t", [("numbers", "list[int]")], derived_steps(["MAP.square", SHARE], [{}, {}], ["numbers"])))
    assert Engine.typed_program(["MAP.square", SHARE], [{}, {}], "x") is None
    # a share chained before another filter (composition tries such chains) is refused, not a crash
    assert Engine.typed_program(["FILTER.even", SHARE, "FILTER.positive", SHARE], [{}] * 4, "x") is None
    # a tail that counts another kept value than its whole is not read as a share (it would be
    # written back counting the whole)
    ops = ["MAP.abs", "FILTER.positive", "FILTER.greater", SHARE]
    prog = Engine.typed_program(ops, [{}, {}, {"k": {"derived": "REDUCE.mean"}}, {}], "x")
    steps = list(prog.steps)
    whole = next(i for i, s in enumerate(steps) if s.op == "RETRIEVE" and i > 5)
    other = next(s.name for s in steps if s.op == "STORE" and s.name != steps[whole].name)
    steps[whole] = Step("RETRIEVE", name=other)
    assert linear_form(prog) is not None and linear_form(Program("t", prog.params, steps)) is None
    # a share's steps that count the text where the words were kept are not read as a share
    words = Engine.typed_program(["TRANSFORM.word_tokens", "FILTER.longer", SHARE], [{}, {"n": {"const": 3}}, {}], "x")
    assert linear_form(words) is not None
    whole = next(i for i, s in enumerate(words.steps) if s.op == "RETRIEVE")
    steps = list(words.steps)
    steps[whole] = Step("RETRIEVE", name="text")
    assert linear_form(Program("t", [("text", "str")], steps)) is None


def test_a_share_question_drops_candidates_that_filter_nothing(engine):
    from collections import Counter

    from emergence.synthesis.shares import SHARE

    intent = "what fraction of the numbers are even?"
    votes = Counter({("FILTER.even",): 4, ("FILTER.even", "REDUCE.count"): 3, ("REDUCE.sum",): 2})
    view = engine._view(engine.encode_request(intent), 1)
    with torch.no_grad():
        cands = engine._candidates(intent, 1, votes, [view], True, 10)
        plain = engine._candidates("count the even numbers", 1, votes, [view], True, 10)
    # the two filters read as one share; a sum answers no share and is not offered
    assert len(cands) == 1 and cands[0].ops in (["FILTER.even"], ["FILTER.even", "REDUCE.count"])
    assert build_callable(cands[0].program)[1]([1, 2, 4, 5]) == 0.5
    assert SHARE not in cands[0].code and "ratio" in cands[0].code
    # a share cue that no draw can answer (nothing filtered) is read as if it were not there
    sums = Counter({("REDUCE.sum",): 3, ("REDUCE.max",): 1})
    with torch.no_grad():
        misread = engine._candidates("the total, as a fraction of the numbers", 1, sums, [view], True, 10)
    assert sorted(map(tuple, (c.ops for c in misread))) == sorted(sums)
    # the same votes for a request that asks no share: all three, as they are
    assert sorted(map(tuple, (c.ops for c in plain))) == sorted(votes)


# --- what the request says it is given -------------------------------------------------------
@pytest.mark.parametrize("intent, shape", [
    ("How many words are in this sentence?", "str"),
    ("Pull out every number in a comma-separated string", "str"),
    ("the title of an HTML page", "str"),
    ("Normalize a list of class labels to lowercase", "list"),
    ("From a sequence of ints, compute the average", "list"),
    ("the mean of some scores", "list"),
    ("capitalize each name in the list", "list"),  # "each name" is an item, not the input
    ("the words of this sentence that are in a list of stop words", None),  # both named: not said
    ("replace a target string with a new text in the list of lines", "list"),  # arguments are not inputs
    ("sum them", None),
])
def test_the_input_a_request_names_is_read(intent, shape):
    from emergence.synthesis.given import given_shape

    assert given_shape(intent) == shape


def test_candidates_that_take_the_other_shape_are_ranked_last(engine):
    from collections import Counter

    intent = "how many words are in this sentence?"
    votes = Counter({("REDUCE.count",): 5, ("TRANSFORM.words", "REDUCE.count"): 2})
    view = engine._view(engine.encode_request(intent), 1)
    with torch.no_grad():
        ranked = engine._rank(intent, 1, votes, [view], True, 10, 7)
        reading = Engine(engine.bundle, engine.encoder, read_cues=False)._rank(intent, 1, votes, [view], True, 10, 7)
    # counting a list's items is the sampler's commoner reading, but the request is given a sentence
    assert ranked[0].ops == ["TRANSFORM.words", "REDUCE.count"] and ranked[0].program.params[0][1] == "str"
    assert [c.program.params[0][1] for c in ranked[1:]] and all(c.program.params[0][1] != "str" for c in ranked[1:])
    # not dropped; and without the reading, the order is the ranking's own
    assert sorted(map(tuple, (c.ops for c in ranked))) == sorted(map(tuple, (c.ops for c in reading)))
    assert [c.rank_score for c in reading] == sorted((c.rank_score for c in reading), reverse=True)


@pytest.mark.parametrize("intent, asked", [
    ("How many epochs had a loss below the threshold?", True),
    ("how many words are there in a text?", True),
    ("compute how many characters each of the words has", False),  # a count per item: a list
    ("count the even numbers", False),  # no question: the ranking decides
])
def test_how_many_asks_for_one_count(intent, asked):
    from emergence.synthesis.given import answers, asks_count

    assert asks_count(intent) is asked
    assert answers(asked, "int") and answers(asked, "list[int]") is not asked


def test_a_how_many_question_ranks_the_counts_first(engine):
    from collections import Counter

    intent = "how many of the numbers are above k?"
    votes = Counter({("FILTER.greater",): 5, ("FILTER.greater", "REDUCE.count"): 2})
    view = engine._view(engine.encode_request(intent), 2)
    with torch.no_grad():
        ranked = engine._rank(intent, 2, votes, [view], True, 10, 7)
    assert ranked[0].ops == ["FILTER.greater", "REDUCE.count"] and ranked[0].returns == "int"
    assert ranked[0].program.params[1][0] == "k" and build_callable(ranked[0].program)[1]([1, 5, 7], 4) == 2
    assert ranked[1:] and all(c.returns.startswith("list[") for c in ranked[1:])  # the kept numbers


@pytest.mark.parametrize("intent, out", [
    ("Normalize a list of class labels to lowercase", {"MAP.upper", "TRANSFORM.upper"}),
    ("shout the sentence in capital letters", {"MAP.lower", "TRANSFORM.lower"}),
    ("lower-case the words, then upper-case the first one", set()),  # both named: nothing ruled out
    ("keep the values lower than 5", set()),  # a comparison, not a case
    ("sort the scores from high to low", {"SORT.asc"}),
    ("sort them in increasing order", {"SORT.desc"}),
    ("pull out every number in a string, decimals included", {"EXTRACT.integers"}),
    ("pull out the integers and decimals", set()),
    ("keep the even numbers", set()),  # even/odd is not a pair here: "drop the odd ones" keeps the even
    ("sort them in non-increasing order", set()),  # a negated word names nothing
    ("sort them, but not in descending order", set()),
    ("extract the numbers, not floats", set()),
])
def test_a_request_rules_out_the_opposite_of_what_it_names(intent, out):
    from emergence.synthesis.opposites import ruled_out

    assert ruled_out(intent) == out


def test_a_candidate_with_an_opposite_is_ranked_after_the_rest(engine):
    from collections import Counter

    intent = "convert the words to lowercase"
    votes = Counter({("MAP.upper",): 6, ("MAP.lower",): 2})
    view = engine._view(engine.encode_request(intent), 1)
    with torch.no_grad():
        ranked = engine._rank(intent, 1, votes, [view], True, 10, 8)
    assert [c.ops for c in ranked] == [["MAP.lower"], ["MAP.upper"]]
    assert build_callable(ranked[0].program)[1](["Ab", "CD"]) == ["ab", "cd"]
