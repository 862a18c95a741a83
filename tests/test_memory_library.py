"""The memory library without Ray: collections, input checks, the log, snapshots and recovery."""

from __future__ import annotations

import os
import shutil

import faiss
import numpy as np
import pytest

from emergence.memory import CollectionSpec, CorruptStore, DurableCollection, MemoryInputError, VectorIndex
from emergence.memory.sharding import merge_topk, shard_of
from emergence.memory.snapshot import snapshot_dirs

KINDS = ["flat", "ivf", "hnsw", "ivfpq"]


def data(n=2000, d=16, seed=0):
    return np.random.default_rng(seed).random((n, d), dtype=np.float32)


def spec(kind="flat", **kw):
    base = {"name": f"t-{kind}", "dim": 16, "index": kind}
    if kind in ("ivf", "ivfpq"):
        base.update(nlist=16, train_size=1000 if kind == "ivf" else 1024, pq_m=4)
    return CollectionSpec.from_dict({**base, **kw})


def add(index: VectorIndex, ids, vecs, meta=None, mode="error"):
    return index.apply(index.plan_add(ids, vecs, meta, mode))


# -- spec -----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad, field", [
    ({"dim": 0}, "dim"), ({"metric": "cosine"}, "metric"), ({"index": "lsh"}, "index"),
    ({"name": "../x"}, "name"), ({"nprobe": -1}, "nprobe"), ({"bogus": 1}, "bogus"),
    ({"index": "ivfpq", "pq_m": 5}, "pq_m"), ({"dim": True}, "dim"),
])
def test_spec_refuses_bad_settings_naming_the_field(bad, field):
    with pytest.raises(MemoryInputError) as e:
        CollectionSpec.from_dict({"name": "ok", "dim": 16, **bad})
    assert e.value.field == field


# -- one index ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_add_search_get_delete(kind):
    x = data()
    ids = np.arange(len(x)) * 1000 + 7  # sparse 64-bit ids
    idx = VectorIndex(spec(kind))
    assert add(idx, ids, x, [{"row": i} for i in range(len(x))]) == {"added": len(x), "skipped": 0}
    assert idx.trained and len(idx) == len(x)
    D, I = idx.search(x[:20], 5)
    assert I.shape == (20, 5) and D.dtype == np.float32
    hit = (I[:, 0] == ids[:20]).mean()
    assert hit >= (1.0 if kind == "flat" else 0.9)  # PQ / IVF are approximate
    assert idx.get([ids[3], 42]) == {int(ids[3]): '{"row":3}'}
    out = idx.apply(idx.plan_delete([ids[0], ids[1], 5]))
    assert out == {"deleted": 2, "missing": [5]}
    _, I = idx.search(x[:2], 5)
    assert not np.isin(I, ids[:2]).any()
    assert len(idx) == len(x) - 2


def test_ivf_buffers_until_trained_and_is_exact_meanwhile():
    idx = VectorIndex(spec("ivf"))
    x = data(1500)
    add(idx, np.arange(900), x[:900])
    assert not idx.trained
    flat = faiss.IndexFlatL2(16)
    flat.add(x[:900])
    D, I = idx.search(x[:50], 10)
    _, ref = flat.search(x[:50], 10)
    assert (I == ref).all()
    add(idx, np.arange(900, 1500), x[900:])
    assert idx.trained and len(idx) == 1500
    _, I = idx.search(x[:50], 1)
    assert (I[:, 0] == np.arange(50)).mean() >= 0.9


def test_if_exists_modes():
    idx = VectorIndex(spec())
    x = data(4)
    add(idx, [1, 2], x[:2], [{"v": 1}, {"v": 2}])
    with pytest.raises(MemoryInputError, match="already stored"):
        idx.plan_add([2, 3], x[2:4], [{"v": 3}, {"v": 4}])
    assert add(idx, [2, 3], x[2:4], [{"v": 3}, {"v": 4}], "skip") == {"added": 1, "skipped": 1}
    assert idx.get([2]) == {2: '{"v":2}'}
    assert add(idx, [2], x[3:4], [{"v": 9}], "replace") == {"added": 1, "skipped": 0}
    assert idx.get([2]) == {2: '{"v":9}'}
    _, I = idx.search(x[3:4], 3)
    assert sorted(I[0].tolist()) == [1, 2, 3] and len(idx) == 3


def test_hnsw_replace_and_compaction_keep_one_copy_per_id():
    idx = VectorIndex(spec("hnsw"))
    x = data(500)
    add(idx, np.arange(500), x)
    add(idx, np.arange(100), x[100:200], mode="replace")  # ids 0..99 now hold rows 100..199
    idx.apply(idx.plan_delete(np.arange(400, 500)))
    assert idx.dead == 200 and idx.needs_compaction()
    _, I = idx.search(x[100:110], 2)
    assert set(I[:, 0].tolist()) <= set(range(0, 10)) | set(range(100, 110))
    idx.compact()
    assert idx.dead == 0 and idx.index.ntotal == 400 == len(idx)
    D, I = idx.search(x[150:151], 2)
    assert D[0, 0] == 0 and I[0, 0] in (50, 150)
    assert len(set(idx.search(x[:400], 1)[1][:, 0].tolist()) - set(range(400))) == 0


@pytest.mark.parametrize("call, field", [
    (lambda i, x: i.plan_add([1], np.ones((1, 8), np.float32)), "vectors"),
    (lambda i, x: i.plan_add([1, 2], np.vstack([x[:1], np.full((1, 16), np.nan, np.float32)])), "vectors[1]"),
    (lambda i, x: i.plan_add([1], [[float("inf")] * 16]), "vectors[0]"),
    (lambda i, x: i.plan_add([1, 1], x[:2]), "ids"),
    (lambda i, x: i.plan_add([-5], x[:1]), "ids[0]"),
    (lambda i, x: i.plan_add([1], x[:2]), "ids"),
    (lambda i, x: i.plan_add([1.5], x[:1]), "ids[0]"),
    (lambda i, x: i.plan_add([1], x[:1], [{"a": float("nan")}]), "metadata[0]"),
    (lambda i, x: i.plan_add([1], x[:1], [{"a": object()}]), "metadata[0]"),
    (lambda i, x: i.plan_add([1], x[:1], [{}, {}]), "metadata"),
    (lambda i, x: i.plan_add([1], x[:1], if_exists="merge"), "if_exists"),
    (lambda i, x: i.plan_add([], np.empty((0, 16), np.float32)), "vectors"),
    (lambda i, x: i.plan_add([1], [["a"] * 16]), "vectors"),
    (lambda i, x: i.search(x[:1], 0), "k"),
    (lambda i, x: i.search(x[:1], 10**6), "k"),
    (lambda i, x: i.search(np.ones((1, 3)), 1), "queries"),
])
def test_bad_input_is_refused_with_the_field_named(call, field):
    idx = VectorIndex(spec(max_batch=10))
    x = data(20)
    with pytest.raises(MemoryInputError) as e:
        call(idx, x)
    assert e.value.field == field, str(e.value)
    assert len(idx) == 0


def test_oversize_batch_is_refused():
    idx = VectorIndex(spec(max_batch=10))
    with pytest.raises(MemoryInputError, match="max_batch"):
        idx.plan_add(np.arange(11), data(11))


def test_empty_collection_search_pads():
    D, I = VectorIndex(spec()).search(data(2), 3)
    assert (I == -1).all() and np.isinf(D).all()


# -- sharding pieces ------------------------------------------------------------------------


def test_shard_of_spreads_consecutive_ids():
    owner = shard_of(np.arange(40_000), 4)
    counts = np.bincount(owner, minlength=4)
    assert counts.min() > 9_000


@pytest.mark.parametrize("metric", ["l2", "ip"])
def test_sharded_flat_merge_equals_one_flat(metric):
    x, q = data(3000, seed=1), data(200, seed=2)
    ids = np.arange(3000) * 3
    whole = VectorIndex(spec(metric=metric))
    add(whole, ids, x)
    parts = [VectorIndex(spec(metric=metric)) for _ in range(4)]
    owner = shard_of(ids, 4)
    for i, p in enumerate(parts):
        add(p, ids[owner == i], x[owner == i])
    Dw, Iw = whole.search(q, 10)
    res = [p.search(q, 10) for p in parts]
    D, I, _ = merge_topk([r[0] for r in res], [r[1] for r in res], 10, metric)
    assert (I == Iw).all()
    np.testing.assert_allclose(D, Dw, rtol=1e-5)


def test_merge_puts_missing_results_last_and_carries_metadata():
    D = [np.array([[0.5, np.inf]], np.float32), np.array([[0.1, 0.7]], np.float32)]
    I = [np.array([[10, -1]]), np.array([[20, 30]])]
    meta = [[["a", None]], [["b", "c"]]]
    d, i, m = merge_topk(D, I, 3, "l2", meta)
    assert i.tolist() == [[20, 10, 30]] and m == [["b", "a", "c"]]


# -- durability -----------------------------------------------------------------------------


def open_coll(path, kind="flat", **kw):
    return DurableCollection.open(str(path), spec(kind), **kw)


@pytest.mark.parametrize("kind", KINDS)
def test_reopen_recovers_everything(tmp_path, kind):
    x = data(2500)
    c = open_coll(tmp_path, kind, snapshot_every_bytes=60_000)
    for s in range(0, 2500, 250):
        c.add(np.arange(s, s + 250), x[s:s + 250], [{"i": i} for i in range(s, s + 250)])
    c.delete([0, 1, 2])
    before = c.search(x[:30], 5)
    c.close()
    c = open_coll(tmp_path, kind)
    assert len(c) == 2497 and c.recovery.snapshot_lsn > 0 and c.recovery.replayed >= 1
    after = c.search(x[:30], 5)
    assert (after[1] == before[1]).all()
    assert c.get([5, 1]) == {5: '{"i":5}'}


def test_a_refused_batch_writes_nothing_to_the_log(tmp_path):
    c = open_coll(tmp_path)
    x = data(10)
    c.add([1], x[:1])
    lsn = c.wal.last_lsn
    size = c.wal.total_bytes()
    for bad in (lambda: c.add([2, 1], x[:2]), lambda: c.add([3], np.full((1, 16), np.nan))):
        with pytest.raises(MemoryInputError):
            bad()
    assert c.wal.last_lsn == lsn and c.wal.total_bytes() == size and len(c) == 1


def test_torn_tail_is_cut_and_reported(tmp_path):
    x = data(100)
    c = open_coll(tmp_path)
    c.add(np.arange(50), x[:50])
    c.add(np.arange(50, 100), x[50:])
    c.close()
    (_, seg), = c.wal.segments()
    size = os.path.getsize(seg)
    with open(seg, "r+b") as f:  # the second record loses its last 100 bytes, as in a crash mid-write
        f.truncate(size - 100)
    c = open_coll(tmp_path)
    torn = c.recovery.torn_tail
    assert torn and torn["reason"] == "incomplete record" and torn["bytes_cut"] > 0
    assert len(c) == 50 and c.wal.last_lsn == 1
    c.add([500], x[:1])  # the log goes on cleanly after the cut
    c.close()
    c = open_coll(tmp_path)
    assert c.recovery.torn_tail is None and len(c) == 51


def test_garbage_after_the_last_record_is_a_torn_tail(tmp_path):
    c = open_coll(tmp_path)
    c.add([1], data(1))
    c.close()
    (_, seg), = c.wal.segments()
    with open(seg, "ab") as f:
        f.write(b"EMW1\x00\x01")
    c = open_coll(tmp_path)
    assert c.recovery.torn_tail["reason"] == "incomplete header" and len(c) == 1


def test_damage_before_an_acknowledged_record_is_corruption(tmp_path):
    x = data(30)
    c = open_coll(tmp_path)
    for i in range(3):
        c.add(np.arange(i * 10, i * 10 + 10), x[i * 10:i * 10 + 10])
    c.close()
    (_, seg), = c.wal.segments()
    with open(seg, "r+b") as f:
        f.seek(100)  # inside the first record's vectors
        f.write(b"\xff\xff\xff\xff")
    with pytest.raises(CorruptStore, match="damaged at byte 0"):
        open_coll(tmp_path)


def test_corrupt_newest_snapshot_falls_back_to_previous_plus_log(tmp_path):
    x = data(1200)
    c = open_coll(tmp_path, "hnsw")
    for s in range(0, 400, 100):
        c.add(np.arange(s, s + 100), x[s:s + 100])
    c.snapshot()
    for s in range(400, 800, 100):
        c.add(np.arange(s, s + 100), x[s:s + 100])
    c.snapshot()
    c.delete([3])
    c.add(np.arange(800, 1200), x[800:1200])
    c.close()
    (newest, path), (older, _) = snapshot_dirs(os.path.join(tmp_path, "snapshots"))[:2]
    with open(os.path.join(path, "index.faiss"), "r+b") as f:
        f.seek(200)
        f.write(b"\x00" * 16)
    c = open_coll(tmp_path, "hnsw")
    rep = c.recovery
    assert rep.snapshot_lsn == older and rep.rejected_snapshots[0]["reason"] == "index.faiss: checksum mismatch"
    assert rep.replayed == c.wal.last_lsn - older
    assert len(c) == 1199 and sorted(c.index.live_ids().tolist()) == sorted(set(range(1200)) - {3})
    assert os.listdir(os.path.join(tmp_path, "snapshots", "rejected"))
    # recovery wrote a fresh good snapshot, so the next start needs no fallback
    c.close()
    c = open_coll(tmp_path, "hnsw")
    assert not c.recovery.rejected_snapshots and len(c) == 1199


def test_missing_manifest_and_leftover_temp_dirs_are_ignored(tmp_path):
    x = data(20)
    c = open_coll(tmp_path)
    c.add(np.arange(10), x[:10])
    c.snapshot()
    c.add(np.arange(10, 20), x[10:])
    c.snapshot()
    c.close()
    snaps = snapshot_dirs(os.path.join(tmp_path, "snapshots"))
    os.remove(os.path.join(snaps[0][1], "manifest.json"))
    shutil.copytree(snaps[1][1], snaps[0][1] + ".tmp-999")  # a snapshot write that never finished
    c = open_coll(tmp_path)
    assert len(c) == 20 and "manifest.json unreadable" in c.recovery.rejected_snapshots[0]["reason"]


def test_old_log_segments_are_dropped_but_fallback_stays_possible(tmp_path):
    x = data(50)
    c = open_coll(tmp_path)
    for i in range(5):
        c.add(np.arange(i * 10, i * 10 + 10), x[i * 10:i * 10 + 10])
        c.snapshot()
    snaps = [lsn for lsn, _ in snapshot_dirs(c.snap_root)]
    firsts = [f for f, _ in c.wal.segments()]
    assert len(snaps) == 2 and min(firsts) <= min(snaps) + 1  # the log still covers the older snapshot
    assert len(firsts) <= 3


def test_spec_mismatch_on_reopen_is_refused(tmp_path):
    open_coll(tmp_path).close()
    with pytest.raises(MemoryInputError, match="different spec"):
        DurableCollection.open(str(tmp_path), spec(metric="ip"))
    with pytest.raises(MemoryInputError, match="no collection"):
        DurableCollection.open(str(tmp_path / "empty"))


def test_one_process_per_directory(tmp_path):
    c = open_coll(tmp_path)
    with pytest.raises(CorruptStore, match="held by another process"):
        DurableCollection.open(str(tmp_path), lock_timeout_s=0.2)
    c.close()
    DurableCollection.open(str(tmp_path)).close()


# -- hierarchical memory (the synthesis engine's) -------------------------------------------


def test_hierarchical_memory_stores_finds_and_updates_tools(tmp_path):
    from emergence.memory import HierarchicalMemory, LocalBackend, ToolRecord

    mem = HierarchicalMemory(LocalBackend(str(tmp_path)), dim=8)
    rng = np.random.default_rng(0)
    e_links, e_sum = rng.standard_normal(8), rng.standard_normal(8)
    links = ToolRecord(intent="collect the hrefs of anchors", code="def links(html):\n    return []\n",
                       function_name="links", signature="links(html: str) -> list", verified={"passed": 3, "total": 3})
    tid = mem.store_tool(e_links, links)
    mem.store_tool(e_sum, ToolRecord(intent="add numbers", code="def total(xs):\n    return sum(xs)\n", function_name="total"))
    assert mem.store_tool(e_links * 2, links) == tid  # same code: updated, not duplicated
    best = mem.find_tools(e_links + 0.01 * rng.standard_normal(8), k=2)
    assert best[0].tool_id == tid and best[0].similarity > 0.99 and best[0].code == links.code
    assert best[0].signature == links.signature and best[0].verified == {"passed": 3, "total": 3}
    assert [m.function_name for m in mem.find_tools(e_links, k=5, min_similarity=0.99)] == ["links"]
    assert [m.function_name for m in mem.find_tools(e_sum, k=5, verified_only=True)] == ["links"]
    assert mem.get_tool(tid)["docstring"] == ""
    eid = mem.record_episode(e_links, {"intent": "links please", "tool_id": tid, "outcome": "reused"})
    assert mem.similar_episodes(e_links, k=1)[0]["episode_id"] == eid
    with pytest.raises(MemoryInputError, match="dimension"):
        mem.find_tools(np.ones(5))
    with pytest.raises(MemoryInputError, match="zeros"):
        mem.store_tool(np.zeros(8), links)
    mem.backend.close()
    again = HierarchicalMemory(LocalBackend(str(tmp_path)), dim=8)  # durable: all of it comes back
    assert again.find_tools(e_links, k=1)[0].tool_id == tid and len(again.backend.colls["procedural"]) == 2


def test_snapshots_follow_the_replay_cost_not_just_log_size(tmp_path):
    x = data(400)
    # a tiny recovery target: every write costs more than that to replay, so snapshots come early
    c = DurableCollection.open(str(tmp_path / "fast"), spec(), recovery_target_s=1e-9)
    for s in range(0, 400, 50):
        c.add(np.arange(s, s + 50), x[s:s + 50])
    n_fast = len(snapshot_dirs(c.snap_root))
    assert n_fast >= 1 and c.stats()["snapshots"]
    # ...but not before the log has grown by a tenth of the last snapshot: small writes to a big
    # collection don't rewrite it every time
    c.add(np.arange(10_000, 12_000), data(2000, seed=5))
    lsn = c.snapshot_lsn
    for i in range(20):
        c.add([20_000 + i], x[i:i + 1])
    assert c.snapshot_lsn == lsn and c.replay_estimate_s() > 1e-9
    c.close()
    slow = DurableCollection.open(str(tmp_path / "slow"), spec(), recovery_target_s=1e9)
    for s in range(0, 400, 50):
        slow.add(np.arange(s, s + 50), x[s:s + 50])
    assert not snapshot_dirs(slow.snap_root) and slow.replay_estimate_s() > 0
    slow.close()
    again = DurableCollection.open(str(tmp_path / "slow"), recovery_target_s=1e-9)
    assert again.wal.bytes_since_rotate > 0  # the replayed log counts towards the next snapshot
    again.add([1000], x[:1])
    assert snapshot_dirs(again.snap_root) and len(again) == 401


def test_search_params_override_the_collection_for_one_search():
    x = data(3000)
    idx = VectorIndex(spec("ivf", nprobe=1))
    add(idx, np.arange(3000), x)
    flat = faiss.IndexFlatL2(16)
    flat.add(x)
    _, truth = flat.search(x[:200] + 0.05, 10)
    narrow = (idx.search(x[:200] + 0.05, 10)[1] == truth).mean()
    wide = (idx.search(x[:200] + 0.05, 10, {"nprobe": 16})[1] == truth).mean()
    assert wide == 1.0 and narrow < wide  # all 16 lists visited: exact
    for bad, field in (({"nprobe": 0}, "params.nprobe"), ({"efsearch": 3}, "params.efsearch"), ([1], "params")):
        with pytest.raises(MemoryInputError) as e:
            idx.search(x[:1], 1, bad)
        assert e.value.field == field
