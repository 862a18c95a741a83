"""Test cases in, verdicts out: the part of a run that happens on the host.

A test case is `{"args": [...], "expected": ...}` (the format of the synthesis evaluation set).
Only the arguments go into the sandbox; the verdict is reached here by `values_equal`, so
nothing the code under test does can mark a test as passed without returning the value."""

from __future__ import annotations

import json
import keyword
from dataclasses import asdict, dataclass, field
from typing import Any

from .compare import preview, values_equal

MAX_TESTS = 1000


@dataclass(frozen=True)
class TestCase:
    args: list
    expected: Any = None


@dataclass
class TestResult:
    index: int
    status: str  # passed | failed | error | timeout
    duration_s: float = 0.0
    returned: Any = None
    error: str | None = None
    stdout: str = ""
    stderr: str = ""
    output_truncated: bool = False


@dataclass
class RunResult:
    status: str  # passed | failed | error (the code did not load) | sandbox_error (the sandbox itself failed)
    backend: str
    tests: list[TestResult] = field(default_factory=list)
    error: str | None = None
    duration_s: float = 0.0
    cold_start_s: float | None = None

    @property
    def passed(self) -> int:
        return sum(t.status == "passed" for t in self.tests)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["passed"], d["total"] = self.passed, len(self.tests)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=True, default=repr)


def parse_tests(tests) -> list[TestCase]:
    """Validate test cases; a bad one raises ValueError naming its index and the problem."""
    if not isinstance(tests, (list, tuple)):
        raise ValueError(f"tests: need a list of {{'args': [...], 'expected': ...}}, got {type(tests).__name__}")
    if len(tests) > MAX_TESTS:
        raise ValueError(f"tests: {len(tests)} cases exceed the limit of {MAX_TESTS}")
    out = []
    for i, t in enumerate(tests):
        if isinstance(t, TestCase):
            out.append(t)
            continue
        if not isinstance(t, dict) or "args" not in t:
            raise ValueError(f"tests[{i}]: need an object with 'args' (and 'expected'), got {t!r:.200}")
        if not isinstance(t["args"], (list, tuple)):
            raise ValueError(f"tests[{i}].args: need a list of positional arguments, got {type(t['args']).__name__}")
        try:
            json.dumps(t["args"], allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"tests[{i}].args: not JSON-serializable ({exc})") from None
        out.append(TestCase(list(t["args"]), t.get("expected")))
    return out


def check_source(code, entry) -> None:
    if not isinstance(code, str):
        raise ValueError(f"code: need a string of Python source, got {type(code).__name__}")
    if len(code) > 1 << 20:
        raise ValueError(f"code: {len(code)} characters exceed the 1 MiB limit")
    if "\x00" in code:
        raise ValueError("code: contains a NUL byte")
    if not isinstance(entry, str) or not entry.isidentifier() or keyword.iskeyword(entry):
        raise ValueError(f"entry: need a Python identifier naming the function to call, got {entry!r}")


def judge(cases: list[TestCase], reply: dict, backend: str) -> RunResult:
    """Turn the supervisor's reply into verdicts."""
    if reply.get("load_error"):
        tests = [TestResult(i, "error", error=reply["load_error"]) for i in range(len(cases))]
        return RunResult("error", backend, tests, error=reply["load_error"])
    results, load_errors = [], 0
    for i, (case, rec) in enumerate(zip(cases, reply["tests"])):
        r = TestResult(i, rec["status"], rec.get("duration_s", 0.0), error=rec.get("error"),
                       stdout=rec.get("stdout", ""), stderr=rec.get("stderr", ""),
                       output_truncated=bool(rec.get("output_truncated")))
        if rec["status"] == "returned":
            value = rec.get("value")
            r.returned = preview(value)
            try:
                equal = values_equal(value, case.expected)
            except (RecursionError, TypeError, ValueError, OverflowError):
                equal = False
            if equal:
                r.status = "passed"
            else:
                r.status = "failed"
                r.error = f"expected {preview(case.expected, 200)!r}, got {preview(value, 200)!r}"
        elif rec.get("stage") == "load":
            load_errors += 1
        results.append(r)
    if cases and load_errors == len(cases):
        return RunResult("error", backend, results, error=results[0].error)
    status = "passed" if all(r.status == "passed" for r in results) else "failed"
    return RunResult(status, backend, results)


def sandbox_failure(cases: list[TestCase], backend: str, why: str, status: str = "sandbox_error") -> RunResult:
    tests = [TestResult(i, "error", error=why) for i in range(len(cases))]
    return RunResult(status, backend, tests, error=why)
