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

from .errors import ApiError, Int, STRICT, exactly_one

ID_LIMIT = 2**63 - 1  # ids (and tool ids) are below this
Id = Int(ge=0, lt=ID_LIMIT)
# A row of finite numbers; its length must be the collection's dim (checked by the router: 422).
Vector = Annotated[list[float], Field(min_length=1)]
# strict: JSON true/"1" are not numbers or flags here; JSON ints stay valid numbers for float fields.


class CreateBody(BaseModel):
    model_config = STRICT
    dim: Int(ge=1, le=65_536) = Field(description="Vector dimension, fixed for the collection's life.")
    metric: Literal[METRICS] = "l2"
    index: Literal[INDEX_KINDS] = Field("flat", description="flat (exact), ivf, hnsw or ivfpq (compressed).")
    shards: Int(ge=1, le=64) = 1
    replicas: Int(ge=0, le=1) = Field(0, description="1: a replica of each shard (reads fail over to it).")
    nlist: Int(ge=1) | None = None
    nprobe: Int(ge=1) = 16
    hnsw_m: Int(ge=2, le=256) = 32
    ef_search: Int(ge=1) = 64
    ef_construction: Int(ge=1) = 80
    pq_m: Int(ge=1) | None = Field(None, description="IVF-PQ sub-quantizers; must divide dim.")
    pq_bits: Int(ge=1, le=16) = 8
    train_size: Int(ge=1) | None = Field(None, description="Vectors buffered before IVF training; at least nlist "
                                         "(and 2**pq_bits for ivfpq).")
    max_batch: Int(ge=1, le=100_000) = 10_000


class AddBody(BaseModel):
    model_config = STRICT
    vectors: list[Vector] = Field(min_length=1, description="Rows of `dim` finite numbers (float32 range).")
    ids: list[Id] | None = Field(None, json_schema_extra={"uniqueItems": True},
                                 description="One distinct 64-bit id per row (0 <= id < 2**63-1); omitted: random ids are assigned.")
    metadata: list[dict[str, Any] | None] | None = Field(None, description="One JSON object (or null) per row, at most 64 KiB each.")
    if_exists: Literal["error", "skip", "replace"] = Field("error", description="What to do with an id that is already stored.")


class SearchBody(BaseModel):
    # exactly one of `vectors` / `vector`: MemoryFront.search answers 422 otherwise
    model_config = ConfigDict(**STRICT, json_schema_extra=exactly_one(vectors="array", vector="array"))
    vectors: list[Vector] | None = Field(None, min_length=1, description="Query rows (or give one `vector`).")
    vector: Vector | None = Field(None, description="One query row (or give `vectors`).")
    k: Int(ge=1, le=MAX_K) = 10
    with_metadata: bool = False
    nprobe: Int(ge=1, le=65_536) | None = Field(None, description="IVF lists to visit for this search (default: the collection's).")
    ef_search: Int(ge=1, le=65_536) | None = Field(None, description="HNSW search breadth for this search (default: the collection's).")


class DeleteBody(BaseModel):
    model_config = STRICT
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
