"""Problem files of the Digital Crucible: load, validate, convert.

A problem is one JSON object:

    {"id": "sum_even", "title": "Sum of the even numbers",
     "description": "Add up the even numbers of a list of integers.",
     "difficulty": 1,                          # a level >= 1, or "easy" / "medium" / "hard"
     "test_cases": [[[1, 2, 3, 4]], [[5]]],   # each: the arguments of one call
     "expected_outputs": [6, 0],
     "time_limit": 2.0, "memory_limit": 256,   # seconds and MB per call (optional)
     "family": "numbers",                       # optional
     "provenance": {"source": "written"},       # optional: where it came from
     "reference": {"program": {...}}}           # optional: a DSL program, or {"code": "...", "entry": "f"}

A file holds one such object, a JSON list of them, or one a line (JSONL). `load_problems` reads a
whole file or raises `ProblemFileError` naming the file, the line and the field of every problem
that is wrong -- nothing half-loads; a problem whose reference fails its own tests is refused with
the test that fails. `to_task` / `from_task` convert to and from the task format of
`benchmarks/tasks/` (`emergence.synthesis.evaluation`).
"""

from __future__ import annotations

import copy
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

LEVELS = {"easy": 1, "medium": 2, "hard": 3}
FIELDS = {"id", "title", "description", "difficulty", "test_cases", "expected_outputs", "time_limit",
          "memory_limit", "family", "provenance", "reference"}
REQUIRED = ("id", "title", "description", "difficulty", "test_cases", "expected_outputs")
MAX_TIME_S, MAX_MEMORY_MB = 60.0, 4096


class ProblemFileError(ValueError):
    """A problem file that can't be loaded; `errors` lists each problem as 'file, line N, field F: why'."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        super().__init__(f"{len(errors)} error(s):\n  " + "\n  ".join(errors[:20]) + more)


@dataclass
class Problem:
    id: str
    title: str
    description: str
    difficulty: int
    test_cases: list  # [[arg, ...], ...]
    expected_outputs: list
    time_limit: float = 2.0
    memory_limit: int = 256
    family: str = "other"
    provenance: dict = field(default_factory=dict)
    reference: dict | None = None

    @property
    def arity(self) -> int:
        return len(self.test_cases[0])

    @property
    def tests(self) -> list[dict]:
        """The test cases in the sandbox's form: [{"args": [...], "expected": ...}]."""
        return [{"args": copy.deepcopy(a), "expected": copy.deepcopy(e)}
                for a, e in zip(self.test_cases, self.expected_outputs)]

    @property
    def limits(self) -> dict:
        return {"wall_s": self.time_limit, "cpu_s": self.time_limit, "memory_mb": self.memory_limit}

    def to_json(self) -> dict:
        out = asdict(self)
        if out["reference"] is None:
            del out["reference"]
        return out


# -- reading ---------------------------------------------------------------------------------------


def _line(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _objects(text: str, where: str) -> list[tuple[int, object]]:
    """(line, value) of each problem in a file's text: one object, a JSON list, or JSONL."""
    dec = json.JSONDecoder()
    start = len(text) - len(text.lstrip())
    if start == len(text):
        raise ProblemFileError([f"{where}: the file holds no problem"])
    if text[start] == "[":
        out, i = [], start + 1
        while True:
            while i < len(text) and text[i].isspace():
                i += 1
            if i < len(text) and text[i] == "]" and not out:
                break
            try:
                value, end = dec.raw_decode(text, i)
            except json.JSONDecodeError as exc:
                raise ProblemFileError([f"{where}, line {exc.lineno}: not valid JSON ({exc.msg})"]) from None
            out.append((_line(text, i), value))
            i = end
            while i < len(text) and text[i].isspace():
                i += 1
            if i < len(text) and text[i] == ",":
                i += 1
                continue
            if i < len(text) and text[i] == "]":
                break
            raise ProblemFileError([f"{where}, line {_line(text, i)}: expected ',' or ']' in the list of problems"])
        rest = text[i + 1:].strip()
        if rest:
            raise ProblemFileError([f"{where}, line {_line(text, i + 1 + text[i + 1:].find(rest[0]))}: "
                                    "text after the list of problems"])
        return out
    try:  # one object spanning the whole file (perhaps over several lines)
        value, end = dec.raw_decode(text, start)
        if not text[end:].strip():
            return [(_line(text, start), value)]
    except json.JSONDecodeError:
        pass
    out = []
    for n, raw in enumerate(text.splitlines(), 1):  # JSONL
        if not raw.strip():
            continue
        try:
            out.append((n, json.loads(raw)))
        except json.JSONDecodeError as exc:
            raise ProblemFileError([f"{where}, line {n}: not valid JSON ({exc.msg})"]) from None
    return out


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_problem(row, where: str = "problem") -> Problem:
    """One problem from its JSON object; ValueError naming `where` and the field when it is wrong."""
    def bad(name, why):
        return ValueError(f"{where}, field {name!r}: {why}")

    if not isinstance(row, dict):
        raise ValueError(f"{where}: a problem must be a JSON object, got {type(row).__name__}")
    for name in REQUIRED:
        if name not in row:
            raise bad(name, "missing")
    unknown = sorted(set(row) - FIELDS)
    if unknown:
        raise bad(unknown[0], f"unknown field (known: {', '.join(sorted(FIELDS))})")
    for name in ("id", "title", "description"):
        if not isinstance(row[name], str) or not row[name].strip():
            raise bad(name, "must be a non-empty string")
    level = row["difficulty"]
    if isinstance(level, str):
        if level not in LEVELS:
            raise bad("difficulty", f"{level!r} is not one of {sorted(LEVELS)} (or a level >= 1)")
        level = LEVELS[level]
    elif isinstance(level, bool) or not isinstance(level, int) or level < 1:
        raise bad("difficulty", f"must be an integer level >= 1 or one of {sorted(LEVELS)}, got {level!r}")
    cases, outputs = row["test_cases"], row["expected_outputs"]
    if not isinstance(cases, list) or not cases:
        raise bad("test_cases", "must be a non-empty list (each item: the arguments of one call, as a list)")
    if not isinstance(outputs, list):
        raise bad("expected_outputs", "must be a list (one expected value per test case)")
    if len(cases) != len(outputs):
        raise bad("expected_outputs", f"{len(outputs)} expected outputs for {len(cases)} test cases")
    for i, args in enumerate(cases):
        if not isinstance(args, list) or not args:
            raise bad(f"test_cases[{i}]", f"must be a non-empty list of arguments, got {args!r:.80}")
        if len(args) != len(cases[0]):
            raise bad(f"test_cases[{i}]", f"{len(args)} arguments, test_cases[0] has {len(cases[0])}")
    seconds, mb = row.get("time_limit", 2.0), row.get("memory_limit", 256)
    if not _number(seconds) or not 0 < seconds <= MAX_TIME_S:
        raise bad("time_limit", f"must be seconds in (0, {MAX_TIME_S:g}], got {seconds!r}")
    if isinstance(mb, bool) or not isinstance(mb, int) or not 16 <= mb <= MAX_MEMORY_MB:
        raise bad("memory_limit", f"must be a whole number of MB in [16, {MAX_MEMORY_MB}], got {mb!r}")
    family = row.get("family", "other")
    if not isinstance(family, str) or not family.strip():
        raise bad("family", "must be a non-empty string")
    provenance = row.get("provenance", {})
    if not isinstance(provenance, dict):
        raise bad("provenance", "must be an object (say {'source': 'written'})")
    reference = row.get("reference")
    if reference is not None:
        _check_reference(reference, len(cases[0]), bad)
    return Problem(row["id"], row["title"], row["description"], level, copy.deepcopy(cases), copy.deepcopy(outputs),
                   float(seconds), mb, family,
                   copy.deepcopy(provenance), copy.deepcopy(reference))


def _check_reference(reference, arity: int, bad) -> None:
    if not isinstance(reference, dict) or len(set(reference) & {"program", "code"}) != 1:
        raise bad("reference", "must be {'program': <DSL program>} or {'code': <Python source>, 'entry': <name>}")
    if "program" in reference:
        from ..synthesis.program import Program, check
        from ..synthesis.types import TypeCheckError

        try:
            prog = check(Program.from_dict(reference["program"])).program
        except (TypeCheckError, ValueError, KeyError, TypeError) as exc:
            raise bad("reference.program", f"not a valid DSL program ({exc})") from None
        if len(prog.params) != arity:
            raise bad("reference.program", f"takes {len(prog.params)} parameters, the test cases pass {arity}")
    else:
        if not isinstance(reference.get("code"), str) or not reference["code"].strip():
            raise bad("reference.code", "must be Python source text")
        if not isinstance(reference.get("entry"), str) or not reference["entry"].isidentifier():
            raise bad("reference.entry", "must name the function to call")


def load_problems(path, executor=None) -> list[Problem]:
    """Every problem of a file, or ProblemFileError listing what is wrong (file, line, field).

    Each reference is run on its problem's tests: a DSL program without effects here, anything
    else (Python code, programs with effects) in the sandbox -- `executor`, or one opened for the
    call (`emergence.sandbox.open_executor`)."""
    where = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemFileError([f"{where}: can't read it ({exc})"]) from None
    problems, errors, seen = [], [], {}
    for line, row in _objects(text, where):
        at = f"{where}, line {line}"
        try:
            p = parse_problem(row, at)
        except ValueError as exc:
            errors.append(str(exc))
            continue
        if p.id in seen:
            errors.append(f"{at}, field 'id': {p.id!r} already used on line {seen[p.id]}")
            continue
        seen[p.id] = line
        problems.append((line, p))
    if not errors:
        failures = reference_failures([p for _, p in problems], executor)
        errors = [f"{where}, line {line}, field 'reference': {failures[p.id]}" for line, p in problems if p.id in failures]
    if errors:
        raise ProblemFileError(errors)
    return [p for _, p in problems]


def reference_failures(problems: list[Problem], executor=None) -> dict[str, str]:
    """{problem id: why} for each reference that fails one of its problem's tests: a DSL program
    without effects is run here, anything else in the sandbox (`executor`, or one opened for the call)."""
    from ..sandbox import open_executor
    from ..synthesis.compiler import compile_program
    from ..synthesis.ops import OPS
    from ..synthesis.program import Program

    failures, opened = {}, None
    try:
        for p in problems:
            if p.reference is None:
                continue
            if "program" in p.reference:
                prog = Program.from_dict(p.reference["program"])
                if not any(OPS[s.op].effects for s in prog.steps if s.op in OPS):
                    why = _first_failure_in_process(prog, p)
                    if why:
                        failures[p.id] = f"the program fails its tests ({why})"
                    continue
                tool = compile_program(prog)
                code, entry = tool.code, tool.function_name
            else:
                code, entry = p.reference["code"], p.reference["entry"]
            if executor is None and opened is None:
                opened = open_executor()
            result = (executor or opened).run(code, entry, p.tests, p.limits)
            failed = [(i, t) for i, t in enumerate(result.tests) if t.status != "passed"]
            if failed:
                i, t = failed[0]
                failures[p.id] = f"the code fails its tests (test {i}: {t.status}" + (f", {t.error})" if t.error else ")")
            elif result.status != "passed" or len(result.tests) != len(p.tests):
                failures[p.id] = f"the code fails its tests (the sandbox says {result.status})"
    finally:
        if opened is not None:
            opened.close()
    return failures


def _first_failure_in_process(prog, p: Problem) -> str | None:
    """The first test a DSL program (without effects) fails, run here; None when it passes them all.
    (One run that also says why: `evaluation.passes_in_process` only says whether.)"""
    from ..sandbox import values_equal
    from ..synthesis.runtime import build_callable

    fn = build_callable(prog)[1]
    for i, t in enumerate(p.tests):
        try:
            got = fn(*t["args"])
        except Exception as exc:  # noqa: BLE001 -- reported, not raised
            return f"test {i} raised {type(exc).__name__}: {exc}"
        if not values_equal(got, t["expected"]):
            return f"test {i}: returned {got!r:.80}, expected {t['expected']!r:.80}"
    return None


def save_problems(problems: list[Problem], path) -> None:
    """Write problems as JSONL, atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        for p in problems:
            f.write(json.dumps(p.to_json()) + "\n")
    os.replace(tmp, path)


# -- the task format of benchmarks/tasks -------------------------------------------------------------


def to_task(problem: Problem) -> dict:
    """The problem as a task row: {"id", "intent", "family", "arity", "tests"}."""
    return {"id": problem.id, "intent": problem.description, "family": problem.family, "arity": problem.arity,
            "tests": problem.tests}


def as_task(problem: Problem):
    """The problem as an `evaluation.Task`, which the synthesis benchmarks score (already validated
    when the problem loaded)."""
    from ..synthesis.evaluation import Task

    return Task(problem.id, problem.description, problem.arity, problem.tests, problem.family)


def from_task(task, difficulty: int = 1, provenance: dict | None = None, reference: dict | None = None,
              title: str | None = None) -> Problem:
    """A problem from a task row (dict) or `evaluation.Task`; validated as any problem is."""
    row = task if isinstance(task, dict) else {"id": task.id, "intent": task.intent, "family": task.family,
                                               "arity": task.arity, "tests": task.tests}
    problem = {"id": row["id"], "title": title or row["id"].replace("_", " "), "description": row["intent"],
               "difficulty": difficulty, "test_cases": [t["args"] for t in row["tests"]],
               "expected_outputs": [t.get("expected") for t in row["tests"]], "family": row.get("family", "other"),
               "provenance": provenance or {}}
    if reference is not None:
        problem["reference"] = reference
    return parse_problem(problem, f"task {row['id']!r}")
