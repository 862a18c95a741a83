"""Vector memory: FAISS collections with 64-bit ids, JSON metadata, a write-ahead log and
snapshots (no Ray here; `actors.memory_shard` shards it across Ray actors)."""

from .durable import DurableCollection, RecoveryReport
from .errors import CollectionNotFound, CorruptStore, MemoryInputError
from .hierarchical import HierarchicalMemory, LocalBackend, ToolMatch, ToolRecord
from .index import VectorIndex
from .sharding import merge_topk, shard_of
from .spec import INDEX_KINDS, METRICS, CollectionSpec

__all__ = ["CollectionNotFound", "CollectionSpec", "CorruptStore", "DurableCollection", "HierarchicalMemory", "LocalBackend", "INDEX_KINDS", "METRICS",
           "MemoryInputError", "RecoveryReport", "ToolMatch", "ToolRecord", "VectorIndex", "merge_topk", "shard_of"]
