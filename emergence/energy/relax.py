"""Relaxation: lower the total free energy over the box [0, 1]^n.

Every method here is a descent method on the energy it is given: a step is *accepted* only if
the energy does not increase (and is finite); a step that would raise it is rejected and
retried with a smaller step or without momentum, never taken. The returned trace holds one
row per accepted step, so `trace.energy` is non-increasing by construction of the algorithm,
not by post-processing.

Methods
  pgd          projected gradient, Armijo backtracking from an optimistic step
  accelerated  Nesterov/FISTA momentum with function-value restart (monotone variant)
  coordinate   block coordinate descent over a graph colouring (same-colour modules don't
               interact, so a colour class is updated exactly in parallel)
  prox         proximal operator splitting: a forward step on the couplings, an exact prox
               of the separable local Landau energy + box
  admm         ADMM on the split eta = z (local+box | couplings); its primal iterate is
               accepted only when it lowers the energy
  homotopy     continuation on the coupling weights s: 0 -> 1, warm-started accelerated solves,
               with the original objective's energy accepted monotonically
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .problem import EnergyProblem
from .terms import LandauTerm, QuadraticCoupling

METHODS = ("accelerated", "pgd", "coordinate", "prox", "admm", "homotopy")


@dataclass
class RelaxConfig:
    method: str = "accelerated"
    max_steps: int = 5000
    tol: float = 1e-9  # projected-gradient inf-norm at which we call it converged
    target_energy: float | None = None  # optional known optimum E*, for gap-based stopping
    target_gap: float | None = None  # stop once (E - E*) / (E0 - E*) <= target_gap
    stability_guard: bool = True  # cap steps at the Gershgorin bound 1/L and reject non-finite energies
    step_size: float | None = None  # initial step; default 1/L
    time_budget_s: float | None = None
    # method-specific knobs
    coordinate_sweeps_per_step: int = 1
    prox_momentum: bool = True
    admm_rho: float | None = None
    homotopy_stages: int = 4

    def __post_init__(self):
        if self.method not in METHODS:
            raise ValueError(f"method: unknown relaxation method {self.method!r}; choose one of {METHODS}")
        _check_int("max_steps", self.max_steps, 0)
        _check_int("coordinate_sweeps_per_step", self.coordinate_sweeps_per_step, 1)
        _check_int("homotopy_stages", self.homotopy_stages, 1)
        _check_number("tol", self.tol, minimum=0.0)
        for name in ("target_energy", "target_gap", "time_budget_s"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), minimum=None if name == "target_energy" else 0.0)
        for name in ("step_size", "admm_rho"):
            if getattr(self, name) is not None:
                _check_number(name, getattr(self, name), minimum=0.0, strict=True)
        if self.target_gap is not None and self.target_energy is None:
            raise ValueError("target_gap: needs target_energy (the known optimum E*)")


def _check_int(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def _check_number(name: str, value, minimum: float | None, strict: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) or not math.isfinite(value):
        raise ValueError(f"{name}: expected a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        raise ValueError(f"{name}: must be {'>' if strict else '>='} {minimum}, got {value!r}")


@dataclass
class RelaxTrace:
    """One row per accepted step (row 0 is the start)."""

    energy: list[float] = field(default_factory=list)
    step_size: list[float] = field(default_factory=list)
    eta_min: list[float] = field(default_factory=list)
    eta_max: list[float] = field(default_factory=list)
    time_s: list[float] = field(default_factory=list)
    original_energy: list[float] = field(default_factory=list)  # on the unadapted weights
    # when set, called on every recorded eta: the energy under the original (unadapted) weights
    original_fn: Callable[[np.ndarray], float] | None = field(default=None, repr=False, compare=False)

    def record(self, energy: float, step: float, eta: np.ndarray, t: float, original: float | None = None):
        if original is None and self.original_fn is not None:
            original = self.original_fn(eta)
        self.energy.append(float(energy))
        self.step_size.append(float(step))
        self.eta_min.append(float(eta.min()) if eta.size else 0.0)
        self.eta_max.append(float(eta.max()) if eta.size else 0.0)
        self.time_s.append(float(t))
        self.original_energy.append(float(energy if original is None else original))

    COLUMNS = ("energy", "step_size", "eta_min", "eta_max", "time_s", "original_energy")

    def extend(self, other: "RelaxTrace", time_offset: float = 0.0) -> None:
        """Append other's rows after its start row (row 0 repeats our last one)."""
        for c in self.COLUMNS:
            col = getattr(other, c)[1:]
            getattr(self, c).extend([v + time_offset for v in col] if c == "time_s" else col)

    def to_dict(self) -> dict[str, list[float]]:
        return {c: list(getattr(self, c)) for c in self.COLUMNS}

    @classmethod
    def from_dict(cls, d: dict) -> "RelaxTrace":
        return cls(**{c: list(d[c]) for c in cls.COLUMNS})

    def to_frame(self):
        import polars as pl

        e = np.asarray(self.energy)
        return pl.DataFrame(
            {
                "step": np.arange(e.size),
                "energy": e,
                "delta_f": np.concatenate([[0.0], np.diff(e)]),
                "original_energy": np.asarray(self.original_energy),
                "step_size": np.asarray(self.step_size),
                "eta_min": np.asarray(self.eta_min),
                "eta_max": np.asarray(self.eta_max),
                "time_s": np.asarray(self.time_s),
            }
        )


@dataclass
class RelaxResult:
    eta: np.ndarray
    energy: float
    initial_energy: float
    steps: int  # accepted steps
    rejected: int  # steps tried and refused because they would have raised the energy
    converged: bool
    reason: str
    wall_time_s: float
    trace: RelaxTrace
    method: str

    @property
    def delta_f90(self) -> int:
        return delta_f90(self.trace.energy)

    def gap(self, optimum: float) -> float:
        return relative_gap(self.energy, self.initial_energy, optimum)

    def summary(self) -> dict:
        return {
            "method": self.method,
            "energy": self.energy,
            "initial_energy": self.initial_energy,
            "steps": self.steps,
            "rejected": self.rejected,
            "converged": self.converged,
            "reason": self.reason,
            "wall_time_s": self.wall_time_s,
            "delta_f90": self.delta_f90,
        }


def delta_f90(energies) -> int:
    """Accepted steps until 90% of the total energy drop is achieved (0 if there was no drop)."""
    e = np.asarray(energies, dtype=np.float64)
    if e.size < 2:
        return 0
    drop = e[0] - e.min()
    if drop <= 0:
        return 0
    return int(np.argmax(e <= e[0] - 0.9 * drop))


def relative_gap(energy: float, initial: float, optimum: float) -> float:
    denom = initial - optimum
    if denom <= 0:
        return 0.0 if energy <= optimum else math.inf
    return (energy - optimum) / denom


class _Stopper:
    def __init__(self, cfg: RelaxConfig, e0: float, t0: float):
        self.cfg, self.e0, self.t0 = cfg, e0, t0
        self.target = None
        if cfg.target_energy is not None and cfg.target_gap is not None:
            self.target = cfg.target_energy + cfg.target_gap * max(e0 - cfg.target_energy, 0.0)

    def check(self, energy: float, pg_norm: float) -> str | None:
        if pg_norm <= self.cfg.tol:
            return "tol"
        if self.target is not None and energy <= self.target:
            return "target_gap"
        if self.cfg.time_budget_s is not None and time.perf_counter() - self.t0 > self.cfg.time_budget_s:
            return "time_budget"
        return None


def relax(problem: EnergyProblem, eta0: np.ndarray | None = None, config: RelaxConfig | None = None,
          original_energy: Callable[[np.ndarray], float] | None = None, **kwargs) -> RelaxResult:
    """Relax all eta to lower the total free energy. kwargs are RelaxConfig fields.

    `original_energy`, when given (adapters, homotopy), is evaluated at every accepted eta and
    lands in `trace.original_energy` beside the energy the solver descended."""
    if config is not None and kwargs:
        raise ValueError(f"config: pass either a RelaxConfig or keyword settings, not both (got {sorted(kwargs)})")
    unknown = set(kwargs) - set(RelaxConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: unknown relaxation setting")
    cfg = config or RelaxConfig(**kwargs)
    x = np.array(problem.eta0 if eta0 is None else eta0, dtype=np.float64)
    if x.shape != (problem.n,):
        raise ValueError(f"eta0: expected {problem.n} values, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("eta0: values must be finite")
    np.clip(x, 0.0, 1.0, out=x)
    solver = _SOLVERS[cfg.method]
    t0 = time.perf_counter()
    trace = RelaxTrace(original_fn=original_energy)
    e0 = problem.energy(x)
    if not math.isfinite(e0):
        raise ValueError("eta0: the energy at the starting point is not finite")
    trace.record(e0, 0.0, x, 0.0)
    stop = _Stopper(cfg, e0, t0)
    x, e, rejected, reason = solver(problem, x, e0, cfg, trace, stop, t0)
    return RelaxResult(
        eta=x,
        energy=e,
        initial_energy=e0,
        steps=len(trace.energy) - 1,
        rejected=rejected,
        converged=reason in CONVERGED_REASONS,
        reason=reason,
        wall_time_s=time.perf_counter() - t0,
        trace=trace,
        method=cfg.method,
    )


def _initial_step(problem: EnergyProblem, cfg: RelaxConfig) -> float:
    L = problem.lipschitz()
    safe = 1.0 / L if L > 0 else 1.0
    if cfg.step_size is None:
        return safe
    if cfg.step_size <= 0 or not math.isfinite(cfg.step_size):
        raise ValueError("step_size: must be a positive finite number")
    return min(cfg.step_size, safe) if cfg.stability_guard else cfg.step_size


def floor_reason(pg: float, t: float, e: float, tol: float) -> str:
    """Why a solver that can no longer lower F stops: "tol" if the gradient mapping is within
    tol; "roundoff" if the decrease one more step could buy (t pg^2 / 2) is below what float64
    resolves at this energy, i.e. converged to machine precision; else "stalled" (a failure)."""
    if pg <= tol:
        return "tol"
    if 0.5 * t * pg * pg <= 1e-13 * max(1.0, abs(e)):
        return "roundoff"
    return "stalled"


CONVERGED_REASONS = ("tol", "target_gap", "roundoff")


def _ok(e_new: float, e_old: float) -> bool:
    """Accept iff finite and not an increase. No slack: at round-off level a step that doesn't
    lower the energy is refused, and the solvers end with reason "stalled"."""
    return math.isfinite(e_new) and e_new <= e_old


# -- projected gradient with Armijo backtracking ---------------------------------------------


def _pgd(problem, x, e, cfg, trace, stop, t0):
    n = problem.n
    g = np.empty(n)
    t = _initial_step(problem, cfg)
    L = problem.lipschitz()
    safe = 1.0 / L if L > 0 else 1.0
    rejected, reason = 0, "max_steps"
    e, g = problem.energy_and_grad(x, g)
    for _ in range(cfg.max_steps):
        pg = float(np.max(np.abs(x - np.clip(x - g, 0.0, 1.0))))
        r = stop.check(e, pg)
        if r:
            return x, e, rejected, r
        # Armijo on the projected arc: F(z) <= F(x) + g.(z - x) + ||z - x||^2 / (2t)
        while True:
            z = np.clip(x - t * g, 0.0, 1.0)
            d = z - x
            ez = problem.energy(z)
            if _ok(ez, e) and ez <= e + float(np.dot(g, d)) + float(np.dot(d, d)) / (2 * t) + 1e-12 * abs(e):
                break
            rejected += 1
            t *= 0.5
            if t < 1e-16:
                return x, e, rejected, floor_reason(pg, safe, e, cfg.tol)
        if not np.any(d):  # the step no longer moves eta: round-off floor reached
            return x, e, rejected, floor_reason(pg, safe, e, cfg.tol)
        x = z
        e, g = problem.energy_and_grad(x, g)
        trace.record(e, t, x, time.perf_counter() - t0)
        # optimistic growth for the next step; the guard keeps it within the safe bound
        t = min(t * 2.0, safe) if cfg.stability_guard else t * 2.0
    return x, e, rejected, reason


# -- accelerated (Nesterov / FISTA with restart) -----------------------------------------------


class Momentum:
    """Extrapolation weights for accelerated steps, with function-value restart.

    Strongly convex (mu > 0): the constant (sqrt L - sqrt mu) / (sqrt L + sqrt mu); otherwise the
    FISTA schedule theta_{k+1} = (1 + sqrt(1 + 4 theta_k^2)) / 2, beta = (theta_k - 1) / theta_{k+1}.
    `beta()` is 0 right after a restart (a plain step), so a refused step is retried without
    momentum. Shared by the single-process solvers and the partitioned driver."""

    def __init__(self, L: float, mu: float = 0.0):
        self.const = (math.sqrt(L) - math.sqrt(mu)) / (math.sqrt(L) + math.sqrt(mu)) if mu > 0 and L > 0 else None
        self.on = False
        self.theta = 1.0

    def beta(self) -> float:
        if not self.on:
            return 0.0
        if self.const is not None:
            return self.const
        theta_next = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * self.theta * self.theta))
        beta = (self.theta - 1.0) / theta_next
        self.theta = theta_next
        return beta

    def accepted(self) -> None:
        self.on = True

    def restart(self) -> None:
        self.on = False
        self.theta = 1.0


class _LinearCache:
    """Quadratic couplings are linear operators: with L x and L x_prev known, the gradient at the
    extrapolated point y = x + beta (x - x_prev) needs no mat-vec, L y = (1 + beta) L x - beta L x_prev
    (exact when clipping y to the box changed nothing; otherwise we multiply). That leaves one
    sparse mat-vec per accelerated step, for the energy at the trial point, instead of two.
    Products live in three rotating buffers per term, so the loop allocates nothing."""

    def __init__(self, problem: EnergyProblem, x: np.ndarray):
        self.quads = [(problem.weight(k), t) for k, t in problem.terms.items()
                      if isinstance(t, QuadraticCoupling) and problem.weight(k) != 0.0]
        self.rest = problem.with_weights({k: 0.0 for k, t in problem.terms.items() if isinstance(t, QuadraticCoupling)})
        n = problem.n
        self.lx = [t.matvec(x, np.empty(n)) for _, t in self.quads]
        self.lx_prev = [v.copy() for v in self.lx]
        self.lz = [np.empty(n) for _ in self.quads]
        self.tmp, self.tmp2 = np.empty(n), np.empty(n)

    def grad_at(self, base: np.ndarray, beta: float, exact: bool, g: np.ndarray) -> np.ndarray:
        _, g = self.rest.energy_and_grad(base, g)
        ly = self.tmp
        for (w, t), lx, lxp in zip(self.quads, self.lx, self.lx_prev):
            if beta == 0.0:
                np.copyto(ly, lx)
            elif exact:
                np.multiply(lx, 1.0 + beta, out=ly)
                ly -= np.multiply(lxp, beta, out=self.tmp2)
            else:
                t.matvec(base, ly)
            ly *= 2.0 * w
            g += ly
        return g

    def energy_at(self, z: np.ndarray) -> float:
        e = self.rest.energy(z)
        for (w, t), lz in zip(self.quads, self.lz):
            e += w * float(np.dot(z, t.matvec(z, lz)))
        return e

    def accept(self) -> None:
        # rotate: prev <- x <- z, and the old prev buffer takes the next trial's product
        self.lx_prev, self.lx, self.lz = self.lx, self.lz, self.lx_prev

    def restart(self) -> None:
        for prev, cur in zip(self.lx_prev, self.lx):
            np.copyto(prev, cur)


def _accelerated(problem, x, e, cfg, trace, stop, t0):
    n = problem.n
    t = _initial_step(problem, cfg)
    mom = Momentum(1.0 / t, problem.strong_convexity())
    cache = _LinearCache(problem, x)
    # preallocated buffers: the loop allocates no n-sized arrays besides the mat-vec results
    g, y, y_raw, tmp = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    x = x.copy()
    x_prev = x.copy()
    z = np.empty(n)
    rejected = 0
    for _ in range(cfg.max_steps):
        beta = mom.beta()
        exact = True
        if beta > 0:
            np.subtract(x, x_prev, out=y_raw)
            y_raw *= beta
            y_raw += x
            np.clip(y_raw, 0.0, 1.0, out=y)
            exact = bool(np.array_equal(y, y_raw))
            base = y
        else:
            base = x
        g = cache.grad_at(base, beta, exact, g)
        np.multiply(g, -t, out=z)
        z += base
        np.clip(z, 0.0, 1.0, out=z)
        np.subtract(z, base, out=tmp)
        pg = float(np.max(np.abs(tmp, out=tmp))) / t  # gradient mapping norm at the base point
        ez = cache.energy_at(z)
        if _ok(ez, e):
            x_prev, x, z = x, z, x_prev  # rotate buffers: the old x_prev is free for the next trial
            e = ez
            cache.accept()
            trace.record(e, t, x, time.perf_counter() - t0)
            mom.accepted()
            # pg is the gradient-mapping norm at the base point, which tends to x's as we converge
            if r := stop.check(e, pg):
                return x, e, rejected, r
        else:
            rejected += 1
            if not mom.on:
                # a plain step of 1/L can only fail on round-off (at the optimum) or if the guard is off
                if cfg.stability_guard:
                    return x, e, rejected, floor_reason(pg, t, e, cfg.tol)
                t *= 0.5
                if t < 1e-16:
                    return x, e, rejected, "stalled"
            # function-value restart: drop momentum and retry from x
            mom.restart()
            cache.restart()
            np.copyto(x_prev, x)
    return x, e, rejected, "max_steps"


# -- exact separable prox of the Landau local term + box --------------------------------------


def _landau_prox(local: LandauTerm, weight: float, v: np.ndarray, tau: float) -> np.ndarray:
    """argmin_{x in [0,1]} w (a u^2 + b u^4 + h x) + (x - v)^2 / (2 tau), elementwise, u = x - c.

    The 1-D objective is strictly convex when 2 w a + 1/tau > 0 (callers keep tau small enough
    for negative a), so its derivative is monotone: box ends are checked first, then
    safeguarded Newton with a bisection bracket finds the interior root to round-off."""
    a, b, h, c = local.a * weight, local.b * weight, local.h * weight, local.center
    inv = 1.0 / tau

    def deriv(x):
        u = x - c
        return 2 * a * u + 4 * b * u**3 + h + (x - v) * inv

    # With a monotone derivative the minimiser sits at a box end when the derivative there
    # points outwards; otherwise it is the interior root, found below.
    at0, at1 = deriv(np.zeros_like(v)) >= 0, deriv(np.ones_like(v)) <= 0
    lo, hi = np.zeros_like(v), np.ones_like(v)
    x = np.clip(v, 0.0, 1.0)
    for _ in range(30):
        u = x - c
        d = 2 * a * u + 4 * b * u**3 + h + (x - v) * inv
        dd = 2 * a + 12 * b * u * u + inv
        # maintain a bracket of the derivative's root on [0, 1]
        hi = np.where(d > 0, x, hi)
        lo = np.where(d <= 0, x, lo)
        newton = x - d / np.where(dd > 0, dd, np.inf)
        inside = (newton >= lo) & (newton <= hi) & (dd > 0)
        x_new = np.where(inside, newton, 0.5 * (lo + hi))
        if np.max(np.abs(x_new - x)) < 1e-15:
            x = x_new
            break
        x = x_new
    return np.where(at0, 0.0, np.where(at1, 1.0, x))


def _split_local(problem: EnergyProblem):
    local = problem.terms.get("local")
    if not isinstance(local, LandauTerm):
        raise ValueError("method: prox/admm need a 'local' Landau term to split off")
    coupling = problem.with_weights({"local": 0.0})
    return local, problem.weight("local"), coupling


def _prox(problem, x, e, cfg, trace, stop, t0):
    local, wl, coupling = _split_local(problem)
    Lc = coupling.lipschitz()
    t = 1.0 / Lc if Lc > 0 else 1.0
    if cfg.step_size is not None:
        t = min(cfg.step_size, t) if cfg.stability_guard else cfg.step_size
    # keep the prox subproblem strictly convex when a < 0
    amin = float(np.min(local.a)) * wl
    if amin < 0:
        t = min(t, 0.5 / (2.0 * abs(amin)))
    g = np.empty(problem.n)
    x_prev = x.copy()
    mom = Momentum(1.0 / t)  # FISTA schedule: the local part's convexity is handled by the prox
    rejected = 0
    for _ in range(cfg.max_steps):
        beta = mom.beta() if cfg.prox_momentum else 0.0
        base = np.clip(x + beta * (x - x_prev), 0.0, 1.0) if beta > 0 else x
        _, g = coupling.energy_and_grad(base, g)
        z = _landau_prox(local, wl, base - t * g, t)
        ez = problem.energy(z)
        pg = float(np.max(np.abs(z - base))) / t  # prox-gradient mapping norm at the base point
        if _ok(ez, e):
            x_prev, x, e = x, z, ez
            trace.record(e, t, x, time.perf_counter() - t0)
            mom.accepted()
            if r := stop.check(e, pg):
                return x, e, rejected, r
        else:
            rejected += 1
            if not mom.on:
                # a plain prox-gradient step of 1/L_couplings cannot raise F except by round-off
                return x, e, rejected, floor_reason(pg, t, e, cfg.tol)
            mom.restart()
            x_prev = x.copy()
    return x, e, rejected, "max_steps"


# -- ADMM ---------------------------------------------------------------------------------------


def _admm(problem, x, e, cfg, trace, stop, t0):
    """Split F = f(x) + g(z) s.t. x = z with f = local Landau + box, g = couplings.

    x-update: exact separable prox. z-update: the quadratic couplings make g's prox a sparse
    linear system (rho I + 2 L) z = rho v - grad_rest, solved with a few warm-started CG steps;
    non-quadratic couplings are linearized at the current z (inexact/linearized ADMM)."""
    import scipy.sparse as sp
    import scipy.sparse.linalg as spla

    local, wl, coupling = _split_local(problem)
    rho = cfg.admm_rho if cfg.admm_rho is not None else max(coupling.lipschitz(), 1e-3) * 0.5
    # the x-update prox must stay strictly convex: rho > 2 w |a| for negative a
    amin = float(np.min(local.a)) * wl
    if amin < 0:
        rho = max(rho, 4.0 * abs(amin))
    quad = [(k, t) for k, t in coupling.terms.items() if isinstance(t, QuadraticCoupling) and coupling.weight(k) > 0]
    rest = coupling.with_weights({k: 0.0 for k, _ in quad})
    lap = sum((coupling.weight(k) * t.laplacian for k, t in quad), sp.csr_matrix((problem.n, problem.n)))
    A = (2.0 * lap + rho * sp.identity(problem.n, format="csr")).tocsr()
    z = x.copy()
    u = np.zeros(problem.n)
    g = np.empty(problem.n)
    best_x, best_e = x.copy(), e
    rejected = 0
    for _ in range(cfg.max_steps):
        xk = _landau_prox(local, wl, z - u, 1.0 / rho)
        _, g = rest.energy_and_grad(z, g)
        rhs = rho * (xk + u) - g
        z_new, _ = spla.cg(A, rhs, x0=z, rtol=1e-10, maxiter=50)
        z_new = np.clip(z_new, 0.0, 1.0)
        u += xk - z_new
        primal = float(np.max(np.abs(xk - z_new)))
        dual = rho * float(np.max(np.abs(z_new - z)))
        z = z_new
        ex = problem.energy(xk)
        # ADMM iterates are not descent steps: the returned eta moves only when one is better
        if _ok(ex, best_e):
            best_x, best_e = xk, ex
            trace.record(best_e, 1.0 / rho, best_x, time.perf_counter() - t0)
        if r := stop.check(best_e, max(primal, dual)):
            return best_x, best_e, rejected, r
    return best_x, best_e, rejected, "max_steps"


# -- coordinate descent over a colouring --------------------------------------------------------


def color_classes(problem: EnergyProblem, seed: int = 0) -> list[np.ndarray]:
    """Partition modules into independent sets of the coupling graph (Luby-style random
    priorities, vectorized): modules of one class share no coupling, so their 1-D updates
    don't interact and one class is updated in parallel exactly."""
    import scipy.sparse as sp

    n = problem.n
    rows, cols = [], []
    for t in problem.terms.values():
        if hasattr(t, "i") and hasattr(t, "j"):
            rows += [t.i, t.j]
            cols += [t.j, t.i]
    if not rows:
        return [np.arange(n)]
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = r != c
    adj = sp.csr_matrix((np.ones(int(keep.sum())), (r[keep], c[keep])), shape=(n, n))
    adj.sum_duplicates()
    adj.data[:] = 1.0  # a pair coupled twice must not double a neighbour's priority
    rng = np.random.default_rng(seed)
    prio = rng.permutation(n).astype(np.float64) + 1.0
    remaining = np.ones(n, dtype=bool)
    classes = []
    while remaining.any():
        p = np.where(remaining, prio, 0.0)
        # max priority among remaining neighbours
        nb = adj.multiply(p[None, :]).max(axis=1).toarray().ravel() if adj.nnz else np.zeros(n)
        chosen = remaining & (p > nb)
        classes.append(np.flatnonzero(chosen))
        remaining &= ~chosen
    return classes


def _coordinate(problem, x, e, cfg, trace, stop, t0):
    """Each step sweeps every colour class once. Within a class, module i takes the step
    -g_i / c_i with c_i its own curvature bound (exact for the 1-D quadratic part, a
    majorization for the quartic and hinge parts), so each class update cannot raise F."""
    classes = color_classes(problem)
    curv = _diag_curvature(problem)
    g = np.empty(problem.n)
    rejected = 0
    for _ in range(cfg.max_steps):
        x_start = x.copy()
        for _ in range(cfg.coordinate_sweeps_per_step):
            for cls in classes:
                _, g = problem.energy_and_grad(x, g)
                x_try = x.copy()
                x_try[cls] = np.clip(x[cls] - g[cls] / curv[cls], 0.0, 1.0)
                e_try = problem.energy(x_try)
                if _ok(e_try, e):
                    x, e = x_try, e_try
                else:
                    rejected += 1
        trace.record(e, 1.0, x, time.perf_counter() - t0)
        pg = problem.projected_gradient_norm(x)
        if r := stop.check(e, pg):
            return x, e, rejected, r
        if np.array_equal(x, x_start):
            return x, e, rejected, "stalled"
    return x, e, rejected, "max_steps"


def _diag_curvature(problem: EnergyProblem) -> np.ndarray:
    """Upper bound of d2F/d eta_i^2 over the box, per module (the 1-D Lipschitz constant)."""
    d = np.zeros(problem.n)
    for k, t in problem.terms.items():
        w = problem.weight(k)
        if isinstance(t, LandauTerm):
            d += w * t.curvature_rows(problem.n)
        elif isinstance(t, QuadraticCoupling):
            d += w * 2.0 * t.laplacian.diagonal()
        elif hasattr(t, "alpha"):
            s = 2.0 * t.weight
            d += w * (np.bincount(t.i, s * t.alpha**2, minlength=problem.n) + np.bincount(t.j, s * t.beta**2, minlength=problem.n))
        else:
            d += w * t.curvature_rows(problem.n)  # any other family: its row bound is a diagonal bound too
    return np.maximum(d, 1e-12)


# -- homotopy on coupling weights ---------------------------------------------------------------


def _homotopy(problem, x, e, cfg, trace, stop, t0):
    coupling_names = [k for k in problem.terms if k != "local"]
    rejected, used = 0, 0
    stages = cfg.homotopy_stages
    for s in np.linspace(1.0 / stages, 1.0, stages)[:-1]:
        staged = problem.with_weights({k: problem.weight(k) * s for k in coupling_names})
        budget = cfg.max_steps // (2 * stages)
        if budget < 1:
            break
        sub = relax(staged, x, RelaxConfig(method="accelerated", max_steps=budget, tol=max(cfg.tol, 1e-6)))
        used += sub.steps
        e_cand = problem.energy(sub.eta)
        # the stage endpoint is a proposal for the original problem: taken only if it helps
        if _ok(e_cand, e):
            x, e = sub.eta, e_cand
            trace.record(e, s, x, time.perf_counter() - t0)
        else:
            rejected += 1
    # stage steps count against max_steps; the trace's step_size column holds s for stage rows
    final_cfg = RelaxConfig(**{**cfg.__dict__, "method": "accelerated", "max_steps": max(0, cfg.max_steps - used)})
    sub_trace = RelaxTrace(original_fn=trace.original_fn)
    sub_trace.record(e, 0.0, x, 0.0)
    x, e, rej, reason = _accelerated(problem, x, e, final_cfg, sub_trace, stop, t0)
    trace.extend(sub_trace)
    return x, e, rejected + rej, reason


_SOLVERS = {
    "pgd": _pgd,
    "accelerated": _accelerated,
    "prox": _prox,
    "admm": _admm,
    "coordinate": _coordinate,
    "homotopy": _homotopy,
}
