"""The crucible's policy side without Ray: type-grammar masks, the policy's log-probabilities, the
judge and the environment."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emergence.crucible import grammar
from emergence.crucible.env import CrucibleEnv
from emergence.crucible.judge import Judge, build
from emergence.crucible.policy import ObsLayout, ProgramPolicy
from emergence.crucible.problems import parse_problem
from emergence.sandbox import bwrap_missing, open_executor
from emergence.synthesis.decode import parameter_slots, well_formed
from emergence.synthesis.fit import Bundle, FitConfig
from emergence.synthesis.models import MAX_OPS, TOKEN, VOCAB

SUM_EVEN = parse_problem({"id": "sum_even", "title": "sum even", "description": "add up the even numbers",
                          "difficulty": 1, "test_cases": [[[1, 2, 3, 4]], [[5]], [[2, 2]]],
                          "expected_outputs": [6, 0, 4]})


@pytest.mark.parametrize("arity", [1, 2, 3, 4])
def test_masks_never_admit_an_ill_typed_program(arity):
    rng = np.random.default_rng(arity)
    for scale in (0.1, 3.0, 30.0):  # flat, peaked and nearly greedy slot distributions
        logits = rng.normal(size=(400, MAX_OPS, len(VOCAB))) * scale
        for greedy in (False, True):
            actions, masks = grammar.sample(logits, np.full(400, arity), rng, greedy=greedy)
            for row in actions:
                ops = grammar.program_ops(row)
                assert well_formed(ops) and parameter_slots(ops) >= arity - 1, (arity, ops)
                assert all(t == 0 for t in row[len(ops):])  # after <end>, only <end>
            # the masks a sampler saw are the ones training recomputes from the chosen tokens
            assert (grammar.masks(actions, np.full(400, arity)) == masks).all()
            assert masks[np.arange(400)[:, None], np.arange(MAX_OPS), actions].all()


def test_masks_refuse_what_does_not_type():
    state = grammar.advance(grammar.START, TOKEN["REDUCE.sum"])  # a number now flows
    ok = grammar.allowed(state, 1, MAX_OPS - 2)
    assert not ok[TOKEN["SORT.asc"]] and not ok[TOKEN["REDUCE.sum"]]  # no list to sort; no repeat
    assert ok[0]  # ending is fine: a one-step tool
    assert not grammar.allowed(grammar.START, 1, MAX_OPS - 1)[0]  # no empty program


def tiny_policy(words: bool = True) -> ProgramPolicy:
    torch.manual_seed(0)
    bundle = Bundle.new(FitConfig(width=32, layers=1, T=20, d=8, words=words))
    return ProgramPolicy(bundle, ObsLayout(text_dim=384, d=8, max_words=6), steps=2)


def _obs(policy, n=16, seed=0, arity=1):
    rng = np.random.default_rng(seed)
    lay = policy.layout
    return torch.as_tensor(np.stack([lay.pack(arity, rng.normal(size=384), rng.normal(size=(3, 384)),
                                              rng.normal(size=(MAX_OPS, lay.d))) for _ in range(n)]))


def test_policy_logp_is_what_training_recomputes_and_kl_starts_at_zero():
    from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical

    policy = tiny_policy()
    obs = _obs(policy)
    obs[3, 0] = 0.0  # a placeholder row (an ended episode's observation)
    out = policy.explore(obs, np.random.default_rng(1))
    ev = policy.evaluate(obs, out["actions"])
    dist = TorchMultiCategorical.get_partial_dist_cls(input_lens=[len(VOCAB)] * MAX_OPS)
    logp = dist.from_logits(ev["dist_inputs"]).logp(out["actions"])
    assert torch.allclose(logp, out["logp"], atol=1e-4)
    assert torch.isfinite(logp).all() and torch.isfinite(ev["dist_inputs"]).all()
    assert ev["kl_ref"].abs().max() < 1e-5  # the policy starts as the supervised engine
    # a gradient step moves the policy away from the reference, and the KL says so
    loss = -dist.from_logits(ev["dist_inputs"]).logp(out["actions"]).mean()
    loss.backward()
    with torch.no_grad():
        for p in policy.denoiser.parameters():
            if p.grad is not None:
                p -= 0.5 * p.grad
    assert policy.evaluate(obs, out["actions"])["kl_ref"].max() > 1e-4
    assert all(not p.requires_grad for p in policy._reference[0].parameters())


def test_layout_round_trips():
    lay = ObsLayout(text_dim=4, d=2, max_words=3)
    pooled, words, noise = np.arange(4.0), np.ones((5, 4)), np.full((MAX_OPS, 2), 0.5)
    x = lay.unpack(torch.as_tensor(lay.pack(2, pooled, words, noise))[None])
    assert x["live"].item() and x["arity"].item() == 2
    assert torch.equal(x["pooled"][0], torch.arange(4.0)) and (x["noise"] == 0.5).all()
    assert x["words_mask"][0].tolist() == [True, True, True]  # cut at max_words


def test_build_reads_arguments_from_the_description_and_refuses_what_does_not_build():
    b = build(SUM_EVEN, ["FILTER.even", "REDUCE.sum"])
    assert b.program is not None and f"def {b.entry}(" in b.code
    assert build(SUM_EVEN, ["REDUCE.sum", "SORT.asc"]).program is None  # ill-typed
    assert build(SUM_EVEN, []).program is None


def _local_run_batch(executor, fail=False):
    calls = []

    def run_batch(jobs):
        calls.append(len(jobs))
        if fail:
            raise TimeoutError("no worker became free")
        return [executor.run(j["code"], j["entry"], j["tests"], j.get("limits")).to_dict() for j in jobs]
    return run_batch, calls


@pytest.mark.skipif(bool(bwrap_missing()), reason="bubblewrap is needed for the sandbox")
def test_judge_grades_caches_and_marks_sandbox_failures():
    with open_executor() as ex:
        run_batch, calls = _local_run_batch(ex)
        judge = Judge(run_batch)
        right, wrong, broken = ["FILTER.even", "REDUCE.sum"], ["REDUCE.sum"], ["REDUCE.sum", "SORT.asc"]
        v = judge.judge([(SUM_EVEN, right), (SUM_EVEN, wrong), (SUM_EVEN, broken), (SUM_EVEN, right)])
        assert [x["level"] for x in v] == ["all_right", "partly_right", "does_not_build", "all_right"]
        assert v[0]["reward"] >= 1.0 > v[1]["reward"] > v[2]["reward"]
        assert calls == [2]  # one batch, the repeated program run once
        again = judge.judge([(SUM_EVEN, right)])
        assert again[0]["cached"] and calls == [2] and again[0]["level"] == "all_right"
        failing, _ = _local_run_batch(ex, fail=True)
        judge.run_batch = failing
        v = judge.judge([(SUM_EVEN, ["FILTER.odd", "REDUCE.sum"])])
        assert v[0]["level"] == "sandbox_failure" and v[0]["reward"] == 0.0
        assert judge.counts["sandbox_failures"] == 1
        judge.run_batch = run_batch  # the failure was not cached: the program is judged again
        assert judge.judge([(SUM_EVEN, ["FILTER.odd", "REDUCE.sum"])])[0]["level"] == "wrong"


def test_env_runs_one_step_episodes_with_next_step_autoreset():
    lay = ObsLayout(text_dim=4, d=2, max_words=2)
    enc = {SUM_EVEN.id: (np.ones(4, np.float32), np.ones((1, 4), np.float16))}

    class Fixed:  # a judge that gives every program reward 1
        counts: dict = {}

        def judge(self, pairs):
            return [{"reward": 1.0, "level": "all_right", "difficulty": p.difficulty, "problem": p.id} for p, _ in pairs]

    env = CrucibleEnv([SUM_EVEN], enc, Fixed(), lay, num_envs=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, lay.size) and (obs[:, 0] == 1).all()
    obs, r, term, trunc, _ = env.step(np.zeros((3, MAX_OPS), np.int64))
    assert (r == 1).all() and term.all() and not trunc.any() and (obs[:, 0] == 0).all()
    assert len(env.drain()) == 3 and env.drain() == []
    obs, r, term, _, _ = env.step(np.zeros((3, MAX_OPS), np.int64))  # the reset step: new problems
    assert (r == 0).all() and not term.any() and (obs[:, 0] == 1).all()
    with pytest.raises(ValueError, match="level"):
        env.set_curriculum(7)


def test_scorer_learns_which_programs_passed_from_verdicts():
    from emergence.crucible.scorer import fit_scorer, verdict_pairs
    from emergence.synthesis.models import CoherenceScorer

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    # 40 problems whose intent vector says which of two programs passes
    ids = [f"p{i}" for i in range(40)]
    vec = {p: (rng.normal(size=384) * 0.1 + (1 if i % 2 else -1)).astype(np.float32) for i, p in enumerate(ids)}
    a, b = ["SORT.asc"], ["REDUCE.sum"]
    episodes = [{"problem": p, "ops": ops, "level": "all_right" if (ops == a) == (i % 2 == 1) else "wrong"}
                for i, p in enumerate(ids) for ops in (a, b)]
    pairs = verdict_pairs(episodes + [{"problem": "p1", "ops": [], "level": "does_not_build"}])
    assert len(pairs) == 80 and pairs[("p1", ("SORT.asc",))] is True
    scorer = CoherenceScorer(d=8, width=16)
    tuned, figures = fit_scorer(scorer, pairs, vec, {p: 1 for p in ids}, epochs=30, lr=3e-3, anchor=0.0)
    assert figures["held_out_auc_after"] > 0.9 and figures["held_out_problems"] == 8
    assert tuned is not scorer  # the engine's own scorer is left as it was
    with pytest.raises(ValueError, match="two problems"):
        fit_scorer(scorer, {("p0", ("SORT.asc",)): True}, vec, {"p0": 1})


def test_tune_crucible_refuses_bad_settings_before_starting_anything(capsys):
    from tune import crucible as tc

    for argv, fragment in ((["--samples", "9"], "between 1 and 8"), (["--lr-range", "1e-3", "1e-5"], "LO <= HI")):
        with pytest.raises(SystemExit):
            tc.parse_args(argv)
        assert fragment in capsys.readouterr().err
    quick = tc.parse_args(["--quick"])
    assert (quick.samples, quick.iterations, quick.programs) == (2, 2, 128)


def test_the_sweep_report_holds_every_trial_and_computes_its_budget_targets(tmp_path):
    import json

    from benchmarks.readme_table import render_report
    from tune import crucible as tc

    rows = [{"lr": 1e-5 * (i + 1), "entropy": 0.0, "kl_ref": 0.05, "partial_scale": 1.0, tc.METRIC: 0.5 + i / 100,
             "success": 0.3, "last_kl": 1.0, "iterations": 20, "trial_s": 200.0 + 300 * i, "error": None}
            for i in range(3)]
    report = tc.sweep_report(rows, ["--samples", "3"], str(tmp_path / "sweep.json"))
    assert json.loads((tmp_path / "sweep.json").read_text()) == report
    assert report["command"] == "python -m tune.crucible --samples 3" and report["benchmark"] == "crucible_sweep"
    assert report["figures"]["best"]["lr"] == pytest.approx(3e-5) and len(report["figures"]["trials"]) == 3
    assert report["targets"]["trials"]["met"] and not report["targets"]["longest trial, s"]["met"]  # 800 s > 600
    table = render_report(report)
    assert table.index("| 3e-05 |") < table.index("| 1e-05 |")  # best first


@pytest.mark.parametrize("argv, fragment", [
    (["--group", "0"], "--group must be at least 1"),
    (["--checkpoint-every", "0"], "--checkpoint-every must be at least 1"),
    (["--reward", "{bad"], "--reward:"),
    (["--reward", '{"wrong": 5}'], "must order"),
    (["--reward", '{"surprise": 1}'], "unknown reward weight"),
    (["--problems", "/no/such/problems.jsonl"], "no file at"),
    (["--promote-at", "2"], "(0, 1]"),
    (["--sources", "dev"], "invalid choice"),
    (["--num-envs", "12"], "multiple of --group"),
])
def test_training_cli_refuses_bad_settings_before_starting_anything(argv, fragment, capsys):
    from training import crucible

    with pytest.raises(SystemExit) as exc:
        crucible.parse_args(argv)
    assert exc.value.code == 2 and fragment in capsys.readouterr().err
