"""training.nvp: the atlas -> Ray Data plan without Ray, then real JaxTrainer runs on the shared
Ray session: a two-worker run (replicas stay identical) that fails once, restarts from its
checkpoint, and is later resumed under the same name."""

from __future__ import annotations

import os

import numpy as np
import pytest

from emergence.nvp.atlas import AtlasError, Domain, write_atlas
from emergence.nvp.model import NVPConfig
from emergence.nvp.synthetic import generate
from emergence.nvp.train import NVPModel, make_samples
from training import data as D
from training import nvp as job

TINY = NVPConfig(history=2, widths=(4, 8), latent=16, embed=4)


@pytest.fixture(scope="module")
def atlas(tmp_path_factory):
    path = tmp_path_factory.mktemp("atlas") / "tiny.h5"
    doms = [Domain(d, generate(d, 3, 6, (64, 64), seed=k), 1.0, 1.0) for k, d in enumerate(("heat", "advection"))]
    return write_atlas(path, doms)


# -- plan and rows, no Ray ------------------------------------------------------------------------


def test_plan_holds_whole_sequences_out(atlas):
    train, val, groups = D.plan(atlas, None, TINY, val_fraction=0.2)
    assert sorted(groups) == ["advection", "heat"]
    assert {(i["domain"], i["sequence"]) for i in val} == {("heat", 2), ("advection", 2)}
    assert {(i["domain"], i["sequence"]) for i in train} == {(d, s) for d in ("heat", "advection") for s in (0, 1)}


def test_rows_are_the_windows_make_samples_builds(atlas):
    train, _, groups = D.plan(atlas, ["heat"], TINY)
    rows = D.read_samples(train, TINY)
    from emergence.nvp.atlas import load_atlas

    heat = load_atlas(atlas, ["heat"])["heat"]
    ref = make_samples([Domain("heat", heat.energy[:2], heat.dt, heat.dx)], TINY)
    np.testing.assert_array_equal(rows.window, ref.window)
    np.testing.assert_array_equal(rows.target, ref.target)
    np.testing.assert_array_equal(rows.domain_id, ref.domain_id)
    assert rows.window.shape == (2 * (6 - 2), 2, 64, 64)


def test_plan_errors_name_the_problem(atlas, tmp_path):
    with pytest.raises(AtlasError, match="nosuch: no such group"):
        D.plan(atlas, ["nosuch"], TINY)
    with pytest.raises(ValueError, match="too short for history = 6"):
        D.plan(atlas, None, NVPConfig(history=6))
    one = write_atlas(tmp_path / "one.h5", [Domain("heat", generate("heat", 1, 6, (64, 64)), 1.0, 1.0)])
    with pytest.raises(ValueError, match="need >= 2 sequences"):
        D.plan(one, None, TINY)
    bad = tmp_path / "nan.h5"
    e = generate("heat", 2, 6, (64, 64))
    write_atlas(bad, [Domain("heat", e, 1.0, 1.0)])
    import h5py

    with h5py.File(bad, "r+") as f:
        f["heat"]["energy"][1, 3, 5, 7] = np.nan
    train, _, _ = D.plan(str(bad), None, TINY, val_fraction=0.5)
    with pytest.raises(AtlasError, match=r"nan.h5:/heat/energy: non-finite energy .*sequence 1"):
        D.read_samples([{**train[0], "sequence": 1}], TINY)


@pytest.mark.parametrize("kw, msg", [
    ({"batch_size": 5, "num_workers": 2}, "divisible by num_workers"),
    ({"epochs": 0}, "epochs must be an int >= 1"),
    ({"lr": 0.0}, "lr must be a finite number > 0"),
    ({"conservation": float("nan")}, "conservation must be a finite number >= 0"),
    ({"keep": 0}, "keep must be an int >= 1"),
])
def test_make_trainer_rejects_bad_arguments(atlas, kw, msg):
    with pytest.raises(ValueError, match=msg):
        job.make_trainer(atlas, config=TINY, **kw)


def test_cli_errors_before_starting_anything():
    with pytest.raises(SystemExit):
        job.parse_args([])  # --atlas or --synthetic is required


# -- JaxTrainer runs ------------------------------------------------------------------------------


@pytest.mark.ray
@pytest.mark.slow
def test_two_workers_in_sync_restart_after_a_failure_and_a_named_run_resumes(ray_session, atlas, tmp_path, capsys):
    # one run for all three (each worker-group start costs tens of seconds on 2 cores)
    kw = dict(config=TINY, batch_size=4, num_workers=2, checkpoint_every=1, keep=1, max_failures=1,
              name="dp-test", storage_path=str(tmp_path / "store"))
    res = job.run(atlas, out=str(tmp_path / "model"), epochs=3, fail_at_epoch=2, **kw)
    # the driver printed rank 0's line an epoch as the run went (epoch 2 twice: before and after the failure)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/3") and "val_skill" in lines[0], lines
    assert lines[-1].startswith("epoch 3/3") and "took" in lines[-1], lines
    # the first attempt died after epoch 2 (before checkpointing it); the restart restored epoch 1
    curve = res["curve"]
    assert [r["epoch"] for r in curve] == [1, 2, 3]
    assert all(r["world_size"] == 2 and r["devices"] == 2 and r["replicas_in_sync"] for r in curve)
    assert all(np.isfinite(r["val_skill"]) and np.isfinite(r["train_loss"]) for r in curve)
    ckpts = [d for d in os.listdir(res["run_path"]) if d.startswith("checkpoint_") and os.path.isdir(os.path.join(res["run_path"], d))]
    assert len(ckpts) == 1  # keep=1
    model = NVPModel.load(res["model_path"])
    assert model.config == TINY and model.meta["epoch"] == 3 and np.all((0 < model.std_scale) & (model.std_scale < np.inf))
    e = generate("advection", 1, 3, (64, 64), seed=9)
    mean, std = model.predict(e[0, :2], "advection")
    assert mean.shape == (64, 64) and np.isfinite(mean).all() and (std > 0).all()
    # same name, more epochs: only epoch 4 is trained, on top of epoch 3's checkpoint
    res4 = job.run(atlas, out=str(tmp_path / "m4"), epochs=4, **kw)
    assert [r["epoch"] for r in res4["curve"]] == [1, 2, 3, 4]
    assert res4["curve"][:3] == curve
