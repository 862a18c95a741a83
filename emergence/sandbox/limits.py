"""Resource limits for one sandboxed run, validated once on the host."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Limits:
    """Applied to every test of a run. `wall_s` and `cpu_s` are per test; `memory_mb` bounds one
    process by RLIMIT_AS and, where a cgroup is available, the whole sandbox (so many children
    each under the per-process limit still can't add up past it); `max_procs` is a pids cgroup
    limit (RLIMIT_NPROC, which counts every process of the uid, where there is no cgroup)."""

    wall_s: float = 5.0
    cpu_s: float = 5.0
    memory_mb: int = 256
    max_procs: int = 32
    file_size_mb: int = 16
    open_files: int = 64
    output_bytes: int = 65536
    cpus: float = 1.0  # cores the whole sandbox may use at once (cgroup CPU quota, docker --cpus)

    def __post_init__(self):
        bounds = {"wall_s": (0.01, 3600), "cpu_s": (0.01, 3600), "memory_mb": (32, 65536), "max_procs": (1, 4096),
                  "file_size_mb": (0, 65536), "open_files": (8, 65536), "output_bytes": (0, 64 << 20), "cpus": (0.05, 256)}
        for f in fields(self):
            value = getattr(self, f.name)
            low, high = bounds[f.name]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"limits.{f.name}: need a finite number, got {value!r}")
            if f.type == "int" and value != int(value):
                raise ValueError(f"limits.{f.name}: need a whole number, got {value!r}")
            if not low <= value <= high:
                raise ValueError(f"limits.{f.name}: {value!r} is outside [{low}, {high}]")
            if f.type == "int":
                object.__setattr__(self, f.name, int(value))

    @classmethod
    def from_dict(cls, d: dict | None) -> "Limits":
        if d is None:
            return cls()
        if not isinstance(d, dict):
            raise ValueError(f"limits: need a mapping, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"limits: unknown field(s) {unknown}; known: {sorted(known)}")
        return cls(**d)

    def replace(self, **changes) -> "Limits":
        return Limits(**{**asdict(self), **{k: v for k, v in changes.items() if v is not None}})

    def to_dict(self) -> dict:
        return asdict(self)
