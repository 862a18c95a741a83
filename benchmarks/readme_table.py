"""Render a benchmark's JSON (energy, nvp, sandbox) as the README's markdown table (keeps the two in step).

    python -m benchmarks.readme_table benchmarks/results/energy.json
"""

from __future__ import annotations

import json
import sys


def energy_table(report: dict) -> str:
    rows = ["| n | steps to gap ≤ 1e-6 | ours (s, median) | L-BFGS-B to same gap (s, median) | ratio | ΔF90 | self-stopping run: s / gap |",
            "|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["figures"]["sizes"]:
        rows.append(f"| {s['n']:.0e} | {s['ours_steps']} | {s['ours_s']:.3f} | {s['lbfgsb_s_to_gap']:.3f} | "
                    f"{s['ratio_ours_over_lbfgsb']:.2f} | {s['ours_delta_f90']} | {s['ours_selfstop_s']:.3f} / {s['ours_selfstop_gap']:.1e} |")
    p = report["figures"]["partitioned"]
    rows += ["", f"Partitioned across {p['k']} actors at n = {p['n']:.0e}: {p['steps']} steps, {p['relax_s']:.1f} s relaxation "
                 f"(+{p['build_s']:.1f} s building the blocks inside the actors), gap {abs(p['gap_to_reference_optimum']):.1e} to the "
                 f"periodic L-BFGS-B optimum and {abs(p['gap_to_single_process']):.1e} to the single-process run.", ""]
    rows.append("| target | value | goal | met |")
    rows.append("|---|---:|---|---|")
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


def nvp_table(report: dict) -> str:
    f = report["figures"]
    keys = ("skill", "change_fidelity", "gradient_alignment", "entropy_coherence", "entropy_violation_rate", "coverage95")
    rows = ["| domain | method | skill | change fidelity | grad. alignment | entropy coherence | entropy violations | 95% coverage | rollout skill @10 / @50 |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in f["evaluation"]:
        name = r["domain"] + ("" if r["known"] else " (held out)")
        for method in ("model", "model_enforced", "linear", "persistence"):
            m = r["one_step"].get(method)
            if m is None:
                continue
            cells = " | ".join(f"{m[k]:.3f}" if k in m else "–" for k in keys)
            roll = r["rollout"].get(method.replace("_enforced", ""), {}) if method != "model_enforced" else {}
            rs = " / ".join(f"{roll[k]:.3f}" for k in ("skill@10", "skill@50") if k in roll) or "–"
            rows.append(f"| {name} | {method} | {cells} | {rs} |")
    rows += ["", "| size | model, batch 1, 1 thread (ms) | one FD step (ms) | FD advance of one dt (ms) |", "|---|---:|---:|---:|"]
    for s, l in f["latency_ms"].items():
        rows.append(f"| {s}×{s} | {l['model_ms']:.2f} | {l['fd_step_ms']:.3f} | {l['fd_advance_dt_ms']:.3f} ({l['fd_substeps_per_dt']} substeps) |")
    if "throughput" in f:
        t = f["throughput"]
        rows += ["", f"Ray Train throughput: {t['1']['samples_per_s']:.0f} samples/s with 1 worker, "
                     f"{t['2']['samples_per_s']:.0f} with 2 (×{t['speedup_2_over_1']:.2f})."]
    rows += ["", "| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


SANDBOX_PATHS = (("bare_subprocess", "bare `python3 -I -S -B -c` subprocess (the floor)"),
                 ("process_cold", "process backend, cold (new supervisor per run)"),
                 ("bubblewrap_cold", "bubblewrap, cold (new sandbox per run)"),
                 ("process_warm", "process backend, warm"),
                 ("bubblewrap_warm", "**bubblewrap, warm** (the default)"))


def sandbox_table(report: dict) -> str:
    w = report["figures"]["workloads"]
    names = list(w)
    rows = ["| path | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    cell = lambda d: f"{d['p50_ms']:.1f} / {d['p99_ms']:.1f}"  # noqa: E731
    for key, label in SANDBOX_PATHS:
        rows.append(f"| {label} | " + " | ".join(cell(w[n][key]) for n in names) + " |")
    if all("ray_pool" in w[n] for n in names):
        c = w[names[0]]["ray_pool"]["concurrency"]
        rows.append(f"| Ray `SandboxPool`, 2 workers, {c} concurrent callers (queueing included) | "
                    + " | ".join(cell(w[n]["ray_pool"]) for n in names) + " |")
    rates = "; ".join(
        f"{n}: bubblewrap warm {w[n]['bubblewrap_warm_execs_per_s_2_workers']:.0f}, bare subprocess "
        f"{w[n]['bare_subprocess_execs_per_s_2_workers']:.0f}"
        + (f", Ray pool {w[n]['ray_pool']['execs_per_s']:.0f}" if "ray_pool" in w[n] else "") for n in names)
    cold = ", ".join(f"{n} ×{w[n]['overhead_cold_over_bare_p50']:.1f}" for n in names)
    rows += ["", f"Executions per second, 2 workers on 2 cores — {rates}. Cold bubblewrap over the bare subprocess "
                 f"(p50): {cold}.", "", "| target | value | goal | met |", "|---|---:|---|---|"]
    for k, t in report["targets"].items():
        rows.append(f"| {k} | {t['value']:.3g} | {t['goal']} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(rows)


TABLES = {"nvp": nvp_table, "sandbox": sandbox_table, "energy": energy_table}

if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/energy.json"
    report = json.load(open(path))
    print(TABLES.get(report.get("benchmark"), energy_table)(report))
