"""gRPC front of the sharded vector memory (`emergence.memory.v1.Memory`, see memory.proto).

    python -m serving.memory_grpc.server --port 50051          # serves the "memory-router" actor
    with MemoryClient("127.0.0.1:50051") as m: m.query("docs", v, k=5)

The message and stub modules are generated from memory.proto on first use (or by
`python -m serving.memory_grpc.codegen`), never committed; `load()` returns them.
"""

from __future__ import annotations


def ensure_generated(*args, **kwargs):
    from .codegen import ensure_generated as build  # imported here: `python -m ...codegen` runs it as __main__

    return build(*args, **kwargs)


def load():
    """(memory_pb2, memory_pb2_grpc), generating them first if missing or stale."""
    ensure_generated()
    from ._generated import memory_pb2, memory_pb2_grpc

    return memory_pb2, memory_pb2_grpc


__all__ = ["ensure_generated", "load"]
