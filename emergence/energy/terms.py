"""Energy term families, vectorized over all modules or all couplings of one family.

Every term implements the `EnergyTerm` protocol. The coordinator only ever calls the protocol,
so a new module or coupling family is a new class here (or in user code), never a change to
the relaxation code. Each family is a set of arrays (indices, weights, parameters); energy and
analytic gradient are O(n + m) numpy passes.

Curvature bounds (`curvature_rows`) are Gershgorin row sums of |Hessian| taken over the whole
box [0, 1]^n: their maximum is a Lipschitz constant of the gradient on the box, which is what
makes a step of 1/L safe and what the stability guard enforces.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import scipy.sparse as sp


@runtime_checkable
class EnergyTerm(Protocol):
    """What the coordinator needs from a term: energy, gradient and curvature bounds."""

    family: str

    def energy(self, eta: np.ndarray) -> float:
        """Energy of this term at eta (unweighted)."""

    def add_energy_grad(self, eta: np.ndarray, grad: np.ndarray, scale: float) -> float:
        """Add scale * dE/deta into grad; return the unweighted energy."""

    def curvature_rows(self, n: int) -> np.ndarray:
        """Per-module upper bound on the |Hessian| row sum over [0, 1]^n (unweighted)."""

    def curvature_floor(self, n: int) -> np.ndarray:
        """Per-module lower bound on this term's contribution to the smallest Hessian
        eigenvalue over the box (0 for positive semidefinite couplings)."""

    def jax_energy(self, eta):  # pragma: no cover - protocol signature
        """Same energy written with jax.numpy, for the JIT backend."""


def _as_float_array(x, n: int, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected {n} values, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite (no NaN or infinity)")
    return np.ascontiguousarray(arr)


class LandauTerm:
    """Local Landau energies: sum_i a_i u_i^2 + b_i u_i^4 + h_i eta_i with u_i = eta_i - c_i.

    c_i = 0 gives the usual a eta^2 + b eta^4 family (gating modules); c_i = 1 puts the minimum
    of the symmetric part at full order (sequence-consistency and connectivity modules).
    """

    family = "local"

    def __init__(self, a, b, h=0.0, center=0.0, n: int | None = None):
        n = int(n if n is not None else np.size(a))
        self.n = n
        self.a = _as_float_array(a, n, "a")
        self.b = _as_float_array(b, n, "b")
        self.h = _as_float_array(h, n, "h")
        self.center = _as_float_array(center, n, "center")
        if np.any(self.b < 0):
            raise ValueError("b: quartic coefficients must be >= 0 (the energy is unbounded otherwise)")
        # Skip work the common case doesn't need (c = 0, h = 0): this is on the hot path.
        self._has_center = bool(np.any(self.center != 0.0))
        self._has_field = bool(np.any(self.h != 0.0))
        self._two_a = 2.0 * self.a
        self._u = np.empty(n)
        self._tmp = np.empty(n)
        self._tmp2 = np.empty(n)

    def _shifted(self, eta: np.ndarray) -> np.ndarray:
        if self._has_center:
            np.subtract(eta, self.center, out=self._u)
            return self._u
        return eta

    def energy(self, eta: np.ndarray) -> float:
        u = self._shifted(eta)
        u2 = np.multiply(u, u, out=self._tmp)
        # a u^2 + b u^4 = u^2 . (a + b u^2)
        inner = np.multiply(self.b, u2, out=self._tmp2)
        inner += self.a
        e = float(np.dot(u2, inner))
        if self._has_field:
            e += float(np.dot(self.h, eta))
        return e

    def add_energy_grad(self, eta: np.ndarray, grad: np.ndarray, scale: float) -> float:
        # Preallocated buffers: this runs twice per relaxation step over all n modules.
        u = self._shifted(eta)
        u2 = np.multiply(u, u, out=self._tmp)
        inner = np.multiply(self.b, u2, out=self._tmp2)
        inner += self.a  # a + b u^2
        e = float(np.dot(u2, inner))
        # d/du (a u^2 + b u^4) = u (2a + 4 b u^2) = u (4 (a + b u^2) - 2a)
        inner *= 4.0
        inner -= self._two_a
        inner *= u
        if scale != 1.0:
            inner *= scale
        grad += inner
        if self._has_field:
            e += float(np.dot(self.h, eta))
            grad += self.h if scale == 1.0 else scale * self.h
        return e

    def _umax2(self) -> np.ndarray:
        return np.maximum(self.center**2, (1.0 - self.center) ** 2)

    def curvature_rows(self, n: int) -> np.ndarray:
        # f'' = 2a + 12 b u^2 ranges over [2a + 12 b umin^2, 2a + 12 b umax^2] on the box.
        hi = 2.0 * self.a + 12.0 * self.b * self._umax2()
        return np.maximum(np.abs(2.0 * self.a), np.abs(hi))

    def curvature_floor(self, n: int) -> np.ndarray:
        umin = np.clip(self.center, 0.0, 1.0) - self.center  # 0 when the center lies in the box
        return 2.0 * self.a + 12.0 * self.b * umin**2

    def jax_energy(self, eta):
        import jax.numpy as jnp

        u = eta - jnp.asarray(self.center)
        u2 = u * u
        return jnp.sum(u2 * (jnp.asarray(self.a) + jnp.asarray(self.b) * u2)) + jnp.dot(jnp.asarray(self.h), eta)


class _PairTerm:
    """Shared validation for couplings given as (i, j, weight, ...) arrays."""

    def __init__(self, i, j, weight, n: int):
        self.n = int(n)
        self.i = np.ascontiguousarray(np.asarray(i, dtype=np.int64))
        self.j = np.ascontiguousarray(np.asarray(j, dtype=np.int64))
        m = self.i.shape[0]
        if self.i.ndim != 1 or self.j.shape != (m,):
            raise ValueError("i, j: expected two 1-D index arrays of equal length")
        self.weight = _as_float_array(weight, m, "weight")
        for name, idx in (("i", self.i), ("j", self.j)):
            if m and (idx.min() < 0 or idx.max() >= self.n):
                raise ValueError(f"{name}: index out of range [0, {self.n})")
        if np.any(self.weight < 0):
            raise ValueError("weight: coupling weights must be >= 0")

    @property
    def m(self) -> int:
        return int(self.i.shape[0])


try:  # y += A x into a caller's buffer; scipy's public `A @ x` allocates a fresh array per call
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - private scipy API; fall back to the public product
    _csr_matvec = None


def csr_matvec_into(a: sp.csr_matrix, x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = a @ x without allocating (page faults on fresh n-sized arrays cost as much as the
    product itself on a VM)."""
    if _csr_matvec is None:
        out[:] = a @ x
        return out
    out.fill(0.0)
    _csr_matvec(a.shape[0], a.shape[1], a.indptr, a.indices, a.data, x, out)
    return out


class QuadraticCoupling(_PairTerm):
    """sum_e w_e (eta_i - eta_j)^2, stored as the weighted graph Laplacian L so that
    E = eta^T L eta and grad = 2 L eta cost one sparse mat-vec."""

    family = "quadratic"

    def __init__(self, i, j, weight, n: int):
        super().__init__(i, j, weight, n)
        w = self.weight
        rows = np.concatenate([self.i, self.j, self.i, self.j])
        cols = np.concatenate([self.i, self.j, self.j, self.i])
        vals = np.concatenate([w, w, -w, -w])
        self.laplacian = sp.csr_matrix((vals, (rows, cols)), shape=(self.n, self.n))
        self.laplacian.sum_duplicates()
        self._lx = np.empty(self.n)

    def matvec(self, eta: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        return csr_matvec_into(self.laplacian, eta, self._lx if out is None else out)

    def energy(self, eta: np.ndarray) -> float:
        return float(np.dot(eta, self.matvec(eta)))

    def add_energy_grad(self, eta: np.ndarray, grad: np.ndarray, scale: float) -> float:
        lx = self.matvec(eta)
        e = float(np.dot(eta, lx))
        lx *= 2.0 * scale
        grad += lx
        return e

    def curvature_rows(self, n: int) -> np.ndarray:
        # Hessian 2L: diagonal 2 deg_w, off-diagonal magnitudes sum to 2 deg_w.
        deg = np.bincount(self.i, self.weight, minlength=n) + np.bincount(self.j, self.weight, minlength=n)
        return 4.0 * deg

    def curvature_floor(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def jax_energy(self, eta):
        import jax.numpy as jnp

        d = eta[jnp.asarray(self.i)] - eta[jnp.asarray(self.j)]
        return jnp.sum(jnp.asarray(self.weight) * d * d)


class HingeCoupling(_PairTerm):
    """Directed hinge: sum_e w_e max(0, beta_e eta_j - alpha_e eta_i)^2.

    Penalises eta_i falling below eta_j (scaled by beta/alpha); alpha = beta = 1 is the
    plain directed hinge w max(0, eta_j - eta_i)^2.
    """

    family = "hinge"

    def __init__(self, i, j, weight, n: int, alpha=1.0, beta=1.0):
        super().__init__(i, j, weight, n)
        self.alpha = _as_float_array(alpha, self.m, "alpha")
        self.beta = _as_float_array(beta, self.m, "beta")
        if np.any(self.alpha < 0) or np.any(self.beta < 0):
            raise ValueError("alpha, beta: hinge scales must be >= 0")

    def _gap(self, eta: np.ndarray) -> np.ndarray:
        gap = self.beta * eta[self.j] - self.alpha * eta[self.i]
        np.maximum(gap, 0.0, out=gap)
        return gap

    def energy(self, eta: np.ndarray) -> float:
        gap = self._gap(eta)
        return float(np.dot(self.weight * gap, gap))

    def add_energy_grad(self, eta: np.ndarray, grad: np.ndarray, scale: float) -> float:
        gap = self._gap(eta)
        wg = self.weight * gap
        e = float(np.dot(wg, gap))
        wg *= 2.0 * scale
        grad -= np.bincount(self.i, wg * self.alpha, minlength=self.n)
        grad += np.bincount(self.j, wg * self.beta, minlength=self.n)
        return e

    def curvature_rows(self, n: int) -> np.ndarray:
        s = 2.0 * self.weight * (self.alpha + self.beta)
        return np.bincount(self.i, s * self.alpha, minlength=n) + np.bincount(self.j, s * self.beta, minlength=n)

    def curvature_floor(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def jax_energy(self, eta):
        import jax.numpy as jnp

        gap = jnp.asarray(self.beta) * eta[jnp.asarray(self.j)] - jnp.asarray(self.alpha) * eta[jnp.asarray(self.i)]
        gap = jnp.maximum(gap, 0.0)
        return jnp.sum(jnp.asarray(self.weight) * gap * gap)


class GateBenefitCoupling(_PairTerm):
    """Gate-benefit: sum_e -w_e * delta_e * eta_gate(e), with gate = i and domain = j.

    delta_e is the domain improvement the gate would buy (e.g. eta_after - eta_before, computed
    by the caller). The term is linear in the gate, so it is a constant force that pulls a
    closed gate open when delta > 0: a closed gate still "feels" the benefit of opening.
    """

    family = "gate_benefit"

    def __init__(self, i, j, weight, n: int, delta=0.0):
        super().__init__(i, j, weight, n)
        self.delta = _as_float_array(delta, self.m, "delta")
        if not np.all(np.isfinite(self.delta)):
            raise ValueError("delta: must be finite")
        self.field = -np.bincount(self.i, self.weight * self.delta, minlength=self.n)

    def energy(self, eta: np.ndarray) -> float:
        return float(np.dot(self.field, eta))

    def add_energy_grad(self, eta: np.ndarray, grad: np.ndarray, scale: float) -> float:
        grad += self.field if scale == 1.0 else scale * self.field
        return float(np.dot(self.field, eta))

    def curvature_rows(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def curvature_floor(self, n: int) -> np.ndarray:
        return np.zeros(n)

    def jax_energy(self, eta):
        import jax.numpy as jnp

        return -jnp.sum(jnp.asarray(self.weight * self.delta) * eta[jnp.asarray(self.i)])
