"""The Emergence Engine's memory: what a tool is for, how it works, and what happened.

Three collections over one embedding space (the intent encoder's, unit-normalised, searched by
inner product = cosine similarity):
- declarative: per tool, its intent, docstring, signature and function name;
- procedural: per tool, its code and program, and how well it was verified;
- episodic: per synthesis event, the intent asked, the tool returned (if any), the outcome.

A tool's id is derived from its code, so storing the same tool again updates it instead of
duplicating it. The collections live behind a `MemoryBackend`: `LocalBackend` (durable
collections in one directory, no Ray) or `actors.memory_shard.RouterBackend` (the sharded
memory on Ray), so the synthesis code is the same in tests, in a notebook and in Serve.

    memory = HierarchicalMemory(LocalBackend("runs/tools"), dim=384)
    tool_id = memory.store_tool(embedding, ToolRecord(intent=..., code=..., ...))
    memory.find_tools(embedding, k=3, min_similarity=0.9)   # -> [ToolMatch], best first
    memory.record_episode(embedding, {"intent": ..., "tool_id": tool_id, "outcome": "verified"})
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np

from .durable import DurableCollection
from .errors import CollectionNotFound, MemoryInputError

KINDS = ("declarative", "procedural", "episodic")


class MemoryBackend(Protocol):
    def create(self, spec: dict) -> None: ...
    def add(self, name: str, vectors: np.ndarray, ids: np.ndarray, metadata: list, if_exists: str) -> dict: ...
    def search(self, name: str, queries: np.ndarray, k: int) -> dict: ...  # {"ids", "distances", "metadata"}
    def get(self, name: str, ids: list[int]) -> dict: ...


class LocalBackend:
    """Durable collections under one directory, in this process."""

    def __init__(self, root: str):
        self.root = root
        self.colls: dict[str, DurableCollection] = {}

    def create(self, spec: dict) -> None:
        if spec["name"] not in self.colls:
            self.colls[spec["name"]] = DurableCollection.open(os.path.join(self.root, spec["name"]), spec)

    def _coll(self, name: str) -> DurableCollection:
        if name not in self.colls:
            raise CollectionNotFound(name, list(self.colls))
        return self.colls[name]

    def add(self, name, vectors, ids, metadata, if_exists):
        return self._coll(name).add(ids, vectors, metadata, if_exists)

    def search(self, name, queries, k):
        c = self._coll(name)
        D, I = c.search(queries, k)
        texts = c.get(I[I >= 0])
        meta = [[json.loads(t) if (t := texts.get(i)) is not None else None for i in row if i >= 0] for row in I]
        return {"ids": I, "distances": D, "metadata": meta}

    def get(self, name, ids):
        return {i: json.loads(t) if t is not None else None for i, t in self._coll(name).get(ids).items()}

    def close(self) -> None:
        for c in self.colls.values():
            c.close()


@dataclass
class ToolRecord:
    intent: str
    code: str
    function_name: str
    signature: str = ""
    docstring: str = ""
    program: object = None  # the DSL program (JSON-able), when the tool came from the engine
    verified: dict | None = None  # {"passed": p, "total": t} from the sandbox, or None
    source: str = "synthesized"  # or "user"
    tags: list = field(default_factory=list)


@dataclass
class ToolMatch:
    tool_id: int
    similarity: float  # cosine similarity of the intents
    intent: str
    code: str
    function_name: str
    signature: str
    docstring: str
    program: object
    verified: dict | None


def tool_id(code: str) -> int:
    """Stable 63-bit id of a tool's code (same code, same id)."""
    return int.from_bytes(hashlib.sha256(code.encode()).digest()[:8], "big") >> 1


def _unit(v, dim: int) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(1, -1)
    if v.shape[1] != dim:
        raise MemoryInputError("vector", f"wrong dimension: {v.shape[1]} numbers, the memory's dim is {dim}")
    if not np.isfinite(v).all():
        raise MemoryInputError("vector", "must be finite (no NaN or infinity)")
    norm = float(np.linalg.norm(v))
    if norm == 0:
        raise MemoryInputError("vector", "is all zeros (no direction to compare)")
    return v / norm


class HierarchicalMemory:
    def __init__(self, backend: MemoryBackend, dim: int, prefix: str = "", shards: int = 1):
        self.backend = backend
        self.dim = dim
        self.names = {k: f"{prefix}{k}" for k in KINDS}
        for name in self.names.values():
            spec = {"name": name, "dim": dim, "metric": "ip", "index": "flat"}
            if shards > 1:
                spec["shards"] = shards
            backend.create(spec)

    # -- tools -----------------------------------------------------------------------------

    def store_tool(self, intent_vector, tool: ToolRecord) -> int:
        """Store (or update) a tool in declarative and procedural memory; returns its id."""
        if not tool.code.strip() or not tool.function_name:
            raise MemoryInputError("tool", "needs code and a function_name")
        v = _unit(intent_vector, self.dim)
        tid = tool_id(tool.code)
        ids = np.array([tid], dtype=np.int64)
        d = asdict(tool)
        declarative = {k: d[k] for k in ("intent", "docstring", "signature", "function_name", "source", "tags")}
        procedural = {k: d[k] for k in ("code", "program", "function_name", "verified", "intent")}
        stamp = {"tool_id": tid, "stored_at": time.time()}
        # procedural first: a declarative entry always has code behind it
        self.backend.add(self.names["procedural"], v, ids, [{**procedural, **stamp}], "replace")
        self.backend.add(self.names["declarative"], v, ids, [{**declarative, **stamp}], "replace")
        return tid

    def find_tools(self, intent_vector, k: int = 5, min_similarity: float | None = None,
                   verified_only: bool = False) -> list[ToolMatch]:
        """Stored tools whose intent is closest to this one, best first."""
        v = _unit(intent_vector, self.dim)
        out = self.backend.search(self.names["procedural"], v, k)
        found = [i for i in out["ids"][0].tolist() if i >= 0]
        if not found:  # an empty memory (the router refuses an empty id list)
            return []
        decl = self.backend.get(self.names["declarative"], found)
        matches = []
        for tid, sim, proc in zip(out["ids"][0].tolist(), out["distances"][0].tolist(), out["metadata"][0]):
            if tid < 0 or proc is None:
                continue
            if min_similarity is not None and sim < min_similarity:
                break
            ver = proc.get("verified")
            if verified_only and not (ver and ver.get("total") and ver.get("passed") == ver.get("total")):
                continue
            dd = decl.get(tid) or {}
            matches.append(ToolMatch(tid, float(sim), proc.get("intent", ""), proc["code"], proc["function_name"],
                                     dd.get("signature", ""), dd.get("docstring", ""), proc.get("program"), ver))
        return matches

    def get_tool(self, tid: int) -> dict | None:
        rec = self.backend.get(self.names["procedural"], [tid]).get(tid)
        if rec is None:
            return None
        return {**(self.backend.get(self.names["declarative"], [tid]).get(tid) or {}), **rec}

    # -- episodes --------------------------------------------------------------------------

    def record_episode(self, intent_vector, episode: dict) -> int:
        """Log one synthesis event (intent, tool_id, outcome, latency, ...); returns its id."""
        if not isinstance(episode, dict):
            raise MemoryInputError("episode", f"must be an object, got {type(episode).__name__}")
        v = _unit(intent_vector, self.dim)
        eid = int.from_bytes(os.urandom(8), "big") >> 1
        self.backend.add(self.names["episodic"], v, np.array([eid], dtype=np.int64),
                         [{**episode, "episode_id": eid, "at": time.time()}], "error")
        return eid

    def similar_episodes(self, intent_vector, k: int = 5) -> list[dict]:
        v = _unit(intent_vector, self.dim)
        out = self.backend.search(self.names["episodic"], v, k)
        return [{**m, "similarity": float(s)} for i, s, m in zip(out["ids"][0].tolist(), out["distances"][0].tolist(),
                                                                 out["metadata"][0]) if i >= 0 and m is not None]
