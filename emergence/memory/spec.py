"""What a collection is: its dimension, metric and index kind, fixed at creation."""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass

from .errors import MemoryInputError

METRICS = ("l2", "ip")
INDEX_KINDS = ("flat", "ivf", "hnsw", "ivfpq")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
MAX_DIM = 65_536
MAX_K = 10_000


@dataclass(frozen=True)
class CollectionSpec:
    """A collection's shape. IVF/IVF-PQ indexes are trained once `train_size` vectors have
    arrived; until then they answer exactly from a buffer."""

    name: str
    dim: int
    metric: str = "l2"
    index: str = "flat"
    nlist: int | None = None  # IVF lists; default ~4*sqrt(train_size), at least 16
    nprobe: int = 16
    hnsw_m: int = 32
    ef_search: int = 64
    ef_construction: int = 80
    pq_m: int | None = None  # IVF-PQ sub-quantizers; default: the largest of 64/32/16/8/4/2/1 dividing dim, at most dim/2
    pq_bits: int = 8
    train_size: int | None = None  # vectors buffered before IVF training; default 39*nlist-ish
    max_batch: int = 100_000  # rows per add/search request

    def __post_init__(self):
        def bad(field, msg):
            raise MemoryInputError(field, msg)

        if not isinstance(self.name, str) or not NAME.match(self.name):
            bad("name", f"{self.name!r} is not a collection name (letters, digits, _ . -; up to 64; not starting with _ . -)")
        for f in ("dim", "nprobe", "hnsw_m", "ef_search", "ef_construction", "pq_bits", "max_batch"):
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                bad(f, f"must be a positive integer, got {v!r}")
        for f in ("nlist", "pq_m", "train_size"):
            v = getattr(self, f)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                bad(f, f"must be a positive integer or null, got {v!r}")
        if self.dim > MAX_DIM:
            bad("dim", f"at most {MAX_DIM}, got {self.dim}")
        if self.metric not in METRICS:
            bad("metric", f"one of {list(METRICS)}, got {self.metric!r}")
        if self.index not in INDEX_KINDS:
            bad("index", f"one of {list(INDEX_KINDS)}, got {self.index!r}")
        if self.pq_bits > 16:
            bad("pq_bits", f"at most 16, got {self.pq_bits}")
        if self.index == "ivfpq" and self.dim % self.pq_m_resolved:
            bad("pq_m", f"must divide dim={self.dim}, got {self.pq_m_resolved}")
        if self.train_size is not None and self.nlist is not None and self.train_size < self.nlist:
            bad("train_size", f"must be at least nlist={self.nlist}, got {self.train_size}")
        if self.index == "ivfpq" and self.train_size is not None and self.train_size < 2 ** self.pq_bits:
            bad("train_size", f"IVF-PQ with pq_bits={self.pq_bits} needs at least {2 ** self.pq_bits} training vectors")

    @property
    def trained_kind(self) -> bool:
        """Whether the index needs training before it can hold vectors."""
        return self.index in ("ivf", "ivfpq")

    @property
    def nlist_resolved(self) -> int:
        if self.nlist is not None:
            return self.nlist
        base = self.train_size or 10_000
        return max(16, int(4 * math.sqrt(base)))

    @property
    def pq_m_resolved(self) -> int:
        if self.pq_m is not None:
            return self.pq_m
        for m in (64, 32, 16, 8, 4, 2, 1):
            if self.dim % m == 0 and m <= max(1, self.dim // 2):
                return m
        return 1

    @property
    def train_size_resolved(self) -> int:
        if self.train_size is not None:
            return self.train_size
        need = 39 * self.nlist_resolved  # FAISS warns below 39 points per centroid
        if self.index == "ivfpq":
            need = max(need, 39 * 2 ** self.pq_bits)
        return need

    def factory_string(self) -> str:
        if self.index == "flat":
            return "Flat"
        if self.index == "hnsw":
            return f"HNSW{self.hnsw_m}"
        if self.index == "ivf":
            return f"IVF{self.nlist_resolved},Flat"
        # "np": no polysemous training, which search never uses and which costs ~10x the k-means
        return f"IVF{self.nlist_resolved},PQ{self.pq_m_resolved}x{self.pq_bits}np"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CollectionSpec":
        if isinstance(d, CollectionSpec):
            return d
        if not isinstance(d, dict):
            raise MemoryInputError("spec", f"must be an object, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise MemoryInputError(unknown[0], f"unknown collection setting (known: {', '.join(sorted(fields))})")
        for req in ("name", "dim"):
            if req not in d:
                raise MemoryInputError(req, "required")
        return cls(**d)
