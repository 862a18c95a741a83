"""The denoiser's attention to the intent's words: the encoders' word vectors, padding, the
cross-attention block, training and resuming a bundle that reads words, the engine's encodings,
and the training job's word-vector cache. A tiny bundle (hashing encoder) is trained once here;
it is not meant to be good, only real."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from emergence.synthesis import corpus, models
from emergence.synthesis.encoder import DIM, MAX_WORDS, HashingEncoder, MiniLMEncoder
from emergence.synthesis.engine import Encoding, Engine
from emergence.synthesis.fit import Bundle, FitConfig, TrainData, figures, fit
from emergence.synthesis.program import check
from training import emergence as job


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy 2-core machine: torch's thread pool otherwise spins
    yield
    torch.set_num_threads(before)


# --- encoders -----------------------------------------------------------------------------------
def test_hashing_encode_words():
    enc = HashingEncoder()
    texts = ["keep the even numbers", "", "!!", " ".join(["word"] * (MAX_WORDS + 10))]
    pooled, words = enc.encode_words(texts)
    np.testing.assert_array_equal(pooled, enc.encode(texts))
    assert [w.shape for w in words] == [(4, DIM), (0, DIM), (0, DIM), (MAX_WORDS, DIM)]
    assert all(w.dtype == np.float16 for w in words)
    # a word's vector is its own: "even" is the same vector wherever it stands
    _, (w2,) = enc.encode_words(["even numbers only"])
    np.testing.assert_array_equal(words[0][2], w2[0])
    assert not np.array_equal(words[0][2], words[0][3])


@pytest.mark.slow
def test_minilm_encode_words(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    enc = MiniLMEncoder(threads=1)
    texts = ["sum", "keep the even numbers then sort them"]
    pooled, words = enc.encode_words(texts)
    np.testing.assert_allclose(pooled, enc.encode(texts), atol=1e-5)
    # [CLS] + word pieces + [SEP]; the short text's batch padding is cut off
    assert [w.shape for w in words] == [(3, DIM), (9, DIM)] and words[0].dtype == np.float16
    _, alone = enc.encode_words(["sum"])
    np.testing.assert_allclose(alone[0].astype(np.float32), words[0].astype(np.float32), atol=2e-2)


def test_pad_words():
    w, mask = models.pad_words([np.ones((2, 4), np.float16), np.zeros((0, 4), np.float16), np.ones((3, 4))])
    assert w.shape == (3, 3, 4) and w.dtype == torch.float32
    assert mask.tolist() == [[True, True, False], [False, False, False], [True, True, True]]
    assert float(w[0, 2].abs().sum()) == 0.0
    w, mask = models.pad_words([np.zeros((0, 4))])
    assert w.shape == (1, 1, 4) and not mask.any()
    with pytest.raises(ValueError, match="at least one"):
        models.pad_words([])


# --- the cross-attention denoiser ---------------------------------------------------------------
@pytest.fixture(scope="module")
def word_denoiser():
    torch.manual_seed(0)
    den = models.Denoiser(d=8, width=32, layers=2, heads=4, T=20, words_dim=DIM).eval()
    den.set_table(torch.randn(len(models.VOCAB), 8))
    return den


def _inputs(batch=3, n_words=5):
    torch.manual_seed(1)
    return (torch.randn(batch, models.MAX_OPS, 8), torch.tensor([0, 9, 19][:batch]),
            torch.randn(batch, DIM + models.MAX_ARITY), torch.randn(batch, n_words, DIM))


@pytest.mark.parametrize("words_dim", [0, DIM])
def test_dropout_acts_in_training_only(words_dim):
    """Residual dropout changes training passes and nothing at evaluation: the same weights
    with and without dropout give the same eval output, and a model built with dropout 0
    is unchanged by train mode."""
    torch.manual_seed(0)
    plain = models.Denoiser(d=8, width=32, layers=2, heads=4, T=20, words_dim=words_dim)
    dropped = models.Denoiser(d=8, width=32, layers=2, heads=4, T=20, words_dim=words_dim, dropout=0.3)
    dropped.load_state_dict(plain.state_dict())  # dropout has no parameters: checkpoints load both ways
    x, t, cond, words = _inputs()
    kw = {"words": words, "words_mask": torch.ones(3, 5, dtype=torch.bool)} if words_dim else {}
    with torch.no_grad():
        plain.eval(), dropped.eval()
        evaluated = plain(x, t, cond, **kw)
        torch.testing.assert_close(dropped(x, t, cond, **kw), evaluated)
        plain.train(), dropped.train()
        torch.testing.assert_close(plain(x, t, cond, **kw), evaluated)
        assert not torch.allclose(dropped(x, t, cond, **kw), evaluated)
    with pytest.raises(ValueError, match="dropout"):
        models.Denoiser(d=8, width=32, layers=1, heads=4, T=20, dropout=1.0)


@torch.no_grad()
def test_word_attention_reads_real_words_only(word_denoiser):
    x, t, cond, words = _inputs()
    mask = torch.ones(3, 5, dtype=torch.bool)
    mask[0, 3:] = False
    out = word_denoiser(x, t, cond, words, mask)
    # what stands under the mask changes nothing; a real word does
    padded = words.clone()
    padded[0, 3:] = 100.0
    torch.testing.assert_close(word_denoiser(x, t, cond, padded, mask), out)
    moved = words.clone()
    moved[0, 1] += 1.0
    changed = word_denoiser(x, t, cond, moved, mask)
    assert not torch.allclose(changed[0], out[0]) and torch.allclose(changed[1:], out[1:])
    # no words at all is the null word alone, and differs from reading them
    bare = word_denoiser(x, t, cond)
    assert bare.shape == out.shape and not torch.allclose(bare, out)
    torch.testing.assert_close(word_denoiser(x, t, cond, words, torch.zeros(3, 5, dtype=torch.bool)), bare)


@torch.no_grad()
def test_one_intents_words_serve_every_draw(word_denoiser):
    x, t, cond, words = _inputs()
    one, mask = words[:1], torch.ones(1, 5, dtype=torch.bool)
    torch.testing.assert_close(word_denoiser(x, t, cond, one, mask),
                               word_denoiser(x, t, cond, one.expand(3, -1, -1), mask.expand(3, -1)))
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = word_denoiser.sample(cond[:1].expand(4, -1), steps=3, generator=g1, words=one, words_mask=mask)
    b = word_denoiser.sample(cond[:1].expand(4, -1), steps=3, generator=g2, words=one.expand(4, -1, -1),
                             words_mask=mask.expand(4, -1))
    torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="word vectors for 2 intents but 3 latents"):
        word_denoiser(x, t, cond, words[:2], torch.ones(2, 5, dtype=torch.bool))


# --- training a bundle that reads words -----------------------------------------------------------
CFG = dict(d=16, width=64, layers=1, T=50, batch=256, lr=2e-3, epochs_contrastive=1, epochs_diffusion=2,
           epochs_scorer=1, sample_steps=4, seed=0, words=True)


@pytest.fixture(scope="module")
def trained():
    recs = [r for r in corpus.build(max_len=2, max_programs=150, per_program=3, with_traces=False)
            if r.split in ("train", "val")]
    enc = HashingEncoder()
    emb, words = enc.encode_words([r.description for r in recs])
    data = TrainData.from_records(recs, emb, words)
    reports = []
    bundle = fit(data, FitConfig(**CFG), report=lambda p, e, m, s: reports.append((p, e, m, copy.deepcopy(s))),
                 log=lambda *a: None)
    return {"bundle": bundle, "data": data, "reports": reports, "encoder": enc, "records": recs}


def test_train_data_carries_words(trained):
    data, recs = trained["data"], trained["records"]
    assert data.words is not None and len(data.words) == len(data)
    val = data.part(True)
    assert len(val.words) == len(val) and all(w.dtype == np.float16 for w in val.words)
    first_val = int(np.flatnonzero(data.is_val)[0])
    np.testing.assert_array_equal(val.words[0], data.words[first_val])
    with pytest.raises(ValueError, match="word-vector lists"):
        TrainData.from_records(recs, data.emb, list(data.words)[:-1])


def test_fit_with_words_trains_and_round_trips(trained):
    b = trained["bundle"]
    assert b.config.words and b.denoiser.words_dim == DIM
    assert [(p, e) for p, e, _, _ in trained["reports"]] == [("contrastive", 0), ("diffusion", 0), ("diffusion", 1),
                                                             ("scorer", 0)]
    figs = figures(b, trained["data"])["denoising"]
    assert 0 <= figs["denoising_mse"] and 0 <= figs["exact_program"] <= 1
    b2 = Bundle.from_state(copy.deepcopy(b.state()))
    _, t, cond, words = _inputs(n_words=4)
    x = torch.randn(3, models.MAX_OPS, CFG["d"])
    with torch.no_grad():
        torch.testing.assert_close(b.denoiser(x, t, cond, words, torch.ones(3, 4, dtype=torch.bool)),
                                   b2.denoiser(x, t, cond, words, torch.ones(3, 4, dtype=torch.bool)))


def test_word_drop_trains_and_is_checked(trained):
    small = TrainData(*[getattr(trained["data"], f) for f in ("emb", "arity", "tok", "pid", "is_val", "words")])
    cfg = FitConfig(**{**CFG, "epochs_contrastive": 0, "epochs_diffusion": 1, "epochs_scorer": 0, "word_drop": 0.3})
    losses = []
    b = fit(small, cfg, report=lambda p, e, m, s: losses.append(m["loss"]), log=lambda *a: None)
    assert b.config.word_drop == 0.3 and len(losses) == 1 and np.isfinite(losses[0])
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError, match="word_drop"):
            FitConfig(word_drop=bad).check()


def test_fit_with_words_refuses_data_without_them(trained):
    data = trained["data"]
    bare = TrainData(data.emb, data.arity, data.tok, data.pid, data.is_val)
    with pytest.raises(ValueError, match="attends to word vectors"):
        fit(bare, FitConfig(**CFG), log=lambda *a: None)
    with pytest.raises(ValueError, match="attends to word vectors"):
        figures(trained["bundle"], bare)


def test_a_model_from_before_word_attention_loads_without_it(trained):
    state = trained["bundle"].state()
    old_cfg = {k: v for k, v in {**state["config"], "words": False}.items() if k != "words"}
    old = Bundle.new(FitConfig(**{**old_cfg, "words": False})).state()
    old["config"] = old_cfg  # written before the field existed
    b = Bundle.from_state(old)
    assert b.config.words is False and b.denoiser.words_dim == 0


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
def test_resume_mid_diffusion_with_words(trained):
    mid = copy.deepcopy(next(s for p, e, _, s in trained["reports"] if (p, e) == ("diffusion", 0)))
    phases = []
    fit(trained["data"], FitConfig(**CFG), resume=mid, report=lambda p, e, m, s: phases.append((p, e)),
        log=lambda *a: None)
    assert phases == [("diffusion", 1), ("scorer", 0)]


# --- the engine -----------------------------------------------------------------------------------
def test_engine_reads_words(trained):
    engine = Engine(trained["bundle"], trained["encoder"])
    assert engine.reads_words
    intent = "sort the numbers, then keep the first 3"
    (enc,) = engine.encode([intent])
    assert enc.words is not None and enc.words.shape == (8, DIM)
    np.testing.assert_array_equal(enc.vector, trained["encoder"].encode([intent])[0])
    a = engine.synthesize(intent, n_candidates=5)
    b = engine.synthesize(intent, n_candidates=5, encoding=enc)
    assert [c.code for c in a.candidates] == [c.code for c in b.candidates]
    for c in a.candidates:
        check(c.program)
    assert engine.synthesize(intent, sampler="direct").samples
    with pytest.raises(ValueError, match="word vectors"):
        engine.synthesize(intent, encoding=Encoding(enc.vector))


# --- the training job's cache -----------------------------------------------------------------
def test_encode_cached_keeps_word_vectors(tmp_path, monkeypatch):
    calls = []

    class Counting(HashingEncoder):
        def encode_words(self, texts, batch_size=0):
            calls.append(list(texts))
            return super().encode_words(texts)

    monkeypatch.setattr("emergence.synthesis.encoder.make_encoder", lambda name: Counting())
    cache = str(tmp_path / "emb.npz")
    a, wa = job.encode_cached(["sum the list", "count words"], "hashing", cache, words=True)
    b, wb = job.encode_cached(["count words", "reverse it", "sum the list"], "hashing", cache, words=True)
    assert [sorted(c) for c in calls] == [["count words", "sum the list"], ["reverse it"]]
    np.testing.assert_array_equal(a[0], b[2])
    np.testing.assert_array_equal(wa[1], wb[0])
    _, (want,) = HashingEncoder().encode_words(["reverse it"])
    np.testing.assert_array_equal(wb[1], want)
    assert [w.shape[0] for w in wb] == [2, 2, 3]
    # pooled vectors alone come from the same cache, with no encoding
    np.testing.assert_array_equal(job.encode_cached(["reverse it"], "hashing", cache)[0], b[1])
    assert len(calls) == 2
