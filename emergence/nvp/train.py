"""Training pieces shared by the local loop, Ray Train workers and Tune trials (no Ray here).

- `make_samples(domains, history)`: atlas domains -> arrays of windows, targets and context;
  `split_by_sequence` keeps whole sequences out of training for validation.
- `create_state` / `train_step` (jitted; one compiled step for any loss weights) / `eval_step`.
- `NVPModel`: a trained model for inference (mean and calibrated std in energy units, rollouts),
  saved and loaded as a directory: config.json, params.msgpack, meta.json [, opt_state.msgpack].
- `fit`: a small single-process loop, used for the default model and in tests.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import serialization
from flax.training import train_state

from .atlas import Domain, pairs
from .loss import DEFAULT_WEIGHTS, nvp_loss
from .model import NVPConfig, NVPNet, check_window, scales

DOMAIN_DROPOUT = 0.25  # fraction of training samples shown with the "unknown" domain id
# Input noise, relative to each sample's change scale: an autoregressive rollout feeds the model its
# own (slightly wrong) predictions; training on noisy inputs against clean targets teaches it to
# damp such errors instead of amplifying them (without it, 50-step rollouts diverged).
INPUT_NOISE = 0.1
# Only this fraction of each batch gets the noise, and the variance head learns from the clean
# rest only: trained on noisy inputs it learned the (larger) error of a noisy input, and clean
# inputs then got a std 4-6x too wide, by a factor that differed between domains.
NOISY_FRACTION = 0.5


# ----------------------------------------------------------------------------- data


@dataclass
class Samples:
    window: np.ndarray  # (M, history, H, W) float32
    target: np.ndarray  # (M, H, W) float32
    domain_id: np.ndarray  # (M,) int32
    log_dt: np.ndarray  # (M,) float32
    log_dx: np.ndarray  # (M,) float32
    sequence: np.ndarray  # (M,) int32, sequence index within its domain
    domain: np.ndarray  # (M,) domain names

    def __len__(self) -> int:
        return len(self.target)

    def take(self, idx) -> "Samples":
        return Samples(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))

    def batch(self, idx=None) -> dict[str, np.ndarray]:
        s = self if idx is None else self.take(idx)
        return {"window": s.window, "target": s.target, "domain_id": s.domain_id,
                "log_dt": s.log_dt, "log_dx": s.log_dx}

    @staticmethod
    def concat(parts: list["Samples"]) -> "Samples":
        shapes = {p.target.shape[1:] for p in parts}
        if len(shapes) > 1:
            raise ValueError(f"domains: all maps in one training set must share a shape, got {sorted(shapes)}")
        return Samples(*(np.concatenate([getattr(p, f) for p in parts]) for f in Samples.__dataclass_fields__))


def make_samples(domains: dict[str, Domain] | list[Domain], config: NVPConfig, known: bool = True) -> Samples:
    """Every (window of `config.history` fields -> next field) pair of every sequence. With
    known=False the domain id is 0 ("unknown"), as for a held-out domain."""
    parts = []
    for d in (domains.values() if isinstance(domains, dict) else domains):
        n, t = d.energy.shape[:2]
        if t <= config.history:
            raise ValueError(f"domain {d.name!r}: T={t} steps is too short for history={config.history}")
        x, y = pairs(d.energy, window=config.history)
        m = len(y)
        per_seq = t - config.history
        parts.append(Samples(
            window=x.astype(np.float32), target=y.astype(np.float32),
            domain_id=np.full(m, config.domain_id(d.name) if known else 0, np.int32),
            log_dt=np.full(m, math.log(d.dt), np.float32), log_dx=np.full(m, math.log(d.dx), np.float32),
            sequence=np.repeat(np.arange(n, dtype=np.int32), per_seq), domain=np.array([d.name] * m),
        ))
    if not parts:
        raise ValueError("domains: no domain given")
    return Samples.concat(parts)


def validation_start(n_sequences: int, val_fraction: float) -> int:
    """Sequences [start, N) of a domain are held out: ceil(fraction * N) of them, at least one."""
    return n_sequences - max(1, math.ceil(val_fraction * n_sequences))


def split_by_sequence(samples: Samples, val_fraction: float = 0.2) -> tuple[Samples, Samples]:
    """Whole sequences (the last ceil(fraction * N) of each domain) go to validation."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    val = np.zeros(len(samples), bool)
    for name in np.unique(samples.domain):
        sel = samples.domain == name
        n_seq = int(samples.sequence[sel].max()) + 1
        if n_seq < 2:
            raise ValueError(f"domain {name!r}: need >= 2 sequences to hold some out, got {n_seq}")
        val |= sel & (samples.sequence >= validation_start(n_seq, val_fraction))
    return samples.take(~val), samples.take(val)


def augment(batch: dict, rng: np.random.Generator, noise: float = INPUT_NOISE) -> dict:
    """Random 90-degree rotation / flip of square maps (the physics is isotropic in distribution),
    input noise on a random part of the batch (see INPUT_NOISE; the target stays clean; `noisy`
    marks those samples) and domain dropout to id 0, so the model also works with no domain given."""
    out = dict(batch)
    w, y = batch["window"], batch["target"]
    if w.shape[-1] == w.shape[-2]:
        k = int(rng.integers(4))
        w, y = np.rot90(w, k, axes=(-2, -1)), np.rot90(y, k, axes=(-2, -1))
    if rng.random() < 0.5:
        w, y = w[..., ::-1], y[..., ::-1]
    w = np.ascontiguousarray(w)
    noisy = np.zeros(len(y), np.float32)
    if noise > 0 and w.shape[1] >= 2:
        noisy = (rng.random(len(y)) < NOISY_FRACTION).astype(np.float32)
        scale = np.sqrt(np.mean((w[:, -1] - w[:, -2]) ** 2, axis=(-2, -1)))[:, None, None, None]
        w = (w + (noisy[:, None, None, None] * noise) * scale * rng.standard_normal(w.shape)).astype(np.float32)
    out["window"], out["target"], out["noisy"] = w, np.ascontiguousarray(y), noisy
    drop = rng.random(len(y)) < DOMAIN_DROPOUT
    out["domain_id"] = np.where(drop, 0, batch["domain_id"]).astype(np.int32)
    return out


# ----------------------------------------------------------------------------- training


def create_state(config: NVPConfig, shape: tuple[int, int], lr: float = 2e-3, total_steps: int = 1000,
                 seed: int = 0, weight_decay: float = 1e-4) -> train_state.TrainState:
    if not (lr > 0 and math.isfinite(lr)):
        raise ValueError(f"lr must be a positive finite number, got {lr}")
    net = NVPNet(config)
    h, w = shape
    dummy = jnp.ones((1, config.history, h, w), jnp.float32)
    z = jnp.zeros((1,), jnp.float32)
    params = net.init(jax.random.key(seed), dummy, jnp.zeros((1,), jnp.int32), z, z)["params"]
    schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(1, total_steps // 20), max(2, total_steps), lr * 0.02)
    # a non-finite gradient (a pathological batch) skips the update instead of poisoning the weights
    tx = optax.apply_if_finite(
        optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(schedule, weight_decay=weight_decay)), 10)
    return train_state.TrainState.create(apply_fn=net.apply, params=params, tx=tx)


def _loss_fn(params, apply_fn, batch, weights):
    mu, logvar = apply_fn({"params": params}, batch["window"], batch["domain_id"], batch["log_dt"], batch["log_dx"])
    _, s = scales(batch["window"])
    return nvp_loss(mu, logvar, batch["window"], batch["target"], s, weights, batch.get("noisy"))


@jax.jit
def train_step(state, batch, weights):
    """One optimiser step. `weights` is a dict of scalars (traced: new weights don't recompile)."""
    (_, parts), grads = jax.value_and_grad(_loss_fn, has_aux=True)(state.params, state.apply_fn, batch, weights)
    return state.apply_gradients(grads=grads), parts


@partial(jax.jit, static_argnums=1)
def eval_step(params, apply_fn, batch, weights):
    return _loss_fn(params, apply_fn, batch, weights)[1]


def default_weights(**overrides) -> dict:
    return {k: jnp.float32(v) for k, v in {**DEFAULT_WEIGHTS, **overrides}.items()}


def batches(n: int, batch_size: int, rng: np.random.Generator, drop_last: bool = True):
    order = rng.permutation(n)
    stop = n - (n % batch_size) if drop_last and n >= batch_size else n
    for i in range(0, stop, batch_size):
        yield order[i : i + batch_size]


# ----------------------------------------------------------------------------- inference model


class NVPModel:
    """A trained NVP model: `predict` gives the mean and std of E_{t+1} in energy units."""

    def __init__(self, config: NVPConfig, params, std_scale=1.0, meta: dict | None = None):
        self.config = config
        self.params = params
        self.std_scale = std_scale
        self.meta = dict(meta or {})
        self._apply = jax.jit(NVPNet(config).apply)

    @property
    def std_scale(self) -> np.ndarray:
        """Post-hoc std multiplier per domain id (index 0: the unknown-domain embedding)."""
        return self._std_scale

    @std_scale.setter
    def std_scale(self, value) -> None:
        n = len(self.config.domains) + 1
        v = np.asarray(value, np.float32)
        v = np.full(n, v, np.float32) if v.ndim == 0 else v
        if v.shape != (n,) or not np.all(np.isfinite(v) & (v > 0)):
            raise ValueError(f"std_scale: need a positive number or {n} of them (one per domain id), got {value!r}")
        self._std_scale = v

    # -- inference
    def predict(self, window, domain: str | None = None, dt: float = 1.0, dx: float = 1.0):
        """window (B, history, H, W) or (history, H, W) -> (mean, std) as float32 numpy arrays,
        each (B, H, W) (or (H, W)). An unknown or missing domain uses the 'unknown' embedding."""
        w = np.asarray(window, dtype=np.float32)
        single = w.ndim == 3
        if single:
            w = w[None]
        check_window(w, self.config)
        if not np.isfinite(w).all():
            raise ValueError("window: values must be finite")
        b = w.shape[0]
        ids = jnp.full((b,), self.config.domain_id(domain), jnp.int32)
        mean, std = _predict(self._apply, self.params, jnp.asarray(w), ids,
                             jnp.full((b,), math.log(dt), jnp.float32), jnp.full((b,), math.log(dx), jnp.float32),
                             jnp.asarray(self.std_scale[np.asarray(ids)]))
        mean, std = np.asarray(mean), np.asarray(std)
        return (mean[0], std[0]) if single else (mean, std)

    def rollout(self, window, steps: int, domain: str | None = None, dt: float = 1.0, dx: float = 1.0,
                step_fn=None):
        """Autoregressive rollout: (B, history, H, W) -> means (B, steps, H, W) and stds. Each
        predicted mean is fed back as the newest field. `step_fn(mean, prev)` may post-process
        each step (e.g. thermodynamic enforcement)."""
        if not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        w = np.asarray(window, dtype=np.float32)
        means, stds = [], []
        for _ in range(steps):
            mean, std = self.predict(w, domain, dt, dx)
            if step_fn is not None:
                mean = step_fn(mean, w[:, -1])
            means.append(mean)
            stds.append(std)
            w = np.concatenate([w[:, 1:], mean[:, None]], axis=1)
        return np.stack(means, 1), np.stack(stds, 1)

    # -- persistence
    def save(self, path: str | os.PathLike, opt_state=None) -> str:
        """Write atomically: a temp dir renamed over `path` (a reader never sees half a model)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
        try:
            (tmp / "config.json").write_text(self.config.to_json())
            (tmp / "params.msgpack").write_bytes(serialization.to_bytes(self.params))
            (tmp / "meta.json").write_text(json.dumps({"std_scale": self.std_scale.tolist(), **self.meta}, default=float))
            if opt_state is not None:
                (tmp / "opt_state.msgpack").write_bytes(serialization.to_bytes(opt_state))
            if path.exists():
                old = path.with_name(path.name + ".old")
                shutil.rmtree(old, ignore_errors=True)
                path.rename(old)
                tmp.rename(path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return str(path)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "NVPModel":
        path = Path(path)
        for name in ("config.json", "params.msgpack"):
            if not (path / name).is_file():
                raise FileNotFoundError(f"{path}: not an NVP model directory (missing {name})")
        config = NVPConfig.from_json((path / "config.json").read_text())
        meta = json.loads((path / "meta.json").read_text()) if (path / "meta.json").is_file() else {}
        template = _init_params(config)
        params = serialization.from_bytes(template, (path / "params.msgpack").read_bytes())
        return cls(config, params, meta.pop("std_scale", 1.0), meta)


def _init_params(config: NVPConfig, shape=None):
    m = config.multiple
    h, w = shape or (max(8, m), max(8, m))
    z = jnp.zeros((1,), jnp.float32)
    return NVPNet(config).init(jax.random.key(0), jnp.ones((1, config.history, h, w)), jnp.zeros((1,), jnp.int32), z, z)["params"]


@partial(jax.jit, static_argnums=0)
def _predict(apply, params, window, ids, log_dt, log_dx, std_scale):
    """std_scale: (B,) the calibration factor of each sample's domain id."""
    mu, logvar = apply({"params": params}, window, ids, log_dt, log_dx)
    _, s = scales(window)
    ss = s[:, None, None]
    return window[:, -1] + mu * ss, std_scale[:, None, None] * jnp.exp(0.5 * logvar) * ss


def calibrate_std(model: NVPModel, samples: Samples, batch_size: int = 64, z: float = 1.959963984540054) -> np.ndarray:
    """Post-hoc std scale per domain id, fitted on validation samples: for each snapshot, the
    factor that puts 95% of its pixels inside mean +/- z std; the domain's scale is the median over
    its snapshots. (A quantile of all pixels pooled let one hard validation sequence set the width
    for every field: measured 0.996 coverage on fresh reaction sequences, 0.958 with the median.)

    Each known domain is fitted on its own samples (one factor for all let the domain with the
    widest errors set it). The unknown id (0) is fitted on the same samples predicted with the
    unknown embedding; a domain with no validation samples gets that factor too. Never fitted on
    the data it is then scored on."""
    old = model.std_scale
    model.std_scale = 1.0
    try:
        per_snapshot: dict[int, list] = {}
        for known in (True, False):
            s = samples if known else dataclasses.replace(samples, domain_id=np.zeros_like(samples.domain_id))
            for i in range(0, len(s), batch_size):
                sl = slice(i, i + batch_size)
                mean, std = _predict_samples(model, s, sl)
                r = (np.abs(s.target[sl] - mean) / np.maximum(std, 1e-30)).reshape(len(mean), -1)
                q = np.quantile(r, 0.95, axis=1) / z
                for d in np.unique(s.domain_id[sl]):
                    per_snapshot.setdefault(int(d), []).append(q[s.domain_id[sl] == d])
    finally:
        model.std_scale = old
    fitted = {d: float(np.median(np.concatenate(q))) for d, q in per_snapshot.items()}
    return np.array([fitted.get(d, fitted[0]) for d in range(len(model.config.domains) + 1)], np.float32)


def _predict_samples(model: NVPModel, samples: Samples, sl):
    w = jnp.asarray(samples.window[sl])
    ids = samples.domain_id[sl]
    mean, std = _predict(model._apply, model.params, w, jnp.asarray(ids), jnp.asarray(samples.log_dt[sl]),
                         jnp.asarray(samples.log_dx[sl]), jnp.asarray(model.std_scale[ids]))
    return np.asarray(mean), np.asarray(std)


def predict_samples(model: NVPModel, samples: Samples, batch_size: int = 64):
    """Mean and std for every sample, using each sample's own domain id and dt, dx."""
    out_m, out_s = [], []
    for i in range(0, len(samples), batch_size):
        m, s = _predict_samples(model, samples, slice(i, i + batch_size))
        out_m.append(m)
        out_s.append(s)
    return np.concatenate(out_m), np.concatenate(out_s)


# ----------------------------------------------------------------------------- local loop


def fit(domains, config: NVPConfig | None = None, epochs: int = 10, batch_size: int = 16, lr: float = 2e-3,
        weights: dict | None = None, seed: int = 0, val_fraction: float = 0.2, progress=None) -> tuple[NVPModel, list[dict]]:
    """Train on `domains` in this process; returns the model (std calibrated on the validation
    sequences) and one row of metrics per epoch. `progress(epoch, epochs, row)` after each epoch."""
    config = config or NVPConfig()
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an int >= 1, got {epochs!r}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    samples = make_samples(domains, config)
    train, val = split_by_sequence(samples, val_fraction)
    steps_per_epoch = max(1, len(train) // batch_size)
    state = create_state(config, train.target.shape[1:], lr, epochs * steps_per_epoch, seed)
    w = default_weights(**(weights or {}))
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        parts = []
        for idx in batches(len(train), min(batch_size, len(train)), rng):
            state, p = train_step(state, augment(train.batch(idx), rng), w)
            parts.append(p)
        row = {"epoch": epoch, **{f"train_{k}": float(np.mean([float(p[k]) for p in parts])) for k in parts[0]},
               **{f"val_{k}": v for k, v in evaluate_loss(state.params, state.apply_fn, val, w).items()},
               "seconds": time.perf_counter() - t0, "samples_per_s": len(parts) * batch_size / (time.perf_counter() - t0)}
        history.append(row)
        if progress:
            progress(epoch, epochs, row)
    model = NVPModel(config, state.params, meta={"epochs": epochs, "trained_on": sorted(set(train.domain.tolist()))})
    model.std_scale = calibrate_std(model, val)
    return model, history


def evaluate_loss(params, apply_fn, samples: Samples, weights, batch_size: int = 64) -> dict[str, float]:
    acc: dict[str, float] = {}
    n = 0
    for i in range(0, len(samples), batch_size):
        sl = slice(i, i + batch_size)
        parts = eval_step(params, apply_fn, samples.batch(sl), weights)
        k = len(samples.target[sl])
        for name, v in parts.items():
            acc[name] = acc.get(name, 0.0) + float(v) * k
        n += k
    return {name: v / n for name, v in acc.items()}
