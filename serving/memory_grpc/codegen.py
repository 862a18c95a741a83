"""Builds the Python code for memory.proto; the generated files are never committed.

`ensure_generated()` runs protoc (grpc_tools, in-process) into `_generated/` unless what is
there was built from this very .proto by this grpcio-tools version (a stamp records both:
file times lie after a git checkout, and code from another grpcio-tools may refuse to import).
Safe when several processes build at once: each builds in its own temporary directory and
renames it into place; a loser that finds a fresh copy there keeps that one.

    python -m serving.memory_grpc.codegen [--force]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.resources
import json
import os
import re
import shutil
import tempfile
import threading
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = HERE / "memory.proto"
GENERATED = HERE / "_generated"
STAMP = "STAMP.json"
_protoc_lock = threading.Lock()  # protoc.main keeps global state; one run per process at a time


def _stamp(proto: Path) -> dict:
    return {"proto_sha256": hashlib.sha256(proto.read_bytes()).hexdigest(),
            "grpcio_tools": importlib.metadata.version("grpcio-tools")}


def _current(out_dir: Path) -> dict | None:
    try:
        return json.loads((out_dir / STAMP).read_text())
    except (OSError, ValueError):
        return None


def _protoc(proto: Path, out_dir: Path) -> None:
    from grpc_tools import protoc

    include = importlib.resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto
    args = ["grpc_tools.protoc", f"-I{proto.parent}", f"-I{include}", f"--python_out={out_dir}",
            f"--pyi_out={out_dir}", f"--grpc_python_out={out_dir}", str(proto)]
    with _protoc_lock:
        rc = protoc.main(args)
    if rc != 0:
        raise RuntimeError(f"protoc failed on {proto} (exit {rc}; its messages are on stderr)")


def _package_relative(out_dir: Path, stem: str) -> None:
    """protoc writes `import memory_pb2 as memory__pb2`, which only works with the output
    directory on sys.path; make it `from . import ...` so the directory is a package."""
    path = out_dir / f"{stem}_pb2_grpc.py"
    text, n = re.subn(rf"^import {stem}_pb2 as ", f"from . import {stem}_pb2 as ", path.read_text(), flags=re.M)
    if n != 1:
        raise RuntimeError(f"expected one `import {stem}_pb2` line in {path}, found {n}")
    path.write_text(text)


def _install(built: Path, out_dir: Path, want: dict, force: bool) -> None:
    for _ in range(5):
        try:
            os.rename(built, out_dir)  # atomic; fails if out_dir exists (and is not empty)
            return
        except OSError:
            if not out_dir.exists():
                continue
            if not force and _current(out_dir) == want:
                return  # another process installed the same code first
            stale = out_dir.with_name(f".{out_dir.name}-stale-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(out_dir, stale)
            except FileNotFoundError:
                continue  # someone else moved it; try again
            shutil.rmtree(stale, ignore_errors=True)
            force = False  # the copy we replace is gone; whatever appears next is as good as ours
    raise RuntimeError(f"could not install generated code at {out_dir}")


def ensure_generated(out_dir: str | os.PathLike = GENERATED, proto: str | os.PathLike = PROTO,
                     force: bool = False) -> Path:
    """The directory (a Python package) holding `<stem>_pb2` and `<stem>_pb2_grpc`, built if
    missing or stale."""
    out_dir, proto = Path(out_dir).resolve(), Path(proto).resolve()
    want = _stamp(proto)
    if not force and _current(out_dir) == want:
        return out_dir
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-build-", dir=out_dir.parent))
    try:
        build.chmod(0o755)  # mkdtemp makes it private; the package is for every reader
        _protoc(proto, build)
        _package_relative(build, proto.stem)
        (build / "__init__.py").write_text(f'"""Generated from {proto.name} by {__name__}; do not edit or commit."""\n')
        (build / STAMP).write_text(json.dumps(want))  # last: a stamped directory is complete
        _install(build, out_dir, want, force)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.memory_grpc.codegen",
                                description="Generate the memory gRPC code from memory.proto.")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--out", default=str(GENERATED), help=f"output package directory (default {GENERATED})")
    p.add_argument("--quiet", action="store_true", help="say nothing when the code is already up to date (make's use)")
    args = p.parse_args(argv)
    current = not args.force and _current(Path(args.out).resolve()) == _stamp(Path(PROTO).resolve())
    out = ensure_generated(args.out, force=args.force)
    if not (args.quiet and current):
        print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
