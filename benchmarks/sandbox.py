"""Sandbox speed: executions per second and latency, next to a bare `python -c` subprocess.

    python -m benchmarks.sandbox [--quick] [--json PATH]

Workloads: "trivial" (a one-line function, one test) and "suite" (five list functions with the
evaluation set's four test cases each, as the synthesis loop scores a candidate). Paths:
- bare: `python3 -I -S -B -c <source + calls>` in a plain subprocess, results compared here: the floor;
- cold: a fresh sandbox per execution (bubblewrap; process too), i.e. each backend's start-up;
- warm: one already-started sandbox per worker, which forks a limited child per test;
- pool: the Ray `SandboxPool` with 2 workers, driven by concurrent callers.
Targets (2 cores): >= 100 executions/s, trivial p99 < 100 ms, warm isolation overhead <= 1.3x
the bare subprocess (per execution, p50).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import threading
import time
from pathlib import Path

from benchmarks.common import print_targets, target, write_report
from emergence.sandbox import BubblewrapExecutor, Limits, ProcessExecutor, SandboxUnavailable, available_backends
from emergence.sandbox.backends import PY_FLAGS, sandbox_python
from emergence.sandbox.compare import values_equal

INTENTS = Path(__file__).resolve().parents[2] / "shared" / "benchmarks" / "intents_dev.jsonl"
TRIVIAL = ("def f(x):\n    return x + 1\n", "f", [{"args": [41], "expected": 42}])
# Reference solutions for five numeric rows of the evaluation set (scored with its own test cases).
SOLUTIONS = {
    "sum_list": "def f(xs):\n    return sum(xs)\n",
    "sum_even": "def f(xs):\n    return sum(x for x in xs if x % 2 == 0)\n",
    "sum_odd": "def f(xs):\n    return sum(x for x in xs if x % 2)\n",
    "max_list": "def f(xs):\n    return max(xs)\n",
    "min_list": "def f(xs):\n    return min(xs)\n",
}


def suite_jobs(path: Path = INTENTS) -> list[tuple[str, str, list]]:
    if not path.exists():
        raise FileNotFoundError(f"{path}: the evaluation set is needed for the suite workload (--intents PATH)")
    rows = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        rows[row["id"]] = row["tests"]
    missing = sorted(set(SOLUTIONS) - set(rows))
    if missing:
        raise ValueError(f"{path}: rows {missing} not found")
    return [(code, "f", rows[key]) for key, code in SOLUTIONS.items()]


def bare_run(code: str, entry: str, tests: list) -> bool:
    """The floor: one plain interpreter runs the code on every test and prints the values."""
    script = code + f"\nimport json\nprint(json.dumps([{entry}(*a) for a in {json.dumps([t['args'] for t in tests])}]))\n"
    out = subprocess.run([sandbox_python(), *PY_FLAGS, "-c", script], capture_output=True, timeout=30)
    values = json.loads(out.stdout)
    return all(values_equal(v, t["expected"]) for v, t in zip(values, tests))


def pcts(samples: list[float]) -> dict:
    s = sorted(samples)
    q = lambda p: s[min(len(s) - 1, int(p * len(s)))]  # noqa: E731
    return {"n": len(s), "p50_ms": q(0.5) * 1e3, "p99_ms": q(0.99) * 1e3, "mean_ms": statistics.fmean(s) * 1e3}


def timed(fn, jobs, n: int) -> tuple[dict, bool]:
    lat, ok = [], True
    for i in range(n):
        job = jobs[i % len(jobs)]
        t0 = time.perf_counter()
        r = fn(*job)
        lat.append(time.perf_counter() - t0)
        ok &= r is True or getattr(r, "status", None) == "passed"
    return pcts(lat), ok


def throughput(runners, jobs, seconds: float) -> float:
    """Executions/s with one thread per runner (a warm sandbox's `run`, or `bare_run`)."""
    counts = [0] * len(runners)
    stop = time.perf_counter() + seconds

    def loop(i):
        while time.perf_counter() < stop:
            runners[i](*jobs[counts[i] % len(jobs)])
            counts[i] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(len(runners))]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - t0)


def warm_throughput(jobs, seconds: float, workers: int = 2) -> float:
    """Executions/s with `workers` threads, each driving its own warm bubblewrap sandbox."""
    execs = [BubblewrapExecutor() for _ in range(workers)]
    try:
        for e in execs:
            e.warm_up()
        return throughput([e.run for e in execs], jobs, seconds)
    finally:
        for e in execs:
            e.close()


def cold_run(cls, **kw):
    def run(code, entry, tests):
        with cls(Limits(), **kw) as ex:
            return ex.run(code, entry, tests)
    return run


def pool_throughput(jobs, seconds: float, concurrency: int = 8) -> dict:
    import ray

    from actors.sandbox_worker import get_or_create_pool
    from cluster.ray_session import ensure_ray

    started = ensure_ray(log_to_driver=False)
    pool = get_or_create_pool(name="bench-sandbox-pool", size=2, max_queue=64)
    ray.get(pool.run.remote(*jobs[0]), timeout=120)  # workers up and warm
    lat, done, t0 = [], 0, time.perf_counter()
    inflight = {}
    while time.perf_counter() - t0 < seconds or inflight:
        while len(inflight) < concurrency and time.perf_counter() - t0 < seconds:
            job = jobs[(done + len(inflight)) % len(jobs)]
            inflight[pool.run.remote(*job)] = time.perf_counter()
        ready, _ = ray.wait(list(inflight), num_returns=1, timeout=60)
        for ref in ready:
            r = ray.get(ref)
            assert r["status"] == "passed", r
            lat.append(time.perf_counter() - inflight.pop(ref))
            done += 1
    elapsed = time.perf_counter() - t0
    ray.kill(pool)
    if started:
        ray.shutdown()
    return {"execs_per_s": done / elapsed, "concurrency": concurrency, **pcts(lat)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.sandbox", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (about a minute)")
    ap.add_argument("--json", default=None, help="write figures and targets here")
    ap.add_argument("--intents", type=Path, default=INTENTS, help="evaluation set for the suite workload")
    ap.add_argument("--no-pool", action="store_true", help="skip the Ray pool measurement")
    args = ap.parse_args(argv)
    n_warm, n_cold, secs = (200, 30, 3.0) if args.quick else (1000, 100, 10.0)
    backends = available_backends()
    print("backends:", json.dumps(backends, indent=1))
    if backends["bubblewrap"] != "ok":
        raise SandboxUnavailable(backends["bubblewrap"])
    workloads = {"trivial": [TRIVIAL], "suite": suite_jobs(args.intents)}
    figures = {"backends": backends, "workloads": {}}
    for name, jobs in workloads.items():
        w = {}
        w["bare_subprocess"], ok_bare = timed(bare_run, jobs, n_cold)
        w["bubblewrap_cold"], ok_cold = timed(cold_run(BubblewrapExecutor), jobs, n_cold)
        w["process_cold"], ok_pc = timed(cold_run(ProcessExecutor, allow_unsafe=True), jobs, n_cold)
        with BubblewrapExecutor() as ex:
            ex.warm_up()
            w["bubblewrap_warm"], ok_warm = timed(ex.run, jobs, n_warm)
        with ProcessExecutor(allow_unsafe=True) as ex:
            ex.warm_up()
            w["process_warm"], ok_pw = timed(ex.run, jobs, n_warm)
        assert ok_bare and ok_cold and ok_pc and ok_warm and ok_pw, f"{name}: some path failed its tests"
        w["bubblewrap_warm_execs_per_s_2_workers"] = warm_throughput(jobs, secs)
        w["bare_subprocess_execs_per_s_2_workers"] = throughput([bare_run, bare_run], jobs, secs)
        w["overhead_warm_over_bare_p50"] = w["bubblewrap_warm"]["p50_ms"] / w["bare_subprocess"]["p50_ms"]
        w["overhead_cold_over_bare_p50"] = w["bubblewrap_cold"]["p50_ms"] / w["bare_subprocess"]["p50_ms"]
        if not args.no_pool:
            w["ray_pool"] = pool_throughput(jobs, secs)
        figures["workloads"][name] = w
        print_table(name, w)
    t = figures["workloads"]["trivial"]
    targets = {
        "trivial_execs_per_s_2_cores": target(t["bubblewrap_warm_execs_per_s_2_workers"], 100, ">="),
        "trivial_p99_ms": target(t["bubblewrap_warm"]["p99_ms"], 100, "<"),
        "isolation_overhead_vs_bare_subprocess": target(t["overhead_warm_over_bare_p50"], 1.3, "<="),
        "suite_isolation_overhead_vs_bare_subprocess":
            target(figures["workloads"]["suite"]["overhead_warm_over_bare_p50"], 1.3, "<="),
    }
    if not args.no_pool:
        targets["pool_trivial_execs_per_s"] = target(t["ray_pool"]["execs_per_s"], 100, ">=")
    print_targets(targets)
    return write_report(args.json, "sandbox", figures, targets, argv or [])


def print_table(name: str, w: dict) -> None:
    print(f"\n{name}: latency per execution (ms)")
    print(f"  {'path':<22}{'p50':>8}{'p99':>8}")
    for key in ("bare_subprocess", "process_cold", "bubblewrap_cold", "process_warm", "bubblewrap_warm"):
        print(f"  {key:<22}{w[key]['p50_ms']:>8.2f}{w[key]['p99_ms']:>8.2f}")
    if "ray_pool" in w:
        print(f"  {'ray_pool (8 callers)':<22}{w['ray_pool']['p50_ms']:>8.2f}{w['ray_pool']['p99_ms']:>8.2f}")
    print(f"  executions/s, 2 workers: bubblewrap warm {w['bubblewrap_warm_execs_per_s_2_workers']:.0f}, "
          f"bare subprocess {w['bare_subprocess_execs_per_s_2_workers']:.0f}"
          + (f", Ray pool {w['ray_pool']['execs_per_s']:.0f}" if "ray_pool" in w else ""))
    print(f"  overhead vs bare (p50): warm x{w['overhead_warm_over_bare_p50']:.2f}, "
          f"cold x{w['overhead_cold_over_bare_p50']:.2f}")


if __name__ == "__main__":
    main()
