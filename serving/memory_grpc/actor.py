"""The memory gRPC server off the main thread: `BackgroundServer` (its own event loop in a
daemon thread) and `MemoryGrpcServer`, a Ray actor holding one, so a cluster can keep the
server running detached (`start_detached`, for `make run`).

The actor starts serving in its constructor, so when Ray restarts it after a crash it is back
on the same port without anyone calling it.
"""

from __future__ import annotations

import asyncio
import threading

import ray

from .messages import DEFAULT_MAX_MESSAGE_BYTES
from .server import host_port, start_server

ACTOR_NAME = "memory-grpc"


class BackgroundServer:
    """A started memory gRPC server on its own event loop in a daemon thread."""

    def __init__(self, router, host: str = "127.0.0.1", port: int = 0, *,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, call_timeout_s: float = 120.0):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="memory-grpc", daemon=True)
        self._thread.start()
        try:
            self._server, self.port = self._run(start_server(router, host, port, max_message_bytes=max_message_bytes,
                                                             call_timeout_s=call_timeout_s))
        except BaseException:
            self._shutdown_loop()
            raise
        self.host = host
        self.address = host_port(host, self.port)

    def _run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def _shutdown_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self._loop.close()

    def stop(self, grace: float = 1.0) -> None:
        if self._loop.is_closed():
            return
        self._run(self._server.stop(grace))
        self._shutdown_loop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


@ray.remote(num_cpus=0, max_restarts=-1)
class MemoryGrpcServer:
    """Serves the named MemoryRouter over gRPC on host:port (port 0: a free one; see address())."""

    def __init__(self, port: int = 50051, host: str = "127.0.0.1", router_name: str | None = None,
                 root: str | None = None, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        from actors.memory_shard import ROUTER_NAME, get_or_create_router

        self.router = get_or_create_router(root, name=router_name or ROUTER_NAME)  # held: keeps it alive
        self.server = BackgroundServer(self.router, host, port, max_message_bytes=max_message_bytes)

    def address(self) -> str:
        """host:port to dial; for a wildcard host, this node's IP."""
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):
            host = ray.util.get_node_ip_address()
        return host_port(host, self.server.port)

    def stop(self) -> None:
        self.server.stop()


def start_detached(port: int = 50051, host: str = "127.0.0.1", *, name: str = ACTOR_NAME, namespace: str = "emergence",
                   router_name: str | None = None, root: str | None = None, timeout_s: float = 120.0) -> str:
    """Start (or find) the detached gRPC server actor on the connected cluster; its address."""
    actor = MemoryGrpcServer.options(name=name, namespace=namespace, lifetime="detached", get_if_exists=True).remote(
        port, host, router_name, root)
    return ray.get(actor.address.remote(), timeout=timeout_s)
