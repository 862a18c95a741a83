"""The crucible's reward (graded correctness dominates; speed and quality only for all-right
programs; every part reported) and its curriculum (start, promotion, review, checkpointed state)."""

from __future__ import annotations

import random

import pytest

from emergence.crucible.curriculum import Curriculum
from emergence.crucible.reward import Outcome, RewardWeights, level, score

P, F, E, T = "passed", "failed", "error", "timeout"


def test_levels_are_ordered_as_graded_and_correctness_dominates():
    outcomes = [Outcome(built=False),
                Outcome(True, (E, T, F)),
                Outcome(True, (F, F, F)),
                Outcome(True, (P, F, F)),
                Outcome(True, (P, P, E)),
                Outcome(True, (P, P, P), seconds=9.0, steps=5, dead_steps=4)]  # slow, long, mostly dead
    assert [level(o) for o in outcomes] == ["does_not_build", "raises", "wrong", "partly_right", "partly_right",
                                            "all_right"]
    rewards = [score(o, fastest_s=0.01, shortest_steps=1)["reward"] for o in outcomes]
    assert rewards == sorted(rewards) and len(set(rewards)) == len(rewards), rewards
    # 99 of 100 tests passed still earns less than the worst all-right program
    nearly = score(Outcome(True, (P,) * 99 + (F,)))["reward"]
    assert nearly < rewards[-1]


def test_every_component_is_reported():
    s = score(Outcome(True, (P, P), seconds=0.2, steps=2, dead_steps=1), fastest_s=0.1, shortest_steps=1)
    assert s["level"] == "all_right" and s["passed"] == 2 and s["tests"] == 2
    assert s["correctness"] == 1.0 and s["speed"] == pytest.approx(0.05) and s["quality"] == pytest.approx(0.025)
    assert s["reward"] == pytest.approx(1.075)
    part = score(Outcome(True, (P, F, F, F)), fastest_s=0.1)
    assert part["correctness"] == pytest.approx(-0.3 + 1.3 / 4) and part["speed"] == part["quality"] == 0.0
    best = score(Outcome(True, (P,), seconds=0.05, steps=1))  # the best known: full bonuses
    assert best["reward"] == pytest.approx(1.2)


def test_a_sandbox_failure_is_marked_not_blamed_on_the_program():
    s = score(Outcome(True, sandbox_failed=True), RewardWeights(sandbox_failure=0.0))
    assert s["level"] == "sandbox_failure" and s["reward"] == 0.0 and s["tests"] == 0


def test_weights_are_configurable_and_checked():
    w = RewardWeights.from_dict({"speed": 0.0, "quality": 0.5})
    assert score(Outcome(True, (P,), steps=2, dead_steps=1), w, shortest_steps=1)["reward"] == pytest.approx(1.125)
    assert RewardWeights.from_dict(w.to_dict()) == w
    for bad, words in [({"speedy": 1}, "unknown reward weight 'speedy'"), ({"wrong": -0.7}, "must order"),
                       ({"partial_scale": 2.0}, "never earns more"), ({"speed": -0.1}, "bonuses"),
                       ({"raises": float("nan")}, "finite number"), ({"quality": True}, "finite number")]:
        with pytest.raises(ValueError, match=words):
            RewardWeights.from_dict(bad)


@pytest.mark.parametrize("kw, words", [(dict(built=True), "at least one test"), (dict(built=True, statuses=("ok",)), "status"),
                                       (dict(built=True, statuses=(P,), steps=0), "steps >= 1"),
                                       (dict(built=True, statuses=(P,), steps=2, dead_steps=3), "dead_steps"),
                                       (dict(built=True, statuses=(P,), seconds=-1.0), "seconds")])
def test_bad_outcomes_are_refused(kw, words):
    with pytest.raises(ValueError, match=words):
        Outcome(**kw)


def test_the_start_is_where_the_policy_sometimes_succeeds():
    assert Curriculum.starting_level({1: 0.9, 2: 0.3, 3: 0.0}) == 2
    assert Curriculum.starting_level({1: 0.9, 2: 0.0, 3: 0.0}) == 2  # nothing "sometimes": first unmastered
    assert Curriculum.starting_level({1: 0.9, 2: 0.8}) == 2  # all mastered: the top
    with pytest.raises(ValueError):
        Curriculum.starting_level({})


def test_promotion_by_success_rate_with_events_and_review():
    fresh = Curriculum([1, 2, 3], promote_at=0.5, window=4)
    assert fresh.record(1, True) is None and fresh.rate() == 1.0  # 1 of 1, but the window (4) is not full yet
    c = Curriculum([1, 2, 3], promote_at=0.5, window=4, review=0.25)
    for ok in (True, False, False, False, True):  # full windows: 0.25, then F F F T 0.25
        assert c.record(1, ok) is None
    assert c.rate() == 0.25 and c.level == 1
    event = c.record(1, True)  # last 4: F F T T -> 0.5
    assert event == {"episode": 6, "from": 1, "to": 2, "rate": 0.5} and c.level == 2 and c.events == [event]
    c.record(1, False)  # a review episode at level 1 never promotes or demotes
    assert c.level == 2
    rng = random.Random(0)
    draws = [c.sample_level(rng) for _ in range(4000)]
    assert set(draws) == {1, 2} and 0.2 < draws.count(1) / len(draws) < 0.3
    for _ in range(4):
        c.record(2, True)
    assert c.level == 3 and [e["to"] for e in c.events] == [2, 3]
    for _ in range(10):
        assert c.record(3, True) is None  # the top level: nowhere to go


def test_state_survives_a_checkpoint():
    c = Curriculum([1, 2], promote_at=0.75, window=4, review=0.1, start=1)
    for ok in (True, True, False):
        c.record(1, ok)
    back = Curriculum.from_state(c.state())
    assert back.state() == c.state()
    back.record(1, True)  # 3 of the last 4: 0.75 -> promoted, as the original would be
    assert back.level == 2 and back.events[0]["episode"] == 4


@pytest.mark.parametrize("kw, words", [(dict(levels=[]), "levels"), (dict(levels=[0, 1]), "levels"),
                                       (dict(levels=[1], promote_at=0), "promote_at"),
                                       (dict(levels=[1], window=0), "window"), (dict(levels=[1], review=1.0), "review"),
                                       (dict(levels=[1, 2], start=3), "start level")])
def test_bad_settings_are_refused(kw, words):
    with pytest.raises(ValueError, match=words):
        Curriculum(**kw)
    with pytest.raises(ValueError, match="level 7"):
        Curriculum([1]).record(7, True)
