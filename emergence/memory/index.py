"""One collection's vectors in memory: a FAISS index, 64-bit ids and a JSON record per id.

Flat and IVF indexes hold the caller's ids directly and delete for real (`remove_ids`).
HNSW graphs can't remove nodes, so an HNSW collection keeps its own labels: a delete marks the
label dead and searches skip dead labels through an ID selector; `compact()` rebuilds the graph
once enough are dead. IVF and IVF-PQ need training: until `train_size` vectors have arrived they
sit in an exact flat buffer (searches are exact), then the index is trained on them and takes
them over.

Mutations come in two steps so a durable wrapper can log between them: `plan_add` / `plan_delete`
check everything and return an op that `apply` cannot refuse.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import faiss
import numpy as np

from .errors import MemoryInputError
from .spec import CollectionSpec
from .validate import as_ids, as_if_exists, as_k, as_metadata, as_search_params, as_vectors


@dataclass
class AddOp:
    ids: np.ndarray  # int64 (n,)
    vectors: np.ndarray  # float32 (n, dim)
    metadata: list  # JSON text or None per row
    if_exists: str  # "error" was checked at planning; "skip" / "replace" act at apply


@dataclass
class DeleteOp:
    ids: np.ndarray


def _metric(spec: CollectionSpec) -> int:
    return faiss.METRIC_L2 if spec.metric == "l2" else faiss.METRIC_INNER_PRODUCT


def _flat(spec: CollectionSpec):
    return faiss.IndexIDMap2(faiss.IndexFlat(spec.dim, _metric(spec)))


def _flat_contents(idmap) -> tuple[np.ndarray, np.ndarray]:
    """(ids, vectors) held by an IndexIDMap2 over an IndexFlat."""
    ids = faiss.vector_to_array(idmap.id_map).astype(np.int64)
    flat = faiss.downcast_index(idmap.index)
    vecs = faiss.vector_to_array(flat.codes).view(np.float32).reshape(-1, idmap.d)
    return ids, vecs


class VectorIndex:
    def __init__(self, spec: CollectionSpec):
        self.spec = spec
        self.meta: dict[int, str | None] = {}  # every live id -> its metadata JSON text (or None)
        self.index = None  # flat: IDMap2(Flat); ivf*: trained IVF or None; hnsw: IndexHNSWFlat
        self.buffer = None  # ivf* before training: IDMap2(Flat)
        self.labels = array("q")  # hnsw: label -> id (-1 once dead)
        self.label_of: dict[int, int] = {}  # hnsw: live id -> label
        self.dead = 0  # hnsw: dead labels still in the graph
        self._selector = None  # hnsw: skips dead labels; rebuilt after deletes
        self._selector_keep = None
        if spec.index == "flat":
            self.index = _flat(spec)
        elif spec.index == "hnsw":
            self.index = self._new_hnsw()
        else:
            self.buffer = _flat(spec)

    # -- shape -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def trained(self) -> bool:
        return self.buffer is None

    def _new_hnsw(self):
        idx = faiss.IndexHNSWFlat(self.spec.dim, self.spec.hnsw_m, _metric(self.spec))
        idx.hnsw.efConstruction = self.spec.ef_construction
        idx.hnsw.efSearch = self.spec.ef_search
        return idx

    # -- planning: all checks, nothing changes ---------------------------------------------

    def plan_add(self, ids, vectors, metadata=None, if_exists: str = "error") -> AddOp:
        vecs = as_vectors(vectors, self.spec.dim, self.spec.max_batch)
        ids = as_ids(ids, len(vecs))
        texts = as_metadata(metadata, len(vecs))
        mode = as_if_exists(if_exists)
        if mode == "error":
            present = [i for i in ids.tolist() if i in self.meta]
            if present:
                raise MemoryInputError("ids", f"{len(present)} of these ids are already stored (first: {present[0]}); "
                                              "pass if_exists='skip' or 'replace' to allow that")
        return AddOp(ids, vecs, texts, mode)

    def plan_delete(self, ids) -> DeleteOp:
        return DeleteOp(as_ids(ids, unique=False))

    # -- applying --------------------------------------------------------------------------

    def apply(self, op) -> dict:
        if isinstance(op, AddOp):
            return self._add(op)
        return self._delete(op)

    def _add(self, op: AddOp) -> dict:
        ids, vecs, texts = op.ids, op.vectors, op.metadata
        exists = np.fromiter((i in self.meta for i in ids.tolist()), dtype=bool, count=len(ids))
        skipped = 0
        if exists.any():
            if op.if_exists == "replace":
                self._remove(ids[exists])
            else:  # "skip" (or "error" replayed from a log written before a conflicting write: keep the first)
                keep = ~exists
                skipped = int(exists.sum())
                ids, vecs = ids[keep], vecs[keep]
                texts = [t for t, k in zip(texts, keep.tolist()) if k]
        if len(ids):
            self._insert(ids, vecs)
            self.meta.update(zip(ids.tolist(), texts))
        return {"added": int(len(ids)), "skipped": skipped}

    def _insert(self, ids: np.ndarray, vecs: np.ndarray) -> None:
        if self.spec.index == "hnsw":
            start = self.index.ntotal
            self.index.add(vecs)
            self.labels.extend(ids.tolist())
            self.label_of.update(zip(ids.tolist(), range(start, start + len(ids))))
        elif self.buffer is not None:
            self.buffer.add_with_ids(vecs, ids)
            if self.buffer.ntotal >= self.spec.train_size_resolved:
                self._train()
        else:
            self.index.add_with_ids(vecs, ids)

    def _train(self) -> None:
        """Train the IVF / IVF-PQ index on the buffered vectors and move them into it."""
        ids, vecs = _flat_contents(self.buffer)
        index = faiss.index_factory(self.spec.dim, self.spec.factory_string(), _metric(self.spec))
        # Enough points per centroid for k-means; more only slows training down.
        limit = max(256 * self.spec.nlist_resolved, 2 ** self.spec.pq_bits * 64 if self.spec.index == "ivfpq" else 0)
        sample = vecs if len(vecs) <= limit else vecs[np.random.default_rng(0).choice(len(vecs), limit, replace=False)]
        index.train(sample)
        index.add_with_ids(vecs, ids)
        self.index, self.buffer = index, None

    def _delete(self, op: DeleteOp) -> dict:
        ids = np.unique(op.ids)
        live = np.fromiter((i in self.meta for i in ids.tolist()), dtype=bool, count=len(ids))
        self._remove(ids[live])
        return {"deleted": int(live.sum()), "missing": ids[~live].tolist()}

    def _remove(self, ids: np.ndarray) -> None:
        if not len(ids):
            return
        for i in ids.tolist():
            del self.meta[i]
        if self.spec.index == "hnsw":
            for i in ids.tolist():
                self.labels[self.label_of.pop(i)] = -1
            self.dead += len(ids)
            self._selector = None
        else:
            target = self.buffer if self.buffer is not None else self.index
            target.remove_ids(faiss.IDSelectorBatch(ids))

    # -- reading ---------------------------------------------------------------------------

    def search(self, queries, k: int, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(distances float32 (q, k), ids int64 (q, k)); missing results are id -1 with distance
        +inf (L2) or -inf (inner product), so they sort last when shards are merged.
        `params` may override the collection's nprobe / ef_search for this search."""
        q = as_vectors(queries, self.spec.dim, self.spec.max_batch, field="queries")
        k = as_k(k)
        p = as_search_params(params)
        worst = np.inf if self.spec.metric == "l2" else -np.inf
        if not self.meta:
            return np.full((len(q), k), worst, np.float32), np.full((len(q), k), -1, np.int64)
        if self.spec.index == "hnsw":
            D, L = self._search_hnsw(q, k, p.get("ef_search", self.spec.ef_search))
            ids = np.where(L >= 0, np.frombuffer(self.labels, dtype=np.int64)[np.maximum(L, 0)], -1)
        elif self.buffer is not None:
            D, ids = self.buffer.search(q, k)
        elif self.spec.index == "flat":
            D, ids = self.index.search(q, k)
        else:
            D, ids = self.index.search(q, k, params=faiss.SearchParametersIVF(nprobe=p.get("nprobe", self.spec.nprobe)))
        D = np.where(ids >= 0, D, worst).astype(np.float32)
        return D, ids.astype(np.int64)

    def _search_hnsw(self, q: np.ndarray, k: int, ef_search: int):
        ef = max(ef_search, k)
        if not self.dead:
            return self.index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef))
        if self._selector is None:
            dead = np.flatnonzero(np.frombuffer(self.labels, dtype=np.int64) < 0).astype(np.int64)
            self._selector_keep = faiss.IDSelectorBatch(dead)
            self._selector = faiss.IDSelectorNot(self._selector_keep)
        return self.index.search(q, k, params=faiss.SearchParametersHNSW(efSearch=ef, sel=self._selector))

    def get(self, ids) -> dict[int, str | None]:
        """{id: metadata JSON text (None when stored without)} for the ids that are stored."""
        if hasattr(ids, "__len__") and len(ids) == 0:
            return {}
        return {i: self.meta[i] for i in as_ids(ids, unique=False).tolist() if i in self.meta}

    def contains(self, ids) -> np.ndarray:
        return np.fromiter((i in self.meta for i in as_ids(ids, unique=False).tolist()), dtype=bool)

    def live_ids(self) -> np.ndarray:
        return np.fromiter(self.meta.keys(), dtype=np.int64, count=len(self.meta))

    def memory_bytes(self) -> int:
        """Bytes the vectors, ids and index structures take in memory (read off FAISS's arrays,
        cheap: nothing is serialized)."""
        d = self.spec.dim
        if self.buffer is not None or self.spec.index == "flat":
            target = self.buffer if self.buffer is not None else self.index
            return int(target.ntotal * (4 * d + 8))
        if self.spec.index == "hnsw":
            h = self.index.hnsw
            graph = 4 * h.neighbors.size() + 4 * h.levels.size() + 8 * h.offsets.size()
            return int(self.index.ntotal * 4 * d + graph + 8 * len(self.labels))
        ivf = faiss.extract_index_ivf(self.index)
        quantizer = ivf.nlist * d * 4
        codebook = 0
        if self.spec.index == "ivfpq":
            codebook = faiss.downcast_index(self.index).pq.centroids.size() * 4
        return int(ivf.ntotal * (ivf.code_size + 8) + quantizer + codebook)

    # -- maintenance -----------------------------------------------------------------------

    def needs_compaction(self, dead_fraction: float = 0.2) -> bool:
        return self.spec.index == "hnsw" and self.dead > 0 and self.dead >= dead_fraction * max(1, self.index.ntotal)

    def compact(self) -> None:
        """Rebuild an HNSW graph without its dead labels (live ids keep their vectors)."""
        if self.spec.index != "hnsw" or not self.dead:
            return
        labels = np.frombuffer(self.labels, dtype=np.int64)
        alive = np.flatnonzero(labels >= 0)
        vecs = self.index.reconstruct_batch(alive) if len(alive) else np.empty((0, self.spec.dim), np.float32)
        ids = labels[alive]
        self.index, self.labels, self.label_of, self.dead, self._selector = self._new_hnsw(), array("q"), {}, 0, None
        if len(ids):
            self._insert(ids, np.ascontiguousarray(vecs, dtype=np.float32))

