"""Sharded vector memory on Ray: `MemoryShard` actors behind one `MemoryRouter`.

    router = get_or_create_router()                          # "memory-router" in namespace "emergence"
    ray.get(router.create_collection.remote({"name": "docs", "dim": 384, "index": "hnsw", "shards": 2}))
    ray.get(router.add.remote("docs", vectors, ids, [{"title": "..."}, ...]))
    ray.get(router.search.remote("docs", queries, k=10, with_metadata=True))

Each shard owns one directory (`<root>/<collection>/shard-<i>[-replica]`) holding a
`DurableCollection`: a write is acknowledged only once it is in the shard's fsynced log. Shards
are restarted by Ray (`max_restarts=-1`) and recover from their directory in the constructor.
The router hash-partitions ids across shards, fans searches out to every shard and merges the
top-k, and keeps the list of collections in `<root>/collections.json` so a restarted router
finds them again. Writes to one collection go through the router one at a time: it checks a
whole batch on every shard before any shard stores a row, so a refused batch stores nothing.

With `replicas=1` every shard has a second copy in its own directory: writes go to both,
searches alternate and fail over to whichever answers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import sys
import time

import numpy as np
import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from emergence.memory import CollectionNotFound, CollectionSpec, DurableCollection, MemoryInputError
from emergence.memory.sharding import merge_topk, shard_of
from emergence.memory.validate import as_ids, as_if_exists, as_k, as_metadata, as_search_params, as_vectors
from emergence.paths import runs_path

ROUTER_NAME = "memory-router"
NAMESPACE = "emergence"
# Settings of a collection that are about placement, not about the index.
PLACEMENT = {"shards": 1, "replicas": 0, "threads": 1}
MAX_SHARDS = 64
SHARD_DOWN = (RayActorError, ActorUnavailableError)


def default_root() -> str:
    return os.path.abspath(os.environ.get("EMERGENCE_MEMORY_ROOT") or runs_path("memory"))


@ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=0)
class MemoryShard:
    """One shard (or replica) of one collection, recovered from its directory on every start."""

    def __init__(self, directory: str, spec: dict, threads: int = 1, snapshot_every_bytes: int = 128 << 20):
        import faiss

        faiss.omp_set_num_threads(threads)
        self.coll = DurableCollection.open(directory, spec, snapshot_every_bytes=snapshot_every_bytes)
        self.started = time.time()

    def existing(self, ids: np.ndarray) -> list[int]:
        stored = self.coll.index.meta
        return [i for i in ids.tolist() if i in stored]

    def add(self, ids, vectors, metadata, if_exists: str) -> dict:
        return self.coll.add(ids, vectors, metadata, if_exists)

    def delete(self, ids) -> dict:
        return self.coll.delete(ids)

    def search(self, queries, k: int, with_metadata: bool = False, params: dict | None = None):
        D, I = self.coll.search(queries, k, params)
        if not with_metadata:
            return D, I, None
        texts = self.coll.get(I[I >= 0])
        return D, I, [[texts.get(i) for i in row if i >= 0] + [None] * int((row < 0).sum()) for row in I]

    def get(self, ids) -> dict:
        return self.coll.get(ids)

    def snapshot(self) -> dict:
        return self.coll.snapshot()

    def stats(self) -> dict:
        return {**self.coll.stats(), "pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                "started": self.started,
                "index_bytes": self.coll.index.memory_bytes()}


def _decode(texts: list) -> list:
    return [json.loads(t) if t is not None else None for t in texts]


class _Metrics:
    """On Ray's metrics port (created inside the router's process)."""

    def __init__(self):
        from ray.util.metrics import Counter, Histogram

        self.calls = Counter("emergence_memory_requests", "Router calls by operation and outcome", tag_keys=("op", "status"))
        self.seconds = Histogram("emergence_memory_request_seconds", "Router call latency", tag_keys=("op",),
                                 boundaries=[0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1, 3, 10, 60])
        self.rows = Counter("emergence_memory_rows", "Vectors added, deleted or searched", tag_keys=("op",))

    def record(self, op: str, status: str, seconds: float, rows: int = 0) -> None:
        try:
            self.calls.inc(tags={"op": op, "status": status})
            self.seconds.observe(seconds, tags={"op": op})
            if rows:
                self.rows.inc(rows, tags={"op": op})
        except Exception:  # metrics never fail a call
            pass


def _timed(op: str):
    """Count and time a router method by outcome (ok, invalid, not_found, error)."""
    import functools

    def wrap(fn):
        @functools.wraps(fn)
        async def inner(self, *args, **kwargs):
            t0 = time.perf_counter()
            status = "error"
            try:
                out = await fn(self, *args, **kwargs)
                status = "ok"
                return out
            except MemoryInputError:
                status = "invalid"
                raise
            except CollectionNotFound:
                status = "not_found"
                raise
            finally:
                rows = len(args[1]) if len(args) > 1 and hasattr(args[1], "__len__") else 0
                self.metrics.record(op, status, time.perf_counter() - t0, rows if status == "ok" else 0)
        return inner
    return wrap


class _Collection:
    """The router's view of one collection: its spec, placement and shard handles."""

    def __init__(self, spec: CollectionSpec, placement: dict):
        self.spec = spec
        self.placement = placement
        self.shards: list[list] = []  # shards[i] = [primary, replica?]
        self.write_lock = asyncio.Lock()
        self.turn = 0

    def describe(self) -> dict:
        return {**self.spec.to_dict(), **self.placement}


@ray.remote(num_cpus=0, max_concurrency=1000, max_restarts=-1)
class MemoryRouter:
    def __init__(self, root: str | None = None, call_timeout_s: float = 120.0):
        self.root = os.path.abspath(root or default_root())
        os.makedirs(self.root, exist_ok=True)
        self.registry_path = os.path.join(self.root, "collections.json")
        self.call_timeout_s = call_timeout_s
        self.collections: dict[str, _Collection] = {}
        self.metrics = _Metrics()
        for d in self._read_registry():
            spec = CollectionSpec.from_dict({k: v for k, v in d.items() if k not in PLACEMENT})
            self._open(spec, {k: d.get(k, v) for k, v in PLACEMENT.items()})

    # -- registry --------------------------------------------------------------------------

    def _read_registry(self) -> list[dict]:
        if not os.path.exists(self.registry_path):
            return []
        with open(self.registry_path) as f:
            return json.load(f)

    def _write_registry(self) -> None:
        tmp = f"{self.registry_path}.tmp"
        with open(tmp, "w") as f:
            json.dump([c.describe() for c in self.collections.values()], f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.registry_path)

    def _open(self, spec: CollectionSpec, placement: dict) -> _Collection:
        coll = _Collection(spec, placement)
        for i in range(placement["shards"]):
            copies = []
            for r in range(1 + placement["replicas"]):
                directory = os.path.join(self.root, spec.name, f"shard-{i}" + ("-replica" if r else ""))
                copies.append(MemoryShard.options(max_concurrency=1).remote(
                    directory, spec.to_dict(), placement["threads"]))
            coll.shards.append(copies)
        self.collections[spec.name] = coll
        return coll

    def _get(self, name) -> _Collection:
        if name not in self.collections:
            raise CollectionNotFound(str(name), list(self.collections))
        return self.collections[name]

    # -- collections -----------------------------------------------------------------------

    async def create_collection(self, spec: dict) -> dict:
        """Create a collection (spec: CollectionSpec fields + shards, replicas, threads);
        the same spec again is a no-op, a different one is refused."""
        if not isinstance(spec, dict):
            raise MemoryInputError("spec", f"must be an object, got {type(spec).__name__}")
        placement = {k: spec.get(k, v) for k, v in PLACEMENT.items()}
        for k, v in placement.items():
            if isinstance(v, bool) or not isinstance(v, int):
                raise MemoryInputError(k, f"must be an integer, got {v!r}")
        if not 1 <= placement["shards"] <= MAX_SHARDS:
            raise MemoryInputError("shards", f"must be between 1 and {MAX_SHARDS}, got {placement['shards']}")
        if placement["replicas"] not in (0, 1):
            raise MemoryInputError("replicas", f"must be 0 or 1, got {placement['replicas']}")
        if not 1 <= placement["threads"] <= 256:
            raise MemoryInputError("threads", f"must be between 1 and 256, got {placement['threads']}")
        cspec = CollectionSpec.from_dict({k: v for k, v in spec.items() if k not in PLACEMENT})
        if cspec.name in self.collections:
            have = self.collections[cspec.name].describe()
            want = {**cspec.to_dict(), **placement}
            if have != want:
                diff = sorted(k for k in want if have.get(k) != want[k])
                raise MemoryInputError(diff[0], f"collection {cspec.name!r} exists with a different setting "
                                                f"({', '.join(f'{k}={have.get(k)!r}' for k in diff)})")
            return have
        coll = self._open(cspec, placement)
        try:
            await self._wait_ready(coll)
        except Exception:
            self._kill(coll)
            del self.collections[cspec.name]
            raise
        self._write_registry()
        return coll.describe()

    async def _wait_ready(self, coll: _Collection) -> None:
        await asyncio.gather(*(s.stats.remote() for copies in coll.shards for s in copies))

    def _kill(self, coll: _Collection) -> None:
        for copies in coll.shards:
            for s in copies:
                ray.kill(s, no_restart=True)

    async def drop_collection(self, name: str) -> None:
        coll = self._get(name)
        async with coll.write_lock:
            self._kill(coll)
            del self.collections[name]
            self._write_registry()
            shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    async def root_dir(self) -> str:
        return self.root

    async def list_collections(self) -> list[dict]:
        return [c.describe() for c in self.collections.values()]

    # -- calls that survive shard restarts -------------------------------------------------

    async def _call(self, shard, method: str, *args):
        """Call a shard method, waiting out a restart (Ray restarts the shard; its constructor
        recovers from disk). Only used for calls that are safe to repeat."""
        deadline = time.monotonic() + self.call_timeout_s
        delay = 0.05
        while True:
            try:
                return await getattr(shard, method).remote(*args)
            except SHARD_DOWN as exc:
                if getattr(exc, "actor_init_failed", False) or time.monotonic() > deadline:
                    raise  # recovery itself failed (e.g. CorruptStore): waiting won't help
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def _read(self, coll: _Collection, i: int, method: str, *args):
        """A read from shard i: the primary, or with a replica, alternate and fail over."""
        copies = coll.shards[i]
        if len(copies) == 1:
            return await self._call(copies[0], method, *args)
        coll.turn += 1
        first = coll.turn % 2
        try:
            return await getattr(copies[first], method).remote(*args)
        except SHARD_DOWN:
            return await self._call(copies[1 - first], method, *args)

    # -- writes ----------------------------------------------------------------------------

    @_timed("add")
    async def add(self, collection: str, vectors, ids=None, metadata=None, if_exists: str = "error") -> dict:
        """Store a batch; returns {"ids", "added", "skipped"} once every row is in its shard's
        fsynced log. All or nothing: a refused batch (MemoryInputError) stores no row.
        ids=None: random 63-bit ids are assigned."""
        coll = self._get(collection)
        vecs = as_vectors(vectors, coll.spec.dim, coll.spec.max_batch)
        if ids is None:
            ids = np.frombuffer(secrets.token_bytes(8 * len(vecs)), dtype=np.uint64) >> np.uint64(1)
            ids = np.minimum(ids, np.uint64(2**63 - 2)).astype(np.int64)
        ids = as_ids(ids, len(vecs))
        meta = as_metadata(metadata, len(vecs))  # checked here; shards check again
        mode = as_if_exists(if_exists)
        records = [json.loads(t) if t is not None else None for t in meta] if metadata is not None else None
        owner = shard_of(ids, len(coll.shards))
        parts = [np.flatnonzero(owner == i) for i in range(len(coll.shards))]
        async with coll.write_lock:
            if mode == "error":
                found = await asyncio.gather(*(self._read(coll, i, "existing", ids[p])
                                               for i, p in enumerate(parts) if len(p)))
                present = [x for f in found for x in f]
                if present:
                    raise MemoryInputError("ids", f"{len(present)} of these ids are already stored (first: {present[0]}); "
                                                  "pass if_exists='skip' or 'replace' to allow that")
            results = await asyncio.gather(*(
                self._write_part(coll, i, "add", ids[p], vecs[p], None if records is None else [records[j] for j in p.tolist()], mode)
                for i, p in enumerate(parts) if len(p)))
        return {"ids": ids.tolist(), "added": sum(r["added"] for r in results),
                "skipped": sum(r["skipped"] for r in results)}

    async def _write_part(self, coll: _Collection, i: int, method: str, *args) -> dict:
        """Write to every copy of shard i. A copy that dies mid-call is retried once it is back,
        as an idempotent write: the batch is one log record, so it either landed whole or not
        at all, and `skip` (for adds) takes it from there."""
        async def one(shard):
            try:
                return await getattr(shard, method).remote(*args)
            except SHARD_DOWN:
                retry = args if method != "add" else (*args[:-1], "skip" if args[-1] == "error" else args[-1])
                out = await self._call(shard, method, *retry)
                if method == "add" and args[-1] == "error":
                    out = {**out, "added": out["added"] + out["skipped"], "skipped": 0}  # the first attempt had landed
                return out

        outs = await asyncio.gather(*(one(s) for s in coll.shards[i]))
        return outs[0]

    @_timed("delete")
    async def delete(self, collection: str, ids) -> dict:
        coll = self._get(collection)
        ids = np.unique(as_ids(ids, unique=False))
        owner = shard_of(ids, len(coll.shards))
        async with coll.write_lock:
            results = await asyncio.gather(*(self._write_part(coll, i, "delete", ids[owner == i])
                                             for i in range(len(coll.shards)) if (owner == i).any()))
        # After a shard restart mid-delete, ids the first attempt had deleted come back as missing.
        return {"deleted": sum(r["deleted"] for r in results), "missing": sorted(x for r in results for x in r["missing"])}

    async def snapshot(self, collection: str) -> list[dict]:
        coll = self._get(collection)
        async with coll.write_lock:
            return await asyncio.gather(*(self._call(s, "snapshot") for copies in coll.shards for s in copies))

    # -- reads -----------------------------------------------------------------------------

    @_timed("search")
    async def search(self, collection: str, queries, k: int = 10, with_metadata: bool = False,
                     params: dict | None = None) -> dict:
        """Top-k of every query over all shards: {"ids" (q, k) int64 (-1: fewer than k stored),
        "distances" (q, k) float32, "metadata" per hit (with_metadata) or None}. `params`:
        {"nprobe": n, "ef_search": n} overrides the collection's for this search."""
        coll = self._get(collection)
        q = as_vectors(queries, coll.spec.dim, coll.spec.max_batch, field="queries")
        k = as_k(k)
        params = as_search_params(params) or None
        ref = ray.put(q) if len(coll.shards) > 1 else q
        parts = await asyncio.gather(*(self._read(coll, i, "search", ref, k, with_metadata, params)
                                       for i in range(len(coll.shards))))
        D, I, meta = merge_topk([p[0] for p in parts], [p[1] for p in parts], k, coll.spec.metric,
                                [p[2] for p in parts] if with_metadata else None)
        if meta is not None:
            meta = [_decode(row) for row in meta]
        return {"ids": I, "distances": D, "metadata": meta}

    async def get(self, collection: str, ids) -> dict:
        """{id: metadata} for the ids that are stored (None: stored without metadata)."""
        coll = self._get(collection)
        ids = as_ids(ids, unique=False)
        owner = shard_of(ids, len(coll.shards))
        found = await asyncio.gather(*(self._read(coll, i, "get", ids[owner == i])
                                       for i in range(len(coll.shards)) if (owner == i).any()))
        return {i: (json.loads(t) if t is not None else None) for f in found for i, t in f.items()}

    async def stats(self, collection: str) -> dict:
        coll = self._get(collection)
        per = await asyncio.gather(*(self._call(s, "stats") for copies in coll.shards for s in copies))
        shards = []
        for n, s in enumerate(per):
            i, r = divmod(n, 1 + coll.placement["replicas"])
            shards.append({"shard": i, "replica": bool(r), **s})
        primaries = [s for s in shards if not s["replica"]]
        return {**coll.describe(), "count": sum(s["count"] for s in primaries),
                "index_bytes": sum(s["index_bytes"] for s in primaries),
                "snapshot_bytes": sum(s["snapshot_bytes"] for s in primaries),
                "wal_bytes": sum(s["wal_bytes"] for s in primaries), "per_shard": shards}

    async def shard_pids(self, collection: str) -> list[int]:
        """Process ids of the primaries (for fault-injection tests and benchmarks)."""
        coll = self._get(collection)
        per = await asyncio.gather(*(self._call(copies[0], "stats") for copies in coll.shards))
        return [s["pid"] for s in per]


class RouterBackend:
    """`emergence.memory.hierarchical.MemoryBackend` over the router, for HierarchicalMemory on Ray."""

    def __init__(self, router, timeout_s: float = 120.0):
        self.router = router
        self.timeout_s = timeout_s

    def create(self, spec: dict) -> None:
        ray.get(self.router.create_collection.remote(spec), timeout=self.timeout_s)

    def add(self, name, vectors, ids, metadata, if_exists):
        return ray.get(self.router.add.remote(name, vectors, ids, metadata, if_exists), timeout=self.timeout_s)

    def search(self, name, queries, k):
        return ray.get(self.router.search.remote(name, queries, k, True), timeout=self.timeout_s)

    def get(self, name, ids):
        return ray.get(self.router.get.remote(name, ids), timeout=self.timeout_s)


def get_or_create_router(root: str | None = None, name: str = ROUTER_NAME, namespace: str = NAMESPACE,
                         detached: bool = False, call_timeout_s: float = 120.0):
    """The named router, created if missing. Keep the handle: a non-detached actor goes away
    with its last handle."""
    opts = {"name": name, "namespace": namespace, "get_if_exists": True}
    if detached:
        opts["lifetime"] = "detached"
    for attempt in range(10):
        router = MemoryRouter.options(**opts).remote(root, call_timeout_s)
        try:
            ray.get(router.list_collections.remote(), timeout=120)
            return router
        except RayActorError as exc:
            # The name can still point at a router whose last handle was just dropped (it is
            # going away); wait for the name to free up and create a new one.
            if getattr(exc, "actor_init_failed", False) or attempt == 9:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def main(argv: list[str] | None = None) -> int:
    """python -m actors.memory_shard create|add|search|stats ... (also under `ray job submit`)."""
    from cluster.ray_session import ensure_ray

    p = argparse.ArgumentParser(prog="python -m actors.memory_shard", description=main.__doc__)
    p.add_argument("--address", default=None)
    p.add_argument("--root", default=None, help="directory of the memory (default runs/memory or $EMERGENCE_MEMORY_ROOT)")
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("create", help="create a collection")
    c.add_argument("name")
    c.add_argument("--dim", type=int, required=True)
    c.add_argument("--metric", default="l2", choices=["l2", "ip"])
    c.add_argument("--index", default="flat", choices=["flat", "ivf", "hnsw", "ivfpq"])
    c.add_argument("--shards", type=int, default=1)
    c.add_argument("--replicas", type=int, default=0)
    a = sub.add_parser("add", help="add vectors from a .npy file (ids = row numbers + --id-offset)")
    a.add_argument("name")
    a.add_argument("npy")
    a.add_argument("--id-offset", type=int, default=0)
    a.add_argument("--batch", type=int, default=10_000)
    s = sub.add_parser("search", help="search with the rows of a .npy file")
    s.add_argument("name")
    s.add_argument("npy")
    s.add_argument("-k", type=int, default=10)
    st = sub.add_parser("stats", help="a collection's stats, or the list of collections")
    st.add_argument("name", nargs="?")
    args = p.parse_args(argv)
    ensure_ray(args.address)
    try:
        router = get_or_create_router(args.root)
        if args.cmd == "create":
            out = ray.get(router.create_collection.remote({"name": args.name, "dim": args.dim, "metric": args.metric,
                                                           "index": args.index, "shards": args.shards,
                                                           "replicas": args.replicas}))
        elif args.cmd == "add":
            x = np.load(args.npy)
            added = 0
            for start in range(0, len(x), args.batch):
                ids = np.arange(start, min(start + args.batch, len(x))) + args.id_offset
                added += ray.get(router.add.remote(args.name, x[start:start + args.batch], ids))["added"]
            out = {"added": added}
        elif args.cmd == "search":
            r = ray.get(router.search.remote(args.name, np.load(args.npy), args.k))
            out = {"ids": r["ids"].tolist(), "distances": r["distances"].tolist()}
        else:
            out = ray.get(router.stats.remote(args.name)) if args.name else ray.get(router.list_collections.remote())
    except (MemoryInputError, CollectionNotFound) as exc:
        print(f"error: {getattr(exc, 'cause', None) or exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=None if args.cmd == "search" else 1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
