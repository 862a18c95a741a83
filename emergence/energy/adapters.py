"""Term-weight adapters, and relaxation that alternates adapter updates with relax() calls.

An adapter changes the term weights w_k of F_w(eta) = sum_k w_k E_k(eta). That changes the
objective: the energy a relaxation lowers under adapted weights is not the energy of the
problem that was posed. So `relax_adapted` reports both, step by step:

    trace.energy            F_w(eta) under the weights in force during that round (what the
                            solver lowered; non-increasing within a round, it jumps between rounds)
    trace.original_energy   F(eta) under the ORIGINAL weights (what the caller cares about; it
                            need not be monotone at all)

and it runs a plain relax() of the same total step budget on the original problem and says,
without softening it, whether the adapted run ended at a worse original energy.

    from emergence.energy.adapters import GradNormAdapter, relax_adapted
    res = relax_adapted(problem, GradNormAdapter(), rounds=20, steps_per_round=25)
    res.original_energy, res.plain_energy, res.worse_than_plain
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .problem import EnergyProblem
from .relax import RelaxTrace, relax

__all__ = [
    "AdaptHistory",
    "AdaptedResult",
    "GradNormAdapter",
    "PhaseAdaptiveAdapter",
    "WeightAdapter",
    "phase_metrics",
    "relax_adapted",
]


@dataclass
class AdaptHistory:
    """What an adapter may look at: everything accepted so far in an adapted run.

    energy           adapted energy per accepted step (row 0 is the start)
    original_energy  the same steps' energy under the original weights
    round_index      the round each row belongs to (-1 for the start row)
    weights          the weights used in each finished or running round
    original_weights the weights of the problem as posed
    """

    energy: list[float] = field(default_factory=list)
    original_energy: list[float] = field(default_factory=list)
    round_index: list[int] = field(default_factory=list)
    weights: list[dict[str, float]] = field(default_factory=list)
    original_weights: dict[str, float] = field(default_factory=dict)


@runtime_checkable
class WeightAdapter(Protocol):
    """update(problem, eta, history) -> new term weights.

    `problem` carries the weights currently in force (problem.weight(k)); the returned dict has
    keys among problem.terms (missing keys keep their current weight), values finite and >= 0.
    `history` is an AdaptHistory (a plain sequence of energies is accepted too).
    """

    def update(self, problem: EnergyProblem, eta: np.ndarray, history) -> dict[str, float]: ...


def _current_weights(problem: EnergyProblem) -> dict[str, float]:
    return {k: problem.weight(k) for k in problem.terms}


def _is_local(name: str, term) -> bool:
    return name == "local" or getattr(term, "family", None) == "local"


# -- GradNorm ----------------------------------------------------------------------------------


@dataclass
class GradNormAdapter:
    """GradNorm-style balancing: w_k <- clip(w_k (1 + r alpha (1 - |g_k| / tau)), floor, ceiling).

    |g_k| is term k's *weighted* gradient norm at eta (w_k |grad E_k|); tau is `target` or, by
    default, the mean of those norms over the active terms. Terms above the target lose weight,
    terms below gain it. A term with weight 0 is switched off and stays off.
    """

    alpha: float = 1.5
    rate: float = 0.1
    floor: float = 0.1
    ceiling: float = 2.0
    target: float | None = None  # tau; None = mean of the current weighted norms

    def __post_init__(self):
        if not (0.0 < self.rate <= 1.0):
            raise ValueError("rate: must lie in (0, 1]")
        if not (self.alpha > 0 and math.isfinite(self.alpha)):
            raise ValueError("alpha: must be a positive finite number")
        if not (0.0 <= self.floor <= self.ceiling) or not math.isfinite(self.ceiling):
            raise ValueError("floor, ceiling: need 0 <= floor <= ceiling < inf")
        if self.target is not None and not (self.target > 0 and math.isfinite(self.target)):
            raise ValueError("target: must be a positive finite number (or None for the mean)")

    def update(self, problem: EnergyProblem, eta: np.ndarray, history=None) -> dict[str, float]:
        w = _current_weights(problem)
        active = [k for k, v in w.items() if v != 0.0]
        if not active:
            return w
        norms = problem.term_grad_norms(np.asarray(eta, dtype=np.float64), weighted=True)
        finite = [norms[k] for k in active if math.isfinite(norms[k])]
        tau = self.target if self.target is not None else (float(np.mean(finite)) if finite else 0.0)
        if not (tau > 0.0):
            return w  # every gradient vanishes (a stationary point): nothing to balance
        out = dict(w)
        for k in active:
            g = norms[k] if math.isfinite(norms[k]) else tau
            out[k] = float(np.clip(w[k] * (1.0 + self.rate * self.alpha * (1.0 - g / tau)), self.floor, self.ceiling))
        return out


# -- phase-adaptive ----------------------------------------------------------------------------


def phase_metrics(energies: Sequence[float], trend_window: int = 5) -> dict[str, float]:
    """Convergence-phase metrics of an energy history E_0..E_T.

    r_t = clip(1 - |E_t - E_{t+1}| / (|E_t| + |E_{t+1}| + 1e-8), 0, 1)  (1 = no relative change)
    rate  = mean of r_t
    trend = least-squares slope of the last `trend_window` r_t (0 with fewer than 2)
    """
    e = np.asarray(energies, dtype=np.float64)
    e = e[np.isfinite(e)]
    if e.size < 2:
        return {"rate": math.nan, "trend": 0.0, "count": 0}
    r = np.clip(1.0 - np.abs(np.diff(e)) / (np.abs(e[:-1]) + np.abs(e[1:]) + 1e-8), 0.0, 1.0)
    tail = r[-trend_window:]
    trend = float(np.polyfit(np.arange(tail.size, dtype=np.float64), tail, 1)[0]) if tail.size >= 2 else 0.0
    return {"rate": float(r.mean()), "trend": trend, "count": int(r.size)}


@dataclass
class PhaseAdaptiveAdapter:
    """Phase-adaptive weighting from the accepted-energy history (see `phase_metrics`).

    converging smoothly (rate > smooth_rate and trend > 0): couplings x boost, local x damp
    oscillating or slow     (rate < slow_rate):                couplings x damp,  local x boost
    otherwise: unchanged. Weights stay within [floor, ceiling]; weight-0 terms stay off.

    `source` picks the history the metrics read: "original" (default) is the energy under the
    original weights, which is continuous across rounds; "adapted" is the energy the solver
    lowered, which jumps whenever the weights change. `window` limits the history to its last
    `window` entries (None = all of it).
    """

    boost: float = 1.05
    damp: float = 0.97
    floor: float = 0.1
    ceiling: float = 3.0
    smooth_rate: float = 0.7
    slow_rate: float = 0.3
    trend_window: int = 5
    window: int | None = None
    source: str = "original"
    last_metrics: dict = field(default_factory=dict, repr=False)
    last_regime: str = field(default="none", repr=False)

    def __post_init__(self):
        if self.source not in ("original", "adapted"):
            raise ValueError("source: 'original' or 'adapted'")
        if not (0.0 <= self.floor <= self.ceiling) or not math.isfinite(self.ceiling):
            raise ValueError("floor, ceiling: need 0 <= floor <= ceiling < inf")
        if self.boost <= 0 or self.damp <= 0:
            raise ValueError("boost, damp: must be > 0")

    def _energies(self, history) -> np.ndarray:
        if history is None:
            return np.empty(0)
        if isinstance(history, AdaptHistory):
            seq = history.original_energy if self.source == "original" else history.energy
        else:
            seq = history
        e = np.asarray(seq, dtype=np.float64)
        return e[-self.window :] if self.window else e

    def update(self, problem: EnergyProblem, eta: np.ndarray, history) -> dict[str, float]:
        w = _current_weights(problem)
        m = phase_metrics(self._energies(history), self.trend_window)
        self.last_metrics = m
        rate, trend = m["rate"], m["trend"]
        if not math.isfinite(rate):
            self.last_regime = "none"
            return w
        if rate > self.smooth_rate and trend > 0.0:
            self.last_regime, f_coup, f_local = "smooth", self.boost, self.damp
        elif rate < self.slow_rate:
            self.last_regime, f_coup, f_local = "oscillating", self.damp, self.boost
        else:
            self.last_regime = "neutral"
            return w
        out = dict(w)
        for k, term in problem.terms.items():
            if w[k] == 0.0:
                continue
            f = f_local if _is_local(k, term) else f_coup
            out[k] = float(np.clip(w[k] * f, self.floor, self.ceiling))
        return out


# -- adapted relaxation -----------------------------------------------------------------------


@dataclass
class AdaptedResult:
    """Outcome of relax_adapted. Energies named `original_*` are on the ORIGINAL weights."""

    eta: np.ndarray
    weights: dict[str, float]  # the weights of the last round
    weights_history: list[dict[str, float]]  # the weights used in each round
    trace: RelaxTrace  # energy = adapted, original_energy = original weights, per accepted step
    round_index: list[int]  # per trace row; -1 for the start row
    energy: float  # adapted energy of the final eta under the final weights
    original_energy: float  # F(eta) under the original weights, evaluated directly
    initial_original_energy: float
    plain_energy: float | None  # plain relax() on the original problem, same total step budget
    plain_steps: int | None
    plain_converged: bool | None
    worse_than_plain: bool | None  # original_energy > plain_energy (beyond 1e-12 relative)
    steps: int  # accepted steps over all rounds
    rejected: int
    budget: int  # rounds * steps_per_round
    rounds: int
    method: str
    wall_time_s: float

    @property
    def excess_over_plain(self) -> float | None:
        """original_energy - plain_energy (> 0: adapting made the posed objective worse)."""
        return None if self.plain_energy is None else self.original_energy - self.plain_energy

    def to_frame(self):
        import polars as pl

        return self.trace.to_frame().with_columns(pl.Series("round", np.asarray(self.round_index, dtype=np.int64)))

    def summary(self) -> dict:
        return {
            "method": self.method,
            "rounds": self.rounds,
            "budget": self.budget,
            "steps": self.steps,
            "rejected": self.rejected,
            "energy_adapted": self.energy,
            "original_energy": self.original_energy,
            "initial_original_energy": self.initial_original_energy,
            "plain_energy": self.plain_energy,
            "plain_steps": self.plain_steps,
            "excess_over_plain": self.excess_over_plain,
            "worse_than_plain": self.worse_than_plain,
            "final_weights": dict(self.weights),
            "wall_time_s": self.wall_time_s,
        }


def _is_worse(original: float, plain: float) -> bool:
    return bool(original - plain > 1e-12 * max(1.0, abs(plain)))


def _check_weights(new: dict, problem: EnergyProblem, current: dict[str, float]) -> dict[str, float]:
    if not isinstance(new, dict):
        raise TypeError(f"adapter.update: expected a dict of term weights, got {type(new).__name__}")
    unknown = set(new) - set(problem.terms)
    if unknown:
        raise ValueError(f"adapter.update: unknown term(s) {sorted(unknown)}; terms are {sorted(problem.terms)}")
    out = dict(current)
    for k, v in new.items():
        v = float(v)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"adapter.update: weight {k} = {v} (must be finite and >= 0)")
        out[k] = v
    return out


def relax_adapted(
    problem: EnergyProblem,
    adapter: WeightAdapter,
    eta0: np.ndarray | None = None,
    rounds: int = 20,
    steps_per_round: int = 25,
    method: str = "accelerated",
    *,
    compare_plain: bool = True,
    **relax_kwargs,
) -> AdaptedResult:
    """Alternate `adapter.update` and relax() (at most `steps_per_round` steps) on
    problem.with_weights(w), `rounds` times, starting from the original weights.

    Each round: the adapter proposes weights from the current eta and the history, then
    relax() continues from the current eta on the reweighted problem (a fresh solver per round:
    momentum does not carry across a change of objective). Every accepted step's energy is
    reported on the adapted weights and on the original ones. With `compare_plain` (default),
    a plain relax() of rounds * steps_per_round steps on the original problem from the same
    eta0 is run too and `worse_than_plain` says whether adapting ended worse on the posed
    objective. relax_kwargs go to relax() (tol, step_size, ...; not max_steps).
    """
    if rounds < 1 or steps_per_round < 1:
        raise ValueError("rounds, steps_per_round: must be >= 1")
    if "max_steps" in relax_kwargs or "config" in relax_kwargs:
        raise ValueError("relax_kwargs: the step budget is rounds * steps_per_round; don't pass max_steps/config")
    if not callable(getattr(adapter, "update", None)):
        raise TypeError("adapter: needs an update(problem, eta, history) method")
    t0 = time.perf_counter()
    x = np.clip(np.array(problem.eta0 if eta0 is None else eta0, dtype=np.float64), 0.0, 1.0)
    if x.shape != (problem.n,):
        raise ValueError(f"eta0: expected {problem.n} values, got shape {x.shape}")
    x0 = x.copy()
    w0 = _current_weights(problem)
    w = dict(w0)
    hist = AdaptHistory(original_weights=dict(w0))
    trace = RelaxTrace()
    e_orig0 = problem.energy(x)
    trace.record(e_orig0, 0.0, x, 0.0, original=e_orig0)
    hist.energy.append(e_orig0)
    hist.original_energy.append(e_orig0)
    hist.round_index.append(-1)
    rejected = 0
    e_adapted = e_orig0
    for rnd in range(rounds):
        w = _check_weights(adapter.update(problem.with_weights(w), x.copy(), hist), problem, w)
        hist.weights.append(dict(w))
        # relax evaluates the original objective at every accepted eta (no solver changes needed)
        res = relax(problem.with_weights(w), x, method=method, max_steps=steps_per_round,
                    original_energy=problem.energy, **relax_kwargs)
        rows = res.trace.energy[1:]
        originals = res.trace.original_energy[1:]
        trace.extend(res.trace, time_offset=trace.time_s[-1])
        hist.energy.extend(float(e) for e in rows)
        hist.original_energy.extend(float(o) for o in originals)
        hist.round_index.extend([rnd] * len(rows))
        rejected += res.rejected
        x = res.eta
        e_adapted = res.energy
    round_index = list(hist.round_index)
    original_final = problem.energy(x)
    plain_e = plain_steps = plain_conv = worse = None
    if compare_plain:
        plain = relax(problem, x0, method=method, max_steps=rounds * steps_per_round, **relax_kwargs)
        plain_e, plain_steps, plain_conv = float(plain.energy), int(plain.steps), bool(plain.converged)
        worse = _is_worse(original_final, plain_e)
    return AdaptedResult(
        eta=x,
        weights=dict(w),
        weights_history=hist.weights,
        trace=trace,
        round_index=round_index,
        energy=float(e_adapted),
        original_energy=float(original_final),
        initial_original_energy=float(e_orig0),
        plain_energy=plain_e,
        plain_steps=plain_steps,
        plain_converged=plain_conv,
        worse_than_plain=worse,
        steps=len(trace.energy) - 1,
        rejected=rejected,
        budget=rounds * steps_per_round,
        rounds=rounds,
        method=method,
        wall_time_s=time.perf_counter() - t0,
    )
