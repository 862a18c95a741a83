"""The crucible as a gymnasium vector environment: one episode is one program for one problem.

Each sub-environment shows a problem (its intent as the engine encodes it, its arity) and the
starting noise of one diffusion draw (`policy.ObsLayout`); the action is a program, one token per
slot (`MultiDiscrete([len(VOCAB)] * MAX_OPS)`); the reward is the judged outcome (`judge.py`), and
the episode ends. Every sub-environment's program of one `step` is judged in one sandbox batch.
Resets follow gymnasium's next-step autoreset (what RLlib's env runner expects): the step after an
episode ends returns a fresh problem, reward 0, and ignores the action; the observation an episode
ends on is a placeholder the policy spends nothing on (`live` = 0).

With `group` = G, consecutive copies come in groups of G that share a problem (each with its own
noise): every batch then holds G programs per problem, so the value head (the problem's
baseline) and the advantages compare programs for the same problem.

Which problems are drawn follows the curriculum: a problem of the current level, or a share
(`review`) of earlier ones. `set_curriculum` takes the driver's level (one curriculum for all
environment copies, see `training.crucible`); `drain()` hands over the episodes finished since the
last call, each with its reward components, for the curriculum and the monitoring.
"""

from __future__ import annotations

import random

import gymnasium as gym
import numpy as np

from ..synthesis.models import MAX_OPS, VOCAB
from . import grammar
from .curriculum import Curriculum
from .judge import Judge
from .policy import ObsLayout
from .problems import Problem


class CrucibleEnv(gym.vector.VectorEnv):
    metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, problems: list[Problem], encodings: dict, judge: Judge, layout: ObsLayout,
                 num_envs: int = 64, curriculum: Curriculum | None = None, seed: int = 0, group: int = 1):
        if not problems:
            raise ValueError("the crucible needs at least one problem")
        missing = [p.id for p in problems if p.id not in encodings]
        if missing:
            raise ValueError(f"no encoding for problem(s) {missing[:5]}")
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        if isinstance(group, bool) or not isinstance(group, int) or group < 1 or num_envs % group:
            raise ValueError(f"group must be an integer >= 1 that divides num_envs ({num_envs}), got {group!r}")
        self.problems, self.encodings, self.judge, self.layout = problems, encodings, judge, layout
        self.group = group
        self.by_level = _by_level(problems)
        self.curriculum = curriculum or Curriculum(sorted(self.by_level), start=min(self.by_level))
        self.num_envs = num_envs
        self.single_observation_space = gym.spaces.Box(-np.inf, np.inf, (layout.size,), np.float32)
        self.single_action_space = gym.spaces.MultiDiscrete([len(VOCAB)] * MAX_OPS)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, num_envs)
        self._rng = random.Random(seed)
        self._noise = np.random.default_rng(seed)
        self._current: list = [None] * num_envs  # each sub-env's problem; None: its episode just ended
        self._group_problem: Problem | None = None  # the problem the current group of copies shares
        self._finished: list[dict] = []

    # -- the curriculum, set from outside ----------------------------------------------------------
    def set_curriculum(self, level: int, review: float | None = None) -> None:
        if level not in self.by_level:
            raise ValueError(f"no problems at level {level!r} (levels: {sorted(self.by_level)})")
        self.curriculum.level = level
        if review is not None:
            self.curriculum.review = review

    def keep(self, ids) -> None:
        """Draw only these problems from now on (say, those the starting policy has not mastered)."""
        ids = set(ids)
        kept = [p for p in self.problems if p.id in ids]
        if not kept:
            raise ValueError("keep: none of these ids is a problem of this environment")
        self.by_level = _by_level(kept)
        if self.curriculum.level not in self.by_level:
            self.curriculum.level = min(self.by_level)

    def observation(self, problem: Problem) -> np.ndarray:
        """A fresh observation of `problem` (its own noise), outside any episode: for probing."""
        pooled, words = self.encodings[problem.id]
        noise = self._noise.standard_normal((MAX_OPS, self.layout.d)).astype(np.float32)
        return self.layout.pack(problem.arity, pooled, words, noise)

    def drain(self) -> list[dict]:
        out, self._finished = self._finished, []
        return out

    # -- gymnasium ---------------------------------------------------------------------------------
    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self._rng.seed(seed)
            self._noise = np.random.default_rng(seed)
        obs = np.stack([self._new_episode(i) for i in range(self.num_envs)])
        return obs, {}

    def step(self, actions):
        actions = np.asarray(actions)
        obs = np.zeros((self.num_envs, self.layout.size), dtype=np.float32)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        live = [i for i in range(self.num_envs) if self._current[i] is not None]
        judged = set(live)
        if live:
            pairs = [(self._current[i], grammar.program_ops(actions[i])) for i in live]
            for i, verdict in zip(live, self.judge.judge(pairs)):
                rewards[i] = verdict["reward"]
                terminated[i] = True
                self._finished.append(verdict)
                self._current[i] = None  # obs[i] stays the placeholder (live = 0)
        for i in range(self.num_envs):
            if i not in judged:  # next-step autoreset: this step starts a new episode
                obs[i] = self._new_episode(i)
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), {}

    def _new_episode(self, i: int) -> np.ndarray:
        if i % self.group == 0:  # the first copy of a group draws the problem, the rest share it
            level = self.curriculum.sample_level(self._rng)
            self._group_problem = self._rng.choice(self.by_level[level])
        problem = self._group_problem
        self._current[i] = problem
        return self.observation(problem)


def _by_level(problems: list[Problem]) -> dict:
    out: dict = {}
    for p in problems:
        out.setdefault(p.difficulty, []).append(p)
    return out
