"""The held-out intent sets in benchmarks/tasks: intents_val.jsonl, the project's own validation
intents (written apart from the corpus templates and the dev set, for choosing models), and
intents_test.jsonl, a second held-out set (written apart from those and the validation set, for
measuring changes after the validation set had been looked at). Each loads as a task file, and every
task is solvable in the DSL -- its reference program passes all its tests -- without network or files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from emergence.synthesis.evaluation import load_tasks, passes_in_process
from emergence.synthesis.ops import OPS
from emergence.synthesis.program import Program, check

TASKS = Path(__file__).resolve().parents[1] / "benchmarks" / "tasks"


def _check_task_file(tasks_file: str, reference_file: str, count: int) -> dict:
    tasks = {t.id: t for t in load_tasks(TASKS / tasks_file)}
    refs = [json.loads(line) for line in (TASKS / reference_file).read_text().splitlines() if line]
    assert len(tasks) == count and {r["id"] for r in refs} == set(tasks)
    assert len(refs) == len(tasks)
    assert set(Counter(t.family for t in tasks.values())) == {"numbers", "text", "web", "compose"}
    for ref in refs:
        task = tasks[ref["id"]]
        prog = Program.from_dict(ref["program"])
        check(prog)
        assert len(prog.params) == task.arity, task.id
        assert not any(OPS[s.op].effects for s in prog.steps if s.op in OPS), task.id
        assert len(task.tests) >= 4 and passes_in_process(prog, task.tests), task.id
    return tasks


def test_validation_intents_load_and_every_reference_solves_its_task():
    _check_task_file("intents_val.jsonl", "intents_val_reference.jsonl", 80)


def test_test_intents_load_and_every_reference_solves_its_task():
    tasks = _check_task_file("intents_test.jsonl", "intents_test_reference.jsonl", 60)
    assert Counter(t.family for t in tasks.values()) == {"numbers": 20, "text": 18, "web": 12, "compose": 10}
    assert all(task_id.startswith("t_") for task_id in tasks)


def test_held_out_sets_do_not_share_ids():
    val = {t.id for t in load_tasks(TASKS / "intents_val.jsonl")}
    assert not val & {t.id for t in load_tasks(TASKS / "intents_test.jsonl")}
