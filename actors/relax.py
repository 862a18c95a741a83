"""Relax a problem spec on the cluster's energy coordinator; write the trace as Parquet + PNG.

    python -m actors.relax SPEC.json [--method accelerated] [--out runs/relax]
    python -m actors.relax --dense-ring 1000
    ray job submit --working-dir . -- python -m actors.relax --dense-ring 100000

Connects to the running cluster when there is one (inside `ray job submit` through RAY_ADDRESS),
otherwise starts a local Ray.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import ray

from actors.energy import get_or_create_coordinator
from cluster.ray_session import ensure_ray
from emergence.paths import HELP, runs_path
from emergence.energy.relax import METHODS, RelaxTrace
from emergence.energy.scenarios import dense_ring_spec


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("spec", nargs="?", help="problem spec JSON file")
    src.add_argument("--dense-ring", type=int, metavar="N", help="use the dense gated ring of N modules")
    ap.add_argument("--method", choices=METHODS, default="accelerated")
    ap.add_argument("--max-steps", type=int, default=5000)
    ap.add_argument("--tol", type=float, default=1e-9)
    ap.add_argument("--name", default=None, help="problem name on the coordinator (default: from the file)")
    ap.add_argument("--keep", action="store_true", help="keep the problem on the coordinator afterwards (default: drop it)")
    ap.add_argument("--out", default=runs_path("relax"),
                    help=f"folder for trace.parquet, budgets.parquet, trace.png and summary.json (default: relax/ under {HELP})")
    args = ap.parse_args(argv)
    if args.dense_ring is not None:
        if args.dense_ring < 3:
            ap.error("--dense-ring: needs N >= 3")
        spec, name = dense_ring_spec(args.dense_ring), f"dense-ring-{args.dense_ring}"
    else:
        try:
            with open(args.spec) as f:
                spec = json.load(f)
        except (OSError, json.JSONDecodeError) as exc:
            ap.error(f"spec: cannot read {args.spec}: {exc}")
        name = args.name or os.path.splitext(os.path.basename(args.spec))[0]

    ensure_ray(namespace="emergence")  # the job's cluster, else make run's head, else a private Ray
    coord = get_or_create_coordinator()
    built = ray.get(coord.build.remote(name, spec), timeout=600)
    t = time.perf_counter()
    result = ray.get(coord.relax.remote(name, return_eta=False, method=args.method, max_steps=args.max_steps, tol=args.tol), timeout=3600)
    result["round_trip_s"] = time.perf_counter() - t

    from emergence.energy.observability import plot_trace, write_json, write_parquet

    trace = RelaxTrace.from_dict(result.pop("trace"))
    os.makedirs(args.out, exist_ok=True)
    frame = trace.to_frame()
    write_parquet(frame, os.path.join(args.out, "trace.parquet"))
    plot_trace(frame, os.path.join(args.out, "trace.png"))
    budgets = ray.get(coord.budgets.remote(name), timeout=600)
    if not args.keep:
        ray.get(coord.drop.remote(name), timeout=60)
    write_parquet(budgets, os.path.join(args.out, "budgets.parquet"))
    summary = {"problem": built, **result}
    write_json(summary, os.path.join(args.out, "summary.json"))
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
