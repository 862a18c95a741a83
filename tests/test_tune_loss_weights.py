"""The NVP loss-weight sweep (tune.loss_weights): argument validation and the search space without
Ray, and one tiny real sweep (2 trials x <= 2 epochs, each a JaxTrainer run) on the shared Ray session."""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import time

import numpy as np
import polars as pl
import pytest

from tune import loss_weights as lw

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- CLI validation and the search space, no Ray ---------------------------------------------------


@pytest.fixture(scope="module")
def atlas_file(tmp_path_factory):
    """A tiny synthetic atlas: 2 domains x 3 sequences x 6 steps of 64 x 64 maps."""
    from emergence.nvp.synthetic import export_atlas

    return export_atlas(str(tmp_path_factory.mktemp("atlas") / "tiny.h5"), domains=("heat", "advection"), n=3, t=6, seed=0)


@pytest.mark.parametrize(
    "extra, fragment",
    [
        (["--samples", "0"], "--samples"),
        (["--epochs", "0"], "--epochs"),
        (["--grace-period", "0"], "--grace-period"),
        (["--epochs", "2", "--grace-period", "3"], "--grace-period"),
        (["--reduction-factor", "1"], "--reduction-factor"),
        (["--lambda-conservation-range", "0", "1"], "--lambda-conservation-range"),
        (["--lambda-entropy-range", "0.5", "0.1"], "--lambda-entropy-range"),
        (["--lambda-entropy-range", "0.1", "nan"], "--lambda-entropy-range"),
        (["--lr-range", "1e-3", "1e-3"], "--lr-range"),
        (["--lr-range", "-1e-3", "1e-2"], "--lr-range"),
        (["--num-workers", "0"], "--num-workers"),
        (["--num-workers", "3", "--batch-size", "16"], "--batch-size"),
        (["--cpus-per-worker", "0"], "--cpus-per-worker"),
        (["--max-concurrent", "0"], "--max-concurrent"),
        (["--val-fraction", "1"], "--val-fraction"),
        (["--history", "0"], "--history"),
        (["--samples", "two"], "--samples"),
    ],
)
def test_cli_rejects_bad_arguments(atlas_file, extra, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        lw.main(["--atlas", atlas_file, *extra])  # validation happens before Ray is touched
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, fragment",
    [
        ([], "--atlas"),  # one source is required
        (["--atlas", "x.h5", "--synthetic"], "--synthetic"),  # not both
        (["--atlas", "/nonexistent/atlas.h5"], "--atlas"),
    ],
)
def test_cli_requires_one_existing_source(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        lw.main(argv)
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


def test_cli_defaults_and_quick(atlas_file, tmp_path):
    args = lw.parse_args(["--atlas", atlas_file])
    assert (args.samples, args.epochs, args.grace_period, args.num_workers, args.max_concurrent) == (8, 6, 1, 1, 1)
    assert args.lr_range == (3e-4, 1e-2)
    assert args.lambda_conservation_range == args.lambda_entropy_range == (1e-3, 1.0)
    quick = lw.parse_args(["--synthetic", "--quick"])
    assert (quick.samples, quick.epochs, quick.sequences, quick.t) == (4, 3, 6, 16)
    assert lw.parse_args(["--synthetic", "--quick", "--epochs", "5"]).epochs == 5  # an explicit value wins
    (tmp_path / "taken").mkdir()
    with pytest.raises(SystemExit):  # a sweep never resumes: an existing experiment name is refused
        lw.parse_args(["--atlas", atlas_file, "--storage", str(tmp_path), "--name", "taken"])


def test_param_space_is_log_uniform_over_the_ranges(atlas_file):
    from ray.tune.search.sample import LogUniform

    args = lw.parse_args(["--atlas", atlas_file, "--lr-range", "1e-4", "1e-3"])
    space = lw.param_space(args)
    assert set(space) == {"lambda_conservation", "lambda_entropy", "lr"}
    for key, domain in space.items():
        assert isinstance(domain.get_sampler(), LogUniform), key
        assert (domain.lower, domain.upper) == getattr(args, f"{key}_range")
    assert (space["lr"].lower, space["lr"].upper) == (1e-4, 1e-3)


# -- one tiny sweep on Ray -------------------------------------------------------------------------

# With this seed the two sampled configs are lr 1.8e-4 then lr 9.2e-2 (--lr-range 1e-4 1e-1): the second
# trial wrecks the tiny model in its first epoch (val_skill about -4 against +0.8), so ASHA stops it at
# its first rung and the kill path (Tune ends the trial, Train's placement-group cleaner frees its
# CPUs) runs in every test run.
SEED = 22
RANGES = {"lambda_conservation": (1e-3, 1.0), "lambda_entropy": (1e-3, 1.0), "lr": (1e-4, 1e-1)}


@pytest.fixture(scope="module")
def tiny_sweep(ray_session, atlas_file, tmp_path_factory):
    from emergence.nvp.model import NVPConfig

    out = tmp_path_factory.mktemp("loss_weights")
    argv = ["--atlas", atlas_file, "--samples", "2", "--epochs", "2", "--batch-size", "4", "--num-workers", "1",
            "--lr-range", *RANGES["lr"], "--seed", SEED, "--out", out, "--storage", out / "tune"]
    printed = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(printed):
        summary = lw.main(argv, config=NVPConfig(widths=(4, 8), latent=16, embed=4))
    return out, summary, time.perf_counter() - t0, printed.getvalue()


@pytest.mark.ray
@pytest.mark.slow
def test_tiny_sweep_outputs(tiny_sweep, ray_session):
    out, summary, seconds, _ = tiny_sweep
    print(f"tiny sweep: {seconds:.1f} s")
    assert summary["trials"] == 2 and summary["failed"] == []
    assert summary["experiment_path"].startswith(str(out / "tune")) and os.path.isdir(summary["experiment_path"])

    frame = pl.read_parquet(summary["parquet"])
    assert frame.height == 2
    assert set(lw.SWEPT) | set(lw.METRIC_COLUMNS) <= set(frame.columns)
    assert not any(c.startswith("config/") or c == "curve" for c in frame.columns)
    for col in ("val_skill", "val_mse", "best_val_skill", "train_loss", "trial_s"):
        assert np.all(np.isfinite(frame[col].to_numpy())), col
    assert (frame["val_mse"] > 0).all() and (frame["trial_s"] > 0).all()
    assert (frame["val_skill"] <= 1).all() and (frame["best_val_skill"] >= frame["val_skill"]).all()

    # sampled from the log-uniform ranges (the λs' defaults, the test's lr range), a different config per trial
    for key, (lo, hi) in RANGES.items():
        values = frame[key].to_numpy()
        assert np.all((values >= lo) & (values <= hi)), key
        assert values[0] != values[1], key

    # epochs run: 2, or 1 for a trial ASHA stopped at its rung; learning curves agree with the rows
    curves = pl.read_parquet(summary["curves_parquet"])
    assert set(frame["epochs"].to_list()) <= {1, 2}
    assert (frame["asha_stopped"] == (frame["epochs"] < 2)).all()
    assert summary["asha_stopped"] == int(frame["asha_stopped"].sum())
    for row in frame.iter_rows(named=True):
        c = curves.filter(pl.col("trial_id") == row["trial_id"]).sort("epoch")
        assert c["epoch"].to_list() == list(range(1, row["epochs"] + 1))
        assert c["val_skill"][-1] == pytest.approx(row["val_skill"])
        assert c["val_skill"].max() == pytest.approx(row["best_val_skill"])
        # only runs that reached their last epoch wrote a checkpoint (checkpoint_every=0)
        assert (row["checkpoint"] is not None) == (not row["asha_stopped"])
        if row["checkpoint"]:
            assert os.path.isfile(os.path.join(row["checkpoint"], "params.msgpack"))
            assert row["checkpoint"].startswith(os.path.join(summary["experiment_path"], "train"))

    # ASHA (max_concurrent 1, reduction factor 2): the second trial is stopped at epoch 1 exactly
    # when its val_skill there is below the first trial's (the only other value at that rung)
    first, second = sorted(frame["trial_id"].to_list())
    at_rung = {t: curves.filter((pl.col("trial_id") == t) & (pl.col("epoch") == 1))["val_skill"][0] for t in (first, second)}
    assert frame.filter(pl.col("trial_id") == first)["epochs"][0] == 2
    assert frame.filter(pl.col("trial_id") == second)["asha_stopped"][0] == (at_rung[second] < at_rung[first])
    # ... and with SEED's configs it is stopped (see SEED)
    assert frame.filter(pl.col("trial_id") == second)["lr"][0] > 0.05
    assert summary["asha_stopped"] == 1 and at_rung[second] < 0 < at_rung[first]

    with open(summary["png"], "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR"
    assert int.from_bytes(head[16:20], "big") > 600 and int.from_bytes(head[20:24], "big") > 200

    # the best config is the row with the highest val_skill (at the last epoch each trial ran)
    with open(summary["summary_json"]) as f:
        on_disk = json.load(f)
    best = frame.sort("val_skill", descending=True).row(0, named=True)
    assert on_disk["best_config"] == summary["best_config"]
    assert on_disk["best_trial_id"] == best["trial_id"]
    for key in lw.SWEPT:
        assert summary["best_config"][key] == pytest.approx(best[key])
    assert summary["best_metrics"]["val_skill"] == pytest.approx(frame["val_skill"].max())
    assert math.isclose(on_disk["best_metrics"]["val_skill"], best["val_skill"])
    assert summary["best_checkpoint"] == best["checkpoint"]  # the best trial ran to the end: its model is kept

    # every trial's CPUs come back, the ASHA-stopped one's too (its Train run was killed with the
    # trial; Train v2's placement-group cleaner frees them)
    deadline = time.monotonic() + 60
    while ray_session.available_resources().get("CPU", 0) < ray_session.cluster_resources()["CPU"] and time.monotonic() < deadline:
        time.sleep(1)
    assert ray_session.available_resources().get("CPU", 0) == ray_session.cluster_resources()["CPU"]


@pytest.mark.ray
@pytest.mark.slow
def test_tiny_sweep_prints_table_and_best(tiny_sweep):
    _, summary, _, printed = tiny_sweep
    frame = pl.read_parquet(summary["parquet"])
    assert lw.format_table(frame) in printed
    best = summary["best_config"]
    assert (f"best (val_skill at the last epoch run): lambda_conservation = {best['lambda_conservation']:.4g}, "
            f"lambda_entropy = {best['lambda_entropy']:.4g}, lr = {best['lr']:.4g}") in printed
    assert f"parquet: {summary['parquet']}" in printed and f"plot: {summary['png']}" in printed
