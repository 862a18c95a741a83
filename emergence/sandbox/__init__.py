"""Run untrusted generated code in a sandbox and score it against test cases.

    from emergence.sandbox import open_executor
    with open_executor() as sb:                      # bubblewrap, else docker; never plain processes
        result = sb.run(code, "extract_links", [{"args": ["<a href='x'>"], "expected": ["x"]}])
        result.status, [t.status for t in result.tests]

Backends are described in `backends.py`; the in-sandbox supervisor in `runner.py`.
"""

from __future__ import annotations

from .backends import BubblewrapExecutor, DockerExecutor, ProcessExecutor, bwrap_missing, docker_client, probe_bwrap
from .compare import values_equal
from .executor import Executor, SandboxError, SandboxUnavailable
from .harness import RunResult, TestCase, TestResult, parse_tests
from .limits import Limits

BACKENDS = ("auto", "bubblewrap", "docker", "process")

__all__ = ["BACKENDS", "BubblewrapExecutor", "bwrap_missing", "DockerExecutor", "Executor", "Limits", "ProcessExecutor", "RunResult",
           "SandboxError", "SandboxUnavailable", "TestCase", "TestResult", "available_backends", "open_executor",
           "parse_tests", "values_equal"]


def open_executor(backend: str = "auto", limits: Limits | dict | None = None, allow_unsafe: bool = False,
                  **options) -> Executor:
    """An executor for `backend`. 'auto' takes bubblewrap where it works, else docker; it never
    falls back to 'process', which must be named and opted into (it is not a security boundary)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend: unknown {backend!r}; choose one of {list(BACKENDS)}")
    lim = limits if isinstance(limits, Limits) else Limits.from_dict(limits)
    if backend == "process":
        return ProcessExecutor(lim, allow_unsafe=allow_unsafe)
    if backend == "auto":
        reasons = []
        for cls in (BubblewrapExecutor, DockerExecutor):
            ex = cls(lim, **options) if cls.name == "bubblewrap" else cls(lim)
            try:
                ex.check_available()
                return ex
            except SandboxUnavailable as exc:
                reasons.append(str(exc))
        raise SandboxUnavailable("no sandbox backend works here:\n  " + "\n  ".join(reasons))
    ex = BubblewrapExecutor(lim, **options) if backend == "bubblewrap" else DockerExecutor(lim, **options)
    ex.check_available()
    return ex


def available_backends() -> dict[str, str]:
    """backend name -> "ok" or why it can't run here."""
    out = {}
    for name, check in (("bubblewrap", probe_bwrap), ("docker", lambda: docker_client())):
        try:
            check()
            out[name] = "ok"
        except SandboxUnavailable as exc:
            out[name] = str(exc)
    out["process"] = "ok (opt-in only; not a security boundary)"
    return out
