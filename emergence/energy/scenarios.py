"""Reference problems used by the benchmark, the tests and the Serve examples."""

from __future__ import annotations

import numpy as np

from .modules import gate_eta
from .problem import EnergyProblem
from .terms import GateBenefitCoupling, LandauTerm, QuadraticCoupling


def dense_ring(n: int) -> EnergyProblem:
    """The seed's "dense" scenario: n gating modules on a ring.

    Modules: a = 0.15, b = 0.05, gain_i = 0.02 (i mod 5), cost = 0.1, k = 10 (eta0 from the gate).
    Couplings per i: quadratic (i, i+1) w 0.6, quadratic (i, i+2) w 0.3,
    gate-benefit (gate i+1 -> domain i) w 0.4 with delta 0.05. Convex on [0, 1]^n.
    """
    if n < 3:
        raise ValueError("n: the dense ring needs at least 3 modules")
    idx = np.arange(n, dtype=np.int64)
    nxt, nxt2 = (idx + 1) % n, (idx + 2) % n
    gain = 0.02 * (idx % 5)
    eta0 = gate_eta(gain, cost=0.1, k=10.0)
    terms = {
        "local": LandauTerm(a=0.15, b=0.05, n=n),
        "quadratic": QuadraticCoupling(
            np.concatenate([idx, idx]), np.concatenate([nxt, nxt2]), np.concatenate([np.full(n, 0.6), np.full(n, 0.3)]), n
        ),
        "gate_benefit": GateBenefitCoupling(nxt, idx, 0.4, n, delta=0.05),
    }
    return EnergyProblem(n, terms, eta0)


def dense_ring_spec(n: int) -> dict:
    """The same scenario as a JSON problem spec (what POST /relax accepts)."""
    idx = list(range(n))
    return {
        "modules": [
            {"kind": "gating", "count": n, "a": 0.15, "b": 0.05, "gain": [0.02 * (i % 5) for i in idx], "cost": 0.1, "k": 10.0}
        ],
        "couplings": [
            {"family": "quadratic", "i": idx, "j": [(i + 1) % n for i in idx], "weight": 0.6},
            {"family": "quadratic", "i": idx, "j": [(i + 2) % n for i in idx], "weight": 0.3},
            {"family": "gate_benefit", "i": [(i + 1) % n for i in idx], "j": idx, "weight": 0.4, "delta": 0.05},
        ],
    }


def random_problem(n: int, m: int, seed: int = 0, convex: bool = True) -> EnergyProblem:
    """A random sparse problem with every family, for property tests."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.05, 1.0, n) if convex else rng.uniform(-1.0, 1.0, n)
    terms = {
        "local": LandauTerm(a=a, b=rng.uniform(0.0, 1.0, n), h=rng.uniform(-0.3, 0.3, n), center=rng.choice([0.0, 1.0], n)),
    }
    from .terms import HingeCoupling

    def pairs(k):
        i = rng.integers(0, n, k)
        j = (i + rng.integers(1, n, k)) % n if n > 1 else i
        return i, j

    i, j = pairs(m)
    terms["quadratic"] = QuadraticCoupling(i, j, rng.uniform(0.0, 1.0, m), n)
    i, j = pairs(max(1, m // 2))
    terms["hinge"] = HingeCoupling(i, j, rng.uniform(0.0, 1.0, i.size), n, alpha=rng.uniform(0.5, 1.5, i.size), beta=rng.uniform(0.5, 1.5, i.size))
    i, j = pairs(max(1, m // 3))
    terms["gate_benefit"] = GateBenefitCoupling(i, j, rng.uniform(0.0, 1.0, i.size), n, delta=rng.uniform(-0.2, 0.2, i.size))
    return EnergyProblem(n, terms, rng.uniform(0.0, 1.0, n))
