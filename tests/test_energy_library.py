"""Pure-library tests for energy coordination: no Ray, milliseconds each."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emergence.energy import partition
from emergence.energy.modules import gate_eta, gate_hazard, sequence_eta
from emergence.energy.reference import lbfgsb_optimum
from emergence.energy.relax import METHODS, RelaxConfig, color_classes, delta_f90, relax
from emergence.energy.scenarios import dense_ring, dense_ring_spec, random_problem
from emergence.energy.spec import SpecError, problem_from_spec


def finite_difference(p, x, h=1e-6):
    eye = np.eye(p.n)
    return np.array([(p.energy(x + h * eye[k]) - p.energy(x - h * eye[k])) / (2 * h) for k in range(p.n)])


@pytest.mark.parametrize("seed", range(4))
def test_analytic_gradient_matches_finite_differences(seed):
    p = random_problem(40, 120, seed=seed)
    x = np.random.default_rng(seed).uniform(0.05, 0.95, p.n)
    e, g = p.energy_and_grad(x, np.empty(p.n))
    assert e == pytest.approx(p.energy(x), abs=1e-12)
    np.testing.assert_allclose(g, finite_difference(p, x), atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_jax_backend_matches_numpy_to_1e_9(seed):
    from emergence.energy.jax_backend import JaxEnergy

    p = random_problem(60, 200, seed=seed).with_weights({"hinge": 0.7, "quadratic": 1.3})
    x = np.random.default_rng(seed + 10).uniform(0, 1, p.n)
    je = JaxEnergy(p)
    e_np, g_np = p.energy_and_grad(x, np.empty(p.n))
    e_jx, g_jx = je.energy_and_grad(x)
    assert abs(e_np - e_jx) <= 1e-9 * max(1.0, abs(e_np))
    np.testing.assert_allclose(g_jx, g_np, rtol=0, atol=1e-9)


def test_lipschitz_bound_dominates_true_curvature():
    p = random_problem(30, 80, seed=5)
    x = np.random.default_rng(0).uniform(0, 1, p.n)
    eye = np.eye(p.n)
    hess = np.array([(p.grad(x + 1e-6 * eye[k]) - p.grad(x - 1e-6 * eye[k])) / 2e-6 for k in range(p.n)])
    assert np.max(np.abs(np.linalg.eigvalsh(0.5 * (hess + hess.T)))) <= p.lipschitz() + 1e-6


@pytest.mark.parametrize("method", METHODS)
def test_every_method_reaches_the_lbfgsb_optimum_on_the_dense_ring(method):
    p = dense_ring(60)
    e_star = lbfgsb_optimum(p)
    r = relax(p, method=method, max_steps=4000, tol=1e-10)
    assert np.all((r.eta >= 0) & (r.eta <= 1))
    assert r.gap(e_star) <= 1e-6, (method, r.summary())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(2, 40), method=st.sampled_from(METHODS), convex=st.booleans())
def test_energy_never_increases_on_an_accepted_step(seed, n, method, convex):
    p = random_problem(n, 3 * n, seed=seed, convex=convex)
    r = relax(p, method=method, max_steps=60, tol=1e-12)
    e = np.asarray(r.trace.energy)
    assert np.all(np.diff(e) <= 0.0), (method, np.diff(e).max())
    assert r.energy == pytest.approx(p.energy(r.eta), rel=1e-12, abs=1e-12)
    assert e[-1] == r.energy


def test_unguarded_oversized_step_is_rejected_not_taken():
    p = dense_ring(50)
    r = relax(p, method="pgd", step_size=50.0, stability_guard=False, max_steps=50)
    assert r.rejected > 0
    assert np.all(np.diff(r.trace.energy) <= 0)


def test_target_gap_stopping_and_delta_f90():
    p = dense_ring(200)
    e_star = lbfgsb_optimum(p)
    r = relax(p, tol=0.0, target_energy=e_star, target_gap=1e-6, max_steps=1000)
    assert r.reason == "target_gap" and r.gap(e_star) <= 1e-6
    assert 0 < r.delta_f90 <= r.steps
    assert delta_f90([5.0, 1.0, 0.5, 0.0]) == 2  # 90% of the drop (to 0.5) first reached at step 2
    assert delta_f90([1.0]) == 0


def test_color_classes_are_independent_sets_covering_all_modules():
    p = random_problem(200, 600, seed=1)
    classes = color_classes(p)
    assert np.array_equal(np.sort(np.concatenate(classes)), np.arange(p.n))
    cls_of = np.empty(p.n, dtype=int)
    for c, idx in enumerate(classes):
        cls_of[idx] = c
    for t in p.terms.values():
        if hasattr(t, "i"):
            distinct = t.i != t.j
            assert np.all(cls_of[t.i[distinct]] != cls_of[t.j[distinct]])


def test_gate_eta_is_the_hazard_open_probability():
    gain, cost, k = np.array([0.0, 0.1, 0.2]), 0.1, 10.0
    lam = np.log1p(np.exp(k * (gain - cost)))
    np.testing.assert_allclose(gate_eta(gain, cost, k), 1 - np.exp(-lam))
    np.testing.assert_allclose(gate_hazard(gain, cost, k), lam)
    assert gate_eta(0.1, 0.1, 10.0) == pytest.approx(0.5)


def test_sequence_eta_exact_counts_ordered_pairs():
    assert sequence_eta([1, 2, 3, 4]) == 1.0
    assert sequence_eta([4, 3, 2, 1]) == 0.0
    assert sequence_eta([1, 3, 2]) == pytest.approx(2 / 3)
    v = np.random.default_rng(0).normal(size=50)
    brute = np.mean([v[i] <= v[j] for i in range(50) for j in range(i + 1, 50)])
    assert sequence_eta(v) == pytest.approx(brute)


def test_spec_builds_the_same_problem_as_the_scenario():
    p1, p2 = dense_ring(17), problem_from_spec(dense_ring_spec(17))
    x = np.random.default_rng(3).uniform(0, 1, 17)
    assert p2.energy(x) == pytest.approx(p1.energy(x), rel=1e-13)
    np.testing.assert_allclose(p2.grad(x), p1.grad(x), atol=1e-13)
    np.testing.assert_allclose(p2.eta0, p1.eta0)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda s: s["couplings"][0].__setitem__("weight", float("nan")), "couplings[0].weight"),
        (lambda s: s["couplings"][1].__setitem__("j", [0, 1, 99, 2, 3]), "couplings[1].j"),
        (lambda s: s["couplings"][0].__setitem__("family", "cubic"), "couplings[0].family"),
        (lambda s: s["modules"][0].__setitem__("kind", "nope"), "modules[0].kind"),
        (lambda s: s.__setitem__("eta0", [0.5, 0.5, 1.5, 0.5, 0.5]), "eta0"),
        (lambda s: s["modules"][0].__setitem__("a", float("inf")), "modules[0].a"),
        (lambda s: s["couplings"][0].__setitem__("weight", -1.0), "couplings[0].weight"),
        (lambda s: s["couplings"][2].pop("delta"), "couplings[2].delta"),
        (lambda s: s.__setitem__("bogus", 1), "bogus"),
    ],
)
def test_bad_specs_name_the_field(mutate, field):
    spec = dense_ring_spec(5)
    mutate(spec)
    with pytest.raises(SpecError) as err:
        problem_from_spec(spec)
    assert err.value.field == field


def test_oversize_spec_is_rejected():
    with pytest.raises(SpecError, match="too large"):
        problem_from_spec(dense_ring_spec(50), max_modules=10)


def test_partitioned_blocks_reproduce_global_energy_and_gradient():
    p = random_problem(300, 900, seed=2)
    x = np.random.default_rng(0).uniform(0, 1, p.n)
    g = p.grad(x)
    total = 0.0
    for block, _ in partition.blocks_from_problem(p, 3):
        xl = np.concatenate([x[block.lo:block.hi], x[block.ghosts]])
        total += block.energy(xl)
        np.testing.assert_allclose(block.grad_problem.grad(xl)[: block.n_own], g[block.lo:block.hi], atol=1e-12)
    assert total == pytest.approx(p.energy(x), rel=1e-12)


def test_dense_ring_block_matches_the_global_ring():
    n = 40
    p = dense_ring(n)
    x = np.random.default_rng(1).uniform(0, 1, n)
    total = 0.0
    for lo, hi in [(0, 13), (13, 27), (27, 40)]:
        block, x0 = partition.dense_ring_block(n, lo, hi)
        np.testing.assert_allclose(x0[: hi - lo], p.eta0[lo:hi])
        xl = np.concatenate([x[lo:hi], x[block.ghosts]])
        total += block.energy(xl)
        np.testing.assert_allclose(block.grad_problem.grad(xl)[: hi - lo], p.grad(x)[lo:hi], atol=1e-12)
    assert total == pytest.approx(p.energy(x), rel=1e-12)


def test_relax_config_rejects_bad_input():
    with pytest.raises(ValueError, match="method"):
        RelaxConfig(method="newton")
    with pytest.raises(ValueError, match="target_gap"):
        RelaxConfig(target_gap=1e-6)
    with pytest.raises(ValueError, match="eta0"):
        relax(dense_ring(5), eta0=np.full(5, np.nan))


@pytest.mark.parametrize(
    "spec_patch, field",
    [
        ({"modules": [{"kind": ["gating"], "count": 2, "gain": 0.0}]}, "modules[0].kind"),
        ({"modules": [{"kind": "landau", "count": 2, "a": 10**400, "b": 0.0}]}, "modules[0].a"),
        ({"modules": [{"kind": "landau", "count": 2, "a": [[1, 2]], "b": 0.0}]}, "modules[0].a"),
        ({"modules": [{"kind": "sequence", "count": 1, "inputs": [[1, 10**400]]}]}, "modules[0].inputs[0]"),
        ({"modules": [{"kind": "landau", "count": 2, "a": 1, "b": 0}], "couplings": [{"family": {"x": 1}}]}, "couplings[0].family"),
        ({"modules": [{"kind": "landau", "count": 2, "a": 1, "b": 0}], "weights": {"local": 10**400}}, "weights.local"),
        ({"modules": [{"kind": "landau", "count": 2, "a": 1, "b": 0}], "names": 5}, "names"),
    ],
)
def test_malformed_json_values_are_spec_errors_not_crashes(spec_patch, field):
    with pytest.raises(SpecError) as err:
        problem_from_spec(spec_patch)
    assert err.value.field == field


def test_term_constructors_reject_nan():
    from emergence.energy.terms import LandauTerm, QuadraticCoupling

    with pytest.raises(ValueError, match="a: values must be finite"):
        LandauTerm(a=[0.1, float("nan")], b=0.0)
    with pytest.raises(ValueError, match="weight: values must be finite"):
        QuadraticCoupling([0], [1], [float("nan")], 2)


def test_relax_settings_are_validated():
    p = dense_ring(5)
    for bad in ({"max_steps": 1.5}, {"tol": "1e-3"}, {"step_size": -0.1}, {"admm_rho": -1.0},
                {"coordinate_sweeps_per_step": 0}, {"bogus": 1}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            relax(p, **bad)
    with pytest.raises(ValueError, match="eta0"):
        relax(p, eta0=np.array([0.5, np.inf, 0.5, 0.5, 0.5]))


def test_landau_prox_lands_exactly_on_the_box_ends():
    from emergence.energy.relax import _landau_prox
    from emergence.energy.terms import LandauTerm

    term = LandauTerm(a=[0.1, 0.1, 0.1], b=0.0, h=[10.0, -10.0, 0.0])
    x = _landau_prox(term, 1.0, np.array([0.3, 0.7, 0.5]), 0.1)
    assert x[0] == 0.0 and x[1] == 1.0
    # interior: minimise 0.1 x^2 + (x - 0.5)^2 / 0.2  ->  x = 0.5 / (1 + 0.02)
    assert x[2] == pytest.approx(0.5 / 1.02, abs=1e-14)


def test_homotopy_counts_stage_steps_against_max_steps():
    r = relax(dense_ring(200), method="homotopy", max_steps=40, tol=1e-12)
    assert r.steps <= 40
