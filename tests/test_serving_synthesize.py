"""POST /synthesize and /synthesize/refine over HTTP: a verified answer stored in memory is
reused, examples are checked in the sandbox pool, bad requests are 422 naming the field, "cannot
synthesize" names the closest capabilities, an app without a trained engine says how to get one
(503), and a previous tool (by program or by stored id) is refined as feedback states."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
import requests
import torch

from emergence.memory.hierarchical import HierarchicalMemory, LocalBackend, ToolRecord
from emergence.synthesis import corpus
from emergence.synthesis.compiler import compile_program
from emergence.synthesis.encoder import DIM, HashingEncoder
from emergence.synthesis.fit import FitConfig, TrainData, fit
from emergence.synthesis.program import Program, Step
from emergence.sandbox import bwrap_missing

pytestmark = pytest.mark.ray

INTENT = "add up the even numbers of a list"


@pytest.fixture(scope="module")
def engine_file(tmp_path_factory):
    torch.set_num_threads(1)
    records = corpus.build(max_len=2, max_programs=0, per_program=1, with_traces=False, seed=1)
    # the denoiser reads the intent's words, as the job's default model does
    data = TrainData.from_records(records, *HashingEncoder().encode_words([r.description for r in records]))
    cfg = FitConfig(epochs_contrastive=1, epochs_diffusion=1, epochs_scorer=1, width=32, layers=1, T=20, sample_steps=4,
                    words=True)
    bundle = fit(data, cfg, log=lambda s: None)
    path = tmp_path_factory.mktemp("engine") / "model.pt"
    torch.save({**bundle.state(), "encoder_name": "hashing"}, path)
    return str(path)


@pytest.fixture(scope="module")
def memory_root(tmp_path_factory):
    """A verified tool already in the engine's local memory: asking for it again reuses it."""
    root = tmp_path_factory.mktemp("memory")
    prog = Program("sum_even", [("numbers", "list[int]")], [Step("FILTER.even"), Step("REDUCE.sum")], INTENT)
    tool = compile_program(prog)
    backend = LocalBackend(str(root / "engine-local"))
    mem = HierarchicalMemory(backend, dim=DIM, prefix="engine-")
    mem.store_tool(HashingEncoder().encode([INTENT])[0], ToolRecord(
        intent=INTENT, code=tool.code, function_name=tool.function_name, signature=tool.signature,
        docstring=tool.docstring, program=prog.to_dict(), verified={"passed": 4, "total": 4}))
    backend.close()
    return str(root)


def _deploy(serve_session, name, **args):
    from ray import serve

    from serving.app import build_app

    serve.run(build_app({"memory_router": f"no-router-{uuid.uuid4().hex[:6]}", **args}), name=name,
              route_prefix=f"/{name}")
    return f"{serve_session}/{name}"


@pytest.fixture(scope="module")
def url(serve_session, engine_file, memory_root):
    from ray import serve

    yield _deploy(serve_session, "synth-test", engine_path=engine_file, memory_root=memory_root,
                  synthesis_threshold=0.0)
    serve.delete("synth-test")


def test_reuses_a_verified_tool_from_memory(url):
    r = requests.post(f"{url}/synthesize", json={"intent": INTENT}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["reused"] is True and body["function_name"] == "sum_even"
    assert body["verified"] == {"passed": 4, "total": 4}
    ns: dict = {}
    exec(body["code"], ns)  # the test's own stored tool
    assert ns["sum_even"]([1, 2, 3, 4]) == 6
    assert {"signature", "docstring", "program", "coherence", "latency_ms"} <= set(body)


@pytest.mark.skipif(bool(bwrap_missing()), reason="bubblewrap is needed for the sandbox pool")
def test_examples_are_checked_in_the_sandbox(url):
    examples = [{"args": [[1, 2, 3, 4]], "expected": 6}, {"args": [[5, 8]], "expected": 8}]
    r = requests.post(f"{url}/synthesize", json={"intent": INTENT, "examples": examples}, timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["verified"] == {"passed": 2, "total": 2}
    ns: dict = {}
    exec(body["code"], ns)
    assert ns[body["function_name"]]([2, 4, 5]) == 6
    # examples nothing can satisfy: refused, never a wrong tool presented as a success
    bad = [{"args": [[1, 2]], "expected": "not a number"}, {"args": [[3]], "expected": [9, 9, 9]}]
    r = requests.post(f"{url}/synthesize", json={"intent": "frobnicate the quux", "examples": bad}, timeout=120)
    assert r.status_code == 422, r.text
    assert r.json()["cannot_synthesize"]["error"] == "cannot_synthesize"


def test_answers_without_examples_are_unverified_and_readable(url):
    r = requests.post(f"{url}/synthesize", json={"intent": "reverse the order of a list of words"}, timeout=120)
    assert r.status_code in (200, 422), r.text
    body = r.json()
    if r.status_code == 200:
        assert body["reused"] is False and body["verified"] is None
        assert f"def {body['function_name']}(" in body["code"] and '"""' in body["code"]
        assert 0 <= body["coherence"] <= 1
    else:
        assert body["cannot_synthesize"]["closest_capabilities"]


@pytest.mark.parametrize("payload,loc", [
    ({"intent": ""}, ["body", "intent"]),
    ({"intent": "x" * 2001}, ["body", "intent"]),
    ({"intent": "sum", "arity": 9}, ["body", "arity"]),
    ({"intent": "sum", "n_candidates": 0}, ["body", "n_candidates"]),
    ({"intent": "sum", "examples": [{"args": [1]}]}, ["body", "examples", 0, "expected"]),
    ({"intent": "sum", "arity": 2, "examples": [{"args": [1], "expected": 1}]}, ["body", "examples", 0, "args"]),
    ({"intent": "sum", "surprise": 1}, ["body", "surprise"]),
])
def test_bad_requests_are_422_naming_the_field(url, payload, loc):
    r = requests.post(f"{url}/synthesize", json=payload, timeout=60)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:len(loc)] == loc


def _replica(**kw):
    """The ToolSynthesizer deployment's class, in this process: its answers without an HTTP app
    of its own (the app's error mapping is exercised over HTTP above)."""
    from serving.synthesize import ToolSynthesizer

    return ToolSynthesizer.func_or_class(**kw)


def test_cannot_synthesize_names_the_closest_capabilities(ray_session, engine_file, tmp_path):
    from serving.errors import ApiError

    strict = _replica(model_path=engine_file, memory_root=str(tmp_path), threshold=1.01)
    with pytest.raises(ApiError) as caught:
        asyncio.run(strict.synthesize({"intent": "make me a sandwich"}))
    assert caught.value.status == 422
    body = json.loads(caught.value.response().body)
    assert body["detail"][0]["type"] == "cannot_synthesize"
    detail = body["cannot_synthesize"]
    assert detail["error"] == "cannot_synthesize" and detail["message"]
    assert len(detail["closest_capabilities"]) == 5 and all(":" in c for c in detail["closest_capabilities"])
    # its engine info says what it runs
    info = strict.info()
    assert info["loaded"] is True and info["threshold"] == 1.01 and info["tuned"] is False
    assert info["with_examples"] == {"samples": 256, "readings_per_draw": 5, "slot_temperature": 1.5,
                                     "candidates_checked": 32, "repair_s": 0.5, "search_s": 1.0,
                                     "second_round": {"samples": 1024, "readings_per_draw": 8,
                                                      "slot_temperature": 2.5}}


def test_no_engine_model_is_503_saying_how_to_train_one(ray_session, tmp_path):
    from serving.errors import ApiError

    missing = _replica(model_path=str(tmp_path / "missing.pt"), memory_root=str(tmp_path))
    with pytest.raises(ApiError) as caught:
        asyncio.run(missing.synthesize({"intent": "sum a list"}))
    assert caught.value.status == 503 and "training.emergence" in caught.value.detail
    assert missing.info()["loaded"] is False


def test_a_crucible_tuned_engine_says_so(ray_session, engine_file, tmp_path):
    state = torch.load(engine_file, map_location="cpu", weights_only=False)
    state["crucible"] = {"tuned": True, "run": "cru-test", "base": engine_file, "iterations": 3}
    tuned = tmp_path / "tuned.pt"
    torch.save(state, tuned)
    info = _replica(model_path=str(tuned), memory_root=str(tmp_path)).info()
    assert info["loaded"] and info["tuned"] is True and info["crucible"]["run"] == "cru-test"


ABOVE_5_SORTED = {"name": "above_five", "intent": "keep the numbers above 5, sorted",
                  "params": [{"name": "numbers", "type": "list[int]"}],
                  "steps": [{"op": "FILTER.greater", "args": {"k": {"const": 5}}}, {"op": "SORT.asc"}]}


def test_refine_changes_a_stated_value(url):
    r = requests.post(f"{url}/synthesize/refine", json={"program": ABOVE_5_SORTED, "feedback": "above 10 instead"},
                      timeout=120)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["found_by"] == "refinement" and body["edit"]["kind"] == "value"
    assert body["confidence"] is None and body["refined_from"] is None  # a stated value, not a judgement
    assert body["program"]["steps"][0] == {"op": "FILTER.greater", "args": {"k": {"const": 10}}}
    ns: dict = {}
    exec(body["code"], ns)
    assert ns[body["function_name"]]([12, 3, 11, 7]) == [11, 12]
    # the refined tool is stored: refining it by id works from memory
    again = requests.post(f"{url}/synthesize/refine", json={"tool_id": body["tool_id"], "feedback": "above 11 instead"},
                          timeout=120)
    assert again.status_code == 200, again.text
    assert again.json()["refined_from"] == body["tool_id"]
    assert again.json()["program"]["steps"][0]["args"] == {"k": {"const": 11}}


@pytest.mark.skipif(bool(bwrap_missing()), reason="bubblewrap is needed for the sandbox pool")
def test_refine_checks_examples_in_the_sandbox(url):
    r = requests.post(f"{url}/synthesize/refine", json={
        "program": ABOVE_5_SORTED, "feedback": "above 1 instead",
        "examples": [{"args": [[3, 1, 2]], "expected": [2, 3]}]}, timeout=120)
    assert r.status_code == 200, r.text
    assert r.json()["verified"] == {"passed": 1, "total": 1}
    r = requests.post(f"{url}/synthesize/refine", json={
        "program": ABOVE_5_SORTED, "feedback": "above 1 instead",
        "examples": [{"args": [[3, 1, 2]], "expected": "no edit gives this"}]}, timeout=120)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "feedback"]
    assert r.json()["cannot_synthesize"]["edits_considered"]


@pytest.mark.parametrize("payload,loc", [
    ({"program": ABOVE_5_SORTED}, ["body", "feedback"]),
    ({"program": ABOVE_5_SORTED, "feedback": ""}, ["body", "feedback"]),
    ({"feedback": "then count them"}, ["body", "program"]),
    ({"program": ABOVE_5_SORTED, "tool_id": 1, "feedback": "then count them"}, ["body", "program"]),
    ({"program": {"name": "x", "steps": []}, "feedback": "then count them"}, ["body", "program"]),
    ({"tool_id": 987654321, "feedback": "then count them"}, ["body", "tool_id"]),
    ({"tool_id": -3, "feedback": "then count them"}, ["body", "tool_id"]),
])
def test_refine_bad_requests_are_422_naming_the_field(url, payload, loc):
    r = requests.post(f"{url}/synthesize/refine", json=payload, timeout=60)
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"][:len(loc)] == loc
