"""Render benchmarks/results/energy.json as the README's markdown table (keeps the two in step).

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


if __name__ == "__main__":
    print(energy_table(json.load(open(sys.argv[1] if len(sys.argv) > 1 else "benchmarks/results/energy.json"))))
