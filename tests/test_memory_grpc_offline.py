"""The memory gRPC package without Ray: code generation from memory.proto, and the mapping of
router exceptions to gRPC statuses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from serving.memory_grpc.codegen import PROTO, STAMP, ensure_generated

REPO = Path(__file__).resolve().parents[1]


def import_in_fresh_python(parent: Path, package: str) -> str:
    """Import the generated package in a new interpreter (the test process's protobuf pool
    already holds memory.proto) and print the stub's rpcs."""
    code = (f"import {package}.memory_pb2 as pb, {package}.memory_pb2_grpc as g; "
            "print(sorted(m.name for m in pb.DESCRIPTOR.services_by_name['Memory'].methods)); "
            "print(g.MemoryStub.__name__, pb.PushBatchRequest(dim=2, values=[1, 2]).ByteSize())")
    out = subprocess.run([sys.executable, "-c", code], cwd=parent, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_generates_an_importable_package(tmp_path):
    out = ensure_generated(tmp_path / "gen", PROTO)
    assert {"__init__.py", "memory_pb2.py", "memory_pb2_grpc.py", "memory_pb2.pyi", STAMP} <= {p.name for p in out.iterdir()}
    assert "from . import memory_pb2" in (out / "memory_pb2_grpc.py").read_text()
    printed = import_in_fresh_python(tmp_path, "gen")
    assert "['CreateCollection', 'Delete', 'Push', 'PushBatch', 'Query', 'QueryBatch', 'Stats']" in printed
    assert "MemoryStub" in printed


def test_rebuilds_only_when_the_proto_changes(tmp_path):
    proto = tmp_path / "memory.proto"
    proto.write_text(PROTO.read_text())
    out = ensure_generated(tmp_path / "gen", proto)
    first = (out / STAMP).stat().st_ino
    ensure_generated(tmp_path / "gen", proto)
    assert (out / STAMP).stat().st_ino == first  # up to date: left alone

    proto.write_text(PROTO.read_text() + "\nmessage Extra { int32 x = 1; }\n")
    ensure_generated(tmp_path / "gen", proto)
    assert (out / STAMP).stat().st_ino != first
    assert "Extra" in (out / "memory_pb2.pyi").read_text()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no build or stale dirs left


def test_concurrent_generation_leaves_one_complete_copy(tmp_path):
    code = f"from serving.memory_grpc.codegen import ensure_generated; ensure_generated({str(tmp_path / 'gen')!r})"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    assert "MemoryStub" in import_in_fresh_python(tmp_path, "gen")
    assert [p.name for p in tmp_path.iterdir()] == ["gen"]


def test_codegen_command(tmp_path):
    out = subprocess.run([sys.executable, "-m", "serving.memory_grpc.codegen", "--out", str(tmp_path / "gen")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(tmp_path / "gen")
    assert (tmp_path / "gen" / "memory_pb2_grpc.py").exists()
    # make's call: nothing to say when the code is up to date
    again = subprocess.run([sys.executable, "-m", "serving.memory_grpc.codegen", "--out", str(tmp_path / "gen"), "--quiet"],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == "", again


def test_a_broken_proto_is_an_error(tmp_path):
    proto = tmp_path / "memory.proto"
    proto.write_text('syntax = "proto3"; message {')
    with pytest.raises(RuntimeError, match="protoc failed"):
        ensure_generated(tmp_path / "gen", proto)
    assert not (tmp_path / "gen").exists()


def test_status_mapping():
    from ray.exceptions import ActorDiedError, RayTaskError

    from actors.sandbox_worker import PoolBusy
    from emergence.memory import CollectionNotFound, MemoryInputError
    from serving.memory_grpc.server import grpc_status

    # Over Ray the actor's exception is a RayTaskError too, whose str is a traceback: send the cause's message.
    wrapped = RayTaskError("add", "Traceback (most recent call last): ...", MemoryInputError("k", "too big")).as_instanceof_cause()
    assert isinstance(wrapped, MemoryInputError)
    assert grpc_status(wrapped) == (grpc.StatusCode.INVALID_ARGUMENT, "k: too big")
    code, details = grpc_status(CollectionNotFound("nope", ["docs"]))
    assert code == grpc.StatusCode.NOT_FOUND and "'nope'" in details and "docs" in details
    assert grpc_status(PoolBusy("queue full"))[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert grpc_status(ActorDiedError())[0] == grpc.StatusCode.UNAVAILABLE
    assert grpc_status(TimeoutError())[0] == grpc.StatusCode.DEADLINE_EXCEEDED
    assert grpc_status(KeyError("secret detail")) == (grpc.StatusCode.INTERNAL, "memory request failed: KeyError")
