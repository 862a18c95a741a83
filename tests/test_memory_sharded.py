"""Sharded memory on Ray: exact agreement with one index, atomic batches, and no acknowledged
write lost when a shard's process is SIGKILLed mid-ingest."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid

import faiss
import numpy as np
import pytest

from emergence.memory import CollectionNotFound, MemoryInputError

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def router(ray_session, tmp_path_factory):
    from actors.memory_shard import get_or_create_router

    return get_or_create_router(str(tmp_path_factory.mktemp("memory")), name=f"router-{uuid.uuid4().hex[:6]}",
                                call_timeout_s=60)


def create(router, ray, **spec):
    spec.setdefault("name", f"c{uuid.uuid4().hex[:8]}")
    return ray.get(router.create_collection.remote(spec))["name"]


def vecs(n, d=32, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_sharded_flat_returns_exactly_what_one_flat_returns(router, ray_session, metric):
    ray = ray_session
    name = create(router, ray, dim=32, metric=metric, shards=4)
    x, q = vecs(5000), vecs(300, seed=1)
    ids = np.arange(5000, dtype=np.int64) * 11 + 1
    for s in range(0, 5000, 1250):
        ray.get(router.add.remote(name, x[s:s + 1250], ids[s:s + 1250], [{"row": i} for i in range(s, s + 1250)]))
    one = faiss.IndexFlat(32, faiss.METRIC_L2 if metric == "l2" else faiss.METRIC_INNER_PRODUCT)
    one.add(x)
    D1, I1 = one.search(q, 10)
    out = ray.get(router.search.remote(name, q, 10, True))
    assert (out["ids"] == ids[I1]).all()
    np.testing.assert_allclose(out["distances"], D1, rtol=1e-4, atol=1e-4)
    assert out["metadata"][0][0] == {"row": int(I1[0, 0])}
    stats = ray.get(router.stats.remote(name))
    assert stats["count"] == 5000 and len(stats["per_shard"]) == 4
    assert min(s["count"] for s in stats["per_shard"]) > 1000  # hash partitioning spreads the ids


def test_bad_requests_are_refused_and_store_nothing(router, ray_session):
    ray = ray_session
    name = create(router, ray, dim=32, shards=3, max_batch=100)
    x = vecs(50)
    ray.get(router.add.remote(name, x[:10], np.arange(10)))
    bad = [
        (lambda: router.add.remote(name, vecs(5, d=31), np.arange(100, 105)), "wrong dimension"),
        (lambda: router.add.remote(name, np.vstack([x[:2], [[np.nan] * 32]]), [100, 101, 102]), "vectors[2]"),
        # ids 20..29 are new and land on every shard; id 3 exists: the whole batch is refused
        (lambda: router.add.remote(name, x[10:21], [*range(20, 30), 3]), "already stored"),
        (lambda: router.add.remote(name, vecs(101), np.arange(200, 301)), "max_batch"),
        (lambda: router.search.remote(name, x[:1], 0), "k: "),
        (lambda: router.search.remote(name, x[:1], 100_001), "k: "),
        (lambda: router.add.remote(name, x[:1], [1], [{"a": 1}], "upsert"), "if_exists"),
    ]
    for call, msg in bad:
        with pytest.raises(MemoryInputError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            ray.get(call())
    assert ray.get(router.stats.remote(name))["count"] == 10
    with pytest.raises(CollectionNotFound, match="unknown collection 'nope'"):
        ray.get(router.search.remote("nope", x[:1], 1))
    with pytest.raises(MemoryInputError, match="different setting"):
        ray.get(router.create_collection.remote({"name": name, "dim": 32, "shards": 2, "max_batch": 100}))
    # the same spec again is fine
    assert ray.get(router.create_collection.remote({"name": name, "dim": 32, "shards": 3, "max_batch": 100}))["shards"] == 3


def test_delete_and_if_exists_through_the_router(router, ray_session):
    ray = ray_session
    name = create(router, ray, dim=32, shards=2)
    x = vecs(20)
    ray.get(router.add.remote(name, x[:10], np.arange(10), [{"v": i} for i in range(10)]))
    out = ray.get(router.add.remote(name, x[5:15], np.arange(5, 15), None, "skip"))
    assert (out["added"], out["skipped"]) == (5, 5)
    assert ray.get(router.delete.remote(name, [1, 2, 999])) == {"deleted": 2, "missing": [999]}
    got = ray.get(router.get.remote(name, [0, 1, 12]))
    assert got == {0: {"v": 0}, 12: None}
    auto = ray.get(router.add.remote(name, x[15:17]))  # ids assigned by the router
    assert len(set(auto["ids"])) == 2 and all(0 <= i < 2**63 - 1 for i in auto["ids"])
    assert ray.get(router.stats.remote(name))["count"] == 15


def test_sigkill_mid_ingest_loses_no_acknowledged_write(router, ray_session):
    ray = ray_session
    name = create(router, ray, dim=32, shards=2)
    x = vecs(12_000, seed=3)
    acked: list[np.ndarray] = []
    errors: list[BaseException] = []

    def ingest():
        try:
            for s in range(0, len(x), 200):
                ids = np.arange(s, s + 200)
                out = ray.get(router.add.remote(name, x[s:s + 200], ids), timeout=120)
                assert out["added"] == 200
                acked.append(ids)
        except BaseException as exc:  # surfaced in the main thread
            errors.append(exc)

    pids = ray.get(router.shard_pids.remote(name))
    t = threading.Thread(target=ingest)
    t.start()
    while len(acked) < 10 and t.is_alive():
        time.sleep(0.01)
    os.kill(pids[0], signal.SIGKILL)
    killed_at = len(acked)
    t.join(300)
    assert not t.is_alive() and not errors, errors
    assert killed_at < len(x) // 200, "the kill landed after the ingest had finished"
    new_pids = ray.get(router.shard_pids.remote(name))
    assert new_pids[0] != pids[0] and new_pids[1] == pids[1]  # restarted by Ray, recovered from disk
    stats = ray.get(router.stats.remote(name))
    expected = np.concatenate(acked)
    assert stats["count"] == len(expected) == len(x)  # none lost, none duplicated
    assert stats["per_shard"][0]["recovery"]["last_lsn"] > 0
    out = ray.get(router.search.remote(name, x, 1))
    assert (out["ids"][:, 0] == expected).all()  # every acknowledged id is searchable, as itself


def test_replica_serves_while_its_primary_restarts(router, ray_session):
    ray = ray_session
    name = create(router, ray, dim=32, shards=2, replicas=1)
    x = vecs(1000, seed=4)
    ray.get(router.add.remote(name, x, np.arange(1000)))
    stats = ray.get(router.stats.remote(name))
    assert [s["count"] for s in stats["per_shard"] if s["replica"]] == [s["count"] for s in stats["per_shard"] if not s["replica"]]
    for pid in ray.get(router.shard_pids.remote(name)):
        os.kill(pid, signal.SIGKILL)
    out = ray.get(router.search.remote(name, x[:100], 1))
    assert (out["ids"][:, 0] == np.arange(100)).all()
    ray.get(router.add.remote(name, vecs(10, seed=5), np.arange(1000, 1010)))
    stats = ray.get(router.stats.remote(name))
    assert all(s["count"] > 0 for s in stats["per_shard"]) and stats["count"] == 1010


def test_router_restart_finds_its_collections(ray_session, tmp_path):
    from actors.memory_shard import get_or_create_router

    ray = ray_session
    name = f"r-{uuid.uuid4().hex[:6]}"
    r = get_or_create_router(str(tmp_path), name=name)
    ray.get(r.create_collection.remote({"name": "kept", "dim": 8, "index": "hnsw", "shards": 2}))
    ray.get(r.add.remote("kept", vecs(100, d=8), np.arange(100)))
    ray.kill(r, no_restart=True)
    time.sleep(1.0)  # its shards go with it (they are its children)
    r = get_or_create_router(str(tmp_path), name=name)
    assert ray.get(r.stats.remote("kept"))["count"] == 100
    ray.get(r.drop_collection.remote("kept"))
    assert ray.get(r.list_collections.remote()) == []
    assert not os.path.exists(tmp_path / "kept")


def test_restarted_shard_falls_back_from_a_corrupt_snapshot(router, ray_session, tmp_path):
    from emergence.memory.snapshot import snapshot_dirs

    ray = ray_session
    name = create(router, ray, dim=32, shards=2)
    x = vecs(900, seed=6)
    for s in range(0, 900, 300):
        ray.get(router.add.remote(name, x[s:s + 300], np.arange(s, s + 300)))
        if s < 600:
            ray.get(router.snapshot.remote(name))
    shard0 = ray.get(router.stats.remote(name))["per_shard"][0]
    snap_root = os.path.join(ray.get(router.root_dir.remote()), name, "shard-0", "snapshots")
    (_, newest), (older, _) = snapshot_dirs(snap_root)[:2]
    with open(os.path.join(newest, "ids.bin"), "r+b") as f:
        f.write(b"\x01\x02\x03\x04")
    os.kill(shard0["pid"], signal.SIGKILL)
    stats = ray.get(router.stats.remote(name))
    rec = stats["per_shard"][0]["recovery"]
    assert stats["count"] == 900
    assert rec["snapshot_lsn"] == older and rec["rejected_snapshots"][0]["reason"] == "ids.bin: checksum mismatch"
    out = ray.get(router.search.remote(name, x, 1))
    assert (out["ids"][:, 0] == np.arange(900)).all()


def test_hierarchical_memory_on_the_router(router, ray_session):
    from actors.memory_shard import RouterBackend
    from emergence.memory import HierarchicalMemory, ToolRecord

    mem = HierarchicalMemory(RouterBackend(router), dim=8, prefix=f"h{uuid.uuid4().hex[:4]}-", shards=2)
    e = np.arange(8, dtype=np.float32) + 1
    assert mem.find_tools(e, k=3) == []  # an empty memory answers, it does not raise
    tid = mem.store_tool(e, ToolRecord(intent="x", code="def f(a):\n    return a\n", function_name="f"))
    (m,) = mem.find_tools(e, k=3)
    assert m.tool_id == tid and abs(m.similarity - 1) < 1e-5 and m.function_name == "f"
