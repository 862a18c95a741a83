"""Binary encoding of the log's records: an add (ids, vectors, metadata, if_exists) or a delete."""

from __future__ import annotations

import json
import struct

import numpy as np

from .index import AddOp, DeleteOp
from .validate import IF_EXISTS

ADD, DELETE = 1, 2
_ADD = struct.Struct("<BBII")  # op, if_exists, n, dim
_DELETE = struct.Struct("<BI")  # op, n


def encode(op) -> bytes:
    if isinstance(op, AddOp):
        n, dim = op.vectors.shape
        meta = b"" if all(t is None for t in op.metadata) else json.dumps(op.metadata).encode()
        return b"".join((_ADD.pack(ADD, IF_EXISTS.index(op.if_exists), n, dim),
                         op.ids.astype("<i8").tobytes(), op.vectors.astype("<f4").tobytes(), meta))
    return _DELETE.pack(DELETE, len(op.ids)) + op.ids.astype("<i8").tobytes()


def decode(payload: bytes):
    if payload[0] == ADD:
        _, mode, n, dim = _ADD.unpack_from(payload)
        off = _ADD.size
        ids = np.frombuffer(payload, "<i8", n, off).astype(np.int64)
        off += 8 * n
        vecs = np.frombuffer(payload, "<f4", n * dim, off).astype(np.float32).reshape(n, dim)
        off += 4 * n * dim
        meta = json.loads(payload[off:]) if off < len(payload) else [None] * n
        return AddOp(ids, vecs, meta, IF_EXISTS[mode])
    if payload[0] == DELETE:
        _, n = _DELETE.unpack_from(payload)
        return DeleteOp(np.frombuffer(payload, "<i8", n, _DELETE.size).astype(np.int64))
    raise ValueError(f"unknown log record type {payload[0]}")
