"""Tool synthesis on Ray Serve: the `ToolSynthesizer` deployment behind POST /synthesize.

POST /synthesize/refine edits a previous tool as feedback in words says (`SynthesisService.refine`).
The replica loads the trained engine (`python -m training.emergence`) in its constructor and
wires the pipeline (`emergence.synthesis.pipeline.SynthesisService`) to the cluster: the
hierarchical memory on the sharded `MemoryRouter` when one runs (else a local durable store
under the memory root), and example checks through the `SandboxPool` actor (created if absent).
Synthesis is CPU work and blocking actor calls, so it runs in a worker thread.

Metrics (ray.serve.metrics, exported as ray_<name>): `tool_synthesis_total{outcome}`,
`tool_synthesis_latency_seconds`, `tool_synthesis_success_rate` (answered / asked, this replica).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ray import serve

from emergence.models import default_path

from .errors import ApiError, Int, STRICT, exactly_one
from .memory import ID_LIMIT

logger = logging.getLogger("ray.serve")

# The shipped engine (emergence/models/engine); EMERGENCE_ENGINE_MODEL or model_path points elsewhere.
DEFAULT_MODEL = str(default_path("engine"))
LATENCY_BOUNDARIES = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0]


# strict: no coercion ("2" is not an arity, 1 is not a string); Any-typed values pass as sent.
# "Not only whitespace": the service strips the text and refuses (422) what is left empty.
WORDS = r"\S"


class Example(BaseModel):
    model_config = STRICT
    args: list[Any] = Field(min_length=1, max_length=4, description="Positional arguments of one call "
                            "(as many as the tool's parameters).")
    expected: Any = Field(description="What the tool must return for them.")


def _same_arity(k: int) -> dict:
    """Schema branch: arity k (or unset) and every example giving k arguments."""
    return {"properties": {"arity": {"enum": [k, None]},
                           "examples": {"items": {"properties": {"args": {"minItems": k, "maxItems": k}}}}}}


class SynthesizeRequest(BaseModel):
    # The examples' argument count must agree with `arity` and with each other (the service
    # answers 422 otherwise): one anyOf branch per arity says so. The documented examples don't
    # set an arity that another one's `examples` would contradict.
    model_config = ConfigDict(**STRICT, json_schema_extra={
        "anyOf": [_same_arity(k) for k in range(1, 5)],
        "examples": [
            {"intent": "list the distinct domains that an HTML page links to"},
            {"intent": "keep the numbers above k", "arity": 2,
             "examples": [{"args": [[1, 5, 9], 4], "expected": [5, 9]}]}]})
    intent: str = Field(min_length=1, max_length=2000, pattern=WORDS, description="What the tool should do, in words.")
    arity: Int(ge=1, le=4) | None = Field(None, description="Number of parameters (default: from the examples, else 1).")
    examples: list[Example] | None = Field(None, max_length=20,
                                           description="Calls the tool must reproduce; checked in the sandbox.")
    n_candidates: Int(ge=1, le=64) = Field(10, description="Candidates ranked (and tried against examples).")


ABOVE_FIVE = {"name": "above_five", "intent": "keep the numbers above 5, sorted",
              "params": [{"name": "numbers", "type": "list[int]"}],
              "steps": [{"op": "FILTER.greater", "args": {"k": {"const": 5}}}, {"op": "SORT.asc"}]}


class RefineRequest(BaseModel):
    # Exactly one of program / tool_id (the service answers 422 otherwise). Both documented
    # examples refine a program (a tool_id only exists once stored) of one parameter, so any mix
    # of their fields is a valid request too.
    model_config = ConfigDict(**STRICT, json_schema_extra={
        **exactly_one(program="object", tool_id="integer"),
        "examples": [
            {"program": ABOVE_FIVE, "feedback": "above 10 instead"},
            {"program": ABOVE_FIVE, "feedback": "above 1 instead",
             "examples": [{"args": [[3, 1, 2]], "expected": [2, 3]}]}]})
    feedback: str = Field(min_length=1, max_length=1000, pattern=WORDS, description="What to change, in words.")
    program: dict | None = Field(None, description="A previous answer's `program` (give this or `tool_id`); "
                                 "a linear pipeline of the DSL's operations.")
    tool_id: Int(ge=0, lt=ID_LIMIT) | None = Field(None, description="A stored tool's id (give this or `program`).")
    examples: list[Example] | None = Field(None, max_length=20, description="Calls the refined tool must "
                                           "reproduce (one argument per parameter of the program); checked in the sandbox.")


def cannot_synthesize(detail: dict, field: str = "intent") -> ApiError:
    """422 in the API's error shape, plus the engine's explanation under `cannot_synthesize`."""
    return ApiError(422, [{"loc": ["body", field], "msg": f"cannot synthesize: {detail['message']}",
                           "type": "cannot_synthesize"}], {"cannot_synthesize": detail})


class _Metrics:
    def __init__(self):
        from ray.serve.metrics import Counter, Gauge, Histogram

        self.total = Counter("tool_synthesis", description="Synthesis requests by outcome "
                             "(synthesized, verified, reused, refined, cannot_synthesize, invalid, error).", tag_keys=("outcome",))
        self.latency = Histogram("tool_synthesis_latency_seconds", description="Time per synthesis (seconds).",
                                 boundaries=LATENCY_BOUNDARIES)
        self.success = Gauge("tool_synthesis_success_rate", description="Answered / asked, since this replica started.")
        self.asked = self.answered = 0
        self.lock = threading.Lock()

    def record(self, outcome: str, seconds: float) -> None:
        with self.lock:
            self.asked += 1
            self.answered += outcome in ("synthesized", "verified", "reused", "refined")
            rate = self.answered / self.asked
        self.total.inc(tags={"outcome": outcome})
        self.latency.observe(seconds)
        self.success.set(rate)


def _memory(memory_root: str | None, router_name: str):
    """Hierarchical memory on the cluster's router when it runs, else a local durable store."""
    import ray

    from emergence.memory.hierarchical import HierarchicalMemory, LocalBackend
    from emergence.synthesis.encoder import DIM

    try:
        from actors.memory_shard import RouterBackend
        router = ray.get_actor(router_name, namespace="emergence")
        return HierarchicalMemory(RouterBackend(router), dim=DIM, prefix="engine-"), router
    except ValueError:  # no router running
        root = os.path.join(memory_root or "runs/memory", "engine-local")
        return HierarchicalMemory(LocalBackend(root), dim=DIM, prefix="engine-"), None


def _verifier(pool_name: str):
    """verify(code, fn, tests) through the SandboxPool actor (kept alive by the replica)."""
    import ray

    from actors.sandbox_worker import get_or_create_pool
    from emergence.synthesis.pipeline import sandbox_verifier

    try:
        pool = ray.get_actor(pool_name, namespace="emergence")
    except ValueError:
        pool = get_or_create_pool(pool_name, size=1)
    return sandbox_verifier(lambda code, fn, tests: ray.get(pool.run.remote(code, fn, tests), timeout=60)), pool


@serve.deployment(name="ToolSynthesizer", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=8)
class ToolSynthesizer:
    def __init__(self, model_path: str | None = None, memory_root: str | None = None,
                 memory_router: str = "memory-router", sandbox_pool: str = "sandbox-pool", threads: int = 1,
                 threshold: float = 0.5):
        import torch

        torch.set_num_threads(threads)
        self.model_path = model_path or os.path.abspath(DEFAULT_MODEL)
        self.threshold = threshold  # confidence below which the answer is "cannot synthesize"
        self.memory_root, self.memory_router, self.sandbox_pool = memory_root, memory_router, sandbox_pool
        self.service = None
        self.card: dict | None = None  # the model card beside the model (the shipped one has one)
        self.load_error = None
        self.metrics = _Metrics()
        self._handles = []  # actor handles the replica must keep
        self._lock = threading.Lock()
        self._load()

    def _load(self) -> None:
        from emergence.models import check
        from emergence.synthesis.engine import Engine
        from emergence.synthesis.pipeline import SynthesisService

        if not os.path.exists(self.model_path):
            self.load_error = (f"no engine model at {self.model_path}: point model_path at a trained one "
                               "(`python -m training.emergence`), or leave it unset for the shipped engine")
            return
        try:
            self.card = check(self.model_path)  # a shipped model must match its card's checksum
            engine = Engine.load(self.model_path, threshold=self.threshold)
            engine.encoder.encode(["warm up"])  # load the sentence encoder now, not on the first request
            memory, router = _memory(self.memory_root, self.memory_router)
            verify, pool = _verifier(self.sandbox_pool)
            self._handles = [h for h in (router, pool) if h is not None]
            self.service = SynthesisService(engine, memory=memory, verify=verify)
            self.load_error = None
        except Exception as exc:  # keep answering (503 with the reason) rather than crash-loop
            logger.exception("loading the engine failed")
            self.load_error = f"loading the engine failed: {type(exc).__name__}: {exc}"

    def info(self) -> dict:
        if self.service is None:
            return {"loaded": False, "reason": self.load_error, "model_path": self.model_path, "card": self.card}
        from emergence.synthesis.ops import OPS

        svc, eng = self.service, self.service.engine
        return {"loaded": True, "model_path": self.model_path, "sample_steps": eng.steps, "samples": eng.n_samples,
                "threshold": eng.threshold, "operations": len(OPS),
                # crucible-tuned (`training.crucible`): by which run, from which base, on what, how long
                "tuned": bool(eng.tuning), "crucible": eng.tuning,
                # what a request with examples gets: wider draws, candidates checked, a second still wider
                # round if none passes, then repairs, then search
                "with_examples": {"samples": svc.example_samples, "readings_per_draw": svc.example_keep,
                                  "slot_temperature": svc.example_temperature, "candidates_checked": svc.max_verified,
                                  "second_round": {"samples": svc.wide_samples, "readings_per_draw": svc.wide_keep,
                                                   "slot_temperature": svc.wide_temperature},
                                  "repair_s": svc.repair_s, "search_s": svc.search_s},
                "card": self.card}

    async def synthesize(self, body: dict) -> dict:
        """The /synthesize answer; raises ApiError (422 invalid or cannot synthesize, 503 no model)."""
        if self.service is None:
            raise ApiError(503, self.load_error or "the engine is not loaded")
        req = body if isinstance(body, SynthesizeRequest) else SynthesizeRequest.model_validate(body)
        examples = [e.model_dump() for e in req.examples] if req.examples else None
        arity = req.arity or (len(examples[0]["args"]) if examples else 1)
        return await self._measured(self.service.synthesize, req.intent, arity, examples, req.n_candidates)

    async def refine(self, body: dict) -> dict:
        """The /synthesize/refine answer: a previous tool edited as the feedback says."""
        if self.service is None:
            raise ApiError(503, self.load_error or "the engine is not loaded")
        req = body if isinstance(body, RefineRequest) else RefineRequest.model_validate(body)
        examples = [e.model_dump() for e in req.examples] if req.examples else None
        return await self._measured(self.service.refine, req.feedback, req.program, req.tool_id, examples)

    async def _measured(self, method, *args) -> dict:
        """Run a service call in a worker thread, counting its outcome and time in the metrics."""
        t0 = time.perf_counter()
        outcome = "error"
        try:
            answer = await asyncio.to_thread(self._call, method, *args)
            outcome = ("refined" if answer["found_by"] == "refinement" else "reused" if answer["reused"]
                       else "verified" if answer["verified"] else "synthesized")
            return answer
        except ApiError as exc:
            outcome = "cannot_synthesize" if "cannot_synthesize" in exc.extra else "invalid"
            raise
        finally:
            self.metrics.record(outcome, time.perf_counter() - t0)

    def _call(self, method, *args) -> dict:  # method: the service's synthesize or refine
        from emergence.memory import MemoryInputError
        from emergence.synthesis.engine import SynthesisInputError
        from emergence.synthesis.pipeline import CannotSynthesize

        try:
            with self._lock:  # one synthesis at a time per replica: the models are not thread-safe
                return method(*args)
        except SynthesisInputError as exc:
            loc = [int(p) if p.isdigit() else p for p in exc.field.replace("]", "").replace("[", ".").split(".")]
            raise ApiError(422, [{"loc": ["body", *loc], "msg": str(exc), "type": "value_error"}]) from None
        except CannotSynthesize as exc:
            raise cannot_synthesize(exc.detail, "feedback" if method == self.service.refine else "intent") from None
        except MemoryInputError as exc:  # the request was fine; the engine's memory call was not
            logger.exception("engine memory call failed")
            raise ApiError(500, f"the engine's memory refused a call: {str(exc).splitlines()[-1][:300]}") from None
