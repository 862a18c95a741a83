"""POST /predict: request parsing and batching as plain functions (no Ray), then one Serve
deployment with a tiny model trained into a temp dir, exercised over HTTP and a handle."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from emergence.nvp.model import NVPConfig
from conftest import SHARED_APP as APP
from serving.predict import (
    Job,
    PredictError,
    PredictRequest,
    _pad_pow2,
    parse_request,
    predict_grouped,
    thermo_step,
)

CONFIG = NVPConfig()  # history 3, domains heat/advection/reaction: what the parser checks against
H = CONFIG.history


def fields(n=H, shape=(64, 64), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.5, (n, *shape)).astype(np.float32)


def body_lists(window: np.ndarray, **kw) -> dict:
    return {"field": window[-1].tolist(), "previous": window[:-1].tolist(), **kw}


def npy_b64(arr) -> str:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=True)
    return base64.b64encode(buf.getvalue()).decode()


def err(body, config=CONFIG) -> dict:
    """The single 422 item parse_request raises for `body`."""
    with pytest.raises(PredictError) as info:
        parse_request(body, config)
    assert info.value.status == 422
    (item,) = info.value.detail
    assert item["loc"][0] == "body"
    return item


# -- parsing (no Ray) -----------------------------------------------------------------------------


def test_lists_make_the_window_oldest_first():
    w = fields()
    job = parse_request(body_lists(w, domain="heat", dt=0.5, dx=2.0), CONFIG)
    assert job.window.shape == (H, 64, 64) and job.window.dtype == np.float32
    np.testing.assert_array_equal(job.window, w)
    assert (job.domain, job.dt, job.dx, job.steps, job.enforce) == ("heat", 0.5, 2.0, None, False)


def test_npy_window_and_npy_field_with_previous():
    w = fields(shape=(128, 384))
    job = parse_request({"npy_b64": npy_b64(w.astype(np.float64))}, CONFIG)
    np.testing.assert_array_equal(job.window, w)
    job = parse_request({"npy_b64": npy_b64(w[-1]), "previous": w[:-1].tolist()}, CONFIG)
    np.testing.assert_array_equal(job.window, w)
    assert job.domain is None


def test_missing_previous_says_what_the_model_needs():
    w = fields()
    item = err({"field": w[-1].tolist()})
    assert item["loc"] == ["body", "field"]
    assert f"needs the last {H} fields" in item["msg"] and "previous" in item["msg"]
    item = err({"field": w[-1].tolist(), "previous": [w[0].tolist()]})
    assert item["loc"] == ["body", "previous"] and "got 2" in item["msg"]
    item = err(body_lists(fields(H + 1)))
    assert "too many fields" in item["msg"]
    item = err({"npy_b64": npy_b64(w[-1])})
    assert item["loc"] == ["body", "npy_b64"] and "needs the last" in item["msg"]


@pytest.mark.parametrize("shape", [(60, 60), (64, 128), (32, 32)])
def test_shape_not_allowed(shape):
    item = err(body_lists(fields(shape=shape)))
    assert item["loc"] == ["body", "field"]
    assert "not allowed" in item["msg"] and "64x64" in item["msg"] and "128x384" in item["msg"]


def test_ragged_and_mismatched_maps():
    w = fields()
    ragged = w[-1].tolist()
    ragged[5] = ragged[5][:-1]
    item = err({"field": ragged, "previous": w[:-1].tolist()})
    assert item["loc"] == ["body", "field", 5] and "ragged" in item["msg"]
    prev = w[:-1].tolist()
    prev[1] = fields(1, (128, 128))[0].tolist()
    item = err({"field": w[-1].tolist(), "previous": prev})
    assert item["loc"] == ["body", "previous", 1] and "differs" in item["msg"]
    item = err({"field": [], "previous": w[:-1].tolist()})
    assert "empty" in item["msg"]


def test_negative_and_non_finite_energy():
    w = fields()
    w[-1, 3, 4] = -0.25
    item = err(body_lists(w))
    assert item["loc"] == ["body", "field"] and ">= 0" in item["msg"] and "[0, 3, 4]" in item["msg"]
    w = fields()
    w[1, 2, 2] = -1.0
    assert err(body_lists(w))["loc"] == ["body", "previous", 1]
    w = fields()
    w[0, 0, 1] = np.nan
    item = err({"npy_b64": npy_b64(w)})
    assert item["loc"] == ["body", "npy_b64"] and "finite" in item["msg"]
    # in JSON lists the envelope refuses NaN/Infinity before any parsing, naming the cell
    with pytest.raises(PredictError) as info:
        parse_request({**body_lists(fields()), "field": [[float("nan")] * 64] * 64}, CONFIG)
    assert info.value.detail[0]["loc"][:3] == ["body", "field", 0]
    # finite in float64, but beyond float32
    w64 = fields().astype(np.float64)
    w64[2, 0, 0] = 1e39
    assert "finite" in err({"npy_b64": npy_b64(w64)})["msg"]


def test_unknown_domain_lists_the_allowed_ones():
    item = err(body_lists(fields(), domain="plasma"))
    assert item["loc"] == ["body", "domain"]
    assert "'plasma'" in item["msg"] and "heat, advection, reaction" in item["msg"]
    assert parse_request(body_lists(fields(), domain="unknown"), CONFIG).domain is None


@pytest.mark.parametrize("text, needle", [
    ("not base64 !!", "base64"),
    (base64.b64encode(b"hello, not an npy file").decode(), ".npy"),
])
def test_bad_base64_or_npy(text, needle):
    item = err({"npy_b64": text})
    assert item["loc"] == ["body", "npy_b64"] and needle in item["msg"]


def test_npy_refuses_pickles_npz_and_non_numbers():
    obj = np.empty((H, 64, 64), dtype=object)
    obj[...] = 1.0
    assert "npy" in err({"npy_b64": npy_b64(obj)})["msg"]  # np.load(allow_pickle=False) refuses
    buf = io.BytesIO()
    np.savez(buf, a=fields())
    assert "npz" in err({"npy_b64": base64.b64encode(buf.getvalue()).decode()})["msg"]
    assert "dtype complex" in err({"npy_b64": npy_b64(fields().astype(np.complex64))})["msg"]
    assert "dtype bool" in err({"npy_b64": npy_b64(fields() > 1)})["msg"]
    assert "(H, W) or (history, H, W)" in err({"npy_b64": npy_b64(fields()[None])})["msg"]
    item = err({"npy_b64": npy_b64(fields()), "previous": fields(2).tolist()})
    assert item["loc"] == ["body", "previous"]


def test_exactly_one_source():
    assert "exactly one" in err({"previous": fields(2).tolist()})["msg"]
    w = fields()
    assert "exactly one" in err({**body_lists(w), "npy_b64": npy_b64(w)})["msg"]


@pytest.mark.parametrize("extra, loc", [
    ({"dt": 0}, ["body", "dt"]),
    ({"dx": -1.0}, ["body", "dx"]),
    ({"steps": 101}, ["body", "steps"]),
    ({"steps": 0}, ["body", "steps"]),
    ({"energy_budget": -0.1}, ["body", "energy_budget"]),
    ({"entropy_max": 0}, ["body", "entropy_max"]),
    ({"temperature": 3}, ["body", "temperature"]),
])
def test_envelope_ranges(extra, loc):
    with pytest.raises(PredictError) as info:
        parse_request({**body_lists(fields()), **extra}, CONFIG)
    assert info.value.status == 422 and info.value.detail[0]["loc"] == loc


def test_limits_compile_from_the_body():
    job = parse_request(body_lists(fields(), energy_budget=0.01, second_law=True, enforce=True, steps=4), CONFIG)
    assert (job.limits.energy_budget, job.limits.second_law, job.limits.mode, job.steps) == (0.01, True, "project", 4)
    assert parse_request(PredictRequest(**body_lists(fields())), CONFIG).limits.mode == "raise"


# -- batching and thermo (no Ray) -----------------------------------------------------------------


class FakeModel:
    """Stands in for NVPModel.predict: mean = E_t * k, std = k, and records each call."""

    def __init__(self, fail_domain=""):
        self.calls = []
        self.fail_domain = fail_domain  # "" matches nothing; None would be the unknown domain

    def predict(self, window, domain=None, dt=1.0, dx=1.0):
        self.calls.append((window.shape, domain, dt, dx))
        if domain == self.fail_domain:
            raise ValueError("boom")
        k = {None: 1.0, "heat": 2.0, "advection": 3.0}[domain] * dt
        return window[:, -1] * k, np.full(window[:, -1].shape, k, np.float32)


def job(seed, domain=None, dt=1.0, shape=(64, 64)) -> Job:
    return parse_request(body_lists(fields(shape=shape, seed=seed), domain=domain, dt=dt), CONFIG)


def test_pad_pow2():
    w = fields(1)[None]
    assert [len(_pad_pow2(np.repeat(w, n, 0))) for n in (1, 2, 3, 5, 8)] == [1, 2, 4, 8, 8]


def test_predict_grouped_one_call_per_group_results_in_order():
    jobs = [job(0, "heat"), job(1), job(2, "heat"), job(3, "heat", shape=(128, 128)), job(4, "heat"), job(5, dt=0.5)]
    model = FakeModel()
    results, sizes = predict_grouped(model, jobs)
    # heat 64x64 (3 jobs, padded to 4), unknown dt=1, heat 128x128, unknown dt=0.5
    assert sorted(sizes) == [1, 1, 1, 3]
    assert sorted(c[0][0] for c in model.calls) == [1, 1, 1, 4]
    assert len(model.calls) == 4
    for j, (mean, std) in zip(jobs, results):
        k = {None: 1.0, "heat": 2.0}[j.domain] * j.dt
        np.testing.assert_allclose(mean, j.window[-1] * k)
        assert std.shape == j.window.shape[1:] and np.all(std == k)


def test_predict_grouped_a_failing_group_fails_only_its_jobs():
    jobs = [job(0, "heat"), job(1, "advection"), job(2, "heat")]
    results, sizes = predict_grouped(FakeModel(fail_domain="advection"), jobs)
    assert isinstance(results[1], ValueError) and sizes == [2]
    assert all(isinstance(r, tuple) for r in (results[0], results[2]))


def test_thermo_step_reports_and_enforces():
    prev = fields(1)[0]
    pred = prev * 1.5
    pred[0, 0] = -1.0
    j = parse_request(body_lists(fields(), energy_budget=0.0), CONFIG)
    field, check = thermo_step(pred, prev, j)
    assert field is pred and not check["projected"]
    assert any("negative" in v for v in check["violations"]) and any("budget" in v for v in check["violations"])
    j = parse_request(body_lists(fields(), energy_budget=0.0, enforce=True), CONFIG)
    field, check = thermo_step(pred, prev, j)
    assert check["projected"] and check["violations"] == [] and check["violations_before"]
    assert field.min() >= 0 and abs(field.sum() / prev.sum() - 1) < 1e-4


def test_predictor_without_a_model_answers_503(tmp_path):
    """The replica stays up without a model (so /relax keeps working) and says why it can't predict."""
    import asyncio

    from serving.predict import NVPPredictor

    p = NVPPredictor.func_or_class(model_path=str(tmp_path / "none"))
    info = p.info()
    assert not info["loaded"] and "model file missing" in info["error"] and str(tmp_path / "none") in info["error"]
    with pytest.raises(PredictError) as exc:
        asyncio.run(p.predict(body_lists(fields())))
    assert exc.value.status == 503 and "no NVP model loaded" in exc.value.detail
    with pytest.raises(ValueError, match="unknown key"):
        p.reconfigure({"model": "x"})


# -- Serve: the app deployed once for the run, with the shipped NVP model ------------------------


@pytest.fixture(scope="module")
def url(shared_app):
    """The app with the shipped NVP model, and its prediction log."""
    base, _, log = shared_app
    return base, log


def log_records(log) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def post(url, body):
    return requests.post(f"{url}/predict", json=body, timeout=300)


def detail(resp) -> dict:
    assert resp.status_code == 422, resp.text
    d = resp.json()["detail"]
    assert isinstance(d, list) and d and {"loc", "msg", "type"} <= set(d[0]), d
    return d[0]


@pytest.mark.ray
def test_serve_predict_lists_npy_and_log(url):
    base, log = url
    logged = len(log_records(log))  # other modules predict through the same app
    info = requests.get(f"{base}/predict/model", timeout=60).json()
    assert info["loaded"] and info["history"] == H and info["domains"] == ["heat", "advection", "reaction"]

    w = fields(seed=1)
    r = post(base, body_lists(w, domain="heat"))
    assert r.status_code == 200, r.text
    out = r.json()
    mean, std = np.asarray(out["mean"]), np.asarray(out["std"])
    assert mean.shape == std.shape == (64, 64) and out["shape"] == [64, 64] and out["steps"] == 1
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    assert out["domain"] == "heat" and out["model"]["history"] == H and len(out["thermo"]) == 1
    assert out["thermo"][0]["energy_in"] == pytest.approx(float(w[-1].sum(dtype=np.float64)), rel=1e-6)

    r = post(base, {"npy_b64": npy_b64(w)})  # the same window, unknown domain
    assert r.status_code == 200, r.text
    assert np.asarray(r.json()["mean"]).shape == (64, 64) and r.json()["domain"] == "unknown"

    records = log_records(log)[logged:]
    assert len(records) == 2 and records[0]["domain"] == "heat" and records[0]["shape"] == [64, 64]


@pytest.mark.ray
def test_serve_rollout_with_enforced_limits(url):
    base, _ = url
    r = post(base, body_lists(fields(seed=2), domain="advection", steps=3, energy_budget=0.0, enforce=True))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["steps"] == 3 and np.asarray(out["mean"]).shape == np.asarray(out["std"]).shape == (3, 64, 64)
    assert len(out["thermo"]) == 3
    for check in out["thermo"]:
        assert check["violations"] == [] and abs(check["energy_drift"]) < 1e-4
    assert np.asarray(out["mean"]).min() >= 0


@pytest.mark.ray
def test_serve_concurrent_requests_get_their_own_answers(url):
    """Requests batched together (same key or not) each get the answer to their own window."""
    from ray import serve

    base, _ = url
    bodies = [body_lists(fields(seed=10 + i), domain=("heat", "reaction")[i % 2]) for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda b: post(base, b), bodies))
    predictor = serve.get_deployment_handle("NVPPredictor", APP)
    for b, a in zip(bodies, answers):
        assert a.status_code == 200, a.text
        alone = predictor.predict.remote(b).result(timeout_s=300)  # one at a time
        np.testing.assert_allclose(a.json()["mean"], alone["mean"], rtol=1e-5, atol=1e-6)
    info = predictor.info.remote().result(timeout_s=60)
    assert info["requests_batched"] >= 12 and info["model_calls"] <= info["requests_batched"]


@pytest.mark.ray
@pytest.mark.parametrize("case", ["shape", "nan", "domain", "negative", "history", "base64"])
def test_serve_422(url, case):
    base, _ = url
    w = fields()
    if case == "nan":
        text = json.dumps(body_lists(w)).replace(json.dumps(float(w[-1, 0, 0])), "NaN", 1)
        resp = requests.post(f"{base}/predict", data=text, headers={"content-type": "application/json"}, timeout=60)
        d = detail(resp)
        assert d["loc"] == ["body", "field", 0, 0] and "finite" in d["msg"]
        return
    body = {
        "shape": body_lists(fields(shape=(64, 100))),
        "domain": body_lists(w, domain="plasma"),
        "negative": body_lists(np.where(np.arange(64) == 7, -1.0, w).astype(np.float32)),
        "history": {"field": w[-1].tolist(), "domain": "heat"},
        "base64": {"npy_b64": "%%%"},
    }[case]
    d = detail(post(base, body))
    needle = {"shape": "not allowed", "domain": "heat, advection, reaction", "negative": ">= 0",
              "history": "previous", "base64": "base64"}[case]
    assert needle in d["msg"], d


@pytest.mark.ray
def test_serve_relax_and_healthz_still_work(url):
    from emergence.energy.scenarios import dense_ring_spec

    base, _ = url
    assert requests.get(f"{base}/healthz", timeout=30).json()["status"] == "ok"
    r = requests.post(f"{base}/relax", json={"problem": dense_ring_spec(5), "trace": False}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["energy"] < r.json()["initial_energy"]
    spec = requests.get(f"{base}/openapi.json", timeout=30).json()
    assert "/predict" in spec["paths"] and "previous" in spec["paths"]["/predict"]["post"]["description"]
