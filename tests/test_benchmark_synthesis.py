"""benchmarks.synthesis end to end on a tiny engine and a three-task file of our own: every
figure is computed (sandbox-scored), targets carry a computed `met`, and bad task files fail
with the line named."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from benchmarks import synthesis as bench
from emergence.sandbox import bwrap_missing
from emergence.synthesis import corpus
from emergence.synthesis.encoder import HashingEncoder
from emergence.synthesis.fit import FitConfig, TrainData, fit

TASKS = [
    {"id": "total", "intent": "total of all the values", "family": "numbers", "arity": 1,
     "tests": [{"args": [[1, 2]], "expected": 3}, {"args": [[5]], "expected": 5}, {"args": [[0, -1]], "expected": -1}]},
    {"id": "shout", "intent": "the text in capital letters", "family": "text", "arity": 1,
     "tests": [{"args": ["ab"], "expected": "AB"}, {"args": ["x y"], "expected": "X Y"}, {"args": [""], "expected": ""}]},
    {"id": "above", "intent": "the values bigger than k", "family": "numbers", "arity": 2,
     "tests": [{"args": [[1, 5, 9], 4], "expected": [5, 9]}, {"args": [[2], 3], "expected": []},
               {"args": [[7, 8], 7], "expected": [8]}]},
]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("engine")
    records = corpus.build(max_len=2, max_programs=0, per_program=1, with_traces=False, seed=2)
    corpus.save(records, d / "corpus.jsonl")
    # the denoiser reads the intent's words, as the job's default model does
    data = TrainData.from_records(records, *HashingEncoder().encode_words([r.description for r in records]))
    cfg = FitConfig(epochs_contrastive=1, epochs_diffusion=1, epochs_scorer=1, width=32, layers=1, T=20, sample_steps=4,
                    words=True)
    torch.save({**fit(data, cfg, log=lambda s: None).state(), "encoder_name": "hashing"}, d / "model.pt")
    return d / "model.pt"


@pytest.mark.skipif(bool(bwrap_missing()), reason="the benchmark scores candidates in the sandbox (bubblewrap)")
def test_benchmark_reports_every_figure(model, tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("".join(json.dumps(t) + "\n" for t in TASKS))
    out = tmp_path / "synthesis.json"
    res = bench.main(["--tasks", str(tasks), "--model", str(model), "--quick", "--json", str(out)])
    report = json.loads(out.read_text())
    f = report["figures"]
    assert f["tasks"] == 3 and set(f["engine"]["families"]) == {"numbers", "text"}
    for key in ("engine", "engine_with_two_examples", "baseline_enumerative_same_budget", "ablation_direct_decoding",
                "ablation_no_scorer", "ablation_untuned_weights", "ablation_no_main_clause",
                "engine_then_repair_with_two_examples", "engine_then_search_with_two_examples",
                "ablation_previous_draws_with_two_examples",
                "engine_then_guided_search_with_two_examples",
                "baseline_retrieval_hashing", "service", "service_no_composition", "service_examples",
                "service_no_composition_examples", "service_coherence_gate"):
        assert 0.0 <= f[key]["answer_pass"] <= 1.0, key
    # this model has no confidence model: the coherence gate is the same service
    assert f["engine"]["confidence_model"] is False
    assert f["service_coherence_gate"]["answer_pass"] == f["service"]["answer_pass"]
    for key in ("confidence_auc", "coherence_auc"):  # None when every answer is right, or every one wrong
        assert f["engine"][key] is None or 0.0 <= f["engine"][key] <= 1.0
    for key in ("service", "service_examples"):  # a refusal is a failure: passes never exceed answers
        assert f[key]["answer_pass"] <= f[key]["answered_share"], key
        assert sum(f[key]["found_by"].values()) == round(3 * f[key]["answered_share"])
    # a repair is tried only where no candidate passed: it can add passes, never take one away
    assert f["engine_then_repair_with_two_examples"]["answer_pass"] >= f["engine_with_two_examples"]["answer_pass"]
    assert 0 <= f["engine_then_repair_with_two_examples"]["repaired_tasks"] <= 3
    assert 0 <= f["engine"]["pass@1_unbiased"] <= f["engine"]["pass@10_unbiased"] <= 1
    assert f["latency_ms"]["p50"] > 0 and f["latency_ms"]["p99"] >= f["latency_ms"]["p50"]
    for name, t in report["targets"].items():
        goal = float(t["goal"].split()[-1])
        op = t["goal"].split()[0]
        assert t["met"] == {">=": t["value"] >= goal, ">": t["value"] > goal, "<": t["value"] < goal}[op], name
    from benchmarks.readme_table import TABLES
    table = TABLES["synthesis"](report)
    assert "one-edit repairs" in table and "the previous draws (64, 3 readings each" in table
    assert all(k in table for k in report["targets"])
    assert res["figures"]["failures"] == [t["id"] for t, r in zip(TASKS, [None] * 3)
                                          if t["id"] in res["figures"]["failures"]]


def test_bad_task_file_names_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(TASKS[0]) + "\n" + '{"id": "x", "intent": "y", "arity": 0, "tests": []}\n')
    with pytest.raises(ValueError, match="line 2"):
        bench.main(["--tasks", str(bad), "--model", "unused.pt"])


def test_sampling_benchmark_compares_the_service_settings_with_the_previous(model, tmp_path):
    from benchmarks import synthesis_sampling

    # a copy of the model beside held-out records of its own (the shared one has none)
    shutil.copy(model, tmp_path / "model.pt")
    corpus.save(corpus.load(model.parent / "corpus.jsonl")[:40], tmp_path / "calibration.jsonl")
    out = tmp_path / "sampling.json"
    res = synthesis_sampling.main(["--model", str(tmp_path / "model.pt"), "--quick", "--records", "6",
                                   "--json", str(out)])
    report = json.loads(out.read_text())
    rows = report["figures"]["settings"]
    assert set(rows) == {"service", "previous"} and all(r["records"] == 6 for r in rows.values())
    assert report["figures"]["records_never_fitted_on"] is False  # 40 records: fewer than the fits take
    assert (rows["previous"]["draws"], rows["previous"]["keep"], rows["previous"]["temperature"]) == (64, 3, 1.0)
    assert all(0.0 <= r["recall"] <= 1.0 and r["seconds_mean"] > 0 for r in rows.values())
    t = report["targets"]["described program among the first candidates: service settings >= previous settings"]
    assert t["met"] == (rows["service"]["recall"] >= rows["previous"]["recall"])
    assert res["figures"]["settings"] == rows
    from benchmarks.readme_table import TABLES
    assert TABLES["synthesis_sampling"](report).count("\n") == 3  # header, rule, two settings


def test_sampling_benchmark_needs_a_model_with_its_calibration_records(tmp_path):
    from benchmarks import synthesis_sampling

    with pytest.raises(SystemExit) as exc:
        synthesis_sampling.main(["--model", str(tmp_path / "none.pt")])
    assert exc.value.code == 2


def test_repair_row_scores_the_repaired_program_on_every_test():
    from emergence.synthesis import Program, Step
    from emergence.synthesis.evaluation import Task
    from test_synthesis_engine import in_process_verifier

    class InProcess:  # the benchmark's Scorer, without a sandbox
        def passes(self, code, fn, tests):
            return in_process_verifier(code, fn, tests) == len(tests)

    cand = Program("sum_numbers", [("numbers", "list[int]")], [Step("REDUCE.sum")])
    engine_ex = {"candidates": [cand], "op_prior": {"FILTER.positive": 0.9, "REDUCE.sum": 0.9}}
    tests = [{"args": [[1, -2, 3]], "expected": 4}, {"args": [[-1, 5, -7, 2]], "expected": 7}]
    right = Task("sum_positive", "add up the positive numbers", 1, tests + [{"args": [[0, -3]], "expected": 0}])
    assert bench.repair_task(InProcess(), right, engine_ex) == {"answer": True, "top10": True, "repaired": True}
    # the repair fits the two examples; a third test it fails makes it a repaired failure
    wrong = Task("sum_abs", "add up the sizes", 1, tests + [{"args": [[-3]], "expected": 3}])
    assert bench.repair_task(InProcess(), wrong, engine_ex) == {"answer": False, "top10": False, "repaired": True}
