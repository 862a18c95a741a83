"""The energy atlas: the on-disk format NVP trains and evaluates on, so external data plugs in.

HDF5: one group per domain; in each group a dataset `energy`, float32, shape (N, T, H, W)
(N sequences of T steps) and group attributes `domain` (str), `dt` (float), `dx` (float).
A `.npy` file holds (T, H, W) or (N, T, H, W) of one domain. Map shapes are restricted to
64², 128², 256² and 128×384. Every loading error names the file, the group and the problem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

ALLOWED_SHAPES = ((64, 64), (128, 128), (256, 256), (128, 384))


class AtlasError(ValueError):
    """An atlas file is malformed; the message names file, group and problem."""


@dataclass
class Domain:
    name: str
    energy: np.ndarray  # float32 (N, T, H, W)
    dt: float
    dx: float
    source: str = ""

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.energy.shape[2:])


def check_layout(shape: tuple, where: str) -> None:
    """(N, T, H, W) with N >= 1, T >= 2 and an allowed map shape; AtlasError naming `where` otherwise."""
    if len(shape) != 4:
        raise AtlasError(f"{where}: energy must have shape (N, T, H, W), got {tuple(shape)}")
    n, t, h, w = shape
    if n < 1:
        raise AtlasError(f"{where}: no sequences (N = 0)")
    if t < 2:
        raise AtlasError(f"{where}: T = {t}; at least 2 steps are needed for E_t -> E_t+1 pairs")
    if (h, w) not in ALLOWED_SHAPES:
        raise AtlasError(f"{where}: map shape {h}x{w} not allowed; allowed: {', '.join(f'{a}x{b}' for a, b in ALLOWED_SHAPES)}")


def validate_energy(arr, where: str) -> np.ndarray:
    """Check an (N, T, H, W) energy array; raise AtlasError naming `where` and the problem."""
    a = np.asarray(arr)
    if a.dtype != np.float32:
        raise AtlasError(f"{where}: energy must be float32, got {a.dtype}")
    check_layout(a.shape, where)
    if not np.all(np.isfinite(a)):
        bad = np.argwhere(~np.isfinite(a))[0].tolist()
        raise AtlasError(f"{where}: non-finite energy at index {bad}")
    if np.any(a < 0):
        bad = np.argwhere(a < 0)[0].tolist()
        raise AtlasError(f"{where}: negative energy {float(a[tuple(bad)])} at index {bad}")
    return a


def _positive_attr(value, where: str, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise AtlasError(f"{where}: attribute {name!r} must be a number, got {value!r}") from None
    if not np.isfinite(v) or v <= 0:
        raise AtlasError(f"{where}: attribute {name!r} must be a positive finite number, got {v}")
    return v


@dataclass(frozen=True)
class AtlasGroup:
    """One domain group of an atlas file, checked without reading its values."""

    path: str
    group: str
    domain: str
    n: int
    t: int
    shape: tuple[int, int]
    dt: float
    dx: float

    @property
    def where(self) -> str:
        return f"{self.path}:/{self.group}/energy"


def inspect_atlas(path: str | os.PathLike, domains: list[str] | None = None) -> dict[str, AtlasGroup]:
    """Check an HDF5 atlas's structure (groups, attributes, dtype, shape; not the values) and
    return {domain: AtlasGroup}. Errors name the file, group and problem."""
    import h5py

    path = os.fspath(path)
    if path.endswith(".npy"):
        raise AtlasError(f"{path}: a .npy file holds one domain; use load_npy(path, domain, dt, dx)")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise AtlasError(f"{path}: cannot open as HDF5 ({exc})") from None
    out = {}
    with f:
        names = list(f.keys()) if domains is None else domains
        if not names:
            raise AtlasError(f"{path}: no domain groups")
        for g in names:
            where = f"{path}:/{g}"
            if g not in f or not isinstance(f[g], h5py.Group):
                raise AtlasError(f"{where}: no such group")
            grp = f[g]
            if "energy" not in grp:
                raise AtlasError(f"{where}: missing dataset 'energy'")
            for attr in ("domain", "dt", "dx"):
                if attr not in grp.attrs:
                    raise AtlasError(f"{where}: missing attribute {attr!r}")
            ds = grp["energy"]
            if ds.dtype != np.float32:
                raise AtlasError(f"{where}/energy: energy must be float32, got {ds.dtype}")
            check_layout(ds.shape, f"{where}/energy")  # no values read here
            name = grp.attrs["domain"]
            name = name.decode() if isinstance(name, bytes) else str(name)
            n, t, h, w = ds.shape
            out[name] = AtlasGroup(path, g, name, n, t, (h, w), _positive_attr(grp.attrs["dt"], where, "dt"),
                                   _positive_attr(grp.attrs["dx"], where, "dx"))
    return out


def read_sequences(group: AtlasGroup, start: int = 0, stop: int | None = None) -> np.ndarray:
    """Sequences [start, stop) of one atlas group as (k, T, H, W) float32, values validated
    (non-finite or negative energy names the file, group and index)."""
    import h5py

    stop = group.n if stop is None else stop
    if not 0 <= start < stop <= group.n:
        raise AtlasError(f"{group.where}: sequences [{start}, {stop}) out of range (N = {group.n})")
    with h5py.File(group.path, "r") as f:
        energy = f[group.group]["energy"][start:stop]
    try:
        return validate_energy(energy, group.where)
    except AtlasError as exc:
        if start == 0:
            raise
        raise AtlasError(f"{exc} (index relative to sequence {start})") from None


def load_atlas(path: str | os.PathLike, domains: list[str] | None = None) -> dict[str, Domain]:
    """Read and validate an HDF5 atlas (or a .npy file: see `load_npy`)."""
    return {name: Domain(name, read_sequences(g), g.dt, g.dx, g.path)
            for name, g in inspect_atlas(path, domains).items()}


def load_npy(path: str | os.PathLike, domain: str, dt: float = 1.0, dx: float = 1.0) -> Domain:
    path = os.fspath(path)
    try:
        a = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise AtlasError(f"{path}: cannot read as .npy ({exc})") from None
    if a.ndim == 3:
        a = a[None]
    where = f"{path}"
    return Domain(domain, validate_energy(a, where), _positive_attr(dt, where, "dt"), _positive_attr(dx, where, "dx"), path)


def write_atlas(path: str | os.PathLike, domains: dict[str, Domain] | list[Domain]) -> str:
    """Write domains as an HDF5 atlas, validated first and moved into place atomically."""
    import h5py

    path = os.fspath(path)
    items = list(domains.values()) if isinstance(domains, dict) else list(domains)
    for d in items:
        validate_energy(d.energy, f"{path}:/{d.name}/energy")
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with h5py.File(tmp, "w") as f:
            for d in items:
                g = f.create_group(d.name)
                g.create_dataset("energy", data=d.energy, dtype=np.float32, compression="gzip", compression_opts=1)
                g.attrs["domain"] = d.name
                g.attrs["dt"] = float(d.dt)
                g.attrs["dx"] = float(d.dx)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


# -- views for training --------------------------------------------------------------------------


def pairs(energy: np.ndarray, window: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Temporal windows: inputs (M, window, H, W) of `window` consecutive fields and the next
    field as target (M, H, W), over every sequence and start time."""
    n, t, h, w = energy.shape
    if not 1 <= window < t:
        raise ValueError(f"window: need 1 <= window < T = {t}, got {window}")
    starts = t - window
    idx = np.arange(window)[None, :] + np.arange(starts)[:, None]  # (starts, window)
    x = energy[:, idx].reshape(n * starts, window, h, w)
    y = energy[:, window:].reshape(n * starts, h, w)
    return x, y


def downsample(field: np.ndarray, factor: int) -> np.ndarray:
    """Sum-pool the last two axes by `factor`: total energy is preserved exactly (up to float)."""
    *lead, h, w = field.shape
    if factor < 1 or h % factor or w % factor:
        raise ValueError(f"factor: {factor} must divide the map shape {h}x{w}")
    return field.reshape(*lead, h // factor, factor, w // factor, factor).sum(axis=(-3, -1))


def gradient(field: np.ndarray, dx: float = 1.0) -> np.ndarray:
    """Central-difference gradient on a periodic grid: (..., 2, H, W) with d/dy then d/dx."""
    gy = (np.roll(field, -1, axis=-2) - np.roll(field, 1, axis=-2)) / (2 * dx)
    gx = (np.roll(field, -1, axis=-1) - np.roll(field, 1, axis=-1)) / (2 * dx)
    return np.stack([gy, gx], axis=-3)


def pyramid(field: np.ndarray, dx: float = 1.0, sizes: tuple[int, ...] = (256, 128, 64)) -> dict[int, dict[str, np.ndarray]]:
    """The field at each smaller side length in `sizes` (sum-pooled, so every level holds the same
    total energy) with its gradient precomputed. Levels larger than the field are skipped."""
    h = field.shape[-2]
    out = {}
    for s in sizes:
        if s > h or h % s:
            continue
        f = h // s
        e = downsample(field, f) if f > 1 else field
        out[s] = {"energy": e, "grad": gradient(e, dx * f)}
    return out


def entropy(field: np.ndarray) -> np.ndarray:
    """Shannon entropy of each map normalised to a distribution (nats); a flat map is log(H W)."""
    p = field.reshape(*field.shape[:-2], -1).astype(np.float64)
    total = p.sum(axis=-1, keepdims=True)
    p = np.divide(p, total, out=np.zeros_like(p), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=-1)


def snapshot_metadata(domains: dict[str, Domain]):
    """One row per snapshot (domain, sequence, t, energy sum, entropy, file) as a polars frame."""
    import polars as pl

    frames = []
    for d in domains.values():
        n, t = d.energy.shape[:2]
        frames.append(pl.DataFrame({
            "domain": [d.name] * (n * t),
            "sequence": np.repeat(np.arange(n), t),
            "t": np.tile(np.arange(t), n),
            "energy_sum": d.energy.sum(axis=(-2, -1), dtype=np.float64).ravel(),
            "entropy": entropy(d.energy).ravel(),
            "file": [d.source] * (n * t),
        }))
    return pl.concat(frames) if frames else pl.DataFrame()
