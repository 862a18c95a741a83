"""HTTP front of the sharded vector memory: request models and the calls behind /memory/*.

The routes themselves live on the EmergenceAPI ingress (serving.app); each is one call here,
which forwards to the `MemoryRouter` actor and turns its errors into HTTP answers:
MemoryInputError -> 422 naming the field, CollectionNotFound -> 404, a shard that stays down
-> 503. Vectors travel as JSON lists of numbers.
"""

from __future__ import annotations

import math
import os
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError

from emergence.memory import CollectionNotFound, MemoryInputError
from emergence.memory.spec import INDEX_KINDS, MAX_K, METRICS

from .errors import ApiError

Id = Annotated[int, Field(strict=True, ge=0, lt=2**63 - 1)]
Vector = list[float]


class CreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    dim: int = Field(ge=1, le=65_536, description="Vector dimension, fixed for the collection's life.")
    metric: Literal[METRICS] = "l2"
    index: Literal[INDEX_KINDS] = Field("flat", description="flat (exact), ivf, hnsw or ivfpq (compressed).")
    shards: int = Field(1, ge=1, le=64)
    replicas: Literal[0, 1] = 0
    nlist: int | None = Field(None, ge=1)
    nprobe: int = Field(16, ge=1)
    hnsw_m: int = Field(32, ge=2, le=256)
    ef_search: int = Field(64, ge=1)
    ef_construction: int = Field(80, ge=1)
    pq_m: int | None = Field(None, ge=1)
    pq_bits: int = Field(8, ge=1, le=16)
    train_size: int | None = Field(None, ge=1)
    max_batch: int = Field(10_000, ge=1, le=100_000)


class AddBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    vectors: list[Vector] = Field(min_length=1, description="Rows of `dim` finite numbers.")
    ids: list[Id] | None = Field(None, description="One 64-bit id per row (0 <= id < 2**63-1); omitted: random ids are assigned.")
    metadata: list[dict[str, Any] | None] | None = Field(None, description="One JSON object (or null) per row, at most 64 KiB each.")
    if_exists: Literal["error", "skip", "replace"] = Field("error", description="What to do with an id that is already stored.")


class SearchBody(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    vectors: list[Vector] | None = Field(None, min_length=1, description="Query rows (or give one `vector`).")
    vector: Vector | None = None
    k: int = Field(10, ge=1, le=MAX_K)
    with_metadata: bool = False
    nprobe: int | None = Field(None, ge=1, le=65_536, description="IVF lists to visit for this search (default: the collection's).")
    ef_search: int | None = Field(None, ge=1, le=65_536, description="HNSW search breadth for this search (default: the collection's).")


class DeleteBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Id] = Field(min_length=1)


def _cause(exc: BaseException) -> BaseException:
    return getattr(exc, "cause", None) or exc


def _field_loc(field: str) -> list:
    out: list = []
    for part in field.split("."):
        name, _, rest = part.partition("[")
        out.append(name)
        if rest:
            out.extend(int(x) for x in rest.replace("]", "").split("[") if x.isdigit())
    return out


def api_error(exc: BaseException) -> ApiError:
    cause = _cause(exc)
    if isinstance(cause, MemoryInputError):
        return ApiError(422, [{"loc": ["body", *_field_loc(cause.field)], "msg": cause.message, "type": "value_error"}])
    if isinstance(cause, CollectionNotFound):
        return ApiError(404, str(cause))
    if isinstance(exc, (RayActorError, ActorUnavailableError, GetTimeoutError)):
        return ApiError(503, "a memory shard is unavailable; retry shortly")
    return ApiError(500, f"memory request failed: {type(cause).__name__}")


class MemoryFront:
    """What the ingress holds: the router's name and root, the handle looked up on first use."""

    def __init__(self, root: str | None, router_name: str):
        self.root = root
        self.router_name = router_name
        self._router = None

    def router(self):
        if self._router is None:
            from actors.memory_shard import NAMESPACE, MemoryRouter

            self._router = MemoryRouter.options(name=self.router_name, namespace=NAMESPACE, get_if_exists=True).remote(self.root)
        return self._router

    async def _do(self, method: str, *args):
        try:
            return await getattr(self.router(), method).remote(*args)
        except Exception as exc:
            raise api_error(exc) from None

    async def create(self, collection: str, body: CreateBody) -> dict:
        return await self._do("create_collection", {"name": collection, **body.model_dump()})

    async def add(self, collection: str, body: AddBody) -> dict:
        vectors = np.asarray(body.vectors, dtype=np.float32) if _rectangular(body.vectors) else body.vectors
        ids = None if body.ids is None else np.asarray(body.ids, dtype=np.int64)
        return await self._do("add", collection, vectors, ids, body.metadata, body.if_exists)

    async def search(self, collection: str, body: SearchBody) -> dict:
        if (body.vectors is None) == (body.vector is None):
            raise ApiError(422, [{"loc": ["body", "vectors"], "msg": "give exactly one of `vectors` or `vector`", "type": "value_error"}])
        rows = body.vectors if body.vectors is not None else [body.vector]
        queries = np.asarray(rows, dtype=np.float32) if _rectangular(rows) else rows
        params = {k: v for k, v in (("nprobe", body.nprobe), ("ef_search", body.ef_search)) if v is not None} or None
        out = await self._do("search", collection, queries, body.k, body.with_metadata, params)
        results = []
        for r, (ids, dists) in enumerate(zip(out["ids"].tolist(), out["distances"].tolist())):
            hits = []
            for j, (i, d) in enumerate(zip(ids, dists)):
                if i < 0:
                    break
                hit = {"id": i, "distance": d if math.isfinite(d) else None}
                if body.with_metadata:
                    hit["metadata"] = out["metadata"][r][j]
                hits.append(hit)
            results.append(hits)
        return {"results": results}

    async def delete(self, collection: str, body: DeleteBody) -> dict:
        return await self._do("delete", collection, np.asarray(body.ids, dtype=np.int64))

    async def stats(self, collection: str) -> dict:
        return await self._do("stats", collection)

    async def list(self) -> list:
        return await self._do("list_collections")


def _rectangular(rows: list) -> bool:
    """All rows the same length (np.asarray would otherwise make an object array; the router
    then names the dimension problem)."""
    return len({len(r) for r in rows}) == 1


def memory_root(path: str | None) -> str:
    from actors.memory_shard import default_root

    return os.path.abspath(os.path.expanduser(path)) if path else default_root()
