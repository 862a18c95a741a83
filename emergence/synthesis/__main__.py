"""Synthesize a tool from the command line (no Ray): the trained engine, ranked candidates.

    python -m emergence.synthesis "keep the words longer than four letters"
    python -m emergence.synthesis "add k to each number" --arity 2 --examples '[{"args": [[1, 2], 3], "expected": [4, 5]}]'
    python -m emergence.synthesis --refine program.json "then keep the first 3"   # feedback on a previous program
"""

from __future__ import annotations

import argparse
import json
import sys

from emergence.models import default_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m emergence.synthesis", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("intent", help="what the tool should do (with --refine: the feedback)")
    ap.add_argument("--refine", metavar="PROGRAM", help="a previous answer's program (JSON text or a .json file) to "
                                                        "change as the feedback (the positional text) says")
    ap.add_argument("--arity", type=int, help="parameters of the tool (default: from the examples, else 1)")
    ap.add_argument("--examples", help="JSON list of {args, expected}; candidates are checked in the sandbox")
    ap.add_argument("--model", default=str(default_path("engine")),
                    help="trained engine (default: the shipped one, or EMERGENCE_ENGINE_MODEL)")
    ap.add_argument("--candidates", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="print the answer as JSON")
    args = ap.parse_args(argv)

    from .engine import Engine, SynthesisInputError
    from .pipeline import CannotSynthesize, SynthesisService, sandbox_verifier

    try:
        examples = json.loads(args.examples) if args.examples else None
    except json.JSONDecodeError as exc:
        print(f"error: --examples is not JSON: {exc}", file=sys.stderr)
        return 2
    first = examples[0] if isinstance(examples, list) and examples else None
    arity = args.arity or (len(first["args"]) if isinstance(first, dict) and isinstance(first.get("args"), list) else 1)
    try:
        engine = Engine.load(args.model)
    except FileNotFoundError:
        print(f"error: no engine model at {args.model}: train one with python -m training.emergence --quick",
              file=sys.stderr)
        return 2
    executor = None
    if examples:
        from emergence.sandbox import open_executor
        executor = open_executor()
    try:
        service = SynthesisService(engine, verify=sandbox_verifier(executor.run) if executor else None)
        if args.refine:
            answer = service.refine(args.intent, program=_program(args.refine), examples=examples)
        else:
            answer = service.synthesize(args.intent, arity, examples, args.candidates)
    except SynthesisInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except CannotSynthesize as exc:
        closest = exc.detail.get("closest_capabilities") or [
            f"{e['kind']}: {e['description']}" for e in exc.detail.get("edits_considered", [])]
        print(json.dumps(exc.detail, indent=1) if args.json else
              f"cannot synthesize: {exc.detail['message']}\n"
              + ("closest capabilities" if "closest_capabilities" in exc.detail else "edits considered")
              + ":\n  " + "\n  ".join(closest), file=sys.stdout if args.json else sys.stderr)
        return 1
    finally:
        if executor is not None:
            executor.close()
    if args.json:
        print(json.dumps(answer, indent=1))
    else:
        verified = answer["verified"]
        print(answer["code"])
        how = {"composition": " (composed from its clauses)", "memory": " (reused from memory)",
               "repair": " (one edit from a candidate, found from the examples)",
               "search": " (found by search from the examples)"}.get(answer["found_by"], "")
        if answer.get("edit"):
            how = f" ({answer['edit']['kind']}: {answer['edit']['description']})"
        conf = (f"coherence {answer['coherence']:.3f}" if answer["coherence"] is not None else
                "a value the feedback states" if answer.get("edit") else "no coherence score")
        print(f"# {conf}{how}" + (f", passed {verified['passed']}/{verified['total']} examples"
                                  if verified else ", not verified (no examples)"))
    return 0


def _program(text: str) -> dict:
    """--refine's program: JSON text, or the path of a JSON file (a whole answer is fine: its "program")."""
    import os
    from .engine import SynthesisInputError

    try:
        value = json.loads(open(text).read() if os.path.isfile(text) else text)
    except (json.JSONDecodeError, OSError) as exc:
        raise SynthesisInputError("program", f"--refine is neither JSON nor a readable JSON file: {exc}") from None
    return value.get("program", value) if isinstance(value, dict) else value


if __name__ == "__main__":
    raise SystemExit(main())
