"""training.emergence: the embedding cache without Ray, then real TorchTrainer runs on the shared
Ray session -- two DDP workers train all three phases on a small corpus, and a second run under
the same name resumes from the last checkpoint instead of training again."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from emergence.synthesis import corpus
from emergence.synthesis.encoder import HashingEncoder
from emergence.synthesis.engine import Engine
from emergence.synthesis.fit import FitConfig
from training import emergence as job

TINY = {"epochs_contrastive": 1, "epochs_diffusion": 2, "epochs_scorer": 1, "batch": 128, "width": 32, "layers": 1,
        "T": 20, "sample_steps": 4, "words": True}


def test_parse_args_quick_and_defaults():
    quick = job.parse_args(["--quick"])
    assert (quick.programs, quick.epochs_diffusion) == (job.QUICK["programs"], job.QUICK["epochs_diffusion"])
    full = job.parse_args(["--epochs-diffusion", "7"])
    assert full.epochs_diffusion == 7 and full.programs == job.DEFAULTS["programs"]
    assert full.words == job.DEFAULTS["words"] and quick.words == job.QUICK["words"]
    assert job.parse_args(["--no-words"]).words is False and job.parse_args(["--quick", "--words"]).words is True
    assert full.word_drop == job.DEFAULTS["word_drop"] and job.parse_args(["--word-drop", "0.2"]).word_drop == 0.2
    assert full.dropout == job.DEFAULTS["dropout"] and job.parse_args(["--dropout", "0.25"]).dropout == 0.25
    assert full.epochs_swa == job.DEFAULTS["epochs_swa"] and quick.epochs_swa == job.QUICK["epochs_swa"]
    swa = job.parse_args(["--epochs-swa", "3", "--swa-lr", "1e-4"])
    assert (swa.epochs_swa, swa.swa_lr) == (3, 1e-4)


def test_encode_cached_encodes_only_new_texts(tmp_path, monkeypatch):
    calls = []

    class Counting(HashingEncoder):
        def encode(self, texts, batch_size=0):
            calls.append(list(texts))
            return super().encode(texts)

    monkeypatch.setattr("emergence.synthesis.encoder.make_encoder", lambda name: Counting())
    cache = str(tmp_path / "emb.npz")
    a = job.encode_cached(["sum the list", "count words"], "hashing", cache)
    b = job.encode_cached(["count words", "sum the list", "reverse it"], "hashing", cache)
    assert calls == [["count words", "sum the list"], ["reverse it"]] or calls[1] == ["reverse it"]
    np.testing.assert_array_equal(a[0], b[1])
    np.testing.assert_array_equal(b[2], HashingEncoder().encode(["reverse it"])[0])


def test_bad_settings_are_refused_before_any_work():
    with pytest.raises(ValueError, match="sample_steps"):
        FitConfig(T=10, sample_steps=20).check()
    with pytest.raises(ValueError, match="num_workers"):
        job.make_trainer(None, TINY, num_workers=0)
    for bad, match in ((dict(programs=-1), "programs"), (dict(longer=-1), "longer"), (dict(num_workers=0), "num_workers")):
        settings = dict(programs=10, per_program=1, longer=0, fit_cfg=TINY) | bad
        with pytest.raises(ValueError, match=match):
            job.check_run(**settings)
    job.check_run(programs=0, per_program=1, longer=0, fit_cfg=TINY)  # 0: the 1-2 step programs alone


def test_the_job_refuses_bad_settings_before_starting_ray(monkeypatch, capsys):
    def no_ray(*a, **k):
        raise AssertionError("Ray was started for a run that could not go ahead")

    monkeypatch.setattr(job, "ensure_ray", no_ray)
    for argv, match in ((["--programs", "-1"], "programs"), (["--lr", "5"], "lr"), (["--longer", "-2"], "longer")):
        with pytest.raises(SystemExit) as stop:
            job.main(argv)
        assert stop.value.code == 2 and match in capsys.readouterr().err


@pytest.mark.ray
@pytest.mark.slow
def test_two_worker_training_then_resume(ray_session, tmp_path, capsys):
    out = str(tmp_path / "model.pt")
    kw = dict(programs=0, per_program=1, fit_cfg=TINY, encoder="hashing", data_dir=str(tmp_path / "data"),
              max_len=2, calibrate_limit=20, num_workers=2, name="engine-test", storage_path=str(tmp_path / "runs"))
    res = job.run(out=out, **kw)
    # the driver printed rank 0's line an epoch of every phase (2 workers, each line once)
    lines = [ln.split(" [")[0] for ln in capsys.readouterr().out.splitlines() if " [" in ln and "/" in ln]
    phases = [("contrastive", "epochs_contrastive"), ("diffusion", "epochs_diffusion"), ("scorer", "epochs_scorer")]
    assert lines == [f"{p} {i}/{TINY[k]}" for p, k in phases for i in range(1, TINY[k] + 1)], lines
    model = torch.load(out, weights_only=False)
    assert set(model["figures"]) >= {"contrastive", "denoising", "scorer", "ranking", "confidence"}
    assert "confidence" in model  # the fitted model, or None when its records were all right or all wrong
    assert model["encoder_name"] == "hashing" and set(model["rank_weights"]) == {"scorer", "align", "votes"}
    assert model["config"]["words"] is True  # the denoiser attends to words, trained under DDP
    assert 0 <= model["figures"]["scorer"]["roc_auc"] <= 1
    # every epoch of every phase was reported with a checkpoint, by 2 workers
    with open(os.path.join(res["checkpoint"], "metrics.json")) as f:
        last = json.load(f)
    assert last["phase"] == "scorer" and last["world_size"] == 2
    # the trained file is an engine
    eng = Engine.load(out, encoder=HashingEncoder())
    assert eng.reads_words and os.path.exists(os.path.join(kw["data_dir"], "embeddings-hashing-words.npz"))
    syn = eng.synthesize("add up the even numbers", 1)
    assert all(c.code.startswith(("import", "def", "class")) or "def " in c.code for c in syn.candidates)

    # same name again: resumes from the finished checkpoint, trains nothing more
    before = {k: v.clone() for k, v in model["denoiser"].items()}
    job.run(out=out, **kw)
    after = torch.load(out, weights_only=False)["denoiser"]
    assert all(torch.equal(before[k], after[k]) for k in before)

    # the ranking weights fitted again on the held-out wordings: only they change in the file
    calib = corpus.load(os.path.join(kw["data_dir"], "calibration.jsonl"))
    assert calib and {r.split for r in calib} == {"calib"}
    assert not {r.description for r in calib} & {r.description for r in corpus.load(
        os.path.join(kw["data_dir"], "corpus.jsonl"))}
    ranking = job.recalibrate(out, kw["data_dir"], limit=10)
    again = torch.load(out, weights_only=False)
    assert again["rank_weights"] == ranking["weights"] and ranking["records"] == min(10, len(calib))
    # and the answer's confidence model with them, on held-out wordings, with its held-out figures
    assert again["confidence"] == ranking["confidence"]["model"] and again["figures"]["confidence"]["records"] > 0
    if again["confidence"] is not None:  # both right and wrong answers among so few: a fitted model
        assert Engine.load(out, encoder=HashingEncoder()).confidence_model == again["confidence"]
    assert all(torch.equal(after[k], again["denoiser"][k]) for k in after)
    with pytest.raises(ValueError, match="calibration.jsonl"):
        job.recalibrate(out, str(tmp_path / "nothing-here"))
