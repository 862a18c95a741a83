"""Sandbox workers as Ray actors, behind one named router.

    pool = get_or_create_pool(size=2)                       # named "sandbox-pool" in namespace "emergence"
    ray.get(pool.run.remote(code, "f", [{"args": [1], "expected": 2}]), timeout=60)  # RunResult.to_dict()

Each `SandboxWorker` keeps one warm sandbox (bubblewrap by default) and runs one job at a time.
`SandboxPool` is an async actor: it hands each call to an idle worker, queues at most
`max_queue` callers (beyond that `PoolBusy`: back off and retry), gives every call a deadline,
and replaces a worker that dies or overruns. Both default to `num_cpus=0` so they schedule
even while RLlib env runners hold every CPU; pass `resource="sandbox"` to pin workers to nodes
that advertise a custom `sandbox` resource instead. Nothing here is reachable over HTTP: no
public route executes code.
"""

from __future__ import annotations

import asyncio
import os
import time

import ray
from ray.exceptions import RayActorError

from emergence.sandbox import Limits, open_executor
from emergence.sandbox.harness import check_source, parse_tests

POOL_NAME = "sandbox-pool"
NAMESPACE = "emergence"


class PoolBusy(RuntimeError):
    """The pool's queue is full; the caller should retry later."""


class _Metrics:
    """On Ray's metrics port (created inside the pool's process)."""

    def __init__(self):
        from ray.util.metrics import Counter, Gauge, Histogram

        self.runs = Counter("emergence_sandbox_runs", "Sandbox runs by outcome", tag_keys=("status",))
        self.seconds = Histogram("emergence_sandbox_run_seconds", "Wall time per pool call, queueing included",
                                 boundaries=[0.002, 0.005, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 60])
        self.queued = Gauge("emergence_sandbox_queued", "Calls waiting for a free sandbox worker")
        self.replaced = Counter("emergence_sandbox_workers_replaced", "Workers replaced after dying or overrunning")


@ray.remote(num_cpus=0)
class SandboxWorker:
    def __init__(self, backend: str = "auto", limits: dict | None = None, allow_unsafe: bool = False):
        self.executor = open_executor(backend, limits, allow_unsafe=allow_unsafe)
        self.cold_start_s = self.executor.warm_up()

    def run(self, code: str, entry: str, tests: list, limits: dict | None = None) -> dict:
        return self.executor.run(code, entry, tests, limits).to_dict()

    def info(self) -> dict:
        return {"backend": self.executor.name, "pid": os.getpid(), "cold_start_s": self.cold_start_s,
                "sandbox_alive": self.executor.alive}


@ray.remote(num_cpus=0, max_concurrency=1000)
class SandboxPool:
    def __init__(self, size: int = 2, backend: str = "auto", limits: dict | None = None, max_queue: int = 64,
                 call_timeout_s: float = 120.0, resource: str | None = None, allow_unsafe: bool = False):
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"size: need at least one worker, got {size!r}")
        if max_queue < 0 or call_timeout_s <= 0:
            raise ValueError("max_queue must be >= 0 and call_timeout_s > 0")
        self.size, self.max_queue, self.call_timeout_s = size, max_queue, call_timeout_s
        self.limits = Limits.from_dict(limits).to_dict()
        self._worker_opts = {"resources": {resource: 1}} if resource else {}
        self._worker_args = (backend, self.limits, allow_unsafe)
        self._idle: asyncio.Queue | None = None
        self._waiting = 0  # calls waiting for a free worker
        self._admitted = 0  # calls running or waiting
        self._stats = {"calls": 0, "completed": 0, "rejected_busy": 0, "timeouts": 0, "workers_replaced": 0,
                       "batch_jobs": 0}
        self._workers: set = set()
        self._metrics = _Metrics()

    async def _ensure_started(self) -> None:
        if self._idle is None:
            self._idle = asyncio.Queue()
            await asyncio.gather(*(self._add_worker() for _ in range(self.size)))

    async def _add_worker(self) -> None:
        w = SandboxWorker.options(**self._worker_opts).remote(*self._worker_args)
        await w.info.remote()  # surfaces a backend that can't start here, with its message
        self._workers.add(w)
        self._idle.put_nowait(w)

    async def _replace(self, worker) -> None:
        self._workers.discard(worker)
        ray.kill(worker, no_restart=True)
        self._stats["workers_replaced"] += 1
        self._metrics.replaced.inc()
        await self._add_worker()

    async def run(self, code: str, entry: str, tests: list, limits: dict | None = None,
                  timeout_s: float | None = None) -> dict:
        """Run `code`'s `entry` on `tests` in some worker's sandbox; returns RunResult.to_dict().
        Raises ValueError for bad input, PoolBusy when the queue is full, TimeoutError past
        `timeout_s` (default: the pool's call_timeout_s)."""
        check_source(code, entry)
        parse_tests(tests)
        lim = Limits.from_dict({**self.limits, **(limits or {})}).to_dict()
        await self._ensure_started()
        self._stats["calls"] += 1
        t0 = time.monotonic()
        budget = timeout_s or self.call_timeout_s
        try:
            result = await self._run(code, entry, tests, lim, t0 + budget, budget)
        except PoolBusy:
            self._metrics.runs.inc(tags={"status": "busy"})
            raise
        except TimeoutError:
            self._metrics.runs.inc(tags={"status": "pool_timeout"})
            raise
        self._metrics.runs.inc(tags={"status": result["status"]})
        self._metrics.seconds.observe(time.monotonic() - t0)
        return result

    async def run_batch(self, jobs: list, timeout_s: float | None = None) -> list:
        """Run many programs at once (a PPO batch, say): `jobs` is a list of {"code", "entry",
        "tests", "limits"?}; returns one RunResult dict per job, in order. The batch is admitted as
        one call (so a batch larger than the queue is not refused); its jobs share the workers.
        A job that can't be judged never fails the batch: bad input comes back with status
        "invalid", a pool timeout or a worker lost with "sandbox_error", each with its error."""
        if not isinstance(jobs, list):
            raise ValueError(f"jobs: need a list of {{'code', 'entry', 'tests'}}, got {type(jobs).__name__}")
        await self._ensure_started()
        self._stats["calls"] += 1
        self._stats["batch_jobs"] += len(jobs)
        try:
            self._admit()
        except PoolBusy:
            self._metrics.runs.inc(tags={"status": "busy"})
            raise
        t0 = time.monotonic()
        # each job waits its turn for a worker: the batch's time is a call's budget per round of workers
        budget = timeout_s or self.call_timeout_s * max(1, -(-len(jobs) // self.size))
        try:
            results = await asyncio.gather(*(self._batch_job(job, t0 + budget, budget) for job in jobs))
        finally:
            self._admitted -= 1
        self._metrics.seconds.observe(time.monotonic() - t0)
        return list(results)

    async def _batch_job(self, job, deadline, budget) -> dict:
        try:
            if not isinstance(job, dict):
                raise ValueError(f"a job must be an object with code, entry and tests, got {type(job).__name__}")
            code, entry, tests = job.get("code"), job.get("entry"), job.get("tests")
            check_source(code, entry)
            parse_tests(tests)
            lim = Limits.from_dict({**self.limits, **(job.get("limits") or {})}).to_dict()
        except (ValueError, TypeError) as exc:
            self._metrics.runs.inc(tags={"status": "invalid"})
            return {"status": "invalid", "error": str(exc), "tests": [], "passed": 0, "total": 0}
        try:
            result = await self._dispatch(code, entry, tests, lim, deadline, budget)
        except Exception as exc:  # noqa: BLE001 -- a marked result: the caller counts it and goes on
            self._metrics.runs.inc(tags={"status": "sandbox_error"})
            return {"status": "sandbox_error", "error": f"{type(exc).__name__}: {exc}", "tests": [], "passed": 0,
                    "total": 0}
        self._metrics.runs.inc(tags={"status": result["status"]})
        return result

    def _admit(self) -> None:
        """Count one call (or batch) in, or refuse it with PoolBusy when every worker is busy and the
        queue is full. Synchronous (no await in between), so a burst of calls arriving together
        can't all pass the check before any of them has taken a worker."""
        if self._admitted >= self.size + self.max_queue:
            self._stats["rejected_busy"] += 1
            raise PoolBusy(f"sandbox pool: {self.size} workers busy and {self._admitted - self.size} calls queued "
                           f"(max_queue={self.max_queue}); retry later")
        self._admitted += 1

    async def _run(self, code, entry, tests, lim, deadline, budget) -> dict:
        self._admit()
        try:
            return await self._dispatch(code, entry, tests, lim, deadline, budget)
        finally:
            self._admitted -= 1

    async def _dispatch(self, code, entry, tests, lim, deadline, budget) -> dict:
        attempts = self.size + 1  # retry only when a worker died under us; each dead one is replaced
        for attempt in range(attempts):
            self._waiting += 1
            self._metrics.queued.set(self._waiting)
            try:
                worker = await asyncio.wait_for(self._idle.get(), max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                self._stats["timeouts"] += 1
                raise TimeoutError(f"sandbox pool: no worker became free within {budget} s") from None
            finally:
                self._waiting -= 1
                self._metrics.queued.set(self._waiting)
            try:
                result = await asyncio.wait_for(worker.run.remote(code, entry, tests, lim),
                                                max(deadline - time.monotonic(), 0.001))
            except asyncio.TimeoutError:
                self._stats["timeouts"] += 1
                await self._replace(worker)
                raise TimeoutError(f"sandbox pool: the call exceeded {budget} s; "
                                   "its worker was replaced") from None
            except RayActorError:
                await self._replace(worker)
                if attempt < attempts - 1:
                    continue
                raise
            except BaseException:  # e.g. the sandbox could not start: the worker itself is fine
                self._idle.put_nowait(worker)
                raise
            self._idle.put_nowait(worker)
            self._stats["completed"] += 1
            return result
        raise AssertionError("unreachable")

    async def stats(self) -> dict:
        await self._ensure_started()
        return {**self._stats, "size": self.size, "idle": self._idle.qsize(), "queued": self._waiting,
                "max_queue": self.max_queue, "limits": self.limits}

    async def workers(self) -> list:
        await self._ensure_started()
        return list(self._workers)


def get_or_create_pool(name: str = POOL_NAME, namespace: str = NAMESPACE, detached: bool = False, **options):
    """The named pool, created with `options` (see SandboxPool) when it doesn't exist yet. Keep the
    handle: a non-detached named actor is collected once its creator drops every handle."""
    opts = {"name": name, "namespace": namespace, "get_if_exists": True}
    if detached:
        opts["lifetime"] = "detached"
    return SandboxPool.options(**opts).remote(**options)


def main(argv=None) -> int:
    """Run a file's function on test cases through the cluster's pool (created if absent):
    python -m actors.sandbox_worker --code PATH --entry NAME --tests PATH, or under ray job submit."""
    import argparse
    import json
    from pathlib import Path

    from cluster.ray_session import ensure_ray
    from emergence.sandbox.__main__ import load_tests

    ap = argparse.ArgumentParser(prog="python -m actors.sandbox_worker", description=main.__doc__.split(":")[0])
    ap.add_argument("--code", type=Path, required=True)
    ap.add_argument("--entry", required=True)
    ap.add_argument("--tests", type=Path, required=True)
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds for the whole call")
    args = ap.parse_args(argv)
    try:
        code, tests = args.code.read_text(), load_tests(args.tests)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: {exc}")
    ensure_ray(log_to_driver=False)
    pool = get_or_create_pool()
    result = ray.get(pool.run.remote(code, args.entry, tests, timeout_s=args.timeout), timeout=args.timeout + 30)
    print(json.dumps(result, allow_nan=True, default=repr))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
