"""Synthetic 2-D energy-field sequences with real physics (numpy only), plus the seed's perturbations.

Every generator returns float32 of shape (n, t, H, W): n independent sequences of t frames, frame 0
being the initial condition and frame k the state at time k*dt. Fields are >= 0 everywhere. The
integration runs in float64 on a periodic grid with an explicit finite-volume scheme; the internal
substep is chosen from the stability (CFL) limit and only every `dt` is recorded.

Domains and energy conservation:
- heat:      conserves total energy -- flux-form diffusion dE/dt = div(kappa(x) grad E) on a periodic
             grid: each face flux leaves one cell and enters its neighbour, so sum(E) telescopes and is
             conserved to round-off (optional sources/sinks are built to sum to zero, see below).
- advection: conserves total energy -- upwind flux-form advection by a divergence-free velocity
             (stream function + uniform drift) plus diffusion, periodic: fluxes again telescope.
- reaction:  does NOT conserve energy -- logistic growth dE/dt = D lap(E) + r E (1 - E/K) adds energy
             wherever 0 < E < K (and removes it where E > K); the diffusion part alone would conserve.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import ndimage

__all__ = [
    "DOMAINS",
    "DomainSpec",
    "add_noise",
    "advection_diffusion",
    "generate",
    "heat_diffusion",
    "reaction_diffusion",
    "rotate",
    "thermal_blur",
]

_SAFETY = 0.9  # fraction of the stability limit used for the internal substep


# ----------------------------------------------------------------------------- validation


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_positive(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _check_shape(shape) -> tuple[int, int]:
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"shape must be a 2-D tuple of positive ints, got {shape!r}") from None
    if len(dims) != 2 or any(
        isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims
    ):
        raise ValueError(f"shape must be a 2-D tuple of positive ints, got {shape!r}")
    return int(dims[0]), int(dims[1])


def _check_common(n, t, shape, dt, dx) -> tuple[int, int, tuple[int, int], float, float]:
    return (
        _check_int("n", n, 1),
        _check_int("t", t, 2),
        _check_shape(shape),
        _check_positive("dt", dt),
        _check_positive("dx", dx),
    )


def _as_rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# ----------------------------------------------------------------------------- random fields


def _smooth_field(rng: np.random.Generator, n: int, shape: tuple[int, int]) -> np.ndarray:
    """(n, H, W) smooth periodic random fields with zero mean and unit std per sequence."""
    noise = rng.standard_normal((n, *shape))
    sigma = max(1.0, min(shape) / 8.0)
    z = ndimage.gaussian_filter(noise, sigma=(0, sigma, sigma), mode="wrap")
    z -= z.mean(axis=(1, 2), keepdims=True)
    std = z.std(axis=(1, 2), keepdims=True)
    return z / np.where(std > 0, std, 1.0)


def _blobs(
    rng: np.random.Generator, n: int, shape: tuple[int, int], amplitude: float, background: float
) -> np.ndarray:
    """(n, H, W) initial condition: 2-4 periodic Gaussian blobs plus a small positive background."""
    h, w = shape
    yy = np.arange(h, dtype=np.float64)[None, None, :, None]
    xx = np.arange(w, dtype=np.float64)[None, None, None, :]
    k = 4  # blobs drawn per sequence; a random subset of 2-4 of them is switched on
    cy = rng.uniform(0, h, (n, k, 1, 1))
    cx = rng.uniform(0, w, (n, k, 1, 1))
    width = rng.uniform(0.05, 0.12, (n, k, 1, 1)) * min(h, w) + 0.5
    amp = amplitude * rng.uniform(0.5, 1.0, (n, k, 1, 1))
    on = np.arange(k)[None, :] < rng.integers(2, k + 1, (n, 1))
    amp = amp * on[:, :, None, None]
    # minimum-image distance on the torus
    dy = np.abs(yy - cy)
    dy = np.minimum(dy, h - dy)
    dxx = np.abs(xx - cx)
    dxx = np.minimum(dxx, w - dxx)
    field = (amp * np.exp(-(dy**2 + dxx**2) / (2.0 * width**2))).sum(axis=1)
    return field + background


def _n_substeps(dt: float, dt_max: float) -> int:
    return max(1, math.ceil(dt / (_SAFETY * dt_max)))


# ----------------------------------------------------------------------------- flux helpers
# Axis -2 is y (rows), axis -1 is x (cols). Face arrays: fx[..., i, j] is the face between cells
# (i, j) and (i, j+1); fy[..., i, j] between (i, j) and (i+1, j). Divergence of face fluxes is
# (f[j+1/2] - f[j-1/2]) / dx, which telescopes to zero over a periodic grid.


def _div(fx: np.ndarray, fy: np.ndarray, dx: float) -> np.ndarray:
    return (fx - np.roll(fx, 1, axis=-1) + fy - np.roll(fy, 1, axis=-2)) / dx


def _diffusive_fluxes(
    e: np.ndarray, kx: np.ndarray | float, ky: np.ndarray | float, dx: float
) -> tuple[np.ndarray, np.ndarray]:
    fx = -kx * (np.roll(e, -1, axis=-1) - e) / dx
    fy = -ky * (np.roll(e, -1, axis=-2) - e) / dx
    return fx, fy


def _face_conductivity(kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Harmonic means of cell conductivities on x- and y-faces (standard FV choice)."""
    kx_n = np.roll(kappa, -1, axis=-1)
    ky_n = np.roll(kappa, -1, axis=-2)
    return 2 * kappa * kx_n / (kappa + kx_n), 2 * kappa * ky_n / (kappa + ky_n)


# ----------------------------------------------------------------------------- simulators


def _integrate(e: np.ndarray, t: int, dt: float, dt_max: float, rate, clip: bool = False) -> np.ndarray:
    """Explicit Euler substeps of at most dt_max, recording the field every dt: (n, t, H, W).
    `rate(e)` is dE/dt; `clip` keeps E >= 0 where the scheme alone does not guarantee it."""
    m = _n_substeps(dt, dt_max)
    h = dt / m
    out = np.empty((e.shape[0], t, *e.shape[1:]), dtype=np.float32)
    out[:, 0] = e
    for step in range(1, t):
        for _ in range(m):
            e = e + h * rate(e)
            if clip:
                np.maximum(e, 0.0, out=e)
        out[:, step] = e
    return out


def heat_diffusion(n, t, shape, dt, dx, rng, sources: bool = False) -> np.ndarray:
    """Heat equation dE/dt = div(kappa(x) grad E) [+ s(x, E)] with a smooth random kappa(x) > 0.

    Periodic, explicit finite volume in flux form: sum(E) is conserved to round-off. The substep
    obeys dt_sub <= dx^2 / (4 max kappa), which also makes the scheme monotone (E stays >= 0 and
    max E never increases without sources).

    With ``sources=True`` a source/sink term relaxes E towards a fixed random pattern p(x) carrying
    the *current* total: s = r (sum(E) p(x)/sum(p) - E). It sums to zero at every substep, so total
    energy is still conserved; with r dt_sub <= 1 it keeps E >= 0.
    """
    n, t, shape, dt, dx = _check_common(n, t, shape, dt, dx)
    rng = _as_rng(rng)
    kappa = 0.5 * np.exp(0.5 * _smooth_field(rng, n, shape))  # > 0, ~[0.2, 1.5]
    kx, ky = _face_conductivity(kappa)
    e = _blobs(rng, n, shape, amplitude=1.0, background=0.05)

    k_max = float(max(kx.max(), ky.max()))
    dt_max = dx * dx / (4.0 * k_max)
    if sources:
        rate = 0.05
        pattern = np.exp(_smooth_field(rng, n, shape))
        pattern /= pattern.sum(axis=(1, 2), keepdims=True)
        dt_max = min(dt_max, 1.0 / rate)

    def dedt(e):
        de = -_div(*_diffusive_fluxes(e, kx, ky, dx), dx)
        if sources:
            de += rate * (e.sum(axis=(1, 2), keepdims=True) * pattern - e)
        return de

    return _integrate(e, t, dt, dt_max, dedt)


def advection_diffusion(n, t, shape, dt, dx, rng, diffusivity: float = 0.1) -> np.ndarray:
    """Advection-diffusion dE/dt + div(u E) = D lap(E) with a divergence-free u (periodic).

    u = uniform random drift + curl of a smooth random stream function psi defined on cell corners,
    so the discrete divergence of u is exactly zero. Upwind flux form: sum(E) conserved to
    round-off; the substep satisfies dt_sub (4 D/dx^2 + 2 (max|u| + max|v|)/dx) <= 1, which keeps
    the scheme monotone (E >= 0).
    """
    n, t, shape, dt, dx = _check_common(n, t, shape, dt, dx)
    d = _check_positive("diffusivity", diffusivity)
    rng = _as_rng(rng)
    # psi[i, j] lives on the corner (i+1/2, j+1/2); amplitude chosen so |u| ~ 0.5 dx per unit time.
    psi = _smooth_field(rng, n, shape) * (0.5 * dx * max(1.0, min(shape) / 8.0))
    u = (psi - np.roll(psi, 1, axis=-2)) / dx  # x-velocity on x-faces (i, j+1/2)
    v = -(psi - np.roll(psi, 1, axis=-1)) / dx  # y-velocity on y-faces (i+1/2, j)
    drift = rng.uniform(-0.5, 0.5, (n, 2, 1, 1)) * dx
    u = u + drift[:, 0]
    v = v + drift[:, 1]
    e = _blobs(rng, n, shape, amplitude=1.0, background=0.05)

    speed = float(np.abs(u).max() + np.abs(v).max())
    dt_max = 1.0 / (4.0 * d / (dx * dx) + 2.0 * speed / dx)
    up, um = np.maximum(u, 0.0), np.minimum(u, 0.0)
    vp, vm = np.maximum(v, 0.0), np.minimum(v, 0.0)

    def dedt(e):
        fx, fy = _diffusive_fluxes(e, d, d, dx)
        fx += up * e + um * np.roll(e, -1, axis=-1)
        fy += vp * e + vm * np.roll(e, -1, axis=-2)
        return -_div(fx, fy, dx)

    return _integrate(e, t, dt, dt_max, dedt)


def reaction_diffusion(
    n, t, shape, dt, dx, rng, diffusivity: float = 0.2, rate: float = 0.5, capacity: float = 1.0
) -> np.ndarray:
    """Fisher-KPP / logistic growth dE/dt = D lap(E) + r E (1 - E/K). NOT energy-conserving.

    The reaction term creates energy where 0 < E < K, so sum(E) grows towards K * H * W. The
    substep obeys the diffusion limit dx^2/(4 D) and r dt_sub <= 0.5; E is clipped at 0 as a guard.
    """
    n, t, shape, dt, dx = _check_common(n, t, shape, dt, dx)
    d = _check_positive("diffusivity", diffusivity)
    r = _check_positive("rate", rate)
    k = _check_positive("capacity", capacity)
    rng = _as_rng(rng)
    # per-sequence growth rate varies a little so sequences differ in dynamics, not only in the IC
    r_seq = r * rng.uniform(0.75, 1.25, (n, 1, 1))
    e = _blobs(rng, n, shape, amplitude=0.5 * k, background=0.02 * k)

    dt_max = min(dx * dx / (4.0 * d), 0.5 / float(r_seq.max()))

    def dedt(e):
        return -_div(*_diffusive_fluxes(e, d, d, dx), dx) + r_seq * e * (1.0 - e / k)

    return _integrate(e, t, dt, dt_max, dedt, clip=True)


# ----------------------------------------------------------------------------- perturbations


def add_noise(seq: np.ndarray, sigma: float, rng=None) -> np.ndarray:
    """Multiplicative log-normal noise E * exp(sigma z - sigma^2/2): stays >= 0, mean-preserving."""
    s = float(sigma)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    arr = np.asarray(seq)
    rng = _as_rng(rng)
    z = rng.standard_normal(arr.shape)
    return (arr * np.exp(s * z - 0.5 * s * s)).astype(np.float32)


def rotate(seq: np.ndarray, k: int = 1) -> np.ndarray:
    """Rotate the spatial (last two) axes by k * 90 degrees. Square maps only (ValueError otherwise)."""
    arr = np.asarray(seq)
    if arr.ndim < 2:
        raise ValueError(f"seq must have at least 2 dims (…, H, W), got shape {arr.shape}")
    if arr.shape[-1] != arr.shape[-2]:
        raise ValueError(f"rotate needs square maps, got spatial shape {arr.shape[-2:]}")
    return np.ascontiguousarray(np.rot90(arr, k=int(k), axes=(-2, -1)))


def thermal_blur(seq: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of the spatial axes with periodic wrap; conserves total energy per frame."""
    s = float(sigma)
    if not math.isfinite(s) or s < 0:
        raise ValueError(f"sigma must be a finite number >= 0, got {sigma!r}")
    arr = np.asarray(seq, dtype=np.float64)
    if arr.ndim < 2:
        raise ValueError(f"seq must have at least 2 dims (…, H, W), got shape {arr.shape}")
    sig = (0.0,) * (arr.ndim - 2) + (s, s)
    return ndimage.gaussian_filter(arr, sigma=sig, mode="wrap").astype(np.float32)


# ----------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class DomainSpec:
    name: str
    simulate: Callable[..., np.ndarray]  # (n, t, shape, dt, dx, rng) -> (n, t, H, W) float32
    conserves_energy: bool
    default_dt: float
    description: str


DOMAINS: dict[str, DomainSpec] = {
    "heat": DomainSpec(
        "heat", heat_diffusion, True, 1.0,
        "variable-conductivity heat diffusion, flux form, periodic: total energy conserved",
    ),
    "advection": DomainSpec(
        "advection", advection_diffusion, True, 1.0,
        "divergence-free advection + diffusion, upwind flux form, periodic: total energy conserved",
    ),
    "reaction": DomainSpec(
        "reaction", reaction_diffusion, False, 1.0,
        "logistic reaction-diffusion: the growth term creates energy, not conserved",
    ),
}


def generate(
    domain: str,
    n: int,
    t: int,
    shape=(64, 64),
    dt: float | None = None,
    dx: float = 1.0,
    seed: int = 0,
) -> np.ndarray:
    """Generate (n, t, H, W) float32 sequences of `domain`; same arguments + seed -> same output."""
    if not isinstance(domain, str) or domain not in DOMAINS:
        raise ValueError(f"domain must be one of {sorted(DOMAINS)}, got {domain!r}")
    spec = DOMAINS[domain]
    if dt is None:
        dt = spec.default_dt
    n, t, shape, dt, dx = _check_common(n, t, shape, dt, dx)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    return spec.simulate(n, t, shape, dt, dx, np.random.default_rng(int(seed)))


def export_atlas(path, domains=("heat", "advection", "reaction"), n: int = 8, t: int = 20, shape=(64, 64),
                 dx: float = 1.0, seed: int = 0, progress=None) -> str:
    """Generate each domain and write them as one HDF5 atlas (see emergence.nvp.atlas).
    `progress(done, total, domain)` is called after each domain; the CLI prints a bar."""
    from .atlas import Domain, write_atlas

    out = []
    for k, name in enumerate(domains):
        if name not in DOMAINS:
            raise ValueError(f"domains must be among {sorted(DOMAINS)}, got {name!r}")
        spec = DOMAINS[name]
        energy = generate(name, n, t, shape=shape, dx=dx, seed=seed + k)
        out.append(Domain(name, energy, float(spec.default_dt), float(dx)))
        if progress:
            progress(k + 1, len(domains), name)
    return write_atlas(path, out)


def _bar(done: int, total: int, label: str) -> None:
    import sys

    width = 30
    filled = int(width * done / total)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label:<12}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def main(argv=None) -> str:
    import argparse

    ap = argparse.ArgumentParser(description="Generate synthetic energy-field sequences as an atlas (HDF5).")
    ap.add_argument("--out", required=True, help="atlas file to write (.h5)")
    ap.add_argument("--domains", nargs="+", default=["heat", "advection", "reaction"], choices=sorted(DOMAINS))
    ap.add_argument("--n", type=int, default=8, help="sequences per domain")
    ap.add_argument("--t", type=int, default=20, help="steps per sequence")
    ap.add_argument("--shape", type=int, nargs=2, default=[64, 64], metavar=("H", "W"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        path = export_atlas(args.out, args.domains, args.n, args.t, tuple(args.shape), seed=args.seed, progress=_bar)
    except ValueError as exc:  # bad sizes or an atlas-disallowed shape: a clear message, no file
        ap.error(str(exc))
    print(path)
    return path


if __name__ == "__main__":
    main()
