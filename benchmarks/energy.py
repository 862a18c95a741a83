"""Energy-coordination benchmark: the seed's dense gated ring, against scipy's L-BFGS-B.

For each n: E* from L-BFGS-B (bounds [0,1], tight tolerances) run in this process on the same
numpy energy/gradient; then steps and wall time for each solver to reach
gap = (E - E*) / (E0 - E*) <= 1e-6 (L-BFGS-B's time is that of its first function evaluation
below the gap, so it is not charged for its own over-tight tolerance), and dF90.
Finally the partitioned relaxation across 2 actors must reach the single-process optimum.

    python -m benchmarks.energy [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
from scipy.optimize import Bounds, minimize

from benchmarks.common import print_targets, target, write_report
from emergence.energy.relax import relative_gap, relax
from emergence.energy.scenarios import dense_ring

GAP = 1e-6


def lbfgsb(p) -> dict:
    evals = []
    t0 = time.perf_counter()

    def fun(x):
        e, g = p.energy_and_grad(x, np.empty(p.n))
        evals.append((time.perf_counter() - t0, e))
        return e, g.copy()

    r = minimize(fun, p.eta0, jac=True, method="L-BFGS-B", bounds=Bounds(np.zeros(p.n), np.ones(p.n)),
                 options={"maxiter": 10_000, "maxfun": 20_000, "ftol": 1e-16, "gtol": 1e-12})
    return {"e_star": float(r.fun), "nit": int(r.nit), "evals": evals, "total_s": time.perf_counter() - t0}


def time_to_gap(evals, e0, e_star):
    for k, (t, e) in enumerate(evals):
        if relative_gap(e, e0, e_star) <= GAP:
            return t, k + 1
    return float("inf"), len(evals)


def run_size(n: int) -> dict:
    t = time.perf_counter()
    p = dense_ring(n)
    build_s = time.perf_counter() - t
    e0 = p.energy(p.eta0)
    ref = lbfgsb(p)
    e_star = ref["e_star"]
    lb_s, lb_evals = time_to_gap(ref["evals"], e0, e_star)
    ours = relax(p, method="accelerated", tol=0.0, target_energy=e_star, target_gap=GAP, max_steps=10_000)
    own_stop = relax(p, method="accelerated", tol=1e-9, max_steps=10_000)  # its own stopping rule, no E* given
    return {
        "n": n,
        "build_s": build_s,
        "e_star": e_star,
        "ours_steps": ours.steps,
        "ours_s": ours.wall_time_s,
        "ours_gap": ours.gap(e_star),
        "ours_delta_f90": ours.delta_f90,
        "ours_selfstop_s": own_stop.wall_time_s,
        "ours_selfstop_gap": own_stop.gap(e_star),
        "lbfgsb_s_to_gap": lb_s,
        "lbfgsb_evals_to_gap": lb_evals,
        "lbfgsb_total_s": ref["total_s"],
        "ratio_ours_over_lbfgsb": ours.wall_time_s / lb_s,
    }


def run_partitioned(n: int, k: int = 2) -> dict:
    import ray

    from actors.partitioned import gather_eta, relax_partitioned, start_workers

    # the single-process optimum on the same n, for the gap
    p = dense_ring(n)
    single = relax(p, method="accelerated", tol=1e-10, max_steps=10_000)
    e_single, e0 = single.energy, single.initial_energy
    del p, single
    gc.collect()
    if not ray.is_initialized():
        ray.init(num_cpus=max(2, k), include_dashboard=False, configure_logging=False, log_to_driver=False)
    t = time.perf_counter()
    workers, infos = start_workers(n, k, num_cpus=1)
    build_s = time.perf_counter() - t
    out = relax_partitioned(workers, infos, max_steps=10_000, tol=1e-10)
    eta = gather_eta(workers)
    for w in workers:
        ray.kill(w)
    return {
        "n": n,
        "k": k,
        "build_s": build_s,
        "steps": out["steps"],
        "relax_s": out["wall_time_s"],
        "energy": out["energy"],
        "single_process_energy": e_single,
        "gap_to_single_process": relative_gap(out["energy"], e0, e_single),
        "eta_in_box": bool(np.all((eta >= 0) & (eta <= 1))),
    }


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="n up to 1e5 and a 1e6 partitioned run (a few minutes on 2 cores)")
    ap.add_argument("--json", default=None, help="write figures and targets here")
    args = ap.parse_args(argv)
    sizes = [10**3, 10**4, 10**5] if args.quick else [10**3, 10**4, 10**5, 10**6]
    part_n = 10**6 if args.quick else 10**7

    rows = []
    print(f"{'n':>9} {'steps':>6} {'ours s':>8} {'L-BFGS-B s':>11} {'ratio':>6} {'gap':>9} {'dF90':>5}")
    for n in sizes:
        r = run_size(n)
        rows.append(r)
        print(f"{n:>9} {r['ours_steps']:>6} {r['ours_s']:>8.3f} {r['lbfgsb_s_to_gap']:>11.3f} "
              f"{r['ratio_ours_over_lbfgsb']:>6.3f} {r['ours_gap']:>9.2e} {r['ours_delta_f90']:>5}")
        gc.collect()
    part = run_partitioned(part_n)
    print(f"partitioned n={part_n} k=2: {part['steps']} steps, {part['relax_s']:.2f} s relax "
          f"(+{part['build_s']:.2f} s build), gap to single-process optimum {part['gap_to_single_process']:.2e}")

    by_n = {r["n"]: r for r in rows}
    targets = {"max_gap_over_n": target(max(r["ours_gap"] for r in rows), GAP)}
    for n in sizes:
        if n >= 10**5:
            targets[f"ratio_vs_lbfgsb_n{n:.0e}"] = target(by_n[n]["ratio_ours_over_lbfgsb"], 0.5)
    if 10**6 in by_n:
        targets["wall_s_n1e6"] = target(by_n[10**6]["ours_s"], 5.0)
    targets[f"partitioned_gap_n{part_n:.0e}"] = target(abs(part["gap_to_single_process"]), GAP)
    print_targets(targets)
    return write_report(args.json, "energy", {"sizes": rows, "partitioned": part}, targets, argv or [])


if __name__ == "__main__":
    main()
