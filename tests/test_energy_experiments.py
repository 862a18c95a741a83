"""The seed's energy experiments as reproducible functions and a CLI, plus observability:
pure library, no Ray, a few seconds in all (one `all --quick` run serves most tests)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import polars as pl
import pytest

from emergence.energy import experiments as ex
from emergence.energy.modules import gate_eta, sequence_eta
from emergence.energy.observability import gating_metrics, write_json, write_parquet

FILES = {
    "landau-sweep": "landau_sweep",
    "sequence-redemption": "sequence_redemption",
    "connectivity": "connectivity",
    "gated-expansion": "gated_expansion",
}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments")
    results = ex.main(["all", "--quick", "--out", str(out), "--seed", "0"])
    return out, results


# -- CLI -------------------------------------------------------------------------------------------


def test_cli_all_quick_writes_every_table_plot_and_summary(quick_run, capsys):
    out, results = quick_run
    assert set(results) == set(FILES)
    names = sorted(os.listdir(out))
    assert names == sorted(f"{stem}.{ext}" for stem in FILES.values() for ext in ("parquet", "png", "json"))
    for name, stem in FILES.items():
        frame = pl.read_parquet(out / f"{stem}.parquet")
        assert frame.height > 0
        assert (out / f"{stem}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        on_disk = json.loads((out / f"{stem}.json").read_text())
        assert on_disk["experiment"] == name
        assert on_disk["files"]["table"] == str(out / f"{stem}.parquet")
        json.dumps(results[name])  # the returned summaries are JSON-able as they are


def test_cli_single_experiment_prints_a_summary(tmp_path, capsys):
    res = ex.main(["gated-expansion", "--quick", "--out", str(tmp_path / "g"), "--seed", "5"])
    assert sorted(os.listdir(tmp_path / "g")) == ["gated_expansion.json", "gated_expansion.parquet", "gated_expansion.png"]
    printed = capsys.readouterr().out
    assert "gated-expansion:" in printed and "expansion rate by cost" in printed
    assert res["gated-expansion"]["seed"] == 5
    with pytest.raises(SystemExit):
        ex.main(["no-such-experiment", "--out", str(tmp_path)])


def test_experiments_are_reproducible_from_the_seed():
    a = ex.sequence_redemption(seed=11, quick=True)
    b = ex.sequence_redemption(seed=11, quick=True)
    c = ex.sequence_redemption(seed=12, quick=True)
    strip = lambda s: {k: v for k, v in s.items() if k != "wall_time_s"}  # noqa: E731
    assert strip(a) == strip(b)
    assert strip(a) != strip(c)
    g1, g2 = ex.gated_expansion(seed=3, quick=True), ex.gated_expansion(seed=3, quick=True)
    assert strip(g1) == strip(g2)
    c1, c2 = ex.connectivity(seed=3, quick=True, n=12), ex.connectivity(seed=3, quick=True, n=12)
    assert strip(c1) == strip(c2)


# -- landau sweep ----------------------------------------------------------------------------------


def test_landau_sweep_matches_the_analytic_minimiser(quick_run):
    s = quick_run[1]["landau-sweep"]
    rows = s["table"]
    assert [r["a"] for r in rows] == pytest.approx(np.linspace(-1, 1, 21).tolist())
    for r in rows:
        star = math.sqrt(-r["a"] / 2.0) if r["a"] < 0 else 0.0
        assert r["eta_star"] == pytest.approx(min(star, 1.0), abs=1e-15)
        assert abs(r["eta_final"] - r["eta_star"]) <= 1e-4, r
        assert r["F_final"] <= r["F_star"] + 1e-9 or abs(r["F_final"] - r["F_star"]) <= 1e-12
    assert s["max_abs_err"] <= 1e-4


def test_landau_sweep_orders_exactly_below_a_zero(quick_run):
    s = quick_run[1]["landau-sweep"]
    for r in s["table"]:
        assert (r["eta_final"] > 0.05) == (r["a"] < -1e-9), r
    assert s["transition_at_zero"] is True
    assert s["ordered_a_max"] == pytest.approx(-0.1) and s["disordered_a_min"] == pytest.approx(0.0, abs=1e-12)
    # critical slowing down: the flat quartic minimum at a = 0 takes by far the most steps
    assert s["steps_at_a0"] == max(r["steps"] for r in s["table"])


def test_landau_minimiser_edge_cases():
    assert ex.landau_minimiser(-1.0, 1.0) == pytest.approx(math.sqrt(0.5))
    assert ex.landau_minimiser(-5.0, 1.0) == 1.0  # clipped to the box
    assert ex.landau_minimiser(0.0, 1.0) == 0.0 and ex.landau_minimiser(0.3, 1.0) == 0.0


# -- sequence redemption ---------------------------------------------------------------------------


def test_sequence_redemption_score_is_positive_and_recomputable(quick_run):
    out, results = quick_run
    s = results["sequence-redemption"]
    assert s["redemption_score_mean"] > 0
    assert all(t["redemption_score"] > 0 for t in s["trials"])
    assert s["redemption_after_mistake_mean"] > 0  # prefixes holding the mistake are redeemed
    frame = pl.read_parquet(out / "sequence_redemption.parquet")
    assert frame["prefix_len"].unique().sort().to_list() == list(range(2, 65))
    # recompute the score from the table: mean over i of loss_local - loss_nonlocal
    per_trial = frame.group_by("trial").agg((pl.col("loss_local") - pl.col("loss_nonlocal")).mean().alias("r")).sort("trial")
    np.testing.assert_allclose(per_trial["r"].to_numpy(), [t["redemption_score"] for t in s["trials"]], rtol=1e-12)
    assert s["redemption_score_std"] == pytest.approx(np.std([t["redemption_score"] for t in s["trials"]], ddof=1))
    # exact sequence_eta, no sampling: re-derive trial 0 from the seed
    rng = np.random.default_rng(0)
    v = ex.sequence_with_mistake(64, 20, 0.5, 0.01, rng)
    t0 = frame.filter(pl.col("trial") == 0).sort("prefix_len")
    np.testing.assert_allclose(t0["eta_prefix"].to_numpy(), [sequence_eta(v[:i]) for i in range(2, 65)], rtol=0, atol=0)


def test_coordinator_lifts_prefix_modules_over_the_uncoupled_baseline(quick_run):
    out, results = quick_run
    s = results["sequence-redemption"]
    assert s["all_converged"]
    assert s["coordinator_lift_min"] >= -1e-9
    assert s["coordinator_redemption_mean"] > 0
    for t in s["trials"]:
        assert t["prefix_eta_coupled_mean"] >= t["prefix_eta_uncoupled_mean"]
        assert t["lifted_fraction"] > 0.5  # every prefix holding the mistake sits below the full sequence
    frame = pl.read_parquet(out / "sequence_redemption.parquet")
    # per module: coupled >= measured (the uncoupled optimum) ...
    assert (frame["eta_prefix_coupled"] - frame["eta_prefix"]).min() >= -1e-9
    # ... and the lift is the one the hinge predicts when the full module barely moves:
    # min a (x - c)^2 + w (f - x)^2  ->  x = (a c + w f) / (a + w) for prefixes below f
    low = frame.filter((pl.col("eta_prefix") < pl.col("eta_full") - 0.02) & (pl.col("trial") == 0))
    assert low.height > 0
    assert (low["eta_prefix_coupled"] - low["eta_prefix"]).min() > 0.005


# -- connectivity ----------------------------------------------------------------------------------


def test_connectivity_shortcuts_lower_the_threshold(quick_run):
    out, results = quick_run
    s = results["connectivity"]
    assert s["p_c_without"] is not None and s["p_c_with"] is not None
    assert s["p_c_with"] <= s["p_c_without"]
    assert s["shift"] == pytest.approx(s["p_c_without"] - s["p_c_with"])
    frame = pl.read_parquet(out / "connectivity.parquet")
    no = frame.filter(~pl.col("shortcuts")).sort("p")
    yes = frame.filter(pl.col("shortcuts")).sort("p")
    assert no.height == yes.height == 16
    # common random numbers: adding shortcuts never shrinks the largest component, and more
    # bonds never do either
    assert np.all(yes["lcc_mean"].to_numpy() >= no["lcc_mean"].to_numpy())
    assert np.all(np.diff(no["lcc_mean"].to_numpy()) >= 0)
    # p_c is the smallest p with mean fraction >= 0.5
    ps = no["p"].to_numpy()
    assert s["p_c_without"] == pytest.approx(ps[np.argmax(no["lcc_mean"].to_numpy() >= 0.5)])


def test_largest_component_fraction_on_small_graphs():
    i, j = ex.grid_bond_edges(3)
    assert i.size == 12
    assert ex.largest_component_fraction(9, i, j) == 1.0
    assert ex.largest_component_fraction(9, np.array([], dtype=int), np.array([], dtype=int)) == pytest.approx(1 / 9)
    assert ex.largest_component_fraction(9, np.array([0, 1, 5]), np.array([1, 2, 8])) == pytest.approx(3 / 9)


# -- gated expansion -------------------------------------------------------------------------------


def test_gated_expansion_rate_is_non_increasing_in_cost(quick_run):
    out, results = quick_run
    s = results["gated-expansion"]
    rates = [r["expansion_rate"] for r in s["table"]]
    assert [r["cost"] for r in s["table"]] == [0.0, 0.02, 0.05, 0.1, 0.2]
    assert all(b <= a for a, b in zip(rates, rates[1:]))
    assert rates[0] > rates[-1]  # expansions really do get rarer
    assert s["expansion_rate_non_increasing"] is True
    # redemption is only ever bought by an expansion
    for r in s["table"]:
        if r["expansion_rate"] == 0:
            assert r["redemption_mean"] == 0.0 and r["mu_hat"] == 0.0


def test_gated_expansion_matches_a_recomputation():
    s = ex.gated_expansion(seed=9, trials=8, costs=(0.0, 0.005, 0.0098, 0.012, 0.2))
    rng = np.random.default_rng(9)
    gains, reds = [], []
    for _ in range(8):
        v = ex.sequence_with_mistake(64, 20, 0.5, 0.01, rng)
        r = v.copy()
        r[20] = max(r[20], r[19])
        gains.append(sequence_eta(r) - sequence_eta(v))
    gains = np.array(gains)
    for row in s["table"]:
        exp = gate_eta(gains, row["cost"], 10.0) > 0.5
        assert row["expansion_rate"] == pytest.approx(exp.mean())
        assert row["redemption_mean"] == pytest.approx(np.where(exp, gains, 0.0).mean())
        m = gating_metrics(gains, row["cost"], 10.0, np.where(exp, gains, 0.0))
        assert row["mu_hat"] == m["mu_hat"] and row["good_bad_ratio"] == m["good_bad_ratio"]


# -- observability ---------------------------------------------------------------------------------


def test_gating_metrics_on_hand_computed_inputs():
    # k = 10, cost = 0.1: nets are -0.1, 0, 0.1, 0.2 -> k*net = -1, 0, 1, 2
    gain = [0.0, 0.1, 0.2, 0.3]
    red = [0.5, 0.2, -0.1, 0.4]
    m = gating_metrics(gain, 0.1, 10.0, red)
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert m["hazard_mean"] == pytest.approx((sp(-1) + sp(0) + sp(1) + sp(2)) / 4, rel=1e-12)
    # eta_gate = sigmoid(k net) > 0.5 only for nets 0.1, 0.2 (net 0 gives exactly 0.5: closed)
    assert m["expansions"] == 2 and m["expansion_rate"] == 0.5
    # mu_hat = expansions / (sum of positive redemptions over ALL trials + 1e-9)
    assert m["mu_hat"] == pytest.approx(2 / (0.5 + 0.2 + 0.4 + 1e-9), rel=1e-12)
    # good: expanded & red > 0 -> trial 3; bad: expanded & red <= 0 -> trial 2
    assert (m["good"], m["bad"]) == (1, 1)
    assert m["good_bad_ratio"] == pytest.approx(1.0)
    m2 = gating_metrics([1.0, 1.0, 1.0], 0.0, 10.0, [0.1, 0.2, 0.0])
    assert m2["good_bad_ratio"] == pytest.approx((2 + 1e-6) / (1 + 1e-6))
    m3 = gating_metrics([0.0], 1.0, 10.0, [0.0])
    assert m3["mu_hat"] == 0.0 and m3["good_bad_ratio"] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        gating_metrics([0.1, float("nan")], 0.0, 10.0, [0.0, 0.0])


def test_write_parquet_is_atomic_and_round_trips(tmp_path):
    target = tmp_path / "a" / "b" / "t.parquet"  # parents are created
    df = pl.DataFrame({"x": np.arange(5), "y": np.linspace(0, 1, 5), "s": list("abcde")})
    assert write_parquet(df, target) == str(target)
    assert pl.read_parquet(target).equals(df)
    assert os.listdir(target.parent) == ["t.parquet"]  # no temp file left
    write_parquet({"x": [1, 2], "y": [0.5, 0.25]}, target)  # dicts work and overwrite
    assert pl.read_parquet(target).to_dict(as_series=False) == {"x": [1, 2], "y": [0.5, 0.25]}
    assert oct(os.stat(target).st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode
    write_parquet([{"x": 3}], target)
    assert pl.read_parquet(target)["x"].to_list() == [3]


def test_write_parquet_crash_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "t.parquet"
    write_parquet({"x": [1, 2, 3]}, target)
    before = target.read_bytes()

    def crash(self, path, *a, **k):
        with open(path, "wb") as f:
            f.write(b"PAR1 half a file")
        raise OSError("disk died mid-write")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError, match="mid-write"):
        write_parquet({"x": [9, 9, 9, 9]}, target)
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["t.parquet"]
    with pytest.raises(TypeError):
        write_parquet(42, tmp_path / "bad.parquet")
    assert os.listdir(tmp_path) == ["t.parquet"]


def test_write_json_converts_numpy_and_nan(tmp_path):
    p = write_json({"a": np.float64(1.5), "b": np.arange(3), "c": float("nan"), "d": np.bool_(True)}, tmp_path / "s.json")
    assert json.loads(open(p).read()) == {"a": 1.5, "b": [0, 1, 2], "c": None, "d": True}
