"""The emergence HTTP API on Ray Serve.

    serve run serving.app:app                      # import path in cluster/serve_config.yaml
    serve run serving.app:build_app max_modules=1000
    serve run serving.app:build_app model_path=runs/nvp/default log_path=runs/nvp/predictions.jsonl
    serve run serving.app:build_app memory_root=runs/memory memory_router=memory-router

Routes stay thin: they validate the envelope (pydantic), turn the problem spec into an
`EnergyProblem` with the library's `problem_from_spec`, call the library's `relax`, and shape
the answer. CPU-bound work runs in a worker thread, so /healthz keeps answering while a
relaxation runs. POST /predict is answered by the `NVPPredictor` deployment (serving.predict),
reached through a DeploymentHandle. /memory/* forwards to the MemoryRouter actor (serving.memory). Errors use FastAPI's 422 shape: {"detail": [{"loc", "msg", "type"}]}.
"""

# No `from __future__ import annotations`: Serve's class-based view re-signs the handlers and
# FastAPI would then read string annotations as query parameters.
import asyncio
import logging
import math
import os
import re
import time
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import Body, FastAPI, Path
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema
from ray import serve
from ray.serve.handle import DeploymentHandle

import emergence
from emergence.energy.reference import lbfgsb_optimum
from emergence.energy.relax import METHODS, relative_gap, relax
from emergence.energy.scenarios import dense_ring_spec
from emergence.energy.modules import MODULE_KINDS
from emergence.energy.spec import COUPLING_FAMILIES, SpecError, problem_from_spec

from .errors import ApiError, Int
from .memory import ID_LIMIT, AddBody, CreateBody, DeleteBody, MemoryFront, SearchBody, memory_root
from .metrics import get_metrics
from .predict import PREDICT_DESCRIPTION, NVPPredictor, PredictRequest
from .synthesize import RefineRequest, SynthesizeRequest, ToolSynthesizer

logger = logging.getLogger("ray.serve")

MAX_MODULES = 200_000
MAX_COUPLINGS = 1_000_000

EXAMPLE_RELAX_BODY = {"problem": dense_ring_spec(5), "method": "accelerated", "with_optimum": True}

# The shape of a problem spec as JSON Schema: only what problem_from_spec refuses (422 naming the
# field) whatever the values. Deeper checks stay the server's: each kind's parameters, columns as
# long as their group, indices in range, weights of existing terms, the size limits.
PROBLEM_SCHEMA = {
    "type": "object",
    "description": "Problem spec (see emergence.energy.spec). Module groups and coupling families are columnar: "
                   "a scalar broadcasts, a list gives one value per module or coupling. "
                   f"Limits: {MAX_MODULES} modules, {MAX_COUPLINGS} couplings.",
    "required": ["modules"],
    "additionalProperties": False,
    "properties": {
        "modules": {"type": "array", "minItems": 1, "description": "Module groups, e.g. {kind: landau, count: 3, a: 1, b: 0.1}.",
                    "items": {"type": "object", "properties": {
                        "kind": {"enum": sorted(MODULE_KINDS), "default": "landau"},
                        "count": {"type": "integer", "minimum": 1, "description": "Modules in the group "
                                  "(default: the length of its list columns, else 1)."}}}},
        "couplings": {"type": "array", "items": {
            "type": "object", "required": ["family", "i", "j", "weight"],
            "properties": {"family": {"enum": sorted(COUPLING_FAMILIES)},
                           "i": {"type": "array", "description": "Module indices."},
                           "j": {"type": "array", "description": "Module indices, as many as i."},
                           "weight": {"description": "A number >= 0, or one per coupling."}}}},
        "eta0": {"description": "Starting order parameters in [0, 1]: one number, or one per module."},
        "weights": {"type": "object", "additionalProperties": {"type": "number", "minimum": 0},
                    "description": "Weights of named terms (local, or a coupling family)."},
        "names": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "null"}],
                  "description": "One label per module."},
    },
}


# -- envelope models ----------------------------------------------------------------------------


class RelaxRequest(BaseModel):
    """POST /relax body. Non-finite numbers (NaN, Infinity) are rejected everywhere."""

    # strict: "true" or 1 is not a flag, "5" not a step count (JSON ints stay valid floats)
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True,
                              json_schema_extra={"examples": [EXAMPLE_RELAX_BODY]})

    problem: Annotated[dict[str, Any], WithJsonSchema(PROBLEM_SCHEMA)]
    method: Literal[METHODS] = Field("accelerated", description=f"Relaxation method, one of {list(METHODS)}.")
    max_steps: Int(ge=1, le=100_000) = Field(5000, description="Iteration budget: steps tried (accelerated, prox), accepted steps (pgd), "
                           "sweeps (coordinate), iterations (admm), stage + final steps (homotopy).")
    tol: float = Field(1e-9, ge=0, description="Stop when the (prox-)gradient-mapping inf-norm is at most this; a run that can no "
                       "longer lower the energy ends as 'roundoff' (converged to float64) or 'stalled'.")
    with_optimum: bool = Field(False, description="Also compute the optimum E* with scipy L-BFGS-B and the relative gap.")
    trace: bool = Field(True, description="Include the per-step trace (energy, eta_min, eta_max).")


class RelaxTraceOut(BaseModel):
    energy: list[float] = Field(description="Energy after each accepted step (row 0 is the start); non-increasing.")
    eta_min: list[float] = Field(description="Smallest eta after each accepted step.")
    eta_max: list[float] = Field(description="Largest eta after each accepted step.")


class RelaxResponse(BaseModel):
    eta: list[float] = Field(description="Relaxed order parameters, each in [0, 1].")
    energy: float = Field(description="Final total free energy.")
    initial_energy: float = Field(description="Energy at the starting point.")
    steps: int = Field(description="Accepted steps.")
    rejected: int = Field(description="Steps tried and refused because they would have raised the energy.")
    converged: bool
    reason: str = Field(description="Why the solver stopped: tol, target_gap, max_steps, stalled, time_budget.")
    delta_f90: int = Field(description="Accepted steps until 90% of the total energy drop.")
    wall_time_s: float = Field(description="Solver wall time in seconds.")
    trace: RelaxTraceOut | None = Field(None, description="Present when the request asked for trace.")
    optimum: float | None = Field(None, description="E* from L-BFGS-B; present when with_optimum.")
    gap: float | None = Field(None, description="(energy - E*) / (initial_energy - E*); present when with_optimum.")


class ThermoCheckOut(BaseModel):
    energy_in: float
    energy_out: float
    energy_drift: float | None = Field(description="(energy_out - energy_in) / energy_in; null when energy_in is 0.")
    entropy_in: float
    entropy_out: float
    entropy_change: float
    min_value: float
    violations: list[str] = Field(description="Failed checks (after projection when `projected`).")
    projected: bool = Field(description="The field was changed to meet the limits (`enforce`).")
    violations_before: list[str] | None = Field(None, description="What the projection fixed.")


class PredictResponse(BaseModel):
    mean: list = Field(description="Predicted E_t+1: an H×W map, or a list of `steps` maps for a rollout.")
    std: list = Field(description="Calibrated std of each predicted map, same layout as `mean`.")
    shape: list[int] = Field(description="[H, W].")
    steps: int
    domain: str = Field(description="The domain used, 'unknown' for the unknown-domain embedding.")
    thermo: list[ThermoCheckOut] = Field(description="One report per step.")
    model: dict[str, Any] = Field(description="Path, history, domains and training summary of the model.")


class Health(BaseModel):
    status: str
    version: str


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: list[ErrorItem] | str


class SynthErrorBody(ErrorBody):
    cannot_synthesize: dict[str, Any] | None = Field(
        None, description="With detail[0].type 'cannot_synthesize': the engine's reason and the closest capabilities.")


# -- errors -------------------------------------------------------------------------------------


_PART = re.compile(r"^([^\[\]]*)((?:\[\d+\])*)$")


def field_path(field: str) -> list[str | int]:
    """'couplings[0].j' -> ['couplings', 0, 'j'] (SpecError.field to a FastAPI loc)."""
    out: list[str | int] = []
    for part in field.split("."):
        m = _PART.match(part)
        if not m:
            out.append(part)
            continue
        if m.group(1):
            out.append(m.group(1))
        out.extend(int(k) for k in re.findall(r"\[(\d+)\]", m.group(2)))
    return out


def unprocessable(loc: list, msg: str) -> ApiError:
    return ApiError(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


def _find_non_finite(x, path: list) -> list | None:
    """Path of the first NaN/Infinity in a parsed JSON value (json.loads accepts those tokens)."""
    if isinstance(x, float):
        return None if math.isfinite(x) else path
    if isinstance(x, dict):
        for k, v in x.items():
            if (p := _find_non_finite(v, path + [k])) is not None:
                return p
    elif isinstance(x, list):
        if x and all(type(v) is float or type(v) is int for v in x):  # fast path for number columns
            if all(math.isfinite(v) for v in x):
                return None
        for i, v in enumerate(x):
            if (p := _find_non_finite(v, path + [i])) is not None:
                return p
    return None


# -- the work (runs in a worker thread) ---------------------------------------------------------


def build_problem(spec: dict, max_modules: int = MAX_MODULES, max_couplings: int = MAX_COUPLINGS):
    """problem_from_spec with API limits; every failure is a 422 naming the field."""
    try:
        problem = problem_from_spec(spec, max_modules=max_modules, max_couplings=max_couplings)
    except SpecError as exc:
        raise unprocessable(["problem", *field_path(exc.field)], exc.message) from None
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise unprocessable(["problem"], f"invalid problem spec: {exc}") from None
    if (bad := _find_non_finite(spec, [])) is not None:
        raise unprocessable(["problem", *bad], "values must be finite (no NaN or infinity)")
    return problem


def _check_finite(answer: dict) -> None:
    for key, value in answer.items():
        if isinstance(value, dict):
            _check_finite(value)
        elif isinstance(value, list):
            if value and not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                raise ApiError(500, f"the solver produced a non-finite value in {key!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            raise ApiError(500, f"the solver produced a non-finite value in {key!r}")


def run_relax(req: RelaxRequest, max_modules: int = MAX_MODULES, max_couplings: int = MAX_COUPLINGS) -> dict:
    """Validate, relax and shape the answer of POST /relax. Raises ApiError."""
    problem = build_problem(req.problem, max_modules, max_couplings)
    try:
        result = relax(problem, method=req.method, max_steps=req.max_steps, tol=req.tol)
    except ValueError as exc:  # library errors are "field: message"
        field, sep, msg = str(exc).partition(": ")
        if not sep:
            raise unprocessable(["problem"], str(exc)) from None
        loc = [field] if field in RelaxRequest.model_fields else ["problem", *field_path(field)]
        raise unprocessable(loc, msg) from None
    answer: dict[str, Any] = {
        "eta": result.eta.tolist(),
        "energy": float(result.energy),
        "initial_energy": float(result.initial_energy),
        "steps": int(result.steps),
        "rejected": int(result.rejected),
        "converged": bool(result.converged),
        "reason": result.reason,
        "delta_f90": int(result.delta_f90),
        "wall_time_s": float(result.wall_time_s),
    }
    if req.trace:
        t = result.trace
        answer["trace"] = {"energy": list(t.energy), "eta_min": list(t.eta_min), "eta_max": list(t.eta_max)}
    if req.with_optimum:
        e_star = lbfgsb_optimum(problem)
        answer["optimum"] = e_star
        answer["gap"] = float(relative_gap(result.energy, result.initial_energy, e_star))
    _check_finite(answer)
    return answer


# -- HTTP ---------------------------------------------------------------------------------------


class RequestMetricsMiddleware:
    """Counts and times every answer (4xx/5xx included) by route template and status."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = 500

        async def send_status(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            try:
                get_metrics().record_request(route, status, time.perf_counter() - t0)
            except Exception:  # metrics must never break an answer
                pass


fastapi_app = FastAPI(
    title="emergence",
    version=emergence.__version__,
    description="Energy coordination over Ray Serve: relax a problem spec to lower its total free energy, "
    "and predict the next energy field with the NVP model.",
)
fastapi_app.add_middleware(RequestMetricsMiddleware)


def _openapi() -> dict:
    """FastAPI's OpenAPI document, with the ids' bound exact: FastAPI keeps numeric bounds as
    floats, and float(2**63 - 1) is 2**63, one id more than the server takes."""
    if fastapi_app.openapi_schema is None:
        def exact(node):
            if isinstance(node, dict):
                if node.get("exclusiveMaximum") == float(ID_LIMIT):
                    node["exclusiveMaximum"] = ID_LIMIT
                for v in node.values():
                    exact(v)
            elif isinstance(node, list):
                for v in node:
                    exact(v)

        exact(FastAPI.openapi(fastapi_app))
    return fastapi_app.openapi_schema


fastapi_app.openapi = _openapi


def _json_safe(x):
    """Non-finite floats as strings ('nan', 'inf'): they can't be written as JSON."""
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return x


@fastapi_app.exception_handler(RequestValidationError)
async def _validation_error(request, exc: RequestValidationError) -> JSONResponse:
    # FastAPI's own handler echoes the offending `input`; a NaN there would make it a 500.
    return JSONResponse(status_code=422, content={"detail": _json_safe(jsonable_encoder(exc.errors()))})


def _errors(codes: dict[int, str]) -> dict:
    """`responses=` of a route: each error status it can answer, in the error shape."""
    return {code: {"model": ErrorBody, "description": text} for code, text in codes.items()}


# FastAPI answers 400 for a body it cannot read (e.g. not UTF-8); every route with a body can.
_BAD_BODY = "The body could not be read (e.g. not UTF-8 text); invalid JSON is a 422."
_INVALID = "Invalid body; `loc` names the field, `msg` the reason."
_ERRORS = _errors({400: _BAD_BODY, 422: _INVALID, 500: "The solver produced a non-finite value."})
_PREDICT_ERRORS = _errors({400: _BAD_BODY, 422: _INVALID, 500: "The prediction failed or was non-finite.",
                           503: "No NVP model is loaded (the message says why)."})
_NO_COLLECTION = "No collection of that name (the message lists the known ones)."
_MEMORY_FAILED = "The memory router failed unexpectedly."
_SHARD_DOWN = "A shard stayed unavailable past the router's deadline."
_MEMORY_INVALID = ("Invalid body or collection name; `loc` names the field (e.g. vectors[3]), `msg` the reason. "
                   "Nothing of a refused batch is stored.")
_MEMORY_CREATE = _errors({400: _BAD_BODY, 422: _MEMORY_INVALID + " Also: the collection exists with other settings.",
                          500: _MEMORY_FAILED, 503: _SHARD_DOWN})
_MEMORY_ERRORS = _errors({400: _BAD_BODY, 404: _NO_COLLECTION, 422: _MEMORY_INVALID, 500: _MEMORY_FAILED, 503: _SHARD_DOWN})
_MEMORY_STATS = _errors({404: _NO_COLLECTION, 422: "Invalid collection name.", 500: _MEMORY_FAILED, 503: _SHARD_DOWN})
_MEMORY_LIST = _errors({500: _MEMORY_FAILED, 503: _SHARD_DOWN})
Collection = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Collection name.")]
_SYNTH_ERRORS = {**_errors({400: _BAD_BODY, 500: "Synthesis failed unexpectedly.",
                            503: "No engine model is loaded (the message says why)."}),
                 422: {"model": SynthErrorBody, "description": "Invalid body (`loc` names the field), or `cannot_synthesize`: "
                       "no tool the engine stands behind; the body's `cannot_synthesize` says why and names the closest capabilities."}}


@serve.deployment(name="EmergenceAPI", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=16)
@serve.ingress(fastapi_app)
class EmergenceAPI:
    def __init__(self, max_modules: int = MAX_MODULES, max_couplings: int = MAX_COUPLINGS,
                 predictor: DeploymentHandle | None = None, memory_root: str | None = None,
                 memory_router: str = "memory-router", synthesizer: DeploymentHandle | None = None):
        self.memory = MemoryFront(memory_root, memory_router)
        self.max_modules = max_modules
        self.max_couplings = max_couplings
        self.predictor = predictor  # None: an app built without NVP; /predict answers 503
        self.synthesizer = synthesizer  # None: an app built without the engine; /synthesize answers 503
        self.metrics = get_metrics()  # created here, inside the replica

    @fastapi_app.get("/healthz", response_model=Health, summary="Liveness and version")
    async def healthz(self) -> dict:
        return {"status": "ok", "version": emergence.__version__}

    @fastapi_app.post(
        "/relax",
        response_model=RelaxResponse,
        response_model_exclude_none=True,
        responses=_ERRORS,
        summary="Relax a problem to lower its total free energy",
    )
    async def relax(
        self,
        body: Annotated[
            RelaxRequest,
            Body(openapi_examples={"dense_ring_5": {"summary": "5-module dense ring", "value": EXAMPLE_RELAX_BODY}}),
        ],
    ):
        try:
            return JSONResponse(await self.solve(body))
        except ApiError as exc:
            return exc.response()

    async def solve(self, body: RelaxRequest | dict) -> dict:
        """The /relax answer as a dict (also callable through a DeploymentHandle); raises ApiError."""
        if isinstance(body, dict):
            body = RelaxRequest.model_validate(body)
        answer = await asyncio.to_thread(run_relax, body, self.max_modules, self.max_couplings)
        try:
            self.metrics.record_relax(body.method, answer["steps"], answer["wall_time_s"], answer["energy"])
        except Exception:
            pass
        return answer

    @fastapi_app.post(
        "/predict",
        response_model=PredictResponse,
        response_model_exclude_none=True,
        responses=_PREDICT_ERRORS,
        summary="Predict the next energy field (or roll out several) with the NVP model",
        description=PREDICT_DESCRIPTION,
    )
    async def predict(self, body: PredictRequest):
        try:
            return JSONResponse(await self._predictor().predict.remote(body))
        except ApiError as exc:  # PredictError included
            return exc.response()
        except Exception as exc:  # e.g. the predictor replica died: still a JSON answer
            logger.exception("/predict failed")
            return ApiError(500, f"prediction failed: {type(exc).__name__}").response()

    @fastapi_app.get("/predict/model", responses=_errors({503: "This app was built without the NVP predictor."}),
                     summary="The NVP model behind /predict: loaded or not, history, domains, model card")
    async def predict_model(self) -> dict:
        try:
            return await self._predictor().info.remote()
        except ApiError as exc:
            return exc.response()

    # -- tool synthesis (serving.synthesize; the ToolSynthesizer deployment does the work) ----

    @fastapi_app.post("/synthesize", responses=_SYNTH_ERRORS,
                      summary="Turn a natural-language intent into a verified, readable Python tool")
    async def synthesize(self, body: SynthesizeRequest):
        """Answer: {code, function_name, signature, docstring, program, coherence, confidence,
        verified: {passed, total} | null, reused, tool_id, latency_ms}. With `examples`, the tool
        returned passed every one of them in the sandbox."""
        return await self._synthesizer_call("synthesize", body, "/synthesize", "synthesis")

    @fastapi_app.post("/synthesize/refine", responses=_SYNTH_ERRORS,
                      summary="Change a previous tool as feedback in words says")
    async def synthesize_refine(self, body: RefineRequest):
        """Give the previous answer's `program` (or a stored tool's `tool_id`) and `feedback`
        ("only keep the first 3", "use semicolons", "don't sort them"). Answer: as /synthesize,
        plus `edit: {kind, description}` (kind: value, removal, addition, replacement, rewrite)
        and `refined_from`; `confidence` is null for a value the feedback states."""
        return await self._synthesizer_call("refine", body, "/synthesize/refine", "refinement")

    async def _synthesizer_call(self, method: str, body, route: str, what: str):
        """A ToolSynthesizer method's answer, or its ApiError / a 500 as the API's error shape."""
        if self.synthesizer is None:
            return ApiError(503, "this app was built without the synthesis deployment").response()
        try:
            return JSONResponse(await getattr(self.synthesizer, method).remote(body.model_dump()))
        except ApiError as exc:
            return exc.response()
        except Exception as exc:
            logger.exception(f"{route} failed")
            return ApiError(500, f"{what} failed: {type(exc).__name__}").response()

    @fastapi_app.get("/synthesize/model", summary="The engine behind /synthesize: loaded or not, its settings, model card")
    async def synthesize_model(self) -> dict:
        if self.synthesizer is None:
            return {"loaded": False, "reason": "this app was built without the synthesis deployment"}
        return await self.synthesizer.info.remote()

    # -- vector memory (serving.memory; the MemoryRouter actor does the work) ----------------

    async def _memory(self, call):
        try:
            return JSONResponse(await call)
        except ApiError as exc:
            return exc.response()

    @fastapi_app.put("/memory/{collection}", responses=_MEMORY_CREATE, summary="Create a vector collection (same settings again: no-op)")
    async def memory_create(self, collection: Collection, body: CreateBody):
        return await self._memory(self.memory.create(collection, body))

    @fastapi_app.post("/memory/{collection}/add", responses=_MEMORY_ERRORS,
                      summary="Store vectors with ids and metadata; acknowledged once every row is in its shard's fsynced log")
    async def memory_add(self, collection: Collection, body: AddBody):
        return await self._memory(self.memory.add(collection, body))

    @fastapi_app.post("/memory/{collection}/search", responses=_MEMORY_ERRORS,
                      summary="Top-k nearest stored vectors of each query, merged over all shards")
    async def memory_search(self, collection: Collection, body: SearchBody):
        return await self._memory(self.memory.search(collection, body))

    @fastapi_app.post("/memory/{collection}/delete", responses=_MEMORY_ERRORS, summary="Delete vectors by id")
    async def memory_delete(self, collection: Collection, body: DeleteBody):
        return await self._memory(self.memory.delete(collection, body))

    @fastapi_app.get("/memory/{collection}/stats", responses=_MEMORY_STATS, summary="Count, settings and per-shard state")
    async def memory_stats(self, collection: Collection):
        return await self._memory(self.memory.stats(collection))

    @fastapi_app.get("/memory", responses=_MEMORY_LIST, summary="The collections and their settings")
    async def memory_list(self):
        return await self._memory(self.memory.list())

    def _predictor(self) -> DeploymentHandle:
        if self.predictor is None:
            raise ApiError(503, "this app was built without the NVP predictor deployment")
        return self.predictor


class AppArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_modules: int = Field(MAX_MODULES, ge=1)
    max_couplings: int = Field(MAX_COUPLINGS, ge=0)
    model_path: str | None = Field(None, description="NVP model directory; default the shipped one (emergence/models/nvp) or $EMERGENCE_NVP_MODEL.")
    log_path: str | None = Field(None, description="Append one energy-vector JSONL record per predicted step here.")
    memory_root: str | None = Field(None, description="Directory of the vector memory; default runs/memory or $EMERGENCE_MEMORY_ROOT.")
    memory_router: str = Field("memory-router", description="Name of the MemoryRouter actor (namespace 'emergence').")
    engine_path: str | None = Field(None, description="Trained engine (python -m training.emergence); default the shipped one (emergence/models/engine/model.pt) or $EMERGENCE_ENGINE_MODEL.")
    synthesis_threshold: float = Field(0.5, ge=0, le=1.01, description="Confidence (the answer's fitted probability "
                                       "of being right; coherence for older engines) below which /synthesize answers "
                                       "cannot_synthesize (without examples).")


def _absolute(path: str | None) -> str | None:
    # Resolved here, in the driver: a replica's cwd need not be the caller's.
    return None if path is None else os.path.abspath(os.path.expanduser(path))


def build_app(args: dict | None = None):
    """Application builder: `serve run serving.app:build_app [max_modules=N] [max_couplings=M]
    [model_path=DIR] [log_path=FILE]`."""
    a = AppArgs.model_validate(args or {})
    predictor = NVPPredictor.bind(model_path=_absolute(a.model_path), log_path=_absolute(a.log_path))
    synthesizer = ToolSynthesizer.bind(model_path=_absolute(a.engine_path), memory_root=memory_root(a.memory_root),
                                       memory_router=a.memory_router, threshold=a.synthesis_threshold)
    return EmergenceAPI.bind(max_modules=a.max_modules, max_couplings=a.max_couplings, predictor=predictor,
                             memory_root=memory_root(a.memory_root), memory_router=a.memory_router,
                             synthesizer=synthesizer)


app = build_app()
