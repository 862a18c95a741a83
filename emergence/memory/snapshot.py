"""Snapshots: a collection's whole state at one lsn, written atomically.

A snapshot is a directory `snap-<lsn>` holding the serialized FAISS index, the live ids, their
metadata and a manifest with each file's size and CRC-32. It is written as `snap-<lsn>.tmp-*`,
every file fsynced, then renamed into place; a reader trusts nothing it can't check against the
manifest.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import zlib
from array import array

import faiss
import numpy as np

from .index import VectorIndex
from .spec import CollectionSpec
from .wal import fsync_dir

FORMAT = 1
PREFIX = "snap-"


class BadSnapshot(Exception):
    """A snapshot that fails its checks (the message says which)."""


def snapshot_dirs(root: str) -> list[tuple[int, str]]:
    """(lsn, path) of complete snapshots, newest first."""
    if not os.path.isdir(root):
        return []
    out = []
    for name in os.listdir(root):
        tail = name[len(PREFIX):]
        if name.startswith(PREFIX) and tail.isdigit():
            out.append((int(tail), os.path.join(root, name)))
    return sorted(out, reverse=True)


def _write(path: str, data) -> dict:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return {"bytes": len(memoryview(data).cast("B")), "crc32": zlib.crc32(data)}


def _npy(a: np.ndarray) -> bytes:
    return np.ascontiguousarray(a).tobytes()


def write_snapshot(root: str, index: VectorIndex, lsn: int) -> str:
    os.makedirs(root, exist_ok=True)
    final = os.path.join(root, f"{PREFIX}{lsn:020d}")
    if os.path.exists(final):
        return final
    tmp = f"{final}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    faiss_index = index.buffer if index.buffer is not None else index.index
    ids = np.fromiter(index.meta.keys(), dtype=np.int64, count=len(index.meta))
    texts = [t.encode() if t is not None else b"" for t in index.meta.values()]
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if texts:
        np.cumsum([len(t) for t in texts], out=offsets[1:])
    files = {
        "index.faiss": _write(os.path.join(tmp, "index.faiss"), faiss.serialize_index(faiss_index)),
        "ids.bin": _write(os.path.join(tmp, "ids.bin"), _npy(ids)),
        "meta.bin": _write(os.path.join(tmp, "meta.bin"), b"".join(texts)),
        "meta_offsets.bin": _write(os.path.join(tmp, "meta_offsets.bin"), _npy(offsets)),
    }
    if index.spec.index == "hnsw":
        files["labels.bin"] = _write(os.path.join(tmp, "labels.bin"), bytes(index.labels))
    manifest = {"format": FORMAT, "lsn": lsn, "created": time.time(), "spec": index.spec.to_dict(),
                "trained": index.trained, "count": len(index), "files": files}
    _write(os.path.join(tmp, "manifest.json"), json.dumps(manifest, indent=1).encode())
    fsync_dir(tmp)
    os.rename(tmp, final)
    fsync_dir(root)
    return final


def _read_checked(path: str, name: str, entry: dict) -> bytes:
    try:
        with open(os.path.join(path, name), "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadSnapshot(f"{name}: {exc.strerror}") from None
    if len(data) != entry["bytes"]:
        raise BadSnapshot(f"{name}: {len(data)} bytes, the manifest says {entry['bytes']}")
    if zlib.crc32(data) != entry["crc32"]:
        raise BadSnapshot(f"{name}: checksum mismatch")
    return data


def read_snapshot(path: str, spec: CollectionSpec) -> tuple[VectorIndex, int]:
    """(index, lsn) from a snapshot directory; BadSnapshot if anything fails its check."""
    try:
        with open(os.path.join(path, "manifest.json")) as f:
            manifest = json.load(f)
        files, lsn = manifest["files"], int(manifest["lsn"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadSnapshot(f"manifest.json unreadable: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BadSnapshot(f"format {manifest.get('format')!r}, this code reads {FORMAT}")
    if manifest.get("spec") != spec.to_dict():
        raise BadSnapshot("written for a different collection spec")
    data = {name: _read_checked(path, name, entry) for name, entry in files.items()}
    ids = np.frombuffer(data["ids.bin"], dtype=np.int64)
    offsets = np.frombuffer(data["meta_offsets.bin"], dtype=np.int64)
    blob = data["meta.bin"]
    if len(offsets) != len(ids) + 1 or len(ids) != manifest["count"]:
        raise BadSnapshot("ids, metadata and count disagree")
    if not blob:
        texts = [None] * len(ids)
    else:
        o = offsets.tolist()
        texts = [blob[a:b].decode() if b > a else None for a, b in zip(o, o[1:])]
    try:
        faiss_index = faiss.deserialize_index(np.frombuffer(data["index.faiss"], dtype=np.uint8))
    except RuntimeError as exc:
        raise BadSnapshot(f"index.faiss does not load: {exc}") from None
    index = VectorIndex(spec)
    index.meta = dict(zip(ids.tolist(), texts))
    if not manifest["trained"]:
        index.buffer, index.index = faiss_index, None
    elif spec.index == "hnsw":
        index.index = faiss_index
        labels = np.frombuffer(data["labels.bin"], dtype=np.int64)
        alive = np.flatnonzero(labels >= 0)
        index.labels = array("q", data["labels.bin"])
        index.label_of = dict(zip(labels[alive].tolist(), alive.tolist()))
        index.dead = int(len(labels) - len(alive))
    else:
        index.index, index.buffer = faiss_index, None
    if faiss_index.ntotal != len(ids) + index.dead:
        raise BadSnapshot(f"the index holds {faiss_index.ntotal} vectors, the ids {len(ids)}")
    return index, lsn
