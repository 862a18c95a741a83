"""The coupling / gate sweep (tune.coupling): the problem it builds and its chunked trial without
Ray, argument validation without Ray, and one quick 3 x 3 grid sweep on the shared Ray session."""

from __future__ import annotations

import json
import os

import numpy as np
import polars as pl
import pytest

from emergence.energy.scenarios import dense_ring
from tune import coupling as tc

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- the problem and the trial, no Ray -------------------------------------------------------------


def test_problem_reduces_to_the_seed_dense_ring():
    """Without the cost field and at the seed's weights the sweep's problem is dense_ring(n)."""
    n = 37
    ours, gain = tc.build_problem(n, w_gate=0.4, cost=0.1, w_quad=1.0, cost_field=False)
    seed = dense_ring(n)
    np.testing.assert_allclose(ours.eta0, seed.eta0)
    np.testing.assert_allclose(gain, 0.02 * (np.arange(n) % 5))
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.uniform(0, 1, n)
        assert ours.energy(x) == pytest.approx(seed.energy(x), rel=1e-12, abs=1e-12)
        np.testing.assert_allclose(ours.grad(x), seed.grad(x), rtol=1e-12, atol=1e-12)


def test_cost_field_charges_open_gates():
    """h = cost - gain: at a fixed state, raising the cost by dc raises F by dc * sum(eta)."""
    n, dc = 50, 0.07
    lo, _ = tc.build_problem(n, w_gate=1.0, cost=0.05)
    hi, _ = tc.build_problem(n, w_gate=1.0, cost=0.05 + dc)
    x = np.random.default_rng(1).uniform(0, 1, n)
    assert hi.energy(x) - lo.energy(x) == pytest.approx(dc * x.sum(), rel=1e-10)
    assert hi.energy(np.zeros(n)) == lo.energy(np.zeros(n)) == 0.0


def test_trial_reports_chunks_descend_and_reach_the_lbfgs_optimum():
    reports = list(tc.trial_reports({"n": 300, "w_gate": 4.0, "cost": 0.1, "chunk_steps": 5, "max_chunks": 200}))
    assert len(reports) > 1  # several tune.report calls: ASHA has rungs to act on
    assert [r["chunks"] for r in reports] == list(range(1, len(reports) + 1))
    energies = [r["final_energy"] for r in reports]
    assert all(b <= a for a, b in zip(energies, energies[1:]))
    last = reports[-1]
    assert set(last) == set(tc.METRIC_COLUMNS)
    assert last["converged"]
    assert last["delta_f"] <= 0
    assert abs(last["gap"]) <= 1e-8 * max(1.0, abs(last["final_energy"]))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n": 2}, "n"),
        ({"w_gate": -1.0}, "w_gate"),
        ({"cost": float("nan")}, "cost"),
        ({"w_quad": -0.1}, "w_quad"),
        ({"k": 0.0}, "k"),
    ],
)
def test_build_problem_rejects_bad_values_naming_the_argument(kwargs, name):
    args = {"n": 10, "w_gate": 1.0, "cost": 0.1, **kwargs}
    with pytest.raises(ValueError, match=rf"^{name}:"):
        tc.build_problem(**args)


# -- CLI validation, no Ray --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--n", "2"], "--n"),
        (["--w-gate-points", "0"], "--w-gate-points"),
        (["--cost-points", "-1"], "--cost-points"),
        (["--search", "asha", "--samples", "0"], "--samples"),
        (["--cost-range", "0.3", "0.1"], "--cost-range"),
        (["--w-gate-range", "-1", "2"], "--w-gate-range"),
        (["--w-gate-range", "1", "1"], "--w-gate-range"),
        (["--cost-range", "0", "nan"], "--cost-range"),
        (["--w-quad", "-1"], "--w-quad"),
        (["--k", "0"], "--k"),
        (["--chunk-steps", "0"], "--chunk-steps"),
        (["--max-chunks", "0"], "--max-chunks"),
        (["--cpus-per-trial", "0"], "--cpus-per-trial"),
        (["--max-concurrent", "0"], "--max-concurrent"),
        (["--search", "random"], "--search"),
        (["--n", "ten"], "--n"),
    ],
)
def test_cli_rejects_bad_arguments(argv, fragment, capsys):
    with pytest.raises(SystemExit) as exc:
        tc.main(argv)  # validation happens before Ray is touched
    assert exc.value.code == 2
    assert fragment in capsys.readouterr().err


def test_cli_defaults_and_quick():
    args = tc.parse_args([])
    assert (args.search, args.n, args.w_gate_points, args.cost_points, args.samples) == ("grid", 2000, 5, 5, 16)
    quick = tc.parse_args(["--quick"])
    assert (quick.n, quick.w_gate_points, quick.cost_points, quick.samples) == (500, 3, 3, 6)
    assert tc.parse_args(["--quick", "--n", "64"]).n == 64  # an explicit --n wins over --quick
    assert tc.parse_args(["--w-gate-range", "2", "2", "--w-gate-points", "1"]).w_gate_range == (2.0, 2.0)


# -- the quick sweep on Ray --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_sweep(ray_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("coupling")
    summary = tc.main(["--quick", "--out", str(out), "--storage", str(out / "tune")])
    return out, summary


@pytest.mark.ray
@pytest.mark.slow
def test_quick_grid_sweep_outputs(quick_sweep, capsys):
    out, summary = quick_sweep
    assert summary["search"] == "grid" and summary["trials"] == 9
    assert os.path.isdir(summary["experiment_path"]) and summary["experiment_path"].startswith(str(out / "tune"))

    frame = pl.read_parquet(summary["parquet"])
    assert frame.height == 9
    assert set(tc.CONFIG_COLUMNS) | set(tc.METRIC_COLUMNS) <= set(frame.columns)
    assert not any(c.startswith("config/") for c in frame.columns)
    assert sorted(set(frame["w_gate"].to_list())) == pytest.approx([0.0, 3.0, 6.0])
    assert sorted(set(frame["cost"].to_list())) == pytest.approx([0.0, 0.15, 0.3])
    assert (frame["n"] == 500).all()
    for col in tc.METRIC_COLUMNS:
        if frame[col].dtype != pl.Boolean:
            assert np.all(np.isfinite(frame[col].to_numpy().astype(float))), col
    assert frame["converged"].all()
    assert (frame["delta_f"] <= 0).all()
    assert np.allclose(frame["delta_f"], frame["final_energy"] - frame["initial_energy"])
    # the relaxation reaches the L-BFGS-B optimum of the same problem
    assert (frame["gap"].abs() <= 1e-7 * np.maximum(1.0, frame["final_energy"].abs())).all()

    with open(summary["png"], "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC and head[12:16] == b"IHDR"
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    assert width > 400 and height > 200

    with open(summary["summary_json"]) as f:
        on_disk = json.load(f)
    assert on_disk["best_config"] == summary["best_config"]
    best = frame.sort("final_energy").row(0, named=True)
    assert summary["best_config"]["w_gate"] == pytest.approx(best["w_gate"])
    assert summary["best_config"]["cost"] == pytest.approx(best["cost"])


@pytest.mark.ray
@pytest.mark.slow
def test_higher_cost_closes_gates(quick_sweep):
    """Along the cost axis at fixed w_gate: fewer open gates, lower mean eta, lower hazard;
    along w_gate at fixed cost the opposite. And cost really closes gates somewhere."""
    _, summary = quick_sweep
    frame = pl.read_parquet(summary["parquet"])
    eps = 1e-9
    for (w_gate,), rows in frame.group_by(["w_gate"]):
        rows = rows.sort("cost")
        for col in ("frac_open", "mean_eta", "eta0_mean"):
            v = rows[col].to_numpy()
            assert np.all(np.diff(v) <= eps), (w_gate, col, v)
        h = rows["hazard_mean"].to_numpy()
        assert np.all(np.diff(h) < 0), (w_gate, h)
    for (cost,), rows in frame.group_by(["cost"]):
        for col in ("frac_open", "mean_eta"):
            v = rows.sort("w_gate")[col].to_numpy()
            assert np.all(np.diff(v) >= -eps), (cost, col, v)
    strongest = frame.filter(pl.col("w_gate") == frame["w_gate"].max()).sort("cost")
    assert strongest["frac_open"][0] > strongest["frac_open"][-1]
    assert strongest["mean_eta"][0] > strongest["mean_eta"][-1] + 0.1
    assert frame["frac_open"].max() == 1.0 and frame["frac_open"].min() == 0.0
