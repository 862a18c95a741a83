"""The Serve app over HTTP: one deployment for the whole module (deploying costs seconds)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import requests

from emergence.energy.scenarios import dense_ring_spec

pytestmark = pytest.mark.ray

from conftest import SHARED_APP as APP_NAME  # the app deployed once for the run


@pytest.fixture(scope="module")
def url(shared_app):
    return shared_app[0]


def post_relax(url, body, **kw):
    return requests.post(f"{url}/relax", json=body, timeout=120, **kw)


def post_raw(url, text: str):
    return requests.post(f"{url}/relax", data=text, headers={"content-type": "application/json"}, timeout=60)


def detail(resp):
    assert resp.status_code == 422, resp.text
    d = resp.json()["detail"]
    assert isinstance(d, list) and d, d
    return d[0]


def all_finite(x) -> bool:
    if isinstance(x, float):
        return math.isfinite(x)
    if isinstance(x, dict):
        return all(all_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(all_finite(v) for v in x)
    return True


# -- happy paths ---------------------------------------------------------------------------------


def test_healthz(url):
    import emergence

    r = requests.get(f"{url}/healthz", timeout=30)
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "version": emergence.__version__}


def test_relax_dense_ring(url):
    r = post_relax(url, {"problem": dense_ring_spec(12), "with_optimum": True})
    assert r.status_code == 200, r.text
    out = r.json()
    assert all_finite(out)
    assert math.isfinite(out["energy"]) and out["energy"] < out["initial_energy"]
    eta = np.asarray(out["eta"])
    assert eta.shape == (12,) and np.all((eta >= 0) & (eta <= 1))
    trace = np.asarray(out["trace"]["energy"])
    assert trace.size == out["steps"] + 1
    assert np.all(np.diff(trace) <= 0)
    assert min(out["trace"]["eta_min"]) >= 0 and max(out["trace"]["eta_max"]) <= 1
    assert out["trace"]["energy"][-1] == out["energy"]
    assert out["gap"] <= 1e-6
    assert out["optimum"] <= out["initial_energy"]
    for key in ("steps", "rejected", "delta_f90"):
        assert isinstance(out[key], int)
    assert isinstance(out["converged"], bool) and isinstance(out["reason"], str) and out["wall_time_s"] >= 0


def test_relax_without_trace_or_optimum(url):
    r = post_relax(url, {"problem": dense_ring_spec(5), "method": "pgd", "max_steps": 50, "trace": False})
    assert r.status_code == 200, r.text
    out = r.json()
    assert "trace" not in out and "optimum" not in out and "gap" not in out
    assert out["steps"] <= 50 and out["energy"] <= out["initial_energy"]


def test_handle_solve(url):
    from ray import serve

    handle = serve.get_app_handle(APP_NAME)
    assert handle.healthz.remote().result(timeout_s=30)["status"] == "ok"
    out = handle.solve.remote({"problem": dense_ring_spec(5), "trace": False}).result(timeout_s=60)
    assert out["energy"] < out["initial_energy"]


# -- 422s: status and the field named ------------------------------------------------------------


def _ring(n=5):
    return dense_ring_spec(n)


def _with(spec, fn):
    fn(spec)
    return spec


def test_nan_weight(url):
    spec = _ring()
    import json

    spec["couplings"][0]["weight"] = "__NAN__"
    text = json.dumps({"problem": spec}).replace('"__NAN__"', "NaN")
    d = detail(post_raw(url, text))
    assert d["loc"] == ["body", "problem", "couplings", 0, "weight"]
    assert "finite" in d["msg"]


def test_infinity_in_eta0(url):
    import json

    spec = _ring()
    spec["eta0"] = [0.5, 0.5, "__INF__", 0.5, 0.5]
    text = json.dumps({"problem": spec}).replace('"__INF__"', "Infinity")
    d = detail(post_raw(url, text))
    assert d["loc"] == ["body", "problem", "eta0"]
    assert "finite" in d["msg"]


def test_nan_in_envelope_and_ignored_places(url):
    import json

    d = detail(post_raw(url, json.dumps({"problem": _ring(), "tol": "__X__"}).replace('"__X__"', "NaN")))
    assert d["loc"] == ["body", "tol"]
    d = detail(post_raw(url, json.dumps({"problem": _ring(), "tol": "__X__"}).replace('"__X__"', "-Infinity")))
    assert d["loc"] == ["body", "tol"]
    d = detail(post_raw(url, json.dumps({"problem": _ring(), "max_steps": "__X__"}).replace('"__X__"', "1e400")))
    assert d["loc"] == ["body", "max_steps"]
    # NaN where a label belongs is refused with the field named
    spec = _ring()
    spec["names"] = {"x": "__X__"}
    d = detail(post_raw(url, json.dumps({"problem": spec}).replace('"__X__"', "NaN")))
    assert d["loc"] == ["body", "problem", "names"]


def test_index_out_of_range(url):
    spec = _with(_ring(), lambda s: s["couplings"][0]["j"].__setitem__(0, 99))
    d = detail(post_relax(url, {"problem": spec}))
    assert d["loc"] == ["body", "problem", "couplings", 0, "j"]
    assert "out of range" in d["msg"] and d["type"] == "value_error"


def test_eta0_outside_box(url):
    spec = _with(_ring(), lambda s: s.__setitem__("eta0", [0.5, 1.5, 0.5, 0.5, 0.5]))
    d = detail(post_relax(url, {"problem": spec}))
    assert d["loc"] == ["body", "problem", "eta0"]
    assert "[0, 1]" in d["msg"]


def test_unknown_family(url):
    spec = _with(_ring(), lambda s: s["couplings"][1].__setitem__("family", "telepathy"))
    d = detail(post_relax(url, {"problem": spec}))
    assert d["loc"] == ["body", "problem", "couplings", 1, "family"]
    assert "telepathy" in d["msg"]


def test_unknown_module_kind(url):
    spec = _with(_ring(), lambda s: s["modules"][0].__setitem__("kind", "oracle"))
    d = detail(post_relax(url, {"problem": spec}))
    assert d["loc"] == ["body", "problem", "modules", 0, "kind"]
    assert "oracle" in d["msg"]


def test_oversize_problem(url):
    spec = {"modules": [{"kind": "landau", "count": 200_001, "a": 1.0, "b": 0.1}]}
    d = detail(post_relax(url, {"problem": spec}))
    assert d["loc"] == ["body", "problem", "modules"]
    assert "too large" in d["msg"]


def test_unknown_envelope_key(url):
    d = detail(post_relax(url, {"problem": _ring(), "turbo": True}))
    assert d["loc"] == ["body", "turbo"]


def test_bad_method(url):
    d = detail(post_relax(url, {"problem": _ring(), "method": "magic"}))
    assert d["loc"] == ["body", "method"]


def test_bad_max_steps(url):
    d = detail(post_relax(url, {"problem": _ring(), "max_steps": 0}))
    assert d["loc"] == ["body", "max_steps"]


# -- docs -----------------------------------------------------------------------------------------


def test_docs_and_openapi(url):
    assert requests.get(f"{url}/docs", timeout=30).status_code == 200
    spec = requests.get(f"{url}/openapi.json", timeout=30).json()
    assert "/relax" in spec["paths"] and "/healthz" in spec["paths"]
    body = spec["paths"]["/relax"]["post"]["requestBody"]["content"]["application/json"]
    assert body["examples"]["dense_ring_5"]["value"]["problem"]["modules"][0]["count"] == 5


def test_handle_solve_error_is_structured(url):
    from ray import serve

    from serving.app import ApiError

    spec = _with(_ring(), lambda s: s["modules"][0].__setitem__("kind", "oracle"))
    with pytest.raises(ApiError) as info:
        serve.get_app_handle(APP_NAME).solve.remote({"problem": spec}).result(timeout_s=60)
    assert info.value.status == 422
    assert info.value.detail[0]["loc"] == ["body", "problem", "modules", 0, "kind"]
