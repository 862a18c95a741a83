"""The memory gRPC service over a real port, in front of a real MemoryRouter: round trips and
the status of every kind of refusal."""

from __future__ import annotations

import json
import math
import uuid

import grpc
import numpy as np
import pytest

pytestmark = pytest.mark.ray

DIM = 8


@pytest.fixture(scope="module")
def router(ray_session, tmp_path_factory):
    from actors.memory_shard import get_or_create_router

    name = f"grpc-router-{uuid.uuid4().hex[:6]}"
    handle = get_or_create_router(str(tmp_path_factory.mktemp("memory")), name=name)
    yield name, handle
    ray_session.kill(handle)


@pytest.fixture(scope="module")
def target(router):
    from serving.memory_grpc.actor import BackgroundServer

    with BackgroundServer(router[1], "127.0.0.1", 0) as server:  # port 0: the kernel picks a free one
        yield server.address


@pytest.fixture
def client(target):
    from serving.memory_grpc.client import MemoryClient

    with MemoryClient(target, timeout_s=60) as c:
        yield c


@pytest.fixture(scope="module")
def collection(target):
    """A 1-shard exact collection holding 50 rows (ids 100..149, metadata {"n": row}) that the
    tests below only read (a refused write stores nothing)."""
    from serving.memory_grpc.client import MemoryClient

    with MemoryClient(target, timeout_s=60) as c:
        spec = c.create_collection(name="shared", dim=DIM, index="flat")
        c.push_batch("shared", vectors(50), ids=np.arange(100, 150), metadata=[{"n": i} for i in range(50)])
    return spec, vectors(50)


def vectors(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)


def test_create_returns_the_full_spec_and_is_idempotent(client, collection):
    spec, _ = collection
    assert spec["name"] == "shared" and spec["dim"] == DIM and spec["index"] == "flat" and spec["shards"] == 1
    assert spec["ef_search"] == 64 and spec["replicas"] == 0  # defaults filled in
    assert client.create_collection(name="shared", dim=DIM, index="flat") == spec


def test_round_trip(client):
    name = "roundtrip"
    client.create_collection(name=name, dim=DIM, index="flat", shards=2)
    x = vectors(50)
    pushed = client.push_batch(name, x, ids=np.arange(100, 150), metadata=[{"n": i} for i in range(50)])
    assert pushed["added"] == 50 and pushed["ids"].tolist() == list(range(100, 150))
    top = client.query(name, x[7], k=3, with_metadata=True)
    assert top.ids.tolist()[0] == 107 and top.distances[0] == pytest.approx(0.0, abs=1e-4)
    assert top.metadata[0] == {"n": 7} and len(top.ids) == 3

    assert client.push(name, np.ones(DIM), id=7, metadata={"text": "ones"}) == {"id": 7, "added": 1, "skipped": 0}
    assert client.push(name, np.ones(DIM), id=7, if_exists="skip") == {"id": 7, "added": 0, "skipped": 1}
    hit = client.query(name, np.ones(DIM), k=1, with_metadata=True)
    assert hit.ids.tolist() == [7] and hit.metadata == [{"text": "ones"}]
    assigned = client.push(name, -np.ones(DIM))  # no id: the memory picks one
    assert assigned["added"] == 1 and client.query(name, -np.ones(DIM), k=1).ids.tolist() == [assigned["id"]]

    batch = client.query_batch(name, x[:4], k=2)
    assert batch.ids.shape == batch.distances.shape == (4, 2) and batch.metadata is None
    assert batch.ids[:, 0].tolist() == [100, 101, 102, 103]
    np.testing.assert_allclose(batch.distances[:, 0], 0.0, atol=1e-4)

    assert client.delete(name, [107, 999]) == {"deleted": 1, "missing": [999]}
    assert 107 not in client.query(name, x[7], k=5).ids.tolist()
    stats = client.stats(name)
    assert stats["count"] == 51 and stats["dim"] == DIM and len(stats["per_shard"]) == 2


def test_query_batch_pads_past_the_stored_count(client, collection):
    _, x = collection
    out = client.query_batch("shared", x[:2], k=60, with_metadata=True)
    assert out.ids.shape == out.distances.shape == (2, 60) and len(out.metadata[0]) == 60
    assert (out.ids[:, :50] >= 100).all() and (out.ids[:, 50:] == -1).all()
    assert np.isfinite(out.distances[:, :50]).all() and np.isnan(out.distances[:, 50:]).all()
    assert out.metadata[1][0] == {"n": 1} and out.metadata[1][50] is None
    assert len(client.query("shared", x[0], k=60).ids) == 50  # a single query: only the hits found


def test_wrong_dimension_names_it(client, collection):
    from serving.memory_grpc.client import InvalidArgument

    name = "shared"
    with pytest.raises(InvalidArgument, match=f"dim is {DIM}") as exc:
        client.push(name, np.ones(DIM + 1), id=1)
    assert exc.value.code == grpc.StatusCode.INVALID_ARGUMENT and isinstance(exc.value, ValueError)
    with pytest.raises(InvalidArgument, match=f"dim is {DIM}"):
        client.query_batch(name, np.ones((2, DIM - 1)))


def test_nan_and_k_are_refused(client, collection):
    from serving.memory_grpc.client import InvalidArgument

    name, x = "shared", collection[1]
    with pytest.raises(InvalidArgument, match=r"vectors\[0\]: must be finite"):
        client.push(name, [math.nan] * DIM, id=1)
    for k in (0, -3):
        with pytest.raises(InvalidArgument, match=r"^k: must be between 1"):
            client.query(name, x[0], k=k)


def test_unknown_collection_is_not_found(client):
    from serving.memory_grpc.client import NotFound

    with pytest.raises(NotFound, match="unknown collection 'nowhere'") as exc:
        client.query("nowhere", np.ones(DIM))
    assert exc.value.code == grpc.StatusCode.NOT_FOUND and isinstance(exc.value, LookupError)
    with pytest.raises(NotFound):
        client.stats("nowhere")


def test_a_refused_batch_stores_nothing(client, collection):
    from serving.memory_grpc.client import InvalidArgument

    name = "shared"
    before = client.stats(name)["count"]
    bad = vectors(10, seed=3)
    bad[6, 2] = np.nan
    with pytest.raises(InvalidArgument, match=r"vectors\[6\]"):
        client.push_batch(name, bad, ids=np.arange(1000, 1010))
    with pytest.raises(InvalidArgument, match="already stored"):  # id 149 exists: the whole batch is refused
        client.push_batch(name, vectors(3, seed=4), ids=[1000, 149, 1001])
    assert client.stats(name)["count"] == before == 50


def test_conflicting_spec_is_refused(client, collection):
    from serving.memory_grpc.client import InvalidArgument

    name = "shared"
    with pytest.raises(InvalidArgument, match="exists with a different setting"):
        client.create_collection(name=name, dim=DIM + 1)
    with pytest.raises(InvalidArgument, match="bogus: unknown collection setting"):
        client.create_collection(name="other", dim=DIM, bogus=1)


def test_raw_requests_are_checked(target):
    """What the client cannot send malformed: framing checked by the server itself."""
    from serving.memory_grpc.messages import pb, pb_grpc

    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.MemoryStub(channel)

        def refused(rpc, request, pattern):
            with pytest.raises(grpc.RpcError) as exc:
                getattr(stub, rpc)(request, timeout=30)
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert pattern in exc.value.details()

        refused("PushBatch", pb.PushBatchRequest(collection="x", dim=3, values=[1, 2, 3, 4]), "not a whole number of rows of dim=3")
        refused("PushBatch", pb.PushBatchRequest(collection="x", values=[1, 2]), "dim: must be a positive integer")
        refused("PushBatch", pb.PushBatchRequest(collection="x", dim=1, values=[1, 2], ids=[5]), "ids: 1 ids for 2 rows")
        refused("QueryBatch", pb.QueryBatchRequest(collection="x", dim=2), "values: is empty")
        refused("Push", pb.PushRequest(collection="x", vector=[1], metadata_json="[1]"), "must be a JSON object")
        refused("Push", pb.PushRequest(collection="x", vector=[1], metadata_json="{"), "not valid JSON")
        refused("CreateCollection", pb.CreateCollectionRequest(spec_json='{"name": "a", "dim": 4}', dim=5),
                "dim: given as 5 and as 4 in spec_json")

        made = stub.CreateCollection(pb.CreateCollectionRequest(spec_json=json.dumps({"name": "fromjson", "dim": 4})))
        assert json.loads(made.spec_json)["dim"] == 4
        stats = stub.Stats(pb.StatsRequest(collection="fromjson"))
        assert (stats.count, stats.dim) == (0, 4) and json.loads(stats.stats_json)["name"] == "fromjson"


def test_detached_actor_serves(router):
    """The Ray actor `make run` starts: serving from its constructor, its address to dial."""
    import ray

    from serving.memory_grpc.actor import start_detached
    from serving.memory_grpc.client import MemoryClient

    name = f"memory-grpc-{uuid.uuid4().hex[:6]}"
    try:
        address = start_detached(port=0, name=name, router_name=router[0])
        assert address.startswith("127.0.0.1:") and not address.endswith(":0")
        with MemoryClient(address) as c:
            c.create_collection(name="via-actor", dim=2)
            c.push("via-actor", [1.0, 2.0], id=3)
            assert c.stats("via-actor")["count"] == 1
    finally:
        ray.kill(ray.get_actor(name, namespace="emergence"))


def test_message_size_limit(router, collection):
    from serving.memory_grpc.actor import BackgroundServer
    from serving.memory_grpc.client import MemoryClient, ResourceExhausted

    with BackgroundServer(router[1], "127.0.0.1", 0, max_message_bytes=4096) as small, MemoryClient(small.address) as c:
        with pytest.raises(ResourceExhausted) as exc:
            c.push_batch("shared", vectors(200), ids=np.arange(5000, 5200))  # 6.4 KB of floats
        assert exc.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert c.query("shared", vectors(1)[0], k=1).ids.tolist() == [100]  # small requests still pass


def test_a_dead_router_is_unavailable(ray_session, tmp_path):
    from actors.memory_shard import get_or_create_router
    from serving.memory_grpc.actor import BackgroundServer
    from serving.memory_grpc.client import MemoryClient, Unavailable

    dead = get_or_create_router(str(tmp_path), name=f"doomed-{uuid.uuid4().hex[:6]}")
    ray_session.kill(dead, no_restart=True)
    with BackgroundServer(dead, "127.0.0.1", 0) as server, MemoryClient(server.address) as c:
        with pytest.raises(Unavailable, match="unavailable; retry") as exc:
            c.stats("anything")
        assert isinstance(exc.value, ConnectionError)
