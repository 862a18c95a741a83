"""A collection that never loses an acknowledged write.

    coll = DurableCollection.open("data/tools", CollectionSpec(name="tools", dim=384))
    coll.add([7], vectors, [{"intent": "..."}])    # returns once the record is fsynced
    coll.search(queries, k=5)

Layout of the directory:
    spec.json                    the collection's spec (written once, atomically)
    wal/<first-lsn>.log          log segments
    snapshots/snap-<lsn>/        index + ids + metadata + manifest (at most `keep_snapshots`)
    snapshots/rejected/          snapshots that failed their checks, kept for inspection

Recovery on open: the newest snapshot that passes its checks, then every logged record after
it. Log segments are kept back to the *second* newest snapshot, so a damaged newest snapshot
falls back to the previous one and the longer log, losing nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from . import records
from .errors import CorruptStore, MemoryInputError
from .index import VectorIndex
from .snapshot import BadSnapshot, read_snapshot, snapshot_dirs, write_snapshot
from .spec import CollectionSpec
from .wal import WriteAheadLog, fsync_dir


@dataclass
class RecoveryReport:
    snapshot_lsn: int = 0  # 0: started from an empty collection
    rejected_snapshots: list = field(default_factory=list)  # [{"snapshot", "reason"}]
    replayed: int = 0
    last_lsn: int = 0
    torn_tail: dict | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _write_json_atomic(path: str, obj) -> None:
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(path) or ".")


class DurableCollection:
    def __init__(self, directory: str, spec: CollectionSpec, fsync: bool, snapshot_every_bytes: int,
                 keep_snapshots: int, recovery_target_s: float):
        self.dir = directory
        self.spec = spec
        self.snapshot_every_bytes = snapshot_every_bytes
        self.recovery_target_s = recovery_target_s
        self.apply_s_per_byte = 0.0  # running estimate of what replaying a logged byte costs
        self.last_snapshot_bytes = 0
        self.keep_snapshots = max(2, keep_snapshots)
        self.wal = WriteAheadLog(os.path.join(directory, "wal"), fsync=fsync)
        self.snap_root = os.path.join(directory, "snapshots")
        self.index = VectorIndex(spec)
        self.snapshot_lsn = 0
        self.lock = threading.RLock()  # one writer or reader at a time: FAISS indexes aren't safe to search while adding
        self.recovery = RecoveryReport()
        self._lock_file = None

    @classmethod
    def open(cls, directory: str, spec: CollectionSpec | dict | None = None, *, fsync: bool = True,
             snapshot_every_bytes: int = 128 << 20, keep_snapshots: int = 2,
             lock_timeout_s: float = 30.0, recovery_target_s: float = 2.0) -> "DurableCollection":
        """Open (and recover) the collection in `directory`, creating it when `spec` is given and
        the directory holds none. A `spec` that differs from the stored one is refused.

        Snapshots are taken after `snapshot_every_bytes` of log, or sooner once replaying the log
        would take longer than `recovery_target_s` (the measured cost of applying writes: an
        IVF-PQ or HNSW add costs far more per byte than a flat one) -- but not before the log has
        grown by a tenth of the last snapshot's size, which bounds the rewriting of big indexes."""
        spec_path = os.path.join(directory, "spec.json")
        stored = None
        if os.path.exists(spec_path):
            with open(spec_path) as f:
                stored = CollectionSpec.from_dict(json.load(f))
        if spec is not None:
            spec = CollectionSpec.from_dict(spec)
            if stored is not None and stored != spec:
                diff = [k for k, v in spec.to_dict().items() if stored.to_dict()[k] != v]
                raise MemoryInputError(diff[0] if diff else "spec",
                                       f"collection {stored.name!r} exists with a different spec ({', '.join(diff)} differ)")
        elif stored is None:
            raise MemoryInputError("spec", f"no collection in {directory!r} and no spec to create one")
        spec = stored or spec
        if stored is None:
            os.makedirs(directory, exist_ok=True)
            _write_json_atomic(spec_path, spec.to_dict())
        coll = cls(directory, spec, fsync, snapshot_every_bytes, keep_snapshots, recovery_target_s)
        coll._lock_directory(lock_timeout_s)
        try:
            coll._recover()
        except BaseException:
            coll.close()
            raise
        return coll

    def _lock_directory(self, timeout_s: float) -> None:
        """One process per directory: a restarted shard may start while its killed predecessor's
        process is still being torn down, and two writers would interleave the log."""
        self._lock_file = open(os.path.join(self.dir, "LOCK"), "a")
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    self._lock_file.close()
                    raise CorruptStore(f"{self.dir} is held by another process (LOCK) for over {timeout_s:.0f} s") from None
                time.sleep(0.05)

    # -- recovery --------------------------------------------------------------------------

    def _recover(self) -> None:
        t0 = time.perf_counter()
        rep = self.recovery
        for lsn, path in snapshot_dirs(self.snap_root):
            try:
                self.index, self.snapshot_lsn = read_snapshot(path, self.spec)
                self.last_snapshot_bytes = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
                rep.snapshot_lsn = lsn
                break
            except BadSnapshot as exc:
                rep.rejected_snapshots.append({"snapshot": os.path.basename(path), "reason": str(exc)})
                self._set_aside(path)
        replay, torn = self.wal.replay(self.snapshot_lsn)
        replayed_bytes = 0
        for _, payload in replay:
            self._apply_timed(records.decode(payload), len(payload))
            rep.replayed += 1
            replayed_bytes += len(payload)
        self.wal.bytes_since_rotate = replayed_bytes  # what the next restart would replay again
        rep.torn_tail = torn[0].to_dict() if torn else None
        rep.last_lsn = self.wal.last_lsn
        rep.seconds = time.perf_counter() - t0
        if rep.rejected_snapshots:
            self.snapshot()  # a good snapshot again, so the retained log stays short

    def _set_aside(self, path: str) -> None:
        rejected = os.path.join(self.snap_root, "rejected")
        os.makedirs(rejected, exist_ok=True)
        dest = os.path.join(rejected, f"{os.path.basename(path)}-{int(time.time())}")
        os.rename(path, dest)
        fsync_dir(self.snap_root)

    # -- writes ----------------------------------------------------------------------------

    def add(self, ids, vectors, metadata=None, if_exists: str = "error") -> dict:
        """Store vectors under `ids`; durable when this returns. All or nothing: a refused
        request (MemoryInputError) stores no row."""
        with self.lock:
            op = self.index.plan_add(ids, vectors, metadata, if_exists)
            payload = records.encode(op)
            lsn = self.wal.append(payload)
            out = self._apply_timed(op, len(payload))
            self._maybe_snapshot()
            return {**out, "lsn": lsn}

    def delete(self, ids) -> dict:
        with self.lock:
            op = self.index.plan_delete(ids)
            payload = records.encode(op)
            lsn = self.wal.append(payload)
            out = self._apply_timed(op, len(payload))
            self._maybe_snapshot()
            return {**out, "lsn": lsn}

    def _apply_timed(self, op, nbytes: int) -> dict:
        t0 = time.perf_counter()
        out = self.index.apply(op)
        rate = (time.perf_counter() - t0) / max(nbytes, 1)
        self.apply_s_per_byte = rate if not self.apply_s_per_byte else 0.8 * self.apply_s_per_byte + 0.2 * rate
        return out

    def replay_estimate_s(self) -> float:
        """About how long replaying the log since the last snapshot would take."""
        return self.wal.bytes_since_rotate * self.apply_s_per_byte

    def _maybe_snapshot(self) -> None:
        since = self.wal.bytes_since_rotate
        if since >= self.snapshot_every_bytes or (
                self.replay_estimate_s() >= self.recovery_target_s and since >= 0.1 * self.last_snapshot_bytes):
            self.snapshot()

    def snapshot(self) -> dict:
        """Write a snapshot at the current lsn, then drop what no fallback needs."""
        with self.lock:
            lsn = self.wal.last_lsn
            if self.index.needs_compaction():
                self.index.compact()
            t0 = time.perf_counter()
            path = write_snapshot(self.snap_root, self.index, lsn)
            self.last_snapshot_bytes = sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path))
            self.snapshot_lsn = lsn
            self.wal.rotate()
            snaps = snapshot_dirs(self.snap_root)
            for _, old in snaps[self.keep_snapshots:]:
                shutil.rmtree(old)
            kept = snapshot_dirs(self.snap_root)
            # Keep the log back to the oldest snapshot we keep: the fallback replays from there.
            dropped = self.wal.drop_before(kept[-1][0]) if len(kept) >= 2 else []
            return {"lsn": lsn, "path": path, "seconds": time.perf_counter() - t0, "dropped_segments": dropped}

    # -- reads -----------------------------------------------------------------------------

    def search(self, queries, k: int, params: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
        with self.lock:
            return self.index.search(queries, k, params)

    def get(self, ids) -> dict:
        with self.lock:
            return self.index.get(ids)

    def __len__(self) -> int:
        return len(self.index)

    def stats(self) -> dict:
        with self.lock:
            snaps = snapshot_dirs(self.snap_root)
            snap_bytes = sum(os.path.getsize(os.path.join(p, f)) for _, p in snaps[:1] for f in os.listdir(p))
            return {
                "name": self.spec.name, "count": len(self.index), "trained": self.index.trained,
                "buffered": 0 if self.index.trained else len(self.index),
                "dead_labels": self.index.dead, "lsn": self.wal.last_lsn, "snapshot_lsn": self.snapshot_lsn,
                "snapshots": [lsn for lsn, _ in snaps], "snapshot_bytes": snap_bytes,
                "wal_bytes": self.wal.total_bytes(), "wal_segments": len(self.wal.segments()),
                "replay_estimate_s": self.replay_estimate_s(),
                "recovery": self.recovery.to_dict(),
            }

    def close(self) -> None:
        with self.lock:
            self.wal.close()
            if self._lock_file is not None:
                self._lock_file.close()  # releases the flock
                self._lock_file = None
