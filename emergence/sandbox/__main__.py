"""python -m emergence.sandbox --code PATH --entry NAME --tests PATH [--backend NAME] [--timeout S] [--memory-mb M]

Prints one JSON object: the overall status (passed | failed | error | sandbox_error), per-test
results and the run's stdout/stderr, truncated. Exits 0 whatever the code under test did; 2 for
bad arguments or input files; 3 when the sandbox itself could not run."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import BACKENDS, Limits, SandboxError, SandboxUnavailable, open_executor

OUTPUT_PREVIEW = 4096


def load_tests(path: Path):
    """A JSON list of {"args", "expected"}, a JSON object with a "tests" list (one row of the
    intents file), or JSON Lines of test cases."""
    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: neither JSON nor JSON Lines ({exc})") from None
    if isinstance(data, dict):
        if "tests" not in data:
            raise ValueError(f"{path}: a JSON object needs a 'tests' list")
        data = data["tests"]
    return data


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m emergence.sandbox", description=__doc__.split("\n\n")[1])
    p.add_argument("--code", type=Path, required=True, help="Python source file to run")
    p.add_argument("--entry", required=True, help="name of the function to call")
    p.add_argument("--tests", type=Path, required=True, help="test cases: JSON list, intents row, or JSON Lines")
    p.add_argument("--backend", choices=BACKENDS, default="auto")
    p.add_argument("--allow-unsafe", action="store_true", help="required with --backend process (no isolation)")
    p.add_argument("--timeout", type=float, help="wall-clock seconds per test (default %(default)s)",
                   default=Limits.wall_s)
    p.add_argument("--cpu", type=float, help="CPU seconds per test (default: the timeout)")
    p.add_argument("--memory-mb", type=int, default=Limits.memory_mb)
    args = p.parse_args(argv)
    if args.backend == "process" and not args.allow_unsafe:
        print(json.dumps({"status": "usage_error", "error": "--backend process is not a security boundary; "
                          "add --allow-unsafe to use it anyway"}))
        return 2
    try:
        code = args.code.read_text()
        tests = load_tests(args.tests)
        limits = Limits(wall_s=args.timeout, cpu_s=args.cpu or args.timeout, memory_mb=args.memory_mb)
    except (OSError, ValueError) as exc:
        print(json.dumps({"status": "usage_error", "error": str(exc)}))
        return 2
    try:
        with open_executor(args.backend, limits, allow_unsafe=args.allow_unsafe) as sb:
            result = sb.run(code, args.entry, tests)
    except ValueError as exc:
        print(json.dumps({"status": "usage_error", "error": str(exc)}))
        return 2
    except (SandboxUnavailable, SandboxError) as exc:
        print(json.dumps({"status": "sandbox_error", "error": str(exc)}))
        return 3
    out = result.to_dict()
    for stream in ("stdout", "stderr"):
        joined = "".join(t[stream] for t in out["tests"])
        out[stream] = joined[:OUTPUT_PREVIEW]
        out[f"{stream}_truncated"] = len(joined) > OUTPUT_PREVIEW or any(t["output_truncated"] for t in out["tests"])
    print(json.dumps(out, allow_nan=True, default=repr))
    return 3 if result.status == "sandbox_error" else 0


if __name__ == "__main__":
    sys.exit(main())
