"""The library stays Ray-free, and a user adds a coupling family without touching the coordinator."""

from __future__ import annotations

import pathlib
import re

import numpy as np
import pytest

from emergence.energy import COUPLING_FAMILIES, EnergyProblem, EnergyTerm, LandauTerm, problem_from_spec, register_coupling_family, relax

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_domain_library_has_no_ray_imports():
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "emergence").rglob("*.py")
        if re.search(r"^\s*(import ray|from ray)\b", p.read_text(), re.MULTILINE)
    ]
    assert offenders == []


class AttractTo:
    """A user-defined family: sum_e w_e (eta_i - target_e)^2 — pulls module i towards a target."""

    family = "attract"

    def __init__(self, i, target, weight, n):
        self.i, self.target, self.n = np.asarray(i), np.asarray(target, float), n
        self.weight = np.broadcast_to(np.asarray(weight, float), self.i.shape)

    def energy(self, eta):
        d = eta[self.i] - self.target
        return float(np.sum(self.weight * d * d))

    def add_energy_grad(self, eta, grad, scale):
        d = eta[self.i] - self.target
        grad += scale * np.bincount(self.i, 2 * self.weight * d, minlength=self.n)
        return float(np.sum(self.weight * d * d))

    def curvature_rows(self, n):
        return np.bincount(self.i, 2 * self.weight, minlength=n)

    def curvature_floor(self, n):
        return np.zeros(n)

    def jax_energy(self, eta):
        import jax.numpy as jnp

        d = eta[self.i] - self.target
        return jnp.sum(self.weight * d * d)


def test_user_coupling_family_plugs_into_relaxation():
    n = 4
    term = AttractTo([0, 1, 2, 3], [0.9, 0.8, 0.7, 0.6], 10.0, n)
    assert isinstance(term, EnergyTerm)
    p = EnergyProblem(n, {"local": LandauTerm(a=0.01, b=0.0, n=n), "attract": term}, np.zeros(n))
    r = relax(p, tol=1e-12)
    # closed form per module: minimise 0.01 x^2 + 10 (x - t)^2  ->  x = 10 t / 10.01
    np.testing.assert_allclose(r.eta, 10 * np.array([0.9, 0.8, 0.7, 0.6]) / 10.01, atol=1e-9)


def test_registered_family_is_usable_from_specs():
    def build(c, n, where):
        return AttractTo(c["i"], c["target"], c.get("weight", 1.0), n)

    register_coupling_family("attract", build)
    try:
        p = problem_from_spec({"modules": [{"kind": "landau", "count": 2, "a": 0.0, "b": 0.0}],
                               "couplings": [{"family": "attract", "i": [0, 1], "target": [0.25, 0.75]}]})
        np.testing.assert_allclose(relax(p, tol=1e-12).eta, [0.25, 0.75], atol=1e-9)
    finally:
        COUPLING_FAMILIES.pop("attract")
    with pytest.raises(ValueError, match="unknown coupling family 'attract'"):
        problem_from_spec({"modules": [{"kind": "landau", "count": 1, "a": 0, "b": 0}], "couplings": [{"family": "attract"}]})
