"""The executor interface and the machinery the backends share: a warm supervisor process
(`runner.py`) per executor, spoken to over a length-prefixed JSON pipe."""

from __future__ import annotations

import json
import os
import select
import struct
import subprocess
import threading
import time
from pathlib import Path

from .cgroup import Cgroup
from .harness import RunResult, TestCase, check_source, judge, parse_tests, sandbox_failure
from .limits import Limits

RUNNER_SOURCE = (Path(__file__).with_name("runner.py")).read_text()
# The sandbox sees only this environment: nothing of the host's (tokens, keys) leaks in.
SANDBOX_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/work", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONHASHSEED": "0"}
START_TIMEOUT_S = 10.0


class SandboxUnavailable(RuntimeError):
    """The requested backend can't run on this machine; the message says what to do."""


class SandboxError(RuntimeError):
    """The sandbox itself failed (not the code under test)."""


REPLY_STATUSES = {"returned", "error", "timeout"}


def well_formed(reply, job_id: int, n_tests: int) -> bool:
    """A reply to *this* job, with one record per test and only statuses the supervisor emits."""
    if not isinstance(reply, dict) or reply.get("id") != job_id:
        return False
    if "supervisor_error" in reply or reply.get("load_error"):
        return True
    tests = reply.get("tests")
    return (isinstance(tests, list) and len(tests) == n_tests
            and all(isinstance(t, dict) and t.get("status") in REPLY_STATUSES for t in tests))


class Executor:
    """Runs untrusted code against test cases. Backends differ only in how the supervisor is
    started (`command`) and what bounds it; one job runs at a time per executor."""

    name = "base"
    pidns = False  # the supervisor owns a PID namespace, so it may kill every other process in it
    use_cgroup = False

    def __init__(self, limits: Limits | None = None):
        self.limits = limits or Limits()
        self._proc: subprocess.Popen | None = None
        self._cgroup: Cgroup | None = None
        self._lock = threading.Lock()
        self.last_cold_start_s: float | None = None
        self._job_id = 0

    # --- backend hooks ---
    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_kwargs(self) -> dict:
        return {}

    def check_available(self) -> None:
        """Raise SandboxUnavailable with instructions when the backend can't run here."""

    # --- public API ---
    def run(self, code: str, entry: str, tests, limits: Limits | dict | None = None) -> RunResult:
        check_source(code, entry)
        cases = parse_tests(tests)
        lim = limits if isinstance(limits, Limits) else (self.limits if limits is None else Limits.from_dict(limits))
        with self._lock:
            t0 = time.perf_counter()
            cold = None
            if not self.alive:
                cold = self._start()
            result = self._run_job(code, entry, cases, lim)
            result.duration_s = time.perf_counter() - t0
            result.cold_start_s = cold
            return result

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def warm_up(self) -> float:
        with self._lock:
            return self._start() if not self.alive else 0.0

    def close(self) -> None:
        with self._lock:
            self._stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    # --- supervisor lifecycle ---
    def _start(self) -> float:
        self._stop()
        t0 = time.perf_counter()
        if self.use_cgroup:
            self._cgroup = Cgroup.create()
        cmd = self.command()
        if self._cgroup is not None:
            files = self._cgroup.procs_files
            # join the cgroups as the very first thing, before anything can fork
            join = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 97; shift; n=$((n-1)); done; exec "$@"'
            cmd = ["/bin/sh", "-c", join, "sh", str(len(files)), *files, *cmd]
            self._cgroup.set_limits(self.limits.memory_mb, self.limits.max_procs, self.limits.cpus)
        try:
            self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          env=SANDBOX_ENV, close_fds=True, start_new_session=True,
                                          **self.popen_kwargs())
        except OSError as exc:
            self._stop()
            raise SandboxUnavailable(f"{self.name}: could not start the sandbox ({exc})") from exc
        hello = self._read(time.monotonic() + START_TIMEOUT_S)
        if not hello or not hello.get("ready"):
            err = self._stderr_tail()
            self._stop()
            raise SandboxError(f"{self.name}: the sandbox did not start: {err or 'no reply'}")
        self.last_cold_start_s = time.perf_counter() - t0
        return self.last_cold_start_s

    def _stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            try:
                os.killpg(proc.pid, 9)
            except OSError:
                pass
            try:
                proc.kill()
            except OSError:
                pass
            proc.wait()
            for f in (proc.stdin, proc.stdout, proc.stderr):
                try:
                    f.close()
                except OSError:
                    pass
        cg, self._cgroup = self._cgroup, None
        if cg is not None:
            cg.remove()
        if proc is not None:
            self._after_stop()

    def _after_stop(self) -> None:
        """Backend clean-up once the supervisor's process is gone."""

    # --- one job ---
    def _run_job(self, code: str, entry: str, cases: list[TestCase], lim: Limits) -> RunResult:
        self._job_id += 1
        job = {"id": self._job_id, "code": code, "entry": entry, "args": [c.args for c in cases],
               "limits": {**lim.to_dict(), "nproc_rlimit": self._nproc_rlimit(lim)}}
        oom_before = self._cgroup.oom_kills() if self._cgroup else 0
        if self._cgroup is not None:
            self._cgroup.set_limits(lim.memory_mb, lim.max_procs, lim.cpus)
        deadline = time.monotonic() + len(cases) * (lim.wall_s + 2.5) + 5.0
        try:
            self._write(job)
            reply = self._read(deadline)
        except (BrokenPipeError, ConnectionResetError):
            reply = None
        if reply is None:
            why = self._death_reason(deadline)
            self._stop()
            # the code under test ended its own sandbox: its failure, not the sandbox's
            return sandbox_failure(cases, self.name, why, status="error")
        if not well_formed(reply, self._job_id, len(cases)):
            self._stop()
            return sandbox_failure(cases, self.name, "the sandbox answered out of turn or malformed; it was "
                                   "restarted (something inside it tried to forge its reply)")
        if "supervisor_error" in reply:
            self._stop()
            return sandbox_failure(cases, self.name, reply["supervisor_error"])
        result = judge(cases, reply, self.name)
        if self._cgroup is not None and self._cgroup.oom_kills() > oom_before:
            for t in result.tests:
                if t.status == "error" and t.error and "SIGKILL" in t.error:
                    t.error = f"memory limit of {lim.memory_mb} MB exceeded (killed by the OOM killer)"
        if reply.get("restart"):
            self._stop()  # the code changed the sandbox's own state: the next job gets a fresh one
        return result

    def _nproc_rlimit(self, lim: Limits) -> int | None:
        """RLIMIT_NPROC where no pids cgroup bounds the sandbox. It counts every process of the
        sandbox's host uid, so the budget is max_procs on top of what that uid already runs."""
        if self._cgroup is not None or self._proc is None:
            return None
        uid = self.sandbox_uid()
        count = 0
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    count += entry.stat().st_uid == uid
                except OSError:
                    pass
        return lim.max_procs + count

    def sandbox_uid(self) -> int:
        return os.geteuid()

    def _death_reason(self, deadline: float) -> str:
        if self.alive and time.monotonic() >= deadline:
            return "the sandbox stopped answering (host-side deadline); it was killed and will be restarted"
        return "the sandbox's supervisor died while the code ran (the code killed it or exhausted the sandbox)"

    def _write(self, obj: dict) -> None:
        data = json.dumps(obj, allow_nan=True).encode()
        self._proc.stdin.write(struct.pack(">I", len(data)) + data)
        self._proc.stdin.flush()

    def _read(self, deadline: float) -> dict | None:
        fd = self._proc.stdout.fileno()
        head = self._read_exact(fd, 4, deadline)
        if head is None:
            return None
        (n,) = struct.unpack(">I", head)
        body = self._read_exact(fd, n, deadline)
        if body is None:
            return None
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            return {"malformed": True}

    @staticmethod
    def _read_exact(fd: int, n: int, deadline: float) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _stderr_tail(self) -> str:
        proc = self._proc
        if proc is None:
            return ""
        try:
            proc.kill()
            _, err = proc.communicate(timeout=2)
            return err.decode("utf-8", "replace").strip()[-2000:]
        except Exception:  # noqa: BLE001
            return ""
