"""Write-ahead log: numbered records in segment files, each record checksummed and fsynced
before the write it carries is acknowledged.

Record: magic b"EMW1" | payload length (u32) | CRC-32 of lsn+payload (u32) | lsn (u64) | payload.
Segment files are named by the first LSN they hold (`00000000000000000042.log`); a snapshot
rotates to a new segment, so whole segments can be dropped once no snapshot we might fall back
to needs them.

A crash can leave the last record of the last segment half-written (a torn tail): it was never
acknowledged, so recovery cuts it off and reports it. A bad record anywhere else -- or followed
by a good one -- is corruption of acknowledged data and raises CorruptStore instead.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import Iterator

from .errors import CorruptStore

MAGIC = b"EMW1"
HEADER = struct.Struct("<4sIIQ")
MAX_RECORD = 1 << 31


def _crc(lsn: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<Q", lsn)))


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class TornTail:
    segment: str
    offset: int
    bytes_cut: int
    reason: str

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _segment_name(first_lsn: int) -> str:
    return f"{first_lsn:020d}.log"


def _read_record(buf: memoryview, off: int, expect_lsn: int):
    """(lsn, payload, next offset), or a string saying why no good record starts at `off`."""
    if len(buf) - off < HEADER.size:
        return "incomplete header"
    magic, length, crc, lsn = HEADER.unpack_from(buf, off)
    if magic != MAGIC:
        return "bad magic"
    if length > MAX_RECORD or off + HEADER.size + length > len(buf):
        return "incomplete record"
    payload = bytes(buf[off + HEADER.size: off + HEADER.size + length])
    if _crc(lsn, payload) != crc:
        return "checksum mismatch"
    if expect_lsn is not None and lsn != expect_lsn:
        return f"lsn {lsn} where {expect_lsn} was expected"
    return lsn, payload, off + HEADER.size + length


def _good_record_after(buf: memoryview, off: int) -> int | None:
    """Offset of a well-formed record after `off`, if any (tells corruption from a torn tail)."""
    pos = off + 1
    data = buf.obj if isinstance(buf.obj, bytes) else bytes(buf)
    while (pos := data.find(MAGIC, pos)) != -1:
        if isinstance(_read_record(buf, pos, None), tuple):
            return pos
        pos += 1
    return None


class WriteAheadLog:
    def __init__(self, directory: str, fsync: bool = True):
        self.dir = directory
        self.fsync = fsync
        os.makedirs(directory, exist_ok=True)
        self._file = None
        self.last_lsn = 0
        self.bytes_since_rotate = 0

    # -- segments --------------------------------------------------------------------------

    def segments(self) -> list[tuple[int, str]]:
        out = []
        for name in os.listdir(self.dir):
            if name.endswith(".log") and name[:-4].isdigit():
                out.append((int(name[:-4]), os.path.join(self.dir, name)))
        return sorted(out)

    def total_bytes(self) -> int:
        return sum(os.path.getsize(p) for _, p in self.segments())

    # -- recovery --------------------------------------------------------------------------

    def replay(self, after_lsn: int) -> tuple[Iterator[tuple[int, bytes]], list]:
        """Records with lsn > after_lsn, in order, checking the chain is unbroken; the torn tail
        (if any) is cut from the last segment and reported in the returned list once iteration
        ends. Sets `last_lsn`. Call before `append`."""
        report: list[TornTail] = []
        return self._replay(after_lsn, report), report

    def _replay(self, after_lsn: int, report: list) -> Iterator[tuple[int, bytes]]:
        segs = self.segments()
        self.last_lsn = after_lsn
        if not segs:
            return
        if segs[0][0] > after_lsn + 1:
            raise CorruptStore(f"the log starts at lsn {segs[0][0]} but recovery needs every record after "
                               f"lsn {after_lsn}: records {after_lsn + 1}..{segs[0][0] - 1} are gone")
        expect = segs[0][0]
        for n, (first, path) in enumerate(segs):
            last_segment = n == len(segs) - 1
            if first != expect:
                raise CorruptStore(f"log segment {os.path.basename(path)} starts at lsn {first}, expected {expect}")
            with open(path, "rb") as f:
                data = f.read()
            buf = memoryview(data)
            off = 0
            while off < len(buf):
                rec = _read_record(buf, off, expect)
                if isinstance(rec, str):
                    if not last_segment or _good_record_after(buf, off) is not None:
                        raise CorruptStore(f"log segment {os.path.basename(path)} is damaged at byte {off} ({rec}) "
                                           "with acknowledged records after it")
                    self._cut(path, off)
                    report.append(TornTail(os.path.basename(path), off, len(buf) - off, rec))
                    break
                lsn, payload, off = rec
                expect = lsn + 1
                if lsn > after_lsn:
                    self.last_lsn = lsn
                    yield lsn, payload
        self.last_lsn = max(self.last_lsn, expect - 1)

    def _cut(self, path: str, offset: int) -> None:
        with open(path, "r+b") as f:
            f.truncate(offset)
            f.flush()
            os.fsync(f.fileno())

    # -- writing ---------------------------------------------------------------------------

    def _open_current(self) -> None:
        segs = self.segments()
        if segs and segs[-1][0] <= self.last_lsn + 1:
            path = segs[-1][1]
        else:
            path = os.path.join(self.dir, _segment_name(self.last_lsn + 1))
        self._file = open(path, "ab")
        fsync_dir(self.dir)

    def append(self, payload: bytes) -> int:
        """Write one record and make it durable; returns its lsn."""
        if self._file is None:
            self._open_current()
        lsn = self.last_lsn + 1
        rec = HEADER.pack(MAGIC, len(payload), _crc(lsn, payload), lsn) + payload
        start = self._file.tell()
        try:
            self._file.write(rec)
            self._file.flush()
            if self.fsync:
                os.fdatasync(self._file.fileno())
        except BaseException:
            # Don't leave a half record for the next append to follow (it would read as corruption).
            try:
                self._file.truncate(start)
            finally:
                self._file.close()
                self._file = None
            raise
        self.last_lsn = lsn
        self.bytes_since_rotate += len(rec)
        return lsn

    def rotate(self) -> None:
        """Start a new segment at the next lsn (called after a snapshot)."""
        if self._file is not None:
            self._file.close()
        self._file = open(os.path.join(self.dir, _segment_name(self.last_lsn + 1)), "ab")
        fsync_dir(self.dir)
        self.bytes_since_rotate = 0

    def drop_before(self, lsn: int) -> list[str]:
        """Delete segments holding only records <= lsn (never the current one)."""
        segs = self.segments()
        dropped = []
        for (first, path), (next_first, _) in zip(segs, segs[1:]):
            if next_first <= lsn + 1:
                os.remove(path)
                dropped.append(os.path.basename(path))
        if dropped:
            fsync_dir(self.dir)
        return dropped

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
