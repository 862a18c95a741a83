"""/memory/* over HTTP: a full round trip and the error answers."""

from __future__ import annotations

import numpy as np
import pytest
import requests

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def url(shared_app):
    return shared_app[0]


def vecs(n, d=8, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d)).round(4).tolist()


def err(resp, status=422):
    assert resp.status_code == status, resp.text
    return resp.json()["detail"]


def test_round_trip(url):
    r = requests.put(f"{url}/memory/tools", json={"dim": 8, "index": "hnsw", "shards": 2}, timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["shards"] == 2
    x = vecs(50)
    r = requests.post(f"{url}/memory/tools/add", timeout=60,
                      json={"vectors": x, "ids": list(range(100, 150)), "metadata": [{"n": i} for i in range(50)]})
    assert r.status_code == 200, r.text
    assert r.json()["added"] == 50
    r = requests.post(f"{url}/memory/tools/search", json={"vector": x[7], "k": 3, "with_metadata": True}, timeout=60)
    assert r.status_code == 200, r.text
    (hits,) = r.json()["results"]
    assert hits[0] == {"id": 107, "distance": 0.0, "metadata": {"n": 7}} and len(hits) == 3
    r = requests.post(f"{url}/memory/tools/search", json={"vectors": x[:4], "k": 1, "ef_search": 16}, timeout=60)
    assert [h[0]["id"] for h in r.json()["results"]] == [100, 101, 102, 103]
    r = requests.post(f"{url}/memory/tools/delete", json={"ids": [107, 999]}, timeout=60)
    assert r.json() == {"deleted": 1, "missing": [999]}
    r = requests.post(f"{url}/memory/tools/search", json={"vector": x[7], "k": 1}, timeout=60)
    assert r.json()["results"][0][0]["id"] != 107
    stats = requests.get(f"{url}/memory/tools/stats", timeout=60).json()
    assert stats["count"] == 49 and stats["index"] == "hnsw" and len(stats["per_shard"]) == 2
    assert any(c["name"] == "tools" for c in requests.get(f"{url}/memory", timeout=60).json())


def test_errors(url):
    assert requests.put(f"{url}/memory/e", json={"dim": 8}, timeout=60).status_code == 200
    x = vecs(3)
    d = err(requests.post(f"{url}/memory/e/add", json={"vectors": vecs(2, d=7)}, timeout=60))
    assert d[0]["loc"] == ["body", "vectors"] and "dimension" in d[0]["msg"]
    d = err(requests.post(f"{url}/memory/e/add", data='{"vectors": [[1,2,3,4,5,6,7,NaN]]}',
                          headers={"content-type": "application/json"}, timeout=60))
    assert d[0]["loc"][:2] == ["body", "vectors"]
    err(requests.post(f"{url}/memory/e/add", json={"vectors": x, "ids": [1, 2, -3]}, timeout=60))
    d = err(requests.post(f"{url}/memory/e/add", json={"vectors": x, "ids": [1, 1, 2]}, timeout=60))
    assert "more than once" in d[0]["msg"]
    err(requests.post(f"{url}/memory/e/search", json={"vector": x[0], "k": 0}, timeout=60))
    err(requests.post(f"{url}/memory/e/search", json={"vector": x[0], "k": 10**9}, timeout=60))
    err(requests.post(f"{url}/memory/e/search", json={"k": 3}, timeout=60))
    err(requests.post(f"{url}/memory/e/search", json={"vector": x[0], "nprobe": 0}, timeout=60))
    d = err(requests.post(f"{url}/memory/nope/search", json={"vector": x[0]}, timeout=60), 404)
    assert "unknown collection 'nope'" in d
    err(requests.get(f"{url}/memory/nope/stats", timeout=60), 404)
    err(requests.put(f"{url}/memory/e", json={"dim": 9}, timeout=60))  # exists with another dim
    # a batch with one stored id is refused whole
    assert requests.post(f"{url}/memory/e/add", json={"vectors": x[:1], "ids": [5]}, timeout=60).status_code == 200
    d = err(requests.post(f"{url}/memory/e/add", json={"vectors": x, "ids": [6, 7, 5]}, timeout=60))
    assert "already stored" in d[0]["msg"]
    assert requests.get(f"{url}/memory/e/stats", timeout=60).json()["count"] == 1
