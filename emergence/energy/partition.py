"""Split one problem into K blocks of modules for partitioned relaxation.

Block b owns modules [lo, hi). It holds every coupling that touches an owned module, and the
other endpoints of those couplings as read-only *ghost* modules (their current values arrive
from the owning block each step). With every incident coupling present, the gradient at an
owned module is exactly the global gradient; for the energy, a coupling between two blocks is
counted by both, so each block weighs its crossing couplings by 1/2 and the block energies sum
to the global energy.

Local numbering: owned modules first (0 .. n_own-1), then ghosts in increasing global order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .problem import EnergyProblem
from .terms import GateBenefitCoupling, HingeCoupling, LandauTerm, QuadraticCoupling


@dataclass
class Block:
    lo: int
    hi: int
    ghosts: np.ndarray  # global indices of ghost modules, sorted
    grad_problem: EnergyProblem  # crossing couplings at full weight: exact gradient on owned modules
    energy_weights: dict[str, float]  # crossing couplings at 1/2: this block's share of the energy

    @property
    def n_own(self) -> int:
        return self.hi - self.lo

    def energy(self, x_local: np.ndarray) -> float:
        # one reweighted view, built on first use: this runs once per global step
        if getattr(self, "_energy_view", None) is None:
            self._energy_view = self.grad_problem.with_weights(self.energy_weights)
        return self._energy_view.energy(x_local)

    def lipschitz(self) -> float:
        return float(self.grad_problem.curvature_rows()[: self.n_own].max())

    def strong_convexity(self) -> float:
        return max(0.0, float(self.grad_problem.curvature_floor()[: self.n_own].min()))


def block_bounds(n: int, k: int) -> np.ndarray:
    """K contiguous ranges covering [0, n): bounds[b] .. bounds[b+1]."""
    if k < 1 or k > n:
        raise ValueError(f"k: need 1 <= k <= n, got k={k}, n={n}")
    return np.linspace(0, n, k + 1).round().astype(np.int64)


def owner_of(bounds: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return np.searchsorted(bounds, idx, side="right") - 1


def coupling_arrays(problem: EnergyProblem) -> dict[str, tuple[str, dict]]:
    """The problem's coupling families as plain arrays (what `build_block` consumes)."""
    out = {}
    for name, t in problem.terms.items():
        w = problem.weight(name)
        if isinstance(t, QuadraticCoupling):
            out[name] = ("quadratic", {"i": t.i, "j": t.j, "weight": t.weight * w})
        elif isinstance(t, HingeCoupling):
            out[name] = ("hinge", {"i": t.i, "j": t.j, "weight": t.weight * w, "alpha": t.alpha, "beta": t.beta})
        elif isinstance(t, GateBenefitCoupling):
            out[name] = ("gate_benefit", {"i": t.i, "j": t.j, "weight": t.weight * w, "delta": t.delta})
        elif not isinstance(t, LandauTerm):
            raise ValueError(f"terms.{name}: family {t.family!r} cannot be partitioned yet")
    return out


def build_block(n: int, lo: int, hi: int, landau: dict, couplings: dict[str, tuple[str, dict]], eta0: np.ndarray) -> tuple[Block, np.ndarray]:
    """One block from global arrays. `landau` holds a, b, h, center for the owned modules;
    `couplings` may hold all couplings or just those touching [lo, hi). Returns the block and
    its initial local eta (ghost entries are 0 until the first exchange)."""
    fam_edges = {}
    ghost_parts = []
    for name, (fam, arr) in couplings.items():
        i, j = np.asarray(arr["i"]), np.asarray(arr["j"])
        in_i, in_j = (i >= lo) & (i < hi), (j >= lo) & (j < hi)
        keep = in_i | in_j
        cross = keep & ~(in_i & in_j)
        fam_edges[name] = (fam, {k: np.asarray(v)[keep] for k, v in arr.items()}, cross[keep])
        ghost_parts += [i[keep & ~in_i], j[keep & ~in_j]]
    ghosts = np.unique(np.concatenate(ghost_parts)) if ghost_parts else np.zeros(0, dtype=np.int64)
    n_own = hi - lo
    n_loc = n_own + ghosts.size

    def local(idx):
        idx = np.asarray(idx, dtype=np.int64)
        own = (idx >= lo) & (idx < hi)
        return np.where(own, idx - lo, n_own + np.searchsorted(ghosts, idx))

    pad = lambda v: np.concatenate([np.broadcast_to(np.asarray(v, dtype=np.float64), (n_own,)), np.zeros(ghosts.size)])  # noqa: E731
    terms = {"local": LandauTerm(pad(landau["a"]), pad(landau["b"]), pad(landau.get("h", 0.0)), pad(landau.get("center", 0.0)), n=n_loc)}
    energy_weights = {}
    for name, (fam, arr, cross) in fam_edges.items():
        for suffix, mask in (("", ~cross), ("_cross", cross)):
            if not mask.any():
                continue
            sub = {k: v[mask] for k, v in arr.items()}
            i, j = local(sub.pop("i")), local(sub.pop("j"))
            key = name + suffix
            if fam == "quadratic":
                terms[key] = QuadraticCoupling(i, j, sub["weight"], n_loc)
            elif fam == "hinge":
                terms[key] = HingeCoupling(i, j, sub["weight"], n_loc, alpha=sub["alpha"], beta=sub["beta"])
            else:
                terms[key] = GateBenefitCoupling(i, j, sub["weight"], n_loc, delta=sub["delta"])
            if suffix:
                energy_weights[key] = 0.5
    x0 = np.concatenate([np.asarray(eta0, dtype=np.float64), np.zeros(ghosts.size)])
    return Block(lo, hi, ghosts, EnergyProblem(n_loc, terms, x0), energy_weights), x0


def block_payloads(problem: EnergyProblem, k: int) -> list[tuple[dict, dict, np.ndarray]]:
    """Per block: (Landau parameters of its modules, the couplings touching it, its eta0),
    small enough to ship to the actor that builds the block."""
    local = problem.terms["local"]
    if not isinstance(local, LandauTerm):
        raise ValueError("terms.local: partitioning needs the Landau local term")
    wl = problem.weight("local")
    couplings = coupling_arrays(problem)
    bounds = block_bounds(problem.n, k)
    out = []
    for b in range(k):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        sl = slice(lo, hi)
        landau = {"a": local.a[sl] * wl, "b": local.b[sl] * wl, "h": local.h[sl] * wl, "center": local.center[sl]}
        touching = {}
        for name, (fam, arr) in couplings.items():
            i, j = arr["i"], arr["j"]
            keep = ((i >= lo) & (i < hi)) | ((j >= lo) & (j < hi))
            touching[name] = (fam, {key: v[keep] for key, v in arr.items()})
        out.append((landau, touching, problem.eta0[sl].copy()))
    return out


def blocks_from_problem(problem: EnergyProblem, k: int) -> list[tuple[Block, np.ndarray]]:
    bounds = block_bounds(problem.n, k)
    return [
        build_block(problem.n, int(bounds[b]), int(bounds[b + 1]), *payload)
        for b, payload in enumerate(block_payloads(problem, k))
    ]


def dense_ring_block(n: int, lo: int, hi: int) -> tuple[Block, np.ndarray]:
    """The dense ring's block [lo, hi), generated without ever building the global problem
    (how each actor builds its share of a 10^7-module ring)."""
    from .modules import gate_eta

    own = np.arange(lo, hi, dtype=np.int64)
    # couplings touching own modules: (i, i+1), (i, i+2) with i or its partner owned
    src = np.arange(lo - 2, hi, dtype=np.int64) % n
    if hi - lo + 2 >= n:
        src = np.arange(n, dtype=np.int64)
    src = np.unique(src)
    couplings = {
        "quadratic": ("quadratic", {"i": np.concatenate([src, src]), "j": np.concatenate([(src + 1) % n, (src + 2) % n]),
                                    "weight": np.concatenate([np.full(src.size, 0.6), np.full(src.size, 0.3)])}),
        "gate_benefit": ("gate_benefit", {"i": (src + 1) % n, "j": src, "weight": np.full(src.size, 0.4), "delta": np.full(src.size, 0.05)}),
    }
    landau = {"a": 0.15, "b": 0.05}
    return build_block(n, lo, hi, landau, couplings, gate_eta(0.02 * (own % 5), 0.1, 10.0))
