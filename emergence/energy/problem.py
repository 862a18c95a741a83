"""An energy problem: n order parameters eta in [0, 1]^n and a weighted sum of term families.

    F(eta) = sum_k  w_k * E_k(eta)

`weights` are the term weights that adapters and homotopy change; the terms themselves are
immutable, so a reweighted problem is a cheap view (`with_weights`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .terms import EnergyTerm


@dataclass
class EnergyProblem:
    n: int
    terms: dict[str, EnergyTerm]
    eta0: np.ndarray
    weights: dict[str, float] = field(default_factory=dict)
    names: list[str] | None = None  # optional per-module labels, for reports

    def __post_init__(self):
        self.n = int(self.n)
        self.eta0 = np.clip(np.asarray(self.eta0, dtype=np.float64), 0.0, 1.0)
        if self.eta0.shape != (self.n,):
            raise ValueError(f"eta0: expected {self.n} values, got shape {self.eta0.shape}")
        unknown = set(self.weights) - set(self.terms)
        if unknown:
            raise ValueError(f"weights: unknown term(s) {sorted(unknown)}; terms are {sorted(self.terms)}")
        for k, w in self.weights.items():
            if not np.isfinite(w) or w < 0:
                raise ValueError(f"weights.{k}: must be finite and >= 0, got {w}")
        self._grad = np.empty(self.n)
        self._lipschitz: float | None = None
        self._mu: float | None = None

    # -- weights -----------------------------------------------------------------------------
    def weight(self, name: str) -> float:
        return float(self.weights.get(name, 1.0))

    def with_weights(self, weights: dict[str, float]) -> "EnergyProblem":
        """Same terms, other term weights (adapters, homotopy). Shares the term arrays."""
        merged = {**self.weights, **weights}
        return EnergyProblem(self.n, self.terms, self.eta0, merged, self.names)

    # -- evaluation --------------------------------------------------------------------------
    def energy(self, eta: np.ndarray) -> float:
        # zero-weight terms are skipped, not multiplied by 0: views that switch a term off are cheap
        return float(sum(self.weight(k) * t.energy(eta) for k, t in self.terms.items() if self.weight(k) != 0.0))

    def energy_and_grad(self, eta: np.ndarray, out: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Energy and gradient in one pass over the terms; `out` is reused when given."""
        g = self._grad if out is None else out
        g.fill(0.0)
        e = 0.0
        for k, t in self.terms.items():
            w = self.weight(k)
            if w != 0.0:
                e += w * t.add_energy_grad(eta, g, w)
        return e, g

    def grad(self, eta: np.ndarray) -> np.ndarray:
        return self.energy_and_grad(eta, np.empty(self.n))[1]

    def term_energies(self, eta: np.ndarray, weighted: bool = True) -> dict[str, float]:
        return {k: (self.weight(k) if weighted else 1.0) * t.energy(eta) for k, t in self.terms.items()}

    def term_grad_norms(self, eta: np.ndarray, weighted: bool = True) -> dict[str, float]:
        out = {}
        for k, t in self.terms.items():
            g = np.zeros(self.n)
            t.add_energy_grad(eta, g, self.weight(k) if weighted else 1.0)
            out[k] = float(np.linalg.norm(g))
        return out

    # -- curvature ---------------------------------------------------------------------------
    def curvature_rows(self) -> np.ndarray:
        rows = np.zeros(self.n)
        for k, t in self.terms.items():
            rows += self.weight(k) * t.curvature_rows(self.n)
        return rows

    def lipschitz(self) -> float:
        """Gershgorin bound on the gradient's Lipschitz constant over the box [0, 1]^n."""
        if self._lipschitz is None:
            self._lipschitz = float(self.curvature_rows().max()) if self.n else 0.0
        return self._lipschitz

    def strong_convexity(self) -> float:
        """A lower bound mu >= 0 on the Hessian's smallest eigenvalue over the box (0 if unknown
        or nonconvex). Couplings are positive semidefinite, so the local floors bound it."""
        if self._mu is None:
            self._mu = max(0.0, float(self.curvature_floor().min())) if self.n else 0.0
        return self._mu

    def curvature_floor(self) -> np.ndarray:
        """Per-module lower bound on the Hessian diagonal's convex part over the box."""
        floor = np.zeros(self.n)
        for k, t in self.terms.items():
            floor += self.weight(k) * t.curvature_floor(self.n)
        return floor

    def projected_gradient_norm(self, eta: np.ndarray, grad: np.ndarray | None = None) -> float:
        """inf-norm of eta - P(eta - grad): zero exactly at a KKT point of the box problem."""
        if grad is None:
            _, grad = self.energy_and_grad(eta, np.empty(self.n))
        return float(np.max(np.abs(eta - np.clip(eta - grad, 0.0, 1.0)))) if self.n else 0.0
