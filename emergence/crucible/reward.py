"""The crucible's reward for one program on one problem: correctness first, then speed and quality.

Correctness is graded (after CodeRL and RLTF, see docs/crucible.md):

    does not build  <  raises or times out  <  wrong  <  partly right  <  all right
        -1.0              -0.6                 -0.3     -0.3 + 1.3 x share     1.0

and only a program that passes every test earns the rest, each term in [0, its weight]: speed
against the fastest correct program known for the problem, and quality (no more steps than the
shortest correct program known, no dead steps). So no bonus lifts a partly right program above an
all-right one. Every weight is configurable (`RewardWeights`); `score` returns each component on
its own, so a run's log says why a reward is what it is.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

STATUSES = ("passed", "failed", "error", "timeout")


@dataclass(frozen=True)
class RewardWeights:
    does_not_build: float = -1.0
    raises: float = -0.6  # raised or timed out on every test it did not pass, passing none
    wrong: float = -0.3  # ran, returned wrong values, passed none
    partial_base: float = -0.3  # partly right: partial_base + partial_scale x share of tests passed
    partial_scale: float = 1.3
    all_right: float = 1.0
    speed: float = 0.1  # x (fastest known seconds / these seconds), all-right programs only
    quality: float = 0.1  # x (shortest known steps / these steps) x (share of live steps), all-right only
    sandbox_failure: float = 0.0  # the sandbox itself failed: marked, counted, never the program's fault

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"reward weight {f.name!r} must be a finite number, got {v!r}")
        if not self.does_not_build < self.raises < self.wrong <= self.partial_base:
            raise ValueError("reward weights must order does_not_build < raises < wrong <= partial_base, got "
                             f"{self.does_not_build}, {self.raises}, {self.wrong}, {self.partial_base}")
        if self.partial_scale <= 0 or self.partial_base + self.partial_scale > self.all_right:
            raise ValueError("reward weights need partial_scale > 0 and partial_base + partial_scale <= all_right "
                             "(a partly right program never earns more than an all-right one)")
        if self.speed < 0 or self.quality < 0:
            raise ValueError("reward weights 'speed' and 'quality' are bonuses: they must be >= 0")

    @classmethod
    def from_dict(cls, d: dict | None) -> "RewardWeights":
        d = dict(d or {})
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown reward weight {unknown[0]!r} (known: {', '.join(f.name for f in fields(cls))})")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Outcome:
    """What running one program on a problem's tests gave.

    built: the program type-checked and compiled; statuses: each test's status (the sandbox's
    passed / failed / error / timeout); seconds: the time its tests took; steps: its number of
    steps; dead_steps: steps that could be dropped with every test still passing;
    sandbox_failed: the sandbox could not run it at all."""

    built: bool
    statuses: tuple = ()
    seconds: float = 0.0
    steps: int = 1
    dead_steps: int = 0
    sandbox_failed: bool = False

    def __post_init__(self):
        bad = [s for s in self.statuses if s not in STATUSES]
        if bad:
            raise ValueError(f"test status {bad[0]!r} is not one of {STATUSES}")
        if self.built and not self.sandbox_failed and not self.statuses:
            raise ValueError("a built program needs the status of at least one test")
        if not (isinstance(self.steps, int) and self.steps >= 1 and 0 <= self.dead_steps <= self.steps):
            raise ValueError(f"need steps >= 1 and 0 <= dead_steps <= steps, got {self.steps}, {self.dead_steps}")
        if not (math.isfinite(self.seconds) and self.seconds >= 0):
            raise ValueError(f"seconds must be finite and >= 0, got {self.seconds}")


def level(outcome: Outcome) -> str:
    """does_not_build | raises | wrong | partly_right | all_right | sandbox_failure"""
    if outcome.sandbox_failed:
        return "sandbox_failure"
    if not outcome.built:
        return "does_not_build"
    passed = sum(s == "passed" for s in outcome.statuses)
    if passed == len(outcome.statuses):
        return "all_right"
    if passed:
        return "partly_right"
    return "raises" if any(s in ("error", "timeout") for s in outcome.statuses) else "wrong"


def score(outcome: Outcome, weights: RewardWeights = RewardWeights(), fastest_s: float | None = None,
          shortest_steps: int | None = None) -> dict:
    """{"reward", "level", "correctness", "speed", "quality", "passed", "tests"}: the reward and
    each of its parts. `fastest_s` / `shortest_steps`: the best correct program known for this
    problem (None: this one is the best known)."""
    lv = level(outcome)
    passed, n = sum(s == "passed" for s in outcome.statuses), len(outcome.statuses)
    correctness = {"sandbox_failure": weights.sandbox_failure, "does_not_build": weights.does_not_build,
                   "raises": weights.raises, "wrong": weights.wrong, "all_right": weights.all_right,
                   "partly_right": weights.partial_base + weights.partial_scale * passed / max(n, 1)}[lv]
    speed = quality = 0.0
    if lv == "all_right":
        best_s = outcome.seconds if fastest_s is None else min(fastest_s, outcome.seconds)
        speed = weights.speed * (1.0 if outcome.seconds <= 0 else best_s / outcome.seconds)
        best_steps = outcome.steps if shortest_steps is None else min(shortest_steps, outcome.steps)
        quality = weights.quality * (best_steps / outcome.steps) * (1 - outcome.dead_steps / outcome.steps)
    return {"reward": correctness + speed + quality, "level": lv, "correctness": correctness, "speed": speed,
            "quality": quality, "passed": passed, "tests": n}
