"""The crucible's policy: the engine's own denoiser, read as a distribution over programs.

One episode is one program for one problem (see docs/crucible.md for why). The observation holds
what the engine reads for a request -- the intent's pooled vector and word vectors, the arity --
and the starting noise of one diffusion draw. The policy runs the engine's DDIM sampler from that
noise (with gradients) and reads the last step's per-slot logits as the distribution of each slot,
masked by the type grammar (`grammar.py`) slot after slot: the program's log-probability is the
sum of its slots' masked log-probabilities, exact because training recomputes the masks from the
chosen tokens. So what PPO moves is exactly what the engine's draws are rounded from.

A value head (a small MLP on the intent condition) is the per-problem baseline, and a frozen copy
of the starting denoiser is the reference of the KL penalty that keeps the tuned engine near the
supervised one.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..synthesis.fit import Bundle
from ..synthesis.models import MAX_ARITY, MAX_OPS, VOCAB, condition
from . import grammar

V = len(VOCAB)
MASKED = torch.finfo(torch.float32).min  # a masked token's logit offset: never -inf (NaN in the loss)


@dataclass(frozen=True)
class ObsLayout:
    """One flat float32 observation: [live, arity, pooled (text_dim), noise (MAX_OPS x d),
    words (max_words x text_dim), word mask (max_words)]. `live` is 0 on the placeholder an
    environment returns when an episode ends (nothing is chosen from it)."""
    text_dim: int = 384
    d: int = 32
    max_words: int = 40

    @property
    def size(self) -> int:
        return 2 + self.text_dim + MAX_OPS * self.d + self.max_words * (self.text_dim + 1)

    def pack(self, arity: int, pooled: np.ndarray, words: np.ndarray | None, noise: np.ndarray) -> np.ndarray:
        out = np.zeros(self.size, dtype=np.float32)
        out[0], out[1] = 1.0, arity
        i = 2
        out[i:i + self.text_dim] = pooled
        i += self.text_dim
        out[i:i + MAX_OPS * self.d] = np.asarray(noise, dtype=np.float32).reshape(-1)
        i += MAX_OPS * self.d
        if words is not None and len(words):
            w = np.asarray(words, dtype=np.float32)[:self.max_words]
            out[i:i + w.size] = w.reshape(-1)
            j = i + self.max_words * self.text_dim
            out[j:j + len(w)] = 1.0
        return out

    def unpack(self, obs: torch.Tensor) -> dict:
        B, i = obs.shape[0], 2
        pooled = obs[:, i:i + self.text_dim]
        i += self.text_dim
        noise = obs[:, i:i + MAX_OPS * self.d].reshape(B, MAX_OPS, self.d)
        i += MAX_OPS * self.d
        words = obs[:, i:i + self.max_words * self.text_dim].reshape(B, self.max_words, self.text_dim)
        mask = obs[:, i + self.max_words * self.text_dim:] > 0.5
        return {"live": obs[:, 0] > 0.5, "arity": obs[:, 1].round().long().clamp(1, MAX_ARITY), "pooled": pooled,
                "noise": noise, "words": words, "words_mask": mask}


class ProgramPolicy(nn.Module):
    """The denoiser as a policy over programs, a value head, and the frozen reference."""

    def __init__(self, bundle: Bundle, layout: ObsLayout, steps: int = 3, temperature: float = 1.0):
        super().__init__()
        if bundle.config.words and layout.text_dim != bundle.denoiser.words_dim:
            raise ValueError(f"the layout's text_dim {layout.text_dim} is not the denoiser's {bundle.denoiser.words_dim}")
        self.layout, self.steps, self.temperature = layout, steps, temperature
        self.denoiser = _without_dropout(bundle.denoiser)
        cond_dim = layout.text_dim + MAX_ARITY
        self.value_head = nn.Sequential(nn.Linear(cond_dim, 128), nn.Tanh(), nn.Linear(128, 1))
        # the supervised denoiser, frozen: kept out of the parameters (no optimizer sees it) and
        # out of the state (it is rebuilt from the engine file)
        self._reference = [_frozen(copy.deepcopy(self.denoiser))]
        self.reads_words = bool(bundle.config.words)

    def _inputs(self, obs: torch.Tensor) -> dict:
        x = self.layout.unpack(obs.float())
        x["cond"] = condition(x["pooled"], x["arity"])
        return x

    def logits(self, x: dict, denoiser: nn.Module | None = None) -> torch.Tensor:
        """(B, MAX_OPS, V) slot logits of the live rows (zeros elsewhere)."""
        den = denoiser or self.denoiser
        out = torch.zeros(x["cond"].shape[0], MAX_OPS, V, device=x["cond"].device)
        live = x["live"]
        if live.any():
            words = (x["words"][live], x["words_mask"][live]) if self.reads_words else (None, None)
            _, lg = den.run(x["noise"][live], x["cond"][live], self.steps, words=words[0], words_mask=words[1])
            out[live] = lg / self.temperature
        return out

    def explore(self, obs: torch.Tensor, rng: np.random.Generator, greedy: bool = False) -> dict:
        """Draw one program per row: {"actions" (B, K), "logp" (B,), "dist_inputs" (B, K*V)}."""
        x = self._inputs(obs)
        with torch.no_grad():
            logits = self.logits(x)
            live = x["live"].cpu().numpy()  # placeholder rows' logits are zeros (`logits`)
            actions, ok = grammar.sample(logits.cpu().numpy(), np.where(live, x["arity"].cpu().numpy(), 1), rng, greedy=greedy)
            ok[~live] = True  # a placeholder row (uniform; the env ignores what it "chooses")
            masked = _masked(logits, torch.as_tensor(ok, device=logits.device))
            a = torch.as_tensor(actions, device=logits.device)
        return {"actions": a, "logp": _logp(masked, a), "dist_inputs": masked.reshape(len(a), -1)}

    def evaluate(self, obs: torch.Tensor, actions: torch.Tensor) -> dict:
        """Teacher-forced: the masked logits the chosen actions were drawn from (with gradients),
        and each row's KL to the reference policy. (The value is `value_of`: RLlib asks for it apart.)"""
        x = self._inputs(obs)
        ok = torch.as_tensor(self.masks(x, actions), device=obs.device)
        masked = _masked(self.logits(x), ok)
        with torch.no_grad():
            ref = _masked(self.logits(x, self._reference[0].to(obs.device)), ok)
        return {"dist_inputs": masked.reshape(len(actions), -1), "kl_ref": _kl(masked, ref)}

    def masks(self, x: dict, actions: torch.Tensor) -> np.ndarray:
        live = x["live"].cpu().numpy()
        ok = grammar.masks(actions.cpu().numpy().astype(np.int64), np.where(live, x["arity"].cpu().numpy(), 1))
        # placeholder rows: uniform over every token, so whatever action a batch carries for them has
        # a finite log-probability (the loss masks them out; an infinite one would still turn its
        # gradient into NaN)
        ok[~live] = True
        return ok

    def value_of(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value_head(self._inputs(obs)["cond"]).squeeze(-1)


def _masked(logits: torch.Tensor, ok: torch.Tensor) -> torch.Tensor:
    """Log-softmax of each slot over the allowed tokens; a masked token gets MASKED (finite)."""
    z = logits.masked_fill(~ok, MASKED)
    return F.log_softmax(z, dim=-1).clamp(min=MASKED)


def _logp(masked: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    return masked.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1).sum(-1)


def _kl(p_logp: torch.Tensor, q_logp: torch.Tensor) -> torch.Tensor:
    """Sum over slots of KL(p || q), over the tokens p allows."""
    p = p_logp.exp()
    return torch.where(p > 0, p * (p_logp - q_logp), torch.zeros_like(p)).sum(dim=(-1, -2))


def _without_dropout(module: nn.Module) -> nn.Module:
    """The same network with dropout off: a policy's log-probabilities must be the same when
    sampling and when training on the samples."""
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
    return module


def _frozen(module: nn.Module) -> nn.Module:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    return module
