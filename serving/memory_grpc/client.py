"""A small synchronous client of the memory gRPC service.

    with MemoryClient("127.0.0.1:50051") as m:
        m.create_collection(name="docs", dim=4, index="hnsw")
        m.push_batch("docs", np.eye(4), ids=[1, 2, 3, 4], metadata=[{"t": "a"}, None, None, None])
        hits = m.query("docs", [1, 0, 0, 0], k=2, with_metadata=True)   # hits.ids, hits.distances, hits.metadata

Failures arrive as `MemoryRpcError` subclasses carrying the server's message: INVALID_ARGUMENT
-> `InvalidArgument` (a ValueError), NOT_FOUND -> `NotFound` (a LookupError), UNAVAILABLE ->
`Unavailable` (a ConnectionError), DEADLINE_EXCEEDED -> `DeadlineExceeded` (a TimeoutError),
RESOURCE_EXHAUSTED (an overloaded memory, or a message over the size limit) -> `ResourceExhausted`.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import grpc
import numpy as np

from .messages import DEFAULT_MAX_MESSAGE_BYTES, SPEC_FIELDS, pb, pb_grpc


class MemoryRpcError(Exception):
    def __init__(self, code: grpc.StatusCode | None, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class InvalidArgument(MemoryRpcError, ValueError):
    pass


class NotFound(MemoryRpcError, LookupError):
    pass


class Unavailable(MemoryRpcError, ConnectionError):
    pass


class ResourceExhausted(MemoryRpcError):
    pass


class DeadlineExceeded(MemoryRpcError, TimeoutError):
    pass


ERRORS = {grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument, grpc.StatusCode.NOT_FOUND: NotFound,
          grpc.StatusCode.UNAVAILABLE: Unavailable, grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
          grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded}


class Hits(NamedTuple):
    """query: 1-D, only the hits found. query_batch: (q, k), padded with id -1, distance NaN and
    metadata None where a collection holds fewer than k vectors."""
    ids: np.ndarray
    distances: np.ndarray
    metadata: list | None


def _bad(field: str, message: str) -> InvalidArgument:
    return InvalidArgument(grpc.StatusCode.INVALID_ARGUMENT, f"{field}: {message}")


def _metadata_json(record) -> str:
    return "" if record is None else json.dumps(record, allow_nan=False, separators=(",", ":"), ensure_ascii=False)


def _json_or_none(text: str):
    return json.loads(text) if text else None


def _rows(vectors, field: str) -> np.ndarray:
    arr = np.asarray(vectors, dtype=np.float32)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise _bad(field, f"must be 2-D (rows of numbers), got shape {arr.shape}")
    return arr


def _vector(vector) -> list[float]:
    arr = np.asarray(vector, dtype=np.float32)
    if arr.ndim != 1:
        raise _bad("vector", f"must be 1-D, got shape {arr.shape}")
    return arr.tolist()


class MemoryClient:
    def __init__(self, target: str, *, timeout_s: float = 60.0, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self.timeout_s = timeout_s
        self._channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", max_message_bytes),
                                                               ("grpc.max_send_message_length", max_message_bytes)])
        self._stub = pb_grpc.MemoryStub(self._channel)

    def _call(self, rpc: str, request):
        try:
            return getattr(self._stub, rpc)(request, timeout=self.timeout_s)
        except grpc.RpcError as exc:
            code, details = exc.code(), exc.details() or str(exc)
            raise ERRORS.get(code, MemoryRpcError)(code, details) from exc

    def create_collection(self, **spec) -> dict:
        """name, dim, metric, index, shards, replicas, ... (the router's settings); the full spec."""
        given = {k: spec.pop(k) for k in list(spec) if k in SPEC_FIELDS and spec[k] is not None}
        try:  # the rest (unknown settings, nulls) goes as JSON, for the router to name what is wrong
            request = pb.CreateCollectionRequest(name=spec.pop("name", ""), spec_json=json.dumps(spec) if spec else "",
                                                 **given)
        except (TypeError, ValueError) as exc:  # a setting of the wrong type or out of int32 range
            raise _bad("spec", str(exc)) from None
        return json.loads(self._call("CreateCollection", request).spec_json)

    def push(self, collection: str, vector, id: int | None = None, metadata: dict | None = None,
             if_exists: str = "error") -> dict:
        """{"id", "added", "skipped"}; id=None lets the memory pick one."""
        out = self._call("Push", pb.PushRequest(collection=collection, id=id, vector=_vector(vector),
                                                metadata_json=_metadata_json(metadata), if_exists=if_exists))
        return {"id": out.ids[0], "added": out.added, "skipped": out.skipped}

    def push_batch(self, collection: str, vectors, ids=None, metadata: list | None = None,
                   if_exists: str = "error") -> dict:
        """{"ids" (int64 array, request order), "added", "skipped"}; all rows stored or none."""
        rows = _rows(vectors, "vectors")
        n = len(rows)
        if ids is not None and len(ids) != n:
            raise _bad("ids", f"{len(ids)} ids for {n} rows")
        if metadata is not None and len(metadata) != n:
            raise _bad("metadata", f"{len(metadata)} records for {n} rows")
        request = pb.PushBatchRequest(
            collection=collection, dim=rows.shape[1], values=rows.ravel().tolist(), if_exists=if_exists,
            ids=[] if ids is None else np.asarray(ids, dtype=np.int64).tolist(),
            metadata_json=[] if metadata is None else [_metadata_json(m) for m in metadata])
        out = self._call("PushBatch", request)
        return {"ids": np.asarray(out.ids, dtype=np.int64), "added": out.added, "skipped": out.skipped}

    def query(self, collection: str, vector, k: int = 10, with_metadata: bool = False) -> Hits:
        out = self._call("Query", pb.QueryRequest(collection=collection, vector=_vector(vector), k=k,
                                                  with_metadata=with_metadata))
        return Hits(np.asarray([h.id for h in out.hits], dtype=np.int64),
                    np.asarray([h.distance for h in out.hits], dtype=np.float32),
                    [_json_or_none(h.metadata_json) for h in out.hits] if with_metadata else None)

    def query_batch(self, collection: str, vectors, k: int = 10, with_metadata: bool = False) -> Hits:
        rows = _rows(vectors, "vectors")
        out = self._call("QueryBatch", pb.QueryBatchRequest(collection=collection, dim=rows.shape[1],
                                                            values=rows.ravel().tolist(), k=k,
                                                            with_metadata=with_metadata))
        width = max([k] + [len(r.hits) for r in out.results])
        ids = np.full((len(out.results), width), -1, dtype=np.int64)
        distances = np.full((len(out.results), width), np.nan, dtype=np.float32)
        metadata = [[None] * width for _ in out.results] if with_metadata else None
        for q, result in enumerate(out.results):
            for j, hit in enumerate(result.hits):
                ids[q, j], distances[q, j] = hit.id, hit.distance
                if with_metadata:
                    metadata[q][j] = _json_or_none(hit.metadata_json)
        return Hits(ids, distances, metadata)

    def delete(self, collection: str, ids) -> dict:
        """{"deleted": count, "missing": ids that were not stored}."""
        out = self._call("Delete", pb.DeleteRequest(collection=collection,
                                                    ids=np.asarray(ids, dtype=np.int64).reshape(-1).tolist()))
        return {"deleted": out.deleted, "missing": list(out.missing)}

    def stats(self, collection: str) -> dict:
        return json.loads(self._call("Stats", pb.StatsRequest(collection=collection)).stats_json)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
