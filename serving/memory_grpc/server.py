"""The `emergence.memory.v1.Memory` gRPC service: a grpc.aio server fronting the MemoryRouter actor.

    python -m serving.memory_grpc.server --port 50051 [--host 127.0.0.1] [--address RAY_ADDRESS]

Each rpc checks the request's shape, makes one router call and maps what goes wrong to a
status: MemoryInputError -> INVALID_ARGUMENT (its "field: message"), CollectionNotFound ->
NOT_FOUND, an overloaded memory -> RESOURCE_EXHAUSTED, a router or shard that is down ->
UNAVAILABLE, a timeout -> DEADLINE_EXCEEDED, anything else -> INTERNAL (traceback logged here,
only the exception's type sent). `actor.py` runs the same server inside a Ray actor.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import logging
import signal

import grpc
import numpy as np
from ray.exceptions import PendingCallsLimitExceeded, RayActorError

from emergence.memory import CollectionNotFound, MemoryInputError

from .messages import DEFAULT_MAX_MESSAGE_BYTES, SPEC_FIELDS, pb, pb_grpc

log = logging.getLogger(__name__)

DEFAULT_K = 10
MAX_DETAILS = 2000  # status details travel in HTTP/2 trailers; keep them well under header limits
OVERLOAD_NAMES = ("Busy", "Overload")  # e.g. the sandbox pool's PoolBusy: matched by name, not imported


def grpc_status(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status for an exception from the router (or from checks here)."""
    cause = getattr(exc, "cause", None) or exc  # a RayTaskError's str holds a traceback; the cause's is the message
    if isinstance(cause, MemoryInputError):
        return grpc.StatusCode.INVALID_ARGUMENT, str(cause)[:MAX_DETAILS]
    if isinstance(cause, CollectionNotFound):
        return grpc.StatusCode.NOT_FOUND, str(cause)[:MAX_DETAILS]
    if isinstance(cause, PendingCallsLimitExceeded) or any(w in type(cause).__name__ for w in OVERLOAD_NAMES):
        message = f"the memory is overloaded, back off and retry: {cause}"
        return grpc.StatusCode.RESOURCE_EXHAUSTED, message[:MAX_DETAILS]
    if isinstance(cause, TimeoutError):
        return grpc.StatusCode.DEADLINE_EXCEEDED, "the memory did not answer in time"
    if isinstance(cause, RayActorError):  # ActorDiedError, ActorUnavailableError
        return grpc.StatusCode.UNAVAILABLE, "the memory router or one of its shards is unavailable; retry shortly"
    return grpc.StatusCode.INTERNAL, f"memory request failed: {type(cause).__name__}"


def _rpc(handler):
    """Run one rpc, turning any exception into a status (abort outside the except, so the
    abort's own exception is not caught)."""

    @functools.wraps(handler)
    async def wrapped(self, request, context):
        try:
            return await handler(self, request, context)
        except Exception as exc:
            code, details = grpc_status(exc)
            if code == grpc.StatusCode.INTERNAL:
                log.exception("%s failed", handler.__name__)
        await context.abort(code, details)

    return wrapped


# -- request checks: the router checks values (dimension, NaN, ids, k); these check the framing --

def _vector(values, field: str = "vector") -> np.ndarray:
    if len(values) == 0:
        raise MemoryInputError(field, "is empty")
    return np.asarray(values, dtype=np.float32).reshape(1, -1)


def _rows(values, dim: int, field: str = "values") -> np.ndarray:
    if dim <= 0:
        raise MemoryInputError("dim", f"must be a positive integer (the length of each row), got {dim}")
    if len(values) == 0:
        raise MemoryInputError(field, "is empty")
    if len(values) % dim:
        raise MemoryInputError(field, f"{len(values)} numbers is not a whole number of rows of dim={dim}")
    return np.asarray(values, dtype=np.float32).reshape(-1, dim)


def _json_object(text: str, field: str):
    """A JSON object, or None for "" / "null" (the router refuses NaN and oversized records)."""
    if not text:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise MemoryInputError(field, f"is not valid JSON ({exc})") from None
    if value is not None and not isinstance(value, dict):
        raise MemoryInputError(field, f"must be a JSON object or null, got {type(value).__name__}")
    return value


def _per_row(items, n: int, field: str, what: str):
    if len(items) not in (0, n):
        raise MemoryInputError(field, f"{len(items)} {what} for {n} rows (give one per row, or none)")
    return len(items) == n


def _k(request) -> int:
    return request.k if request.HasField("k") else DEFAULT_K  # the router refuses k <= 0 or too large


def _hits(ids: np.ndarray, distances: np.ndarray, metadata: list | None) -> pb.QueryResponse:
    """One query's hits, best first, without the router's -1 padding."""
    hits = []
    for j, (i, d) in enumerate(zip(ids.tolist(), distances.tolist())):
        if i < 0:
            break
        m = metadata[j] if metadata is not None else None
        text = "" if m is None else json.dumps(m, separators=(",", ":"), ensure_ascii=False)
        hits.append(pb.Hit(id=i, distance=d, metadata_json=text))
    return pb.QueryResponse(hits=hits)


class MemoryService(pb_grpc.MemoryServicer):
    def __init__(self, router, call_timeout_s: float = 120.0):
        self.router = router
        self.call_timeout_s = call_timeout_s

    async def _call(self, context, method: str, *args):
        timeout = self.call_timeout_s
        remaining = context.time_remaining()
        if remaining is not None:
            timeout = min(timeout, max(remaining, 0.001))
        return await asyncio.wait_for(getattr(self.router, method).remote(*args), timeout)

    @_rpc
    async def CreateCollection(self, request, context):
        spec = _json_object(request.spec_json, "spec_json") or {}
        given = {f: getattr(request, f) for f in SPEC_FIELDS if request.HasField(f)}
        if request.name:
            given["name"] = request.name
        for key, value in given.items():
            if key in spec and spec[key] != value:
                raise MemoryInputError(key, f"given as {value!r} and as {spec[key]!r} in spec_json")
        out = await self._call(context, "create_collection", {**spec, **given})
        return pb.CreateCollectionResponse(spec_json=json.dumps(out))

    @_rpc
    async def Push(self, request, context):
        vectors = _vector(request.vector)
        ids = [request.id] if request.HasField("id") else None
        metadata = [_json_object(request.metadata_json, "metadata_json")] if request.metadata_json else None
        out = await self._call(context, "add", request.collection, vectors, ids, metadata, request.if_exists or "error")
        return pb.PushResponse(ids=out["ids"], added=out["added"], skipped=out["skipped"])

    @_rpc
    async def PushBatch(self, request, context):
        vectors = _rows(request.values, request.dim)
        n = len(vectors)
        ids = np.asarray(request.ids, dtype=np.int64) if _per_row(request.ids, n, "ids", "ids") else None
        metadata = None
        if _per_row(request.metadata_json, n, "metadata_json", "metadata entries"):
            metadata = [_json_object(t, f"metadata_json[{r}]") for r, t in enumerate(request.metadata_json)]
        out = await self._call(context, "add", request.collection, vectors, ids, metadata, request.if_exists or "error")
        return pb.PushResponse(ids=out["ids"], added=out["added"], skipped=out["skipped"])

    @_rpc
    async def Query(self, request, context):
        out = await self._call(context, "search", request.collection, _vector(request.vector), _k(request),
                               request.with_metadata)
        return _hits(out["ids"][0], out["distances"][0], out["metadata"][0] if request.with_metadata else None)

    @_rpc
    async def QueryBatch(self, request, context):
        out = await self._call(context, "search", request.collection, _rows(request.values, request.dim), _k(request),
                               request.with_metadata)
        meta = out["metadata"] if request.with_metadata else [None] * len(out["ids"])
        return pb.QueryBatchResponse(results=[_hits(i, d, m) for i, d, m in zip(out["ids"], out["distances"], meta)])

    @_rpc
    async def Delete(self, request, context):
        out = await self._call(context, "delete", request.collection, np.asarray(request.ids, dtype=np.int64))
        return pb.DeleteResponse(deleted=out["deleted"], missing=out["missing"])

    @_rpc
    async def Stats(self, request, context):
        out = await self._call(context, "stats", request.collection)
        return pb.StatsResponse(count=out["count"], dim=out["dim"], stats_json=json.dumps(out, default=str))


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def start_server(router, host: str = "127.0.0.1", port: int = 50051, *,
                       max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, call_timeout_s: float = 120.0):
    """A started grpc.aio server on the running loop, and the port it bound (port=0: a free one)."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", max_message_bytes),
                                      ("grpc.max_send_message_length", max_message_bytes)])
    pb_grpc.add_MemoryServicer_to_server(MemoryService(router, call_timeout_s), server)
    bound = server.add_insecure_port(host_port(host, port))
    if not bound:
        raise RuntimeError(f"could not bind {host_port(host, port)}")
    await server.start()
    return server, bound


async def _serve_until_signal(router, args) -> None:
    server, port = await start_server(router, args.host, args.port, max_message_bytes=args.max_message_mb << 20)
    print(f"memory gRPC serving on {host_port(args.host, port)} (router {args.router_name!r})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: finishing calls in flight (up to 5 s)")
    await server.stop(grace=5)
    log.info("stopped")


def main(argv: list[str] | None = None) -> int:
    from actors.memory_shard import ROUTER_NAME, get_or_create_router
    from cluster.ray_session import ensure_ray

    p = argparse.ArgumentParser(prog="python -m serving.memory_grpc.server",
                                description="Serve the vector memory over gRPC.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=50051)
    p.add_argument("--address", default=None,
                   help="Ray cluster to join (default $RAY_ADDRESS, else a private local Ray)")
    p.add_argument("--root", default=None, help="memory directory, if the router has to be created")
    p.add_argument("--router-name", default=ROUTER_NAME)
    p.add_argument("--max-message-mb", type=int, default=DEFAULT_MAX_MESSAGE_BYTES >> 20)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ensure_ray(args.address)
    router = get_or_create_router(args.root, name=args.router_name)  # keep the handle: it keeps the router alive
    asyncio.run(_serve_until_signal(router, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
