"""benchmarks/tasks/intents_val.jsonl, the project's own validation intents (written apart from the
corpus templates and the dev set, for choosing models): it loads as a task file, and every task is
solvable in the DSL -- its reference program passes all its tests -- without network or files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from emergence.synthesis.evaluation import load_tasks, passes_in_process
from emergence.synthesis.ops import OPS
from emergence.synthesis.program import Program, check

TASKS = Path(__file__).resolve().parents[1] / "benchmarks" / "tasks"


def test_validation_intents_load_and_every_reference_solves_its_task():
    tasks = {t.id: t for t in load_tasks(TASKS / "intents_val.jsonl")}
    refs = [json.loads(line) for line in (TASKS / "intents_val_reference.jsonl").read_text().splitlines() if line]
    assert len(tasks) == 80 and {r["id"] for r in refs} == set(tasks)
    assert set(Counter(t.family for t in tasks.values())) == {"numbers", "text", "web", "compose"}
    for ref in refs:
        task = tasks[ref["id"]]
        prog = Program.from_dict(ref["program"])
        check(prog)
        assert len(prog.params) == task.arity, task.id
        assert not any(OPS[s.op].effects for s in prog.steps if s.op in OPS), task.id
        assert len(task.tests) >= 4 and passes_in_process(prog, task.tests), task.id
