"""Energy coordinator and partitioned relaxation as Ray actors (shared Ray session)."""

from __future__ import annotations

import numpy as np
import pytest

from emergence.energy.relax import relax
from emergence.energy.scenarios import dense_ring, dense_ring_spec, random_problem
from emergence.energy.spec import SpecError

pytestmark = pytest.mark.ray


def test_coordinator_build_relax_query_drop(ray_session):
    from actors.energy import EnergyCoordinator

    ray = ray_session
    coord = EnergyCoordinator.remote()
    built = ray.get(coord.build.remote("ring", dense_ring_spec(30)), timeout=60)
    assert built["n"] == 30 and set(built["terms"]) == {"local", "quadratic", "quadratic_1", "gate_benefit"}
    out = ray.get(coord.relax.remote("ring", method="accelerated", tol=1e-10), timeout=60)
    expected = relax(dense_ring(30), tol=1e-10)
    assert out["energy"] == pytest.approx(expected.energy, abs=1e-10)
    assert out["energy"] < built["energy"]
    assert np.all(np.diff(out["trace"]["energy"]) <= 0)
    q = ray.get(coord.query.remote("ring"), timeout=60)
    assert q["energy"] == pytest.approx(out["energy"], abs=1e-12)
    assert q["projected_gradient_norm"] <= 1e-8
    assert ray.get(coord.names.remote()) == ["ring"]
    assert ray.get(coord.drop.remote("ring")) is True
    with pytest.raises(KeyError, match="no problem called 'ring'"):
        ray.get(coord.query.remote("ring"), timeout=60)
    ray.kill(coord)


def test_coordinator_rejects_bad_spec_naming_the_field(ray_session):
    from actors.energy import EnergyCoordinator

    ray = ray_session
    coord = EnergyCoordinator.remote()
    spec = dense_ring_spec(5)
    spec["couplings"][0]["i"] = [0, 1, 2, 3, 7]
    with pytest.raises(SpecError) as err:
        ray.get(coord.build.remote("bad", spec), timeout=60)
    assert "couplings[0].i" in str(err.value)
    assert ray.get(coord.names.remote()) == []  # nothing half-built
    ray.kill(coord)


@pytest.mark.parametrize("k", [2, 3])
def test_partitioned_relaxation_reaches_the_single_process_optimum(ray_session, k):
    from actors.partitioned import gather_eta, relax_partitioned, start_workers
    from emergence.energy.partition import block_payloads

    ray = ray_session
    p = random_problem(400, 1200, seed=7)
    single = relax(p, tol=1e-11, max_steps=20_000)
    workers, infos = start_workers(p.n, k, source="arrays", payloads=block_payloads(p, k), num_cpus=0)
    out = relax_partitioned(workers, infos, tol=1e-11, max_steps=20_000)
    eta = gather_eta(workers)
    for w in workers:
        ray.kill(w)
    assert out["initial_energy"] == pytest.approx(p.energy(p.eta0), rel=1e-12)
    assert np.all(np.diff(out["energies"]) <= 0)
    gap = (out["energy"] - single.energy) / (single.initial_energy - single.energy)
    assert abs(gap) <= 1e-6
    assert p.energy(eta) == pytest.approx(out["energy"], rel=1e-10, abs=1e-10)


def test_partitioned_dense_ring_matches_single_process_iterates(ray_session):
    from actors.partitioned import gather_eta, relax_partitioned, start_workers

    ray = ray_session
    n = 3000
    single = relax(dense_ring(n), tol=1e-10)
    workers, infos = start_workers(n, 2, num_cpus=0)
    out = relax_partitioned(workers, infos, tol=1e-10)
    eta = gather_eta(workers)
    for w in workers:
        ray.kill(w)
    np.testing.assert_allclose(eta, single.eta, atol=1e-7)
    assert out["energy"] == pytest.approx(single.energy, rel=1e-12)


def test_relax_job_writes_parquet_trace_and_plot(ray_session, tmp_path):
    import json

    import polars as pl

    from actors.relax import main

    spec_path = tmp_path / "ring.json"
    spec_path.write_text(json.dumps(dense_ring_spec(50)))
    summary = main([str(spec_path), "--out", str(tmp_path / "out"), "--tol", "1e-10"])
    frame = pl.read_parquet(tmp_path / "out" / "trace.parquet")
    assert frame.height == summary["steps"] + 1
    assert (frame["energy"].diff().drop_nulls() <= 0).all()
    assert frame["energy"][-1] == pytest.approx(summary["energy"])
    assert (tmp_path / "out" / "trace.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["problem"]["name"] == "ring"
    budgets = pl.read_parquet(tmp_path / "out" / "budgets.parquet")
    assert set(budgets["term"]) == {"local", "quadratic", "quadratic_1", "gate_benefit"}
    assert budgets["energy"].sum() == pytest.approx(summary["energy"], abs=1e-9)
