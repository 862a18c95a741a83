"""The seed project's energy experiments, as reproducible functions and a CLI.

    python -m emergence.energy.experiments {landau-sweep,sequence-redemption,connectivity,gated-expansion,all}
        --out DIR [--seed S] [--quick]

Each experiment writes DIR/<name>.parquet (its table), DIR/<name>.png (a plot) and
DIR/<name>.json (its summary), prints a short summary, and its function returns the summary
(a JSON-able dict). All randomness comes from np.random.default_rng(seed), so a run is
reproducible from its seed.

landau-sweep         one Landau module F = a eta^2 + b eta^4 relaxed from eta0 = 0.1 for a in
                     [-1, 1]; compared with the analytic minimiser eta* = sqrt(-a / 2b) (a < 0);
                     the order parameter switches on at a = 0, where relaxation slows down.
sequence-redemption  prefix-only (causal) vs full-sequence (non-local) consistency on sequences
                     with a planted mistake; and the same through the energy coordinator:
                     prefix modules hinged to the full-sequence module are lifted by relaxation.
connectivity         bond percolation on an n x n grid, with and without sparse random
                     shortcuts; where the largest component reaches half the nodes.
gated-expansion      a gate that opens a repair when the consistency gain beats a cost;
                     expansions get rarer as the cost rises.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from .modules import gate_eta, sequence_eta
from .observability import _new_figure, gating_metrics, save_figure, write_json, write_parquet
from .problem import EnergyProblem
from .relax import relax
from .terms import HingeCoupling, LandauTerm

__all__ = [
    "EXPERIMENTS",
    "connectivity",
    "gated_expansion",
    "grid_bond_edges",
    "landau_sweep",
    "largest_component_fraction",
    "main",
    "sequence_redemption",
    "sequence_with_mistake",
]


def _finish(name: str, out, frame, fig, summary: dict) -> dict:
    """Write <name>.parquet / .png / .json into `out` (when given); return the summary."""
    if out is not None:
        files = {
            "table": write_parquet(frame, os.path.join(out, f"{name}.parquet")),
            "plot": save_figure(fig, os.path.join(out, f"{name}.png")),
        }
        summary["files"] = {**files, "summary": os.path.join(out, f"{name}.json")}
        write_json(summary, summary["files"]["summary"])
    return summary


def _round(x, nd: int = 6):
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else round(float(x), nd)


# -- landau sweep ----------------------------------------------------------------------------------


def landau_minimiser(a: float, b: float) -> float:
    """argmin over [0, 1] of a eta^2 + b eta^4: sqrt(-a / 2b) for a < 0 (clipped), else 0."""
    if a >= 0:
        return 0.0
    if b == 0:
        return 1.0
    return float(np.clip(math.sqrt(-a / (2.0 * b)), 0.0, 1.0))


def landau_sweep(
    out=None,
    *,
    seed: int = 0,
    quick: bool = False,
    a_values=None,
    b: float = 1.0,
    eta0: float = 0.1,
    method: str = "accelerated",
    max_steps: int = 30_000,
    tol: float = 1e-14,
    order_threshold: float = 0.05,
) -> dict:
    """Relax a single Landau module for each a and compare with the analytic minimiser.

    Deterministic (the seed is recorded, nothing is drawn). At a = 0 the minimum is quartic
    and flat, so gradient methods converge only algebraically (critical slowing down: the
    accelerated method's error decays like ~1.7 / steps); `max_steps` bounds that case and the
    table reports the steps every a took.
    """
    t0 = time.perf_counter()
    a_values = np.linspace(-1.0, 1.0, 21) if a_values is None else np.asarray(a_values, dtype=np.float64)
    rows = []
    for a in a_values:
        a = float(a)
        p = EnergyProblem(1, {"local": LandauTerm(a=a, b=b, n=1)}, np.array([eta0]))
        r = relax(p, method=method, max_steps=max_steps, tol=tol)
        star = landau_minimiser(a, b)
        eta = float(r.eta[0])
        rows.append(
            {
                "a": a,
                "b": float(b),
                "eta_final": eta,
                "eta_star": star,
                "abs_err": abs(eta - star),
                "F_final": float(r.energy),
                "F_star": a * star**2 + b * star**4,
                "ordered": eta > order_threshold,
                "steps": int(r.steps),
                "converged": bool(r.converged),
                "reason": r.reason,
            }
        )
    import polars as pl

    frame = pl.DataFrame(rows)
    ordered_a = [r["a"] for r in rows if r["ordered"]]
    disordered_a = [r["a"] for r in rows if not r["ordered"]]
    # the transition is at a = 0 iff every a < 0 is ordered and every a >= 0 is not
    tiny = 1e-12
    transition_at_zero = all(r["ordered"] == (r["a"] < -tiny) for r in rows)
    steps = np.array([r["steps"] for r in rows])
    at_zero = [r for r in rows if abs(r["a"]) <= tiny]
    summary = {
        "experiment": "landau-sweep",
        "seed": seed,
        "quick": quick,
        "params": {"b": b, "eta0": eta0, "method": method, "max_steps": max_steps, "tol": tol, "order_threshold": order_threshold},
        "n_a": len(rows),
        "max_abs_err": float(max(r["abs_err"] for r in rows)),
        "transition_at_zero": bool(transition_at_zero),
        "ordered_a_max": max(ordered_a) if ordered_a else None,
        "disordered_a_min": min(disordered_a) if disordered_a else None,
        "steps_at_a0": at_zero[0]["steps"] if at_zero else None,
        "median_steps": float(np.median(steps)),
        "table": rows,
        "wall_time_s": time.perf_counter() - t0,
    }

    fig, (ax1, ax2) = _new_figure(1, 2, figsize=(10.0, 4.0))
    ax1.plot(frame["a"], frame["eta_star"], "k-", lw=1.0, label="analytic eta* = sqrt(-a/2b)")
    ax1.plot(frame["a"], frame["eta_final"], "o", ms=4, label="relaxed eta")
    ax1.axvline(0.0, color="grey", ls=":", lw=1)
    ax1.set_xlabel("a")
    ax1.set_ylabel("eta")
    ax1.set_title(f"Landau sweep (b = {b}): disorder -> order at a = 0")
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.semilogy(frame["a"], np.maximum(steps, 1), "s-", ms=3)
    ax2.axvline(0.0, color="grey", ls=":", lw=1)
    ax2.set_xlabel("a")
    ax2.set_ylabel("accepted steps")
    ax2.set_title("critical slowing down")
    ax2.grid(alpha=0.3)
    return _finish("landau_sweep", out, frame, fig, summary)


# -- sequences with a mistake ------------------------------------------------------------------------


def sequence_with_mistake(length: int, pos: int, mistake: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """linspace(0, 1, length) with v[pos] -= mistake, plus N(0, noise) noise."""
    v = np.linspace(0.0, 1.0, length)
    if 0 <= pos < length:
        v[pos] -= mistake
    if noise > 0:
        v = v + rng.normal(0.0, noise, length)
    return v


def _coupled_prefix_problem(prefix_eta: np.ndarray, full_eta: float, anchor: float, weight: float,
                            full_anchor: float | None = None) -> EnergyProblem:
    """Modules 0..m-1 = prefix windows, module m = the full sequence. Each module's local energy
    anchors it at its measured consistency (anchor (eta - eta_measured)^2); a directed hinge
    weight * max(0, eta_full - eta_prefix)^2 penalises a prefix falling below the full
    sequence, i.e. lets the non-local evidence redeem an early low score.

    The full-sequence module's anchor defaults to anchor * m: it summarises every pair of the
    sequence, and m hinges pull on it, so with the prefixes' anchor it would be dragged down to
    the crowd of prefixes instead of lifting them (the hinge acts on both ends)."""
    m = prefix_eta.size
    n = m + 1
    centers = np.append(prefix_eta, full_eta)
    a = np.full(n, float(anchor))
    a[m] = anchor * m if full_anchor is None else full_anchor
    terms = {
        "local": LandauTerm(a=a, b=0.0, center=centers, n=n),
        "hinge": HingeCoupling(np.arange(m), np.full(m, m), weight, n),
    }
    return EnergyProblem(n, terms, centers)


def sequence_redemption(
    out=None,
    *,
    seed: int = 0,
    quick: bool = False,
    length: int = 64,
    mistake_pos: int = 20,
    mistake: float = 0.5,
    noise: float = 0.01,
    trials: int | None = None,
    coupling_weight: float = 1.0,
    anchor: float = 1.0,
    full_anchor: float | None = None,
) -> dict:
    """Causal (prefix-only) vs non-local (full sequence) consistency, exact sequence_eta.

    For prefix lengths i = 2..length: loss_local = 1 - eta(v[:i]), loss_nonlocal = 1 - eta(v);
    redemption score = mean_i (loss_local - loss_nonlocal). Coordinator version: the prefix
    modules are hinged to the full-sequence module and relaxed; coordinator redemption =
    mean over prefixes of (eta_coupled - eta_uncoupled), the uncoupled baseline being the same
    problem with the hinge weight 0 (whose optimum is each module's measured eta).
    """
    t0 = time.perf_counter()
    trials = trials if trials is not None else (5 if quick else 10)
    if length < 3 or trials < 1:
        raise ValueError("length >= 3 and trials >= 1 required")
    rng = np.random.default_rng(seed)
    prefix_len = np.arange(2, length + 1)
    long_rows: dict[str, list] = {k: [] for k in ("trial", "prefix_len", "eta_prefix", "eta_full", "loss_local", "loss_nonlocal", "eta_prefix_coupled")}
    per_trial = []
    for t in range(trials):
        v = sequence_with_mistake(length, mistake_pos, mistake, noise, rng)
        eta_prefix = np.array([sequence_eta(v[:i]) for i in prefix_len])
        eta_full = sequence_eta(v)
        loss_local, loss_nonlocal = 1.0 - eta_prefix, np.full(prefix_len.size, 1.0 - eta_full)
        diff = loss_local - loss_nonlocal
        before = prefix_len <= mistake_pos  # prefixes that do not contain the mistake

        p = _coupled_prefix_problem(eta_prefix, eta_full, anchor, coupling_weight, full_anchor)
        coupled = relax(p, method="accelerated", tol=1e-9, max_steps=20_000)
        uncoupled = relax(p.with_weights({"hinge": 0.0}), method="accelerated", tol=1e-9, max_steps=20_000)
        m = prefix_len.size
        lift = coupled.eta[:m] - uncoupled.eta[:m]
        per_trial.append(
            {
                "trial": t,
                "redemption_score": float(diff.mean()),
                "redemption_before_mistake": float(diff[before].mean()) if before.any() else None,
                "redemption_after_mistake": float(diff[~before].mean()) if (~before).any() else None,
                "eta_full": float(eta_full),
                "prefix_eta_uncoupled_mean": float(uncoupled.eta[:m].mean()),
                "prefix_eta_coupled_mean": float(coupled.eta[:m].mean()),
                "coordinator_redemption": float(lift.mean()),
                "coordinator_lift_min": float(lift.min()),
                "lifted_fraction": float(np.mean(lift > 1e-9)),
                "full_eta_coupled": float(coupled.eta[m]),
                "energy_coupled": float(coupled.energy),
                "relax_steps": int(coupled.steps),
                "converged": bool(coupled.converged and uncoupled.converged),
            }
        )
        long_rows["trial"] += [t] * m
        long_rows["prefix_len"] += prefix_len.tolist()
        long_rows["eta_prefix"] += eta_prefix.tolist()
        long_rows["eta_full"] += [float(eta_full)] * m
        long_rows["loss_local"] += loss_local.tolist()
        long_rows["loss_nonlocal"] += loss_nonlocal.tolist()
        long_rows["eta_prefix_coupled"] += coupled.eta[:m].tolist()

    import polars as pl

    frame = pl.DataFrame(long_rows)

    def ms(key):
        x = np.array([r[key] for r in per_trial if r[key] is not None], dtype=np.float64)
        return float(x.mean()), float(x.std(ddof=1)) if x.size > 1 else 0.0

    rs_mean, rs_std = ms("redemption_score")
    cr_mean, cr_std = ms("coordinator_redemption")
    summary = {
        "experiment": "sequence-redemption",
        "seed": seed,
        "quick": quick,
        "params": {"length": length, "mistake_pos": mistake_pos, "mistake": mistake, "noise": noise, "trials": trials,
                   "coupling_weight": coupling_weight, "anchor": anchor,
                   "full_anchor": anchor * (length - 1) if full_anchor is None else full_anchor, "sequence_eta": "exact"},
        "redemption_score_mean": rs_mean,
        "redemption_score_std": rs_std,
        "redemption_before_mistake_mean": ms("redemption_before_mistake")[0],
        "redemption_after_mistake_mean": ms("redemption_after_mistake")[0],
        "coordinator_redemption_mean": cr_mean,
        "coordinator_redemption_std": cr_std,
        "coordinator_lift_min": float(min(r["coordinator_lift_min"] for r in per_trial)),
        "prefix_eta_uncoupled_mean": ms("prefix_eta_uncoupled_mean")[0],
        "prefix_eta_coupled_mean": ms("prefix_eta_coupled_mean")[0],
        "eta_full_mean": ms("eta_full")[0],
        "full_eta_coupled_mean": ms("full_eta_coupled")[0],
        "all_converged": all(r["converged"] for r in per_trial),
        "trials": per_trial,
        "wall_time_s": time.perf_counter() - t0,
    }

    agg = frame.group_by("prefix_len").agg(pl.col("eta_prefix").mean(), pl.col("eta_prefix_coupled").mean(), pl.col("eta_full").mean()).sort("prefix_len")
    fig, ax = _new_figure(1, 1, figsize=(7.5, 4.5))
    ax.plot(agg["prefix_len"], agg["eta_prefix"], lw=1.5, label="prefix eta (causal, uncoupled)")
    ax.plot(agg["prefix_len"], agg["eta_prefix_coupled"], lw=1.5, label="prefix eta after relaxation (hinged to full)")
    ax.plot(agg["prefix_len"], agg["eta_full"], "k--", lw=1.0, label="full-sequence eta (non-local)")
    ax.axvline(mistake_pos + 1, color="grey", ls=":", lw=1, label="first prefix containing the mistake")
    ax.set_xlabel("prefix length i")
    ax.set_ylabel("consistency eta")
    ax.set_title(f"sequence redemption: score {rs_mean:.4f} +/- {rs_std:.4f}, coordinator lift {cr_mean:.4f}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _finish("sequence_redemption", out, frame, fig, summary)


# -- connectivity --------------------------------------------------------------------------------


def grid_bond_edges(n: int) -> tuple[np.ndarray, np.ndarray]:
    """All 2 n (n - 1) nearest-neighbour bonds of an n x n grid; node id = row * n + col."""
    idx = np.arange(n * n).reshape(n, n)
    i = np.concatenate([idx[:, :-1].ravel(), idx[:-1, :].ravel()])
    j = np.concatenate([idx[:, 1:].ravel(), idx[1:, :].ravel()])
    return i, j


def largest_component_fraction(num_nodes: int, i: np.ndarray, j: np.ndarray) -> float:
    """Size of the largest connected component of the undirected graph (i, j) over num_nodes."""
    import scipy.sparse as sp
    from scipy.sparse.csgraph import connected_components

    if num_nodes == 0:
        return 0.0
    adj = sp.coo_matrix((np.ones(i.size, dtype=np.int8), (i, j)), shape=(num_nodes, num_nodes)).tocsr()
    _, labels = connected_components(adj, directed=False)
    return float(np.bincount(labels).max() / num_nodes)


def connectivity(
    out=None,
    *,
    seed: int = 0,
    quick: bool = False,
    n: int | None = None,
    p_values=None,
    trials: int | None = None,
    shortcut_frac: float = 0.02,
    threshold: float = 0.5,
) -> dict:
    """Bond percolation on an n x n grid: largest-component fraction vs bond probability p,
    with and without random non-local shortcuts (int(shortcut_frac * kept bonds) random node
    pairs, self-pairs dropped). p_c = smallest p whose mean fraction >= threshold.

    Common random numbers: per trial one uniform draw per bond (kept iff u < p) and one list of
    candidate shortcut pairs (the first m are used) serve every p and both arms, so the curves
    are monotone in p and the with-shortcuts graph contains the without-shortcuts graph;
    the shift in p_c is then a property of the shortcuts, not of sampling noise.
    """
    t0 = time.perf_counter()
    n = n if n is not None else (30 if quick else 50)
    trials = trials if trials is not None else (3 if quick else 5)
    ps = np.linspace(0.4, 0.7, 16) if p_values is None else np.asarray(p_values, dtype=np.float64)
    if n < 2 or trials < 1:
        raise ValueError("n >= 2 and trials >= 1 required")
    rng = np.random.default_rng(seed)
    ei, ej = grid_bond_edges(n)
    N, E = n * n, ei.size
    fracs = {False: np.zeros((ps.size, trials)), True: np.zeros((ps.size, trials))}
    n_short = np.zeros((ps.size, trials))
    for t in range(trials):
        u = rng.random(E)
        m_max = int(shortcut_frac * E)
        sa, sb = rng.integers(0, N, m_max), rng.integers(0, N, m_max)
        for k, p in enumerate(ps):
            kept = u < p
            ki, kj = ei[kept], ej[kept]
            fracs[False][k, t] = largest_component_fraction(N, ki, kj)
            m = int(shortcut_frac * int(kept.sum()))
            a, b = sa[:m], sb[:m]
            ok = a != b
            n_short[k, t] = int(ok.sum())
            fracs[True][k, t] = largest_component_fraction(N, np.concatenate([ki, a[ok]]), np.concatenate([kj, b[ok]]))

    def p_c(mean):
        hit = np.flatnonzero(mean >= threshold)
        return round(float(ps[hit[0]]), 12) if hit.size else None

    rows = []
    for sc in (False, True):
        mean = fracs[sc].mean(axis=1)
        for k, p in enumerate(ps):
            rows.append({
                "p": float(p), "shortcuts": sc, "lcc_mean": float(mean[k]), "lcc_std": float(fracs[sc][k].std()),
                "lcc_min": float(fracs[sc][k].min()), "lcc_max": float(fracs[sc][k].max()),
                "shortcuts_mean": float(n_short[k].mean()) if sc else 0.0, "trials": trials,
            })
    pc_no, pc_yes = p_c(fracs[False].mean(axis=1)), p_c(fracs[True].mean(axis=1))
    import polars as pl

    frame = pl.DataFrame(rows)
    summary = {
        "experiment": "connectivity",
        "seed": seed,
        "quick": quick,
        "params": {"n": n, "trials": trials, "shortcut_frac": shortcut_frac, "threshold": threshold,
                   "p_min": float(ps.min()), "p_max": float(ps.max()), "num_p": int(ps.size)},
        "p_c_without": pc_no,
        "p_c_with": pc_yes,
        "shift": round(pc_no - pc_yes, 12) if (pc_no is not None and pc_yes is not None) else None,
        "table": rows,
        "wall_time_s": time.perf_counter() - t0,
    }

    fig, ax = _new_figure(1, 1, figsize=(7.0, 4.5))
    for sc, lab in ((False, "grid bonds only"), (True, f"+ shortcuts ({shortcut_frac:g} of bonds)")):
        mean, std = fracs[sc].mean(axis=1), fracs[sc].std(axis=1)
        line = ax.plot(ps, mean, "o-", ms=3, label=lab)[0]
        ax.fill_between(ps, mean - std, mean + std, alpha=0.2, color=line.get_color())
        pc = pc_yes if sc else pc_no
        if pc is not None:
            ax.axvline(pc, color=line.get_color(), ls=":", lw=1)
    ax.axhline(threshold, color="grey", ls="--", lw=1)
    ax.set_xlabel("bond probability p")
    ax.set_ylabel("largest component fraction")
    ax.set_title(f"{n}x{n} bond percolation: p_c {pc_no} -> {pc_yes} with shortcuts")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _finish("connectivity", out, frame, fig, summary)


# -- gated expansion -------------------------------------------------------------------------------


def gated_expansion(
    out=None,
    *,
    seed: int = 0,
    quick: bool = False,
    costs=(0.0, 0.02, 0.05, 0.1, 0.2),
    trials: int | None = None,
    k: float = 10.0,
    length: int = 64,
    mistake_pos: int = 20,
    mistake: float = 0.5,
    noise: float = 0.01,
) -> dict:
    """Per trial: a sequence with a mistake; gain = eta(after the minimal repair
    s[pos] = max(s[pos], s[pos-1])) - eta(before), exact sequence_eta. Per cost:
    eta_gate = gate_eta(gain, cost, k); expand iff eta_gate > 0.5; redemption = the
    full-sequence eta change if expanded, else 0 (no repair happened).

    The same trial sequences serve every cost (common random numbers), and eta_gate is
    decreasing in the cost, so the expansion rate cannot rise with the cost.
    """
    t0 = time.perf_counter()
    trials = trials if trials is not None else (20 if quick else 50)
    if not (1 <= mistake_pos < length) or trials < 1:
        raise ValueError("need 1 <= mistake_pos < length and trials >= 1")
    rng = np.random.default_rng(seed)
    before, after = np.empty(trials), np.empty(trials)
    for t in range(trials):
        v = sequence_with_mistake(length, mistake_pos, mistake, noise, rng)
        before[t] = sequence_eta(v)
        r = v.copy()
        r[mistake_pos] = max(r[mistake_pos], r[mistake_pos - 1])
        after[t] = sequence_eta(r)
    gain = after - before
    rows = []
    for c in costs:
        c = float(c)
        eg = gate_eta(gain, c, k)
        expanded = eg > 0.5
        redemption = np.where(expanded, after - before, 0.0)
        met = gating_metrics(gain, c, k, redemption)
        rows.append({
            "cost": c, "expansion_rate": float(expanded.mean()), "redemption_mean": float(redemption.mean()),
            "hazard_mean": met["hazard_mean"], "mu_hat": met["mu_hat"], "good_bad_ratio": met["good_bad_ratio"],
            "expansions": met["expansions"], "good": met["good"], "bad": met["bad"],
            "gain_mean": float(gain.mean()), "gate_eta_mean": float(eg.mean()), "trials": trials,
        })
    import polars as pl

    frame = pl.DataFrame(rows)
    rates = [r["expansion_rate"] for r in rows]
    summary = {
        "experiment": "gated-expansion",
        "seed": seed,
        "quick": quick,
        "params": {"costs": [float(c) for c in costs], "trials": trials, "k": k, "length": length,
                   "mistake_pos": mistake_pos, "mistake": mistake, "noise": noise, "sequence_eta": "exact"},
        "gain_mean": float(gain.mean()),
        "gain_std": float(gain.std(ddof=1)) if trials > 1 else 0.0,
        "gain_min": float(gain.min()),
        "gain_max": float(gain.max()),
        "expansion_rates": rates,
        "expansion_rate_non_increasing": bool(all(b <= a for a, b in zip(rates, rates[1:]))),
        "table": rows,
        "wall_time_s": time.perf_counter() - t0,
    }

    fig, ax = _new_figure(1, 1, figsize=(7.0, 4.5))
    cs = np.array([r["cost"] for r in rows])
    ax.plot(cs, rates, "o-", label="expansion rate")
    ax.set_xlabel("expansion cost")
    ax.set_ylabel("expansion rate")
    ax.set_ylim(-0.05, 1.05)
    ax2 = ax.twinx()
    ax2.plot(cs, [r["redemption_mean"] for r in rows], "s--", color="tab:orange", label="redemption mean")
    ax2.set_ylabel("mean full-sequence eta gain")
    ax.set_title(f"energy-gated expansion (k = {k:g}, mean gain {gain.mean():.4f})")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8)
    ax.grid(alpha=0.3)
    return _finish("gated_expansion", out, frame, fig, summary)


# -- CLI -----------------------------------------------------------------------------------------

EXPERIMENTS = {
    "landau-sweep": landau_sweep,
    "sequence-redemption": sequence_redemption,
    "connectivity": connectivity,
    "gated-expansion": gated_expansion,
}


def _fmt(x, nd=4) -> str:
    return "n/a" if x is None else f"{x:.{nd}g}" if isinstance(x, float) else str(x)


def describe(summary: dict) -> str:
    """One or two human lines for an experiment's summary."""
    name = summary["experiment"]
    if name == "landau-sweep":
        return (f"landau-sweep: {summary['n_a']} values of a; max |eta - eta*| = {summary['max_abs_err']:.2e}; "
                f"ordered (eta > {summary['params']['order_threshold']}) exactly for a < 0: {summary['transition_at_zero']} "
                f"(ordered up to a = {_fmt(summary['ordered_a_max'])}, disordered from a = {_fmt(summary['disordered_a_min'])}); "
                f"steps at a = 0: {summary['steps_at_a0']} vs median {summary['median_steps']:.0f} (critical slowing down)")
    if name == "sequence-redemption":
        return (f"sequence-redemption: redemption score {summary['redemption_score_mean']:.4f} +/- {summary['redemption_score_std']:.4f} "
                f"over {summary['params']['trials']} trials (prefixes without the mistake {summary['redemption_before_mistake_mean']:+.4f}, "
                f"with it {summary['redemption_after_mistake_mean']:+.4f}); coordinator: prefix eta {summary['prefix_eta_uncoupled_mean']:.4f} "
                f"uncoupled -> {summary['prefix_eta_coupled_mean']:.4f} hinged (lift {summary['coordinator_redemption_mean']:.4f} "
                f"+/- {summary['coordinator_redemption_std']:.4f}, min {summary['coordinator_lift_min']:.1e}); full-sequence module "
                f"{summary['eta_full_mean']:.4f} -> {summary['full_eta_coupled_mean']:.4f}")
    if name == "connectivity":
        pr = summary["params"]
        return (f"connectivity: {pr['n']}x{pr['n']} grid, {pr['trials']} trials: p_c = {_fmt(summary['p_c_without'])} without shortcuts, "
                f"{_fmt(summary['p_c_with'])} with {pr['shortcut_frac']:g} shortcuts; shift {_fmt(summary['shift'])}")
    if name == "gated-expansion":
        parts = ", ".join(f"{r['cost']:g}: {r['expansion_rate']:.2f}" for r in summary["table"])
        return (f"gated-expansion: mean gain {summary['gain_mean']:.4f} +/- {summary['gain_std']:.4f}; expansion rate by cost {{{parts}}}; "
                f"non-increasing: {summary['expansion_rate_non_increasing']}")
    return json.dumps(summary)[:200]


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m emergence.energy.experiments", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("experiment", choices=[*EXPERIMENTS, "all"])
    ap.add_argument("--out", default="runs/experiments", help="folder for <name>.parquet, <name>.png, <name>.json")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smaller sizes: all four in a few seconds")
    args = ap.parse_args(argv)
    names = list(EXPERIMENTS) if args.experiment == "all" else [args.experiment]
    results = {}
    for name in names:
        s = EXPERIMENTS[name](args.out, seed=args.seed, quick=args.quick)
        results[name] = s
        print(describe(s))
        print(f"  -> {s['files']['table']}, {s['files']['plot']}  ({s['wall_time_s']:.2f} s)")
    sys.stdout.flush()
    return results


if __name__ == "__main__":
    main()
