"""The memory benchmark's scale run: N synthetic 128-d vectors into a 2-shard collection.

For each index kind: acknowledged add throughput (a write counts once the router returns, i.e.
it is in every owning shard's fsynced log), bytes per vector (in memory, snapshot, whole
directory), recall@10 against an exact in-process search, restart-to-serving (SIGKILL every
shard process, time until a search through the router answers) at N and half-way through the
ingest (what a shard recovers from differs: the last snapshot may be far back, or not exist), and lost writes: after shards
are SIGKILLed twice in the middle of a further ingest and once more after it, every acknowledged
id must still be stored.

Recall here is a side figure: in a Gaussian mixture a point's neighbours inside its cluster are
nearly equidistant (high-dimensional noise), the hard case for PQ; Fashion-MNIST is the quality test.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import numpy as np

from benchmarks.common import target
from benchmarks.memory_data import mixture_batch, mixture_centers

DIM = 128
SHARDS = 2
BATCH = 10_000  # rows per acknowledged add during the throughput run
KILL_BATCH = 2_000  # smaller adds while shards are being killed, so kills land mid-stream
K = 10


def scale_spec(kind: str, name: str, n: int) -> dict:
    cores = os.cpu_count() or 2
    spec = {"name": name, "dim": DIM, "metric": "l2", "index": kind, "shards": SHARDS,
            "threads": max(1, cores // SHARDS), "max_batch": BATCH}
    if kind in ("ivf", "ivfpq"):
        nlist = 1024 if n >= 500_000 else 256  # ~sqrt(n); k-means on 39 points per list stays quick
        spec.update(nlist=nlist, nprobe=16, train_size=39 * nlist)
    if kind == "ivfpq":
        spec.update(pq_m=32, pq_bits=8)  # 32-byte codes: 4 dims per sub-quantizer
    return spec


def dir_bytes(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def kill_shards(router, name: str) -> list[int]:
    import ray

    pids = ray.get(router.shard_pids.remote(name))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    return pids


def restart_to_serving(router, name: str, probe: np.ndarray) -> dict:
    """SIGKILL every shard, then one search through the router: it waits out Ray's restart and
    the shards' recovery from disk. `shards_recovered_s`: until the last shard's constructor
    finished (the rest of serving_s is the router's retry back-off and the search itself)."""
    import ray

    t_kill, t0 = time.time(), time.perf_counter()
    old = kill_shards(router, name)
    out = ray.get(router.search.remote(name, probe, K), timeout=600)
    serving_s = time.perf_counter() - t0
    st = ray.get(router.stats.remote(name))
    new = [s["pid"] for s in st["per_shard"]]
    if set(new) & set(old):
        raise RuntimeError(f"{name}: shard pids {new} after killing {old}: a shard was not restarted")
    return {"serving_s": serving_s, "shards_recovered_s": max(s["started"] for s in st["per_shard"]) - t_kill,
            "recovery": [{k: s["recovery"][k] for k in ("snapshot_lsn", "replayed", "seconds", "torn_tail")}
                         for s in st["per_shard"]], "ids": out["ids"]}


def stored(router, name: str, ids: np.ndarray, chunk: int = 100_000) -> int:
    """How many of `ids` the collection holds (router.get returns the stored ones)."""
    import ray

    return sum(len(ray.get(router.get.remote(name, ids[s:s + chunk]))) for s in range(0, len(ids), chunk))


def ingest_while_killing(router, name: str, centers: np.ndarray, start: int, m: int) -> dict:
    """Add m more vectors in small batches from a thread; SIGKILL every shard at ~25% and ~60%.
    Only adds that returned count as acknowledged."""
    import ray

    acked, failed, done = [], [], [0]

    def ingest():
        for s in range(start, start + m, KILL_BATCH):
            ids = np.arange(s, min(s + KILL_BATCH, start + m))
            try:
                r = ray.get(router.add.remote(name, mixture_batch(centers, s, len(ids)), ids), timeout=600)
                acked.append(np.asarray(r["ids"], np.int64))
            except Exception as exc:  # not acknowledged: may or may not be stored, never counted
                failed.append(repr(exc)[:200])
            done[0] = s + len(ids) - start

    th = threading.Thread(target=ingest)
    th.start()
    kills = 0
    for frac in (0.25, 0.6):
        while th.is_alive() and done[0] < frac * m:
            time.sleep(0.01)
        if th.is_alive():
            kill_shards(router, name)
            kills += 1
    th.join()
    return {"ids": np.concatenate(acked) if acked else np.empty(0, np.int64), "kills": kills, "failed_adds": failed}


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    import faiss

    index = faiss.IndexFlatL2(x.shape[1])
    index.add(x)
    return index.search(q, k)[1]


def run_one(router, kind: str, x: np.ndarray, centers: np.ndarray, queries: np.ndarray, gt: np.ndarray, quick: bool) -> dict:
    import ray

    n = len(x)
    name = f"scale-{kind}-{uuid.uuid4().hex[:6]}"
    spec = scale_spec(kind, name, n)
    ray.get(router.create_collection.remote(spec))
    root = ray.get(router.root_dir.remote())
    try:
        acked, ingest_s, half = 0, 0.0, (n // 2) // BATCH * BATCH
        probe = queries[:100]
        for lo, hi in ((0, half), (half, n)):
            if lo:  # half-way, outside the timed ingest: the restart a crash mid-ingest would see
                mid = restart_to_serving(router, name, probe)
            t0 = time.perf_counter()
            for s in range(lo, hi, BATCH):
                acked += ray.get(router.add.remote(name, x[s:min(s + BATCH, hi)], np.arange(s, min(s + BATCH, hi))))["added"]
            ingest_s += time.perf_counter() - t0
        st = ray.get(router.stats.remote(name))
        if spec["index"] in ("ivf", "ivfpq") and not all(s["trained"] for s in st["per_shard"]):
            raise RuntimeError(f"{name}: a shard never trained its index (it would answer exactly from its buffer)")
        out = {"spec": spec, "n": n, "acknowledged": acked, "ingest_s": ingest_s, "add_vectors_per_s": acked / ingest_s,
               "count": st["count"],
               "bytes_per_vector": {"index_memory": st["index_bytes"] / st["count"],
                                    "snapshot": st["snapshot_bytes"] / st["count"],
                                    "log": st["wal_bytes"] / st["count"],
                                    "directory": dir_bytes(os.path.join(root, name)) / st["count"],
                                    "raw_float32": 4 * DIM}}
        found = ray.get(router.search.remote(name, queries, K))["ids"]
        out["recall@10"] = float(np.mean([len(np.intersect1d(a, b)) for a, b in zip(found, gt)])) / K
        sample = np.random.default_rng(1).choice(n, 1000, replace=False)
        top1 = ray.get(router.search.remote(name, x[sample], 1))["ids"][:, 0]
        out["stored_vector_finds_itself"] = float((top1 == sample).mean())
        before = ray.get(router.search.remote(name, probe, K))["ids"]

        r = restart_to_serving(router, name, probe)
        out["restart_half_way"] = {"n": half, **{k: v for k, v in mid.items() if k != "ids"}}
        out["restart"] = {**{k: v for k, v in r.items() if k != "ids"},
                          "same_results_after_restart": float((r["ids"] == before).all(1).mean())}
        out["after_restart"] = {"count": ray.get(router.stats.remote(name))["count"],
                                "acknowledged_ids_stored": stored(router, name, np.arange(n))}
        print(f"  scale {kind}: {n} vectors, {out['add_vectors_per_s']:.0f} acknowledged adds/s, "
              f"{out['bytes_per_vector']['index_memory']:.1f} B/vector in memory, restart to serving "
              f"{r['serving_s']:.2f} s (shards recovered {r['shards_recovered_s']:.2f} s; half-way {mid['serving_s']:.2f} s)",
              flush=True)

        m = 20_000 if quick else 50_000
        k = ingest_while_killing(router, name, centers, n, m)
        r2 = restart_to_serving(router, name, probe)  # and once more after the ingest
        all_acked = np.concatenate([np.arange(n), k["ids"]])
        count = ray.get(router.stats.remote(name))["count"]
        held = stored(router, name, all_acked)
        out["kill_during_ingest"] = {"extra_adds": m, "kill_batch": KILL_BATCH, "kills_mid_ingest": k["kills"],
                                     "failed_adds": k["failed_adds"], "acknowledged_total": int(len(all_acked)),
                                     "count_after_restart": count, "acknowledged_ids_stored": held,
                                     "acknowledged_lost": int(len(all_acked) - held), "restart_serving_s": r2["serving_s"]}
        ray.get(router.snapshot.remote(name))
        r3 = restart_to_serving(router, name, probe)
        out["restart_after_snapshot"] = {k: v for k, v in r3.items() if k != "ids"}
        print(f"  scale {kind}: {k['kills']} kills mid-ingest, {len(all_acked)} acknowledged, {held} stored, "
              f"restart right after a snapshot {r3['serving_s']:.2f} s", flush=True)
        return out
    finally:
        ray.get(router.drop_collection.remote(name))


def run_scale(router, kinds: list[str], n: int, quick: bool) -> dict:
    centers = mixture_centers(DIM)
    x = np.concatenate([mixture_batch(centers, s, min(BATCH, n - s)) for s in range(0, n, BATCH)])
    queries = mixture_batch(centers, 0, 200 if quick else 1000, seed=1)
    gt = exact_topk(x, queries, K)
    return {kind: run_one(router, kind, x, centers, queries, gt, quick) for kind in kinds}


def label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def scale_targets(scale: dict) -> dict:
    t = {}
    for kind, s in scale.items():
        lost_first = s["acknowledged"] - s["after_restart"]["acknowledged_ids_stored"]
        t[f"acknowledged_writes_lost_{kind}"] = target(max(lost_first, s["kill_during_ingest"]["acknowledged_lost"]), 0, "<=")
        t[f"restart_to_serving_s_{label(s['n'])}_{kind}"] = target(s["restart"]["serving_s"], 5.0, "<=")
    return t
