"""Next-field prediction on Ray Serve: the NVP predictor deployment behind POST /predict.

Three layers, the first two plain functions testable without Ray:
- `parse_request(body, config)`: the request body -> a `Job` (the model's input window, domain,
  dt, dx, steps, thermodynamic limits); every problem is a `PredictError` 422 in FastAPI's shape.
- `predict_grouped(model, jobs)`: one `model.predict` per group of jobs sharing (shape, domain,
  dt, dx); `finish(...)` applies the thermodynamic checks and shapes the answer.
- `NVPPredictor`: the deployment. The model is loaded in the constructor (or on `reconfigure`);
  single predictions go through `@serve.batch`, so requests queued together share one forward
  pass; rollouts (`steps` given and > 1) run per request.

jax is imported only inside the predictor replica (through `emergence.nvp.train`), never in the
ingress that imports this module for the request model.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema
from ray import serve

from emergence.nvp.atlas import ALLOWED_SHAPES
from emergence.nvp.thermo import ThermodynamicViolation, ThermoLimits, check_field, thermo_compile

from .errors import ApiError, Int, exactly_one
from .metrics import get_metrics

logger = logging.getLogger("ray.serve")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MAX_PREVIOUS = 16  # earlier fields accepted in `previous`; far above any useful history
MAX_NPY_BYTES = 64 * 1024 * 1024
MAX_BATCH_SIZE = 8
BATCH_WAIT_TIMEOUT_S = 0.01
USER_CONFIG_KEYS = {"model_path", "log_path", "max_batch_size", "batch_wait_timeout_s"}
ALLOWED = ", ".join(f"{h}x{w}" for h, w in ALLOWED_SHAPES)

# An H×W map; parse_request refuses (422) empty maps and negative energies, so the schema says so.
Map = Annotated[list[list[float]], WithJsonSchema({
    "type": "array", "minItems": 1,
    "items": {"type": "array", "minItems": 1, "items": {"type": "number", "minimum": 0}}})]

PREDICT_DESCRIPTION = f"""Predict the next energy field E_t+1 (mean and calibrated std) with the NVP model.

**Input window.** The model reads its last `history` fields, oldest first, ending with E_t
(`GET /predict/model` tells the history; the default model's is 3). Give them either as
- `field` (E_t, an H×W nested list) plus `previous` (the earlier fields, oldest first, each H×W), or
- `npy_b64`: base64 of a `.npy` file (no pickles) holding the whole window (history, H, W), or
  E_t alone (H, W) plus `previous` as lists.

Maps must be {ALLOWED} and hold finite, non-negative energies.

**Context.** `domain` is one of the model's domains; omit it (or say "unknown") for a field
from an unseen domain. `dt` and `dx` are the step and grid spacing (> 0).

**Rollout.** With `steps` (1..100) the model feeds each predicted mean back in; `mean` and
`std` are then lists of `steps` maps (std is each step's one-step std given the predicted
history, not an accumulated uncertainty). Without `steps` they are single H×W maps.

**Thermodynamics.** Every step is checked (non-negativity always; `energy_budget`: relative
drift of the total; `entropy_max`: nats of the normalised map; `second_law`: entropy must not
fall) and the report is in `thermo`, one entry per step. With `enforce` the field is projected
onto the limits (negatives clipped, total rescaled into the budget, blended towards E_t) and
the projected field is what is returned and rolled out.

Invalid input is a 422 whose `detail[0].loc` names the field and `msg` the reason; 503 when no
model is loaded."""


# -- request model ------------------------------------------------------------------------------


class PredictRequest(BaseModel):
    """POST /predict body. Non-finite numbers (NaN, Infinity) are rejected everywhere."""

    # strict: no coercion ("1" or true are not numbers, 1 is not a flag); JSON ints stay numbers.
    # Exactly one of field / npy_b64: read_window answers 422 otherwise.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True,
                              json_schema_extra=exactly_one(field="array", npy_b64="string"))

    field: Map | None = Field(None, description="E_t as an H×W nested list. Give this or `npy_b64`.")
    previous: list[Map] | None = Field(
        None, max_length=MAX_PREVIOUS,
        description="The fields before E_t, oldest first (history - 1 of them), each H×W.")
    npy_b64: str | None = Field(
        None, max_length=MAX_NPY_BYTES * 4 // 3 + 4,
        description="Base64 of a .npy file: the window (history, H, W), oldest first, or E_t alone (H, W).")
    domain: str | None = Field(
        None, max_length=64, description="One of the model's domains; omitted or 'unknown' for an unseen domain.")
    dt: float = Field(1.0, gt=0, description="Time step between fields.")
    dx: float = Field(1.0, gt=0, description="Grid spacing.")
    steps: Int(ge=1, le=100) | None = Field(
        None, description="Roll out this many steps; mean/std become lists of maps, one per step.")
    energy_budget: float | None = Field(
        None, ge=0, description="Allowed relative drift of the total energy per step (0 = exact conservation).")
    entropy_max: float | None = Field(None, gt=0, description="Ceiling on the entropy of each predicted map (nats).")
    second_law: bool = Field(False, description="Each step's entropy must not fall below the previous field's.")
    enforce: bool = Field(False, description="Project each predicted field onto the limits instead of only reporting.")


# -- errors -------------------------------------------------------------------------------------


class PredictError(ApiError):
    """A /predict failure with its HTTP status; a 422's detail is FastAPI's [{loc, msg, type}]."""


def invalid(loc: list, msg: str) -> PredictError:
    return PredictError(422, [{"loc": ["body", *loc], "msg": msg, "type": "value_error"}])


# -- parsing (pure) -----------------------------------------------------------------------------


@dataclass
class Job:
    window: np.ndarray  # (history, H, W) float32, oldest first, ending with E_t
    domain: str | None  # None = the unknown-domain embedding
    dt: float
    dx: float
    steps: int | None  # None: one prediction answered as single maps
    limits: ThermoLimits
    enforce: bool

    @property
    def key(self) -> tuple:
        """Requests with the same key can share one forward pass."""
        return (self.window.shape, self.domain, self.dt, self.dx)


def decode_npy(text: str, loc: list) -> np.ndarray:
    """base64 .npy -> a real-valued float64 array; pickles, .npz and non-numeric dtypes are refused."""
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise invalid(loc, "not valid base64") from None
    if len(raw) > MAX_NPY_BYTES:
        raise invalid(loc, f"the .npy file is larger than {MAX_NPY_BYTES // 2**20} MiB")
    try:
        arr = np.load(io.BytesIO(raw), allow_pickle=False)
    except Exception as exc:  # np.load raises ValueError, OSError, EOFError, ... for bad files
        raise invalid(loc, f"not a readable .npy file ({type(exc).__name__}: {exc})") from None
    if not isinstance(arr, np.ndarray):  # an .npz archive loads as a mapping
        if hasattr(arr, "close"):
            arr.close()
        raise invalid(loc, "expected a .npy file holding one array, got an .npz archive")
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise invalid(loc, f"the array must hold real numbers, got dtype {arr.dtype}")
    return arr.astype(np.float64)


def _map_from_lists(rows: Map, loc: list) -> np.ndarray:
    if not rows:
        raise invalid(loc, "empty map: expected H rows of W numbers")
    width = len(rows[0])
    for i, row in enumerate(rows):
        if len(row) != width:
            raise invalid([*loc, i], f"ragged map: row {i} has {len(row)} values, row 0 has {width}")
    return np.asarray(rows, dtype=np.float64)


def _check_values(arr: np.ndarray, loc: list) -> np.ndarray:
    """float64 (k, H, W) -> float32, refusing non-finite and negative energies (index named)."""
    with np.errstate(over="ignore"):  # overflow to inf is reported just below
        out = arr.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        idx = np.argwhere(bad)[0].tolist()
        raise invalid(loc, f"values must be finite float32 numbers (no NaN, infinity or |x| > 3.4e38); "
                           f"first at index {idx}")
    if (out < 0).any():
        idx = np.argwhere(out < 0)[0]
        raise invalid(loc, f"energy must be >= 0; got {float(out[tuple(idx)]):g} at index {idx.tolist()}")
    return out


def _check_shape(shape: tuple, loc: list) -> None:
    if tuple(shape) not in ALLOWED_SHAPES:
        raise invalid(loc, f"map shape {'x'.join(map(str, shape))} is not allowed; allowed: {ALLOWED}")


def read_window(req: PredictRequest) -> tuple[np.ndarray, list]:
    """The fields the body gives, stacked oldest first: ((k, H, W) float32, loc to blame for k)."""
    if (req.field is None) == (req.npy_b64 is None):
        raise invalid([], "give exactly one of `field` (E_t as an H×W nested list) or `npy_b64` (base64 .npy)")
    if req.npy_b64 is not None:
        src = ["npy_b64"]
        arr = decode_npy(req.npy_b64, src)
        if arr.ndim not in (2, 3):
            raise invalid(src, f"the array must be (H, W) or (history, H, W), got shape {arr.shape}")
        if arr.ndim == 3 and req.previous is not None:
            raise invalid(["previous"], "npy_b64 already holds a window of fields; leave out `previous`")
        latest = arr if arr.ndim == 3 else arr[None]
    else:
        src = ["field"]
        latest = _map_from_lists(req.field, src)[None]
    _check_shape(latest.shape[1:], src)
    latest = _check_values(latest, src)
    parts = []
    for i, rows in enumerate(req.previous or []):
        loc = ["previous", i]
        m = _map_from_lists(rows, loc)
        if m.shape != latest.shape[1:]:
            raise invalid(loc, f"shape {m.shape[0]}x{m.shape[1]} differs from E_t's "
                               f"{latest.shape[1]}x{latest.shape[2]}; every field of the window has one shape")
        parts.append(_check_values(m[None], loc))
    window = np.concatenate([*parts, latest]) if parts else latest
    return window, (["previous"] if req.previous is not None else src)


def resolve_domain(name: str | None, domains: tuple[str, ...]) -> str | None:
    """A known domain name, or None (the unknown-domain embedding) for None/'unknown'."""
    if name is None or name == "unknown":
        return None
    if name not in domains:
        raise invalid(["domain"], f"unknown domain {name!r}; allowed: {', '.join(domains)}, "
                                  "or leave it out (or 'unknown') for a field from an unseen domain")
    return name


def parse_request(body: PredictRequest | dict, config) -> Job:
    """Validate a body against the model's `config` (history, domains, multiple) -> Job."""
    if not isinstance(body, PredictRequest):
        try:
            body = PredictRequest.model_validate(body)
        except ValidationError as exc:
            raise PredictError(422, [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                                     for e in exc.errors()]) from None
    window, blame = read_window(body)
    k, h, w = window.shape
    if k != config.history:
        need = config.history - 1
        if k < config.history:
            msg = (f"the model needs the last {config.history} fields (E_t and the {need} before it); got {k}: "
                   f"give the earlier ones, oldest first, in `previous` (or the whole window as a "
                   f"({config.history}, H, W) npy_b64)")
        else:
            msg = f"too many fields: the model reads {config.history} (E_t and {need} before it), got {k}"
        raise invalid(blame, msg)
    if h % config.multiple or w % config.multiple:
        raise invalid(blame, f"map sides must be divisible by {config.multiple} for this model, got {h}x{w}")
    domain = resolve_domain(body.domain, tuple(config.domains))
    limits = thermo_compile(body.energy_budget, body.entropy_max, body.second_law,
                            mode="project" if body.enforce else "raise")
    return Job(window, domain, float(body.dt), float(body.dx), body.steps, limits, body.enforce)


# -- prediction (pure) --------------------------------------------------------------------------


def _pad_pow2(windows: np.ndarray) -> np.ndarray:
    # jax compiles once per batch shape; padding to a power of two bounds the compilations per
    # map shape at log2(max_batch_size) + 1 instead of one per batch size seen.
    n = len(windows)
    size = 1 << (n - 1).bit_length()
    return windows if size == n else np.concatenate([windows, np.repeat(windows[:1], size - n, axis=0)])


def predict_grouped(model, jobs: list[Job]) -> tuple[list, list[int]]:
    """One `model.predict` per group of jobs sharing (shape, domain, dt, dx). Returns, in job
    order, (mean, std) per job -- or the exception its group raised, so one bad group does not
    fail the others -- and the group sizes."""
    groups: dict[tuple, list[int]] = {}
    for i, job in enumerate(jobs):
        groups.setdefault(job.key, []).append(i)
    results: list[Any] = [None] * len(jobs)
    sizes = []
    for (_, domain, dt, dx), idx in groups.items():
        windows = np.stack([jobs[i].window for i in idx])
        try:
            mean, std = model.predict(_pad_pow2(windows), domain=domain, dt=dt, dx=dx)
        except Exception as exc:
            for i in idx:
                results[i] = exc
            continue
        for k, i in enumerate(idx):
            results[i] = (mean[k], std[k])
        sizes.append(len(idx))
    return results, sizes


def thermo_step(mean: np.ndarray, prev: np.ndarray, job: Job) -> tuple[np.ndarray, dict]:
    """Check (and with `enforce`, project) one predicted map against the previous one."""
    if job.enforce:
        try:
            field, checks = job.limits(mean, prev)
        except ThermodynamicViolation as exc:  # only when even the input field breaks the limits
            raise invalid(["enforce"], f"cannot enforce the limits: {exc}") from None
        return field, checks[0]
    return mean, {**check_field(mean, prev, job.limits), "projected": False}


def run_rollout(model, job: Job) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """`job.steps` autoregressive steps, each checked (and projected) before it is fed back."""
    checks: list[dict] = []

    def step(mean, prev):  # (1, H, W) batches from model.rollout
        field, check = thermo_step(mean[0], prev[0], job)
        checks.append(check)
        return field[None]

    means, stds = model.rollout(job.window[None], job.steps, job.domain, job.dt, job.dx, step_fn=step)
    return means[0], stds[0], checks


def _finite_or_none(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None  # e.g. the drift of an all-zero input field; JSON has no infinity
    if isinstance(x, dict):
        return {k: _finite_or_none(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite_or_none(v) for v in x]
    return x


def answer(job: Job, means: np.ndarray, stds: np.ndarray, checks: list[dict], model_info: dict) -> dict:
    """The /predict answer: (steps, H, W) means and stds, one thermo report per step."""
    if not (np.isfinite(means).all() and np.isfinite(stds).all()):
        raise PredictError(500, "the model produced a non-finite value")
    single = job.steps is None
    return {
        "mean": (means[0] if single else means).tolist(),
        "std": (stds[0] if single else stds).tolist(),
        "shape": list(job.window.shape[1:]),
        "steps": int(len(means)),
        "domain": job.domain or "unknown",
        "thermo": [_finite_or_none(c) for c in checks],
        "model": model_info,
    }


def resolve_model_path(path: str | os.PathLike | None) -> Path:
    """Absolute model path: relative ones against the cwd, else against the project root (a
    replica's cwd need not be the checkout)."""
    if path is None:
        from emergence.nvp.default import DEFAULT_MODEL_DIR

        path = DEFAULT_MODEL_DIR
    p = Path(path).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve()
    return PROJECT_ROOT / p


# -- the deployment -----------------------------------------------------------------------------


@serve.deployment(name="NVPPredictor", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=32)
class NVPPredictor:
    """Serves one NVP model. user_config (optional): {model_path, log_path, max_batch_size,
    batch_wait_timeout_s}; a changed model_path reloads the model in place."""

    def __init__(self, model_path: str | None = None, log_path: str | None = None):
        self.metrics = get_metrics()
        self.log_path = log_path
        self.model = None
        self.card: dict | None = None  # the model card beside the model (the shipped one has one)
        self.model_path: Path | None = None
        self.error: str | None = None
        self.requests = 0  # single predictions answered through the batch
        self.model_calls = 0  # forward passes they took: fewer than requests when batching works
        self._load(model_path)

    def _load(self, model_path) -> None:
        # A missing model leaves the replica up (so /relax keeps working): /predict answers 503
        # saying why, and GET /predict/model reports it.
        self.model_path = resolve_model_path(model_path)
        try:
            from emergence.models import check
            from emergence.nvp.train import NVPModel

            self.card = check(self.model_path)  # a shipped model must match its card's checksum
            self.model = NVPModel.load(self.model_path)
            self.error = None
        except Exception as exc:
            self.model = self.card = None
            self.error = f"{type(exc).__name__}: {exc}"
            logger.warning("NVP model not loaded from %s: %s", self.model_path, self.error)

    def reconfigure(self, config: dict) -> None:
        config = dict(config or {})
        if unknown := sorted(set(config) - USER_CONFIG_KEYS):
            raise ValueError(f"NVPPredictor user_config: unknown key(s) {unknown}; allowed: {sorted(USER_CONFIG_KEYS)}")
        if "model_path" in config and resolve_model_path(config["model_path"]) != self.model_path:
            self._load(config["model_path"])
        if "log_path" in config:
            self.log_path = config["log_path"]
        if "max_batch_size" in config:
            self._predict_batch.set_max_batch_size(int(config["max_batch_size"]))
        if "batch_wait_timeout_s" in config:
            self._predict_batch.set_batch_wait_timeout_s(float(config["batch_wait_timeout_s"]))

    def info(self) -> dict:
        """What GET /predict/model shows: whether a model is loaded, and its interface."""
        out: dict[str, Any] = {"loaded": self.model is not None, "path": str(self.model_path),
                               "allowed_shapes": [list(s) for s in ALLOWED_SHAPES],
                               "requests_batched": self.requests, "model_calls": self.model_calls}
        if self.model is None:
            out["error"] = self.error
            return out
        return {**out, **self._model_info(), "card": self.card}

    def _model_info(self) -> dict:
        c, meta = self.model.config, self.model.meta
        info = {"path": str(self.model_path), "history": c.history, "domains": list(c.domains), "multiple": c.multiple}
        for key in ("epochs", "final_val_mse"):
            if isinstance(meta.get(key), (int, float)):
                info[key] = meta[key]
        return info

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_TIMEOUT_S)
    async def _predict_batch(self, jobs: list[Job]) -> list:
        results, sizes = await asyncio.to_thread(predict_grouped, self.model, jobs)
        self.requests += len(jobs)
        self.model_calls += len(sizes)
        for size in sizes:
            _safely(self.metrics.record_predict_group, size)
        return results

    async def predict(self, body: PredictRequest | dict) -> dict:
        """The /predict answer as a dict (also callable through a DeploymentHandle); raises PredictError."""
        if self.model is None:
            raise PredictError(503, f"no NVP model loaded from {self.model_path} ({self.error}); "
                                    "set model_path, or restore the shipped one (`git checkout -- emergence/models/nvp`)")
        job = await asyncio.to_thread(parse_request, body, self.model.config)
        if job.steps is None or job.steps == 1:
            result = await self._predict_batch(job)
            if isinstance(result, Exception):
                raise PredictError(500, f"prediction failed: {result}")
            out = await asyncio.to_thread(self._finish_one, job, *result)
        else:
            out = await asyncio.to_thread(self._finish_rollout, job)
        violations = sum(len(c["violations"]) for c in out["thermo"])
        _safely(self.metrics.record_prediction, out["domain"], out["steps"], violations)
        return out

    def _finish_one(self, job: Job, mean: np.ndarray, std: np.ndarray) -> dict:
        field, check = thermo_step(mean, job.window[-1], job)
        self._log(job, field[None], std[None], [check])
        return answer(job, field[None], std[None], [check], self._model_info())

    def _finish_rollout(self, job: Job) -> dict:
        means, stds, checks = run_rollout(self.model, job)
        self._log(job, means, stds, checks)
        return answer(job, means, stds, checks, self._model_info())

    def _log(self, job: Job, means, stds, checks) -> None:
        """One energy-vector record per step, when a log path is configured (off by default)."""
        if not self.log_path:
            return
        from emergence.nvp.vector_log import log_energy_vector

        prev = job.window[-1]
        try:
            for i, (mean, std, check) in enumerate(zip(means, stds, checks)):
                log_energy_vector(self.log_path, prev, mean, std, domain=job.domain or "unknown",
                                  model=str(self.model_path), checks=check, step=i + 1, dt=job.dt, dx=job.dx)
                prev = mean
        except (OSError, ValueError) as exc:  # logging is for later study; it never fails an answer
            logger.warning("prediction log %s: %s", self.log_path, exc)


def _safely(fn, *args) -> None:
    try:
        fn(*args)
    except Exception:  # metrics must never break an answer
        pass
