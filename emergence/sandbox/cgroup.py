"""A per-sandbox cgroup (memory, pids and CPU quota) where this process may create one: root on cgroup v1,
or a writable cgroup v2 subtree. Bounds the whole process tree, which rlimits cannot."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
HEADROOM_MB = 64
PREFIX = "emergence-sandbox"  # the supervisor itself and bwrap's init live in the same group


class Cgroup:
    def __init__(self, dirs: dict[str, Path], v2: bool):
        self.dirs, self.v2 = dirs, v2

    @classmethod
    def create(cls, prefix: str = PREFIX) -> "Cgroup | None":
        """A fresh group, or None where cgroups can't be managed from here. The name carries the
        creating process's pid, so groups left by a process that was SIGKILLed (a Ray worker,
        say) are removed by the next one."""
        reap_stale(prefix)
        name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            if (ROOT / "cgroup.controllers").exists():  # unified (v2) hierarchy
                base = ROOT / "emergence"
                base.mkdir(exist_ok=True)
                (base / "cgroup.subtree_control").write_text("+memory +pids")
                dirs = {"memory": base / name, "pids": base / name}
                try:  # the CPU quota is a bonus; memory and pids are what bound the tree
                    (base / "cgroup.subtree_control").write_text("+cpu")
                    dirs["cpu"] = base / name
                except OSError:
                    pass
                (base / name).mkdir()
                return cls(dirs, v2=True)
            dirs = {}
            for ctl in ("memory", "pids", "cpu"):
                d = ROOT / ctl / name
                try:
                    d.mkdir()
                except OSError:
                    if ctl == "cpu":
                        continue
                    raise
                dirs[ctl] = d
            return cls(dirs, v2=False)
        except OSError:
            if "dirs" in locals():
                for d in dirs.values():
                    _rmdir(d)
            return None

    @property
    def procs_files(self) -> list[str]:
        return sorted({str(d / "cgroup.procs") for d in self.dirs.values()})

    def set_limits(self, memory_mb: int, max_procs: int, cpus: float) -> None:
        mem = (memory_mb + HEADROOM_MB) << 20
        period = 100_000
        quota = max(1000, int(cpus * period))
        if self.v2:
            d = self.dirs["memory"]
            (d / "memory.max").write_text(str(mem))
            _try_write(d / "memory.swap.max", "0")
            (d / "pids.max").write_text(str(max_procs + 4))
            if "cpu" in self.dirs:
                (d / "cpu.max").write_text(f"{quota} {period}")
            return
        else:
            m = self.dirs["memory"]
            # memsw (memory + swap) must stay >= the memory limit: raise it first when growing
            order = ["memory.memsw.limit_in_bytes", "memory.limit_in_bytes"]
            if mem < self._mem():
                order.reverse()
            for f in order:
                if "memsw" in f:
                    _try_write(m / f, str(mem))  # absent where swap accounting is off
                else:
                    (m / f).write_text(str(mem))
            (self.dirs["pids"] / "pids.max").write_text(str(max_procs + 4))
            if "cpu" in self.dirs:
                (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(period))
                (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))

    def _mem(self) -> int:
        try:
            return int((self.dirs["memory"] / "memory.limit_in_bytes").read_text())
        except (OSError, ValueError):
            return 0

    def oom_kills(self) -> int:
        f = self.dirs["memory"] / ("memory.events" if self.v2 else "memory.oom_control")
        try:
            for line in f.read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def pids(self) -> list[int]:
        try:
            return [int(p) for p in (self.dirs["pids"] / "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill_all(self) -> None:
        for pid in self.pids():
            try:
                os.kill(pid, 9)
            except OSError:
                pass

    def remove(self) -> None:
        self.kill_all()
        for d in set(self.dirs.values()):
            _rmdir(d)


def reap_stale(prefix: str = PREFIX) -> int:
    """Remove empty groups whose creating process is gone; returns how many were removed."""
    parents = [ROOT / "emergence"] if (ROOT / "cgroup.controllers").exists() else \
        [ROOT / c for c in ("memory", "pids", "cpu")]
    removed = 0
    for parent in parents:
        try:
            children = list(parent.glob(f"{prefix}-*"))
        except OSError:
            continue
        for d in children:
            owner = d.name[len(prefix) + 1:].split("-")[0]
            if not owner.isdigit() or Path(f"/proc/{owner}").exists():
                continue
            try:
                if not (d / "cgroup.procs").read_text().strip():
                    d.rmdir()
                    removed += 1
            except OSError:
                pass
    return removed


def _try_write(path: Path, text: str) -> None:
    try:
        path.write_text(text)
    except OSError:
        pass


def _rmdir(d: Path) -> None:
    for _ in range(50):  # a group can't be removed until its last process is reaped
        try:
            d.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.01)
