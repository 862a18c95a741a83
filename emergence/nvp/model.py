"""The NVP network: a periodic convolutional encoder-decoder that predicts the next energy field.

Inputs per sample: a window of `history` fields ending at E_t (history 1 is the seed's E_t alone;
history 2 also gives the last change E_t - E_{t-1}, without which the velocity of an advected
field is not observable from one frame; history 3, the default, also the change before it, so the
acceleration is seen too -- measured clearly better than 2 in- and out-of-domain), the gradient of E_t, and context (a domain embedding and
log dt, log dx). Output: the mean and log-variance of the next change dE = E_{t+1} - E_t.

Why this shape:
- Every quantity is made dimensionless per sample (fields by their mean, changes by the rms of the
  last change), so one network serves domains whose energies and rates differ by orders of
  magnitude, and a domain it never saw arrives on the same scale.
- Convolutions pad circularly: the synthetic domains are periodic, and a conv stack with skips
  learns the local stencils the physics is made of; the 512-d latent z (global pool + context)
  modulates every decoder block (FiLM), carrying what is global: the domain, dt, and the regime.
- Multi-scale input: each encoder level also sees the input features average-pooled to its own
  resolution, so coarse levels work from the field itself, not only from what the finer ones kept.
- With history >= 2 the mean head is a correction to "the change continues" (linear
  extrapolation), so training starts from a strong prior and learns what differs.

Domain index 0 means "unknown": training drops the domain to 0 for a fraction of samples, which is
what a held-out domain (or an atlas with a new name) uses at inference.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

import flax.linen as nn
import jax
import jax.numpy as jnp

LOGVAR_RANGE = (-10.0, 6.0)
# Initial log-variance of the change, in units of the last change's rms: "the change continues"
# is typically off by a few tenths of that rms, so training starts near the right width instead of
# spending its epochs shrinking a unit variance (NLL moves log-variance slowly; measured: a zero
# start left the std 3-6x too wide after a short run).
LOGVAR_INIT = -3.0
_EPS = 1e-12


@dataclass(frozen=True)
class NVPConfig:
    history: int = 3
    widths: tuple[int, ...] = (8, 16, 32, 64)
    latent: int = 512
    embed: int = 16
    domains: tuple[str, ...] = ("heat", "advection", "reaction")  # id = position + 1; 0 = unknown

    def __post_init__(self):
        if not isinstance(self.history, int) or self.history < 1:
            raise ValueError(f"history must be an int >= 1, got {self.history!r}")
        if not self.widths or any(not isinstance(w, int) or w < 1 for w in self.widths):
            raise ValueError(f"widths must be positive ints, got {self.widths!r}")
        if self.latent < 1 or self.embed < 1:
            raise ValueError("latent and embed must be >= 1")
        object.__setattr__(self, "widths", tuple(self.widths))
        object.__setattr__(self, "domains", tuple(self.domains))

    @property
    def multiple(self) -> int:
        """Map sides must be divisible by this (one halving per encoder level below the first)."""
        return 2 ** (len(self.widths) - 1)

    def domain_id(self, name: str | None) -> int:
        return self.domains.index(name) + 1 if name in self.domains else 0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "NVPConfig":
        d = json.loads(text)
        return cls(**{**d, "widths": tuple(d["widths"]), "domains": tuple(d["domains"])})


# ----------------------------------------------------------------------------- features


def periodic_gradient(e: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Central differences on the last two axes, in cell units (same stencil as atlas.gradient)."""
    gy = 0.5 * (jnp.roll(e, -1, axis=-2) - jnp.roll(e, 1, axis=-2))
    gx = 0.5 * (jnp.roll(e, -1, axis=-1) - jnp.roll(e, 1, axis=-1))
    return gy, gx


def periodic_laplacian(e: jnp.ndarray) -> jnp.ndarray:
    return (jnp.roll(e, 1, -1) + jnp.roll(e, -1, -1) + jnp.roll(e, 1, -2) + jnp.roll(e, -1, -2) - 4 * e)


def scales(window: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Per-sample (B,) field scale m (mean of E_t) and change scale s used to make inputs and the
    target dimensionless: rms of the last change (history >= 2) or of the Laplacian (history 1)."""
    e = window[:, -1]
    m = jnp.mean(e, axis=(-2, -1)) + _EPS
    last = window[:, -1] - window[:, -2] if window.shape[1] >= 2 else periodic_laplacian(e)
    s = jnp.sqrt(jnp.mean(last**2, axis=(-2, -1))) + 1e-6 * m
    return m, s


def features(window: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray, jnp.ndarray]:
    """(B, history, H, W) raw fields -> NHWC features, the field scale m and change scale s."""
    m, s = scales(window)
    e = window[:, -1]
    gy, gx = periodic_gradient(e)
    mm = m[:, None, None]
    chans = [e / mm - 1.0, gy / mm, gx / mm, periodic_laplacian(e) / mm]
    ss = s[:, None, None]
    for k in range(1, window.shape[1]):  # successive changes, newest first
        chans.append((window[:, -k] - window[:, -k - 1]) / ss)
    return jnp.stack(chans, axis=-1), m, s


def _pool(x: jnp.ndarray, factor: int) -> jnp.ndarray:
    if factor == 1:
        return x
    return nn.avg_pool(x, (factor, factor), strides=(factor, factor))


# ----------------------------------------------------------------------------- network


class ResBlock(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x, film=None):
        h = nn.Conv(self.width, (3, 3), padding="CIRCULAR")(nn.swish(x))
        if film is not None:  # per-channel scale and shift from the latent
            gamma, beta = jnp.split(nn.Dense(2 * self.width)(film), 2, axis=-1)
            h = h * (1.0 + gamma[:, None, None, :]) + beta[:, None, None, :]
        h = nn.Conv(self.width, (3, 3), padding="CIRCULAR")(nn.swish(h))
        if x.shape[-1] != self.width:
            x = nn.Conv(self.width, (1, 1))(x)
        return x + h


class NVPNet(nn.Module):
    config: NVPConfig

    @nn.compact
    def __call__(self, window, domain_id, log_dt, log_dx):
        """window (B, history, H, W); domain_id (B,) int; log_dt, log_dx (B,).
        Returns (mu, logvar), each (B, H, W), of the change in units of the change scale s."""
        cfg = self.config
        x0, _, _ = features(window)
        widths = cfg.widths

        skips = []
        x = nn.Conv(widths[0], (3, 3), padding="CIRCULAR")(x0)
        for level, w in enumerate(widths):
            if level > 0:
                x = nn.Conv(w, (3, 3), strides=(2, 2), padding="CIRCULAR")(nn.swish(x))
                x = jnp.concatenate([x, _pool(x0, 2**level)], axis=-1)  # multi-scale input
            x = ResBlock(w)(x)
            skips.append(x)

        emb = nn.Embed(len(cfg.domains) + 1, cfg.embed)(domain_id)
        ctx = jnp.concatenate([emb, log_dt[:, None], log_dx[:, None]], axis=-1)
        pooled = jnp.concatenate([jnp.mean(x, axis=(1, 2)), jnp.max(x, axis=(1, 2))], axis=-1)
        z = nn.swish(nn.Dense(cfg.latent)(jnp.concatenate([pooled, ctx], axis=-1)))

        x = ResBlock(widths[-1])(x, z)
        for level in range(len(widths) - 2, -1, -1):
            w = widths[level]
            b, h, wd, c = x.shape
            x = jax.image.resize(x, (b, 2 * h, 2 * wd, c), method="nearest")
            x = nn.Conv(w, (3, 3), padding="CIRCULAR")(x)
            x = ResBlock(w)(jnp.concatenate([x, skips[level]], axis=-1), z)

        out = nn.Conv(2, (3, 3), padding="CIRCULAR", kernel_init=nn.initializers.zeros,
                      bias_init=lambda key, shape, dtype=jnp.float32: jnp.array([0.0, LOGVAR_INIT], dtype))(nn.swish(x))
        mu, logvar = out[..., 0], out[..., 1]
        if cfg.history >= 2:
            mu = mu + x0[..., 4]  # the last change, in the same units: start from "the change continues"
        lo, hi = LOGVAR_RANGE  # soft bounds: gradients never vanish at the edge of the range
        logvar = lo + jax.nn.softplus(logvar - lo) - jax.nn.softplus(logvar - hi)
        return mu, logvar


def check_window(window, config: NVPConfig) -> None:
    """Shape checks with messages that name the problem (the Serve layer turns them into 422s)."""
    if window.ndim != 4:
        raise ValueError(f"window must be (batch, history, H, W), got shape {tuple(window.shape)}")
    if window.shape[1] != config.history:
        raise ValueError(f"window: model needs history={config.history} fields, got {window.shape[1]}")
    h, w = window.shape[-2:]
    if h % config.multiple or w % config.multiple:
        raise ValueError(f"window: map sides must be divisible by {config.multiple}, got {h}x{w}")
