"""RLlib pieces of the crucible (new API stack): the engine as a TorchRLModule, PPO's learner with
a KL penalty to the supervised engine, and the environment's creator.

The module is a thin adapter over `emergence.crucible.policy.ProgramPolicy`: exploration draws a
program under the type-grammar masks and returns its actions with their log-probability (RLlib's
`GetActions` connector then does nothing); training recomputes the masks from the chosen tokens,
so the summed per-slot log-probabilities are exact. The learner adds `kl_ref_coeff` x KL(policy ||
supervised engine) to PPO's loss (RLlib's own KL term is to the previous policy only).
"""

from __future__ import annotations

import json

import numpy as np
import torch
from ray.rllib.algorithms.ppo.torch.ppo_torch_learner import PPOTorchLearner
from ray.rllib.core.columns import Columns
from ray.rllib.core.distribution.torch.torch_distribution import TorchMultiCategorical
from ray.rllib.core.rl_module.apis import ValueFunctionAPI
from ray.rllib.core.rl_module.torch import TorchRLModule

from emergence.crucible.policy import V, ObsLayout, ProgramPolicy
from emergence.synthesis.models import MAX_OPS

KL_REF = "kl_ref"


def load_bundle(path: str):
    from emergence.synthesis.fit import Bundle

    return Bundle.from_state(torch.load(path, map_location="cpu", weights_only=False))


class CrucibleModule(TorchRLModule, ValueFunctionAPI):
    """model_config: {"engine_path", "text_dim", "d", "max_words", "steps", "temperature", "seed"}."""

    def setup(self):
        cfg = self.model_config
        layout = ObsLayout(cfg.get("text_dim", 384), cfg.get("d", 32), cfg.get("max_words", 40))
        if self.observation_space is not None and self.observation_space.shape != (layout.size,):
            raise ValueError(f"observation of shape {self.observation_space.shape}, the layout needs ({layout.size},)")
        self.policy = ProgramPolicy(load_bundle(cfg["engine_path"]), layout, steps=cfg.get("steps", 3),
                                    temperature=cfg.get("temperature", 1.0))
        self._rng = np.random.default_rng(cfg.get("seed", 0))

    def _actions(self, batch, greedy: bool) -> dict:
        out = self.policy.explore(batch[Columns.OBS], self._rng, greedy=greedy)
        return {Columns.ACTIONS: out["actions"], Columns.ACTION_LOGP: out["logp"],
                Columns.ACTION_DIST_INPUTS: out["dist_inputs"]}

    def _forward_inference(self, batch, **kwargs):
        return self._actions(batch, greedy=True)

    def _forward_exploration(self, batch, **kwargs):
        return self._actions(batch, greedy=False)

    def _forward_train(self, batch, **kwargs):
        out = self.policy.evaluate(batch[Columns.OBS], batch[Columns.ACTIONS])
        return {Columns.ACTION_DIST_INPUTS: out["dist_inputs"], KL_REF: out["kl_ref"]}

    def compute_values(self, batch, embeddings=None):
        return self.policy.value_of(batch[Columns.OBS])

    def _dist(self):
        return TorchMultiCategorical.get_partial_dist_cls(input_lens=[V] * MAX_OPS)

    def get_exploration_action_dist_cls(self):
        return self._dist()

    def get_inference_action_dist_cls(self):
        return self._dist()

    def get_train_action_dist_cls(self):
        return self._dist()


class CrucibleLearner(PPOTorchLearner):
    """PPO + kl_ref_coeff x KL(policy || supervised engine), masked like PPO's own terms."""

    def compute_loss_for_module(self, *, module_id, config, batch, fwd_out):
        loss = super().compute_loss_for_module(module_id=module_id, config=config, batch=batch, fwd_out=fwd_out)
        coeff = float(config.learner_config_dict.get("kl_ref_coeff", 0.0))
        kl = fwd_out[KL_REF]
        if Columns.LOSS_MASK in batch:
            mask = batch[Columns.LOSS_MASK]
            kl = torch.sum(kl[mask]) / torch.sum(mask).clamp(min=1)
        else:
            kl = kl.mean()
        self.metrics.log_value((module_id, KL_REF), kl.detach(), window=1)
        return loss + coeff * kl


def make_env(env_config: dict):
    """The crucible's vector environment from files the driver wrote (problems, encodings) and
    the named sandbox pool; env_config also carries "num_envs" (RLlib adds it)."""
    import ray

    from actors.sandbox_worker import NAMESPACE, POOL_NAME
    from emergence.crucible.curriculum import Curriculum
    from emergence.crucible.env import CrucibleEnv
    from emergence.crucible.judge import Judge
    from emergence.crucible.problems import load_problems
    from emergence.crucible.reward import RewardWeights

    problems = load_problems(env_config["problems"])
    with np.load(env_config["encodings"]) as z:
        ids, pooled, flat, offsets = z["ids"].tolist(), z["pooled"], z["flat"], z["offsets"]
        encodings = {i: (pooled[k], flat[offsets[k]:offsets[k + 1]]) for k, i in enumerate(ids)}
    pool = ray.get_actor(env_config.get("pool", POOL_NAME), namespace=env_config.get("namespace", NAMESPACE))
    timeout = float(env_config.get("sandbox_timeout_s", 300))

    def run_batch(jobs):
        return ray.get(pool.run_batch.remote(jobs), timeout=timeout)

    layout = ObsLayout(**env_config.get("layout", {}))
    cur = env_config.get("curriculum") or {}
    levels = sorted({p.difficulty for p in problems})
    curriculum = Curriculum(levels, **{k: cur[k] for k in ("promote_at", "window", "review") if k in cur},
                            start=cur.get("start", levels[0]))
    judge = Judge(run_batch, RewardWeights.from_dict(env_config.get("reward")))
    return CrucibleEnv(problems, encodings, judge, layout, num_envs=int(env_config.get("num_envs", 64)),
                       curriculum=curriculum, group=int(env_config.get("group", 1)), seed=int(env_config.get("seed", 0)) + 1000 * getattr(env_config, "worker_index", 0))


def write_encodings(path: str, ids: list[str], pooled: np.ndarray, words: list) -> None:
    """The problems' encodings as one file the environment reads (word vectors float16, one block)."""
    offsets = np.cumsum([0] + [len(w) for w in words])
    flat = np.concatenate([np.asarray(w, dtype=np.float16) for w in words]) if words else np.zeros((0, 1))
    np.savez(path, ids=np.array(ids), pooled=np.asarray(pooled, dtype=np.float32), flat=flat, offsets=offsets)


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=float)
