"""The HTTP API against its own OpenAPI schema: schemathesis sends every operation of
/openapi.json its coverage cases (each property missing, at its bounds, of a wrong type) and
fuzzed ones, schema-valid and schema-violating, to the app as shipped; and every request-body
example the schema documents is schema-valid and answered 2xx.

Checks: no 5xx; every status and content type is documented; responses match their schemas;
schema-violating requests are refused; schema-valid ones are accepted, except for the semantic
refusals the schema cannot express (`schema_valid_accepted`)."""

from __future__ import annotations

import time

import pytest
import requests

pytestmark = [pytest.mark.ray, pytest.mark.slow]

COLLECTION = "fuzz"  # created up front; the fuzzed memory requests with a body all go to it
EXAMPLES = 8  # hypothesis examples per operation and generation mode
# Synthesis from a schema-valid body costs seconds (with examples: sandbox runs, repair, search):
# fewer fuzzed examples, and no positive coverage cases.
SLOW = {"POST /synthesize": 3, "POST /synthesize/refine": 3}


@pytest.fixture(scope="module")
def url(shared_app):
    """The app with its defaults (the shipped engine and NVP model), deployed once for the run."""
    base = shared_app[0]
    r = requests.put(f"{base}/memory/{COLLECTION}", json={"dim": 4}, timeout=120)
    assert r.status_code == 200, r.text
    return base


def require_shipped_models(url: str) -> None:
    # Against 503s the contract proves little: a missing shipped model is a failure, not a skip.
    for route in ("/synthesize/model", "/predict/model"):
        info = requests.get(f"{url}{route}", timeout=60).json()
        assert info.get("loaded") is True, f"GET {route} says the model is not loaded: {info}"


def _detail(response) -> list | str | None:
    try:
        return response.json().get("detail")
    except Exception:
        return None


def schema_valid_accepted(ctx, response, case):
    """positive_data_acceptance, with the refusals of schema-valid requests the API documents:
    - 404 on /memory/{collection}/...: no collection of that name (the schema can't know which exist);
    - 422 whose every error is the server's own semantic check: type `value_error` (problem spec
      columns and indices, the loaded model's history/shapes/domains, a collection's dim, an
      example count against the program) or `cannot_synthesize` (no tool the engine stands behind).
      Pydantic's errors, i.e. the schema's own constraints, have other types and fail here."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code < 300:
        return None
    detail = _detail(response)
    if response.status_code == 404 and case.operation.path.startswith("/memory/") \
            and isinstance(detail, str) and detail.startswith("unknown collection"):
        return None
    if response.status_code == 422 and isinstance(detail, list) and detail \
            and all(isinstance(d, dict) and d.get("type") in ("value_error", "cannot_synthesize") for d in detail):
        return None
    raise AssertionError(f"schema-valid request refused: {response.status_code} {response.text[:500]}")


def test_schemathesis_contract(url):
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, negative_data_rejection,
                                                   response_schema_conformance, status_code_conformance)

    require_shipped_models(url)
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=60)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
              negative_data_rejection, schema_valid_accepted]
    session = requests.Session()
    failures, calls, t0 = [], [0], time.perf_counter()

    def call(case):
        calls[0] += 1
        case.call_and_validate(base_url=url, session=session, checks=checks, timeout=300)

    for result in schema.get_all_operations():
        op = result.ok()
        # Each new collection starts shard actors: memory bodies all go to the one made up front.
        fixed = {"collection": COLLECTION} if "{collection}" in op.path and op.method.upper() != "GET" else {}
        # Coverage phase: schemathesis's deterministic cases (each property missing, at its bounds, of
        # a wrong type, ...). Synthesis from schema-valid bodies costs seconds each: fuzzed only.
        modes = [schemathesis.GenerationMode.NEGATIVE] + ([] if op.label in SLOW else [schemathesis.GenerationMode.POSITIVE])
        config = schema.config.generation_for(operation=op, phase="coverage")
        for case in schema.iter_coverage_cases(op, generation_modes=modes, generation_config=config):
            case.path_parameters = {**(case.path_parameters or {}), **fixed}
            try:
                call(case)
            except (Exception, BaseExceptionGroup) as exc:  # keep going: report every failure at once
                failures.append(f"{op.label} [coverage, {case.meta.generation.mode.value}]: {exc}")
                break
        # Fuzzing phase: hypothesis, in both modes; no shrinking (each example is an HTTP call)
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            @settings(max_examples=SLOW.get(op.label, EXAMPLES), deadline=None, derandomize=True, database=None,
                      suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
            @given(case=op.as_strategy(generation_mode=mode, path_parameters=fixed or None))
            def fuzz(case):
                call(case)

            try:
                fuzz()
            except Unsatisfiable:  # no parameters or body to get wrong (GET /healthz)
                pass
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{op.label} [fuzzing, {mode.value}]: {exc}")
    elapsed = time.perf_counter() - t0
    print(f"schemathesis: {calls[0]} requests in {elapsed:.1f} s")
    assert not failures, f"{len(failures)} contract failures in {calls[0]} requests:\n\n" + "\n\n".join(failures)


def test_documented_examples_are_valid_and_accepted(url):
    """Each request-body example of the schema validates against its schema and is answered 2xx
    by the shipped models."""
    from jsonschema import Draft202012Validator

    require_shipped_models(url)
    spec = requests.get(f"{url}/openapi.json", timeout=60).json()
    found, failures = [], []
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            content = op.get("requestBody", {}).get("content", {}).get("application/json")
            if not content:
                continue
            schema = content["schema"]
            named = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]] if "$ref" in schema else schema
            examples = [e["value"] for e in content.get("examples", {}).values()] + named.get("examples", [])
            validator = Draft202012Validator({**schema, "components": spec["components"]})
            for body in examples:
                label = f"{method.upper()} {path}"
                assert "{" not in path, f"{label}: fill its path parameters to test its examples"
                found.append(label)
                if errors := [e.message for e in validator.iter_errors(body)]:
                    failures.append(f"{label} {body}: schema-invalid: {errors}")
                    continue
                r = requests.request(method, f"{url}{path}", json=body, timeout=300)
                if not 200 <= r.status_code < 300:
                    failures.append(f"{label} {body}: {r.status_code} {r.text[:800]}")
    # /relax (twice: its openapi_examples and its model's), /synthesize and /synthesize/refine
    assert {"POST /relax", "POST /synthesize", "POST /synthesize/refine"} <= set(found), found
    assert not failures, "documented examples refused:\n" + "\n".join(failures)
