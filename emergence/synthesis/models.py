"""The engine's networks (PyTorch): action encoder, diffusion denoiser, coherence scorer.

A program is a sequence of at most `MAX_OPS` operations, padded with `<end>`: token ids into
`VOCAB`. The **action encoder** learns one vector per operation -- the action-latent space -- by
contrastive training against intent embeddings (a program and the words that describe it land
together). A program's latent is its operations' vectors, slot by slot (`MAX_OPS` x `d`), scaled
to unit variance per element. The **denoiser** is a small transformer that, given a noised
latent, the diffusion time and the intent (plus the wanted arity), predicts the clean latent
through per-slot logits over the operations (DDPM training; DDIM sampling in any number of
steps). Besides the pooled intent vector it can attend to the intent's word vectors
(cross-attention, `words_dim`): which step comes first, and which words go with which step, is
in the words and blurred in their mean. The **coherence scorer** judges how well
a whole program fits an intent, trained on true pairs against invalid and near-miss programs.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .ops import OPS

END = "<end>"
VOCAB = [END] + sorted(OPS)
TOKEN = {name: i for i, name in enumerate(VOCAB)}
MAX_OPS = 5
MAX_ARITY = 4


def tokens(ops: list[str]) -> list[int]:
    if len(ops) > MAX_OPS:
        raise ValueError(f"a program has at most {MAX_OPS} operations, got {len(ops)}")
    return [TOKEN[o] for o in ops] + [0] * (MAX_OPS - len(ops))


def untokens(ids) -> list[str]:
    out = []
    for i in ids:
        if int(i) == 0:
            break
        out.append(VOCAB[int(i)])
    return out


def condition(intent_emb: torch.Tensor, arity: torch.Tensor) -> torch.Tensor:
    """What the denoiser and scorer condition on: the intent vector and the arity, one-hot."""
    return torch.cat([intent_emb, F.one_hot((arity.clamp(1, MAX_ARITY) - 1).long(), MAX_ARITY).float()], dim=-1)


class ActionEncoder(nn.Module):
    """Operation embeddings (the latent space) + a program encoder, trained contrastively."""

    def __init__(self, text_dim: int = 384, d: int = 32, width: int = 128, out: int = 128):
        super().__init__()
        self.d = d
        self.table = nn.Embedding(len(VOCAB), d)
        self.pos = nn.Parameter(torch.randn(MAX_OPS, d) * 0.02)
        self.seq = nn.GRU(d, width, batch_first=True, bidirectional=True)
        self.prog_head = nn.Linear(2 * width, out)
        self.text_head = nn.Sequential(nn.Linear(text_dim, 256), nn.GELU(), nn.Linear(256, out))
        self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def latent_table(self) -> torch.Tensor:
        """One vector per token, each element of unit variance on average (the diffusion's scale)."""
        return F.normalize(self.table.weight, dim=-1) * math.sqrt(self.d)

    def encode_programs(self, tok: torch.Tensor) -> torch.Tensor:
        h, _ = self.seq(self.latent_table()[tok] + self.pos)
        return F.normalize(self.prog_head(h.mean(dim=1)), dim=-1)

    def encode_texts(self, emb: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.text_head(emb), dim=-1)

    def forward(self, emb, tok):
        return self.encode_texts(emb), self.encode_programs(tok), self.log_scale.exp().clamp(max=100)


def contrastive_loss(text_z, prog_z, scale, prog_ids) -> torch.Tensor:
    """Symmetric InfoNCE; two descriptions of one program in a batch are both positives."""
    logits = scale * text_z @ prog_z.T
    same = (prog_ids[:, None] == prog_ids[None, :]).float()
    target = same / same.sum(dim=1, keepdim=True)
    return 0.5 * (torch.sum(-target * F.log_softmax(logits, dim=1), dim=1).mean()
                  + torch.sum(-target * F.log_softmax(logits.T, dim=1), dim=1).mean())


# -- diffusion --------------------------------------------------------------------------------

def cosine_alphas_bar(T: int) -> torch.Tensor:
    """ᾱ_t for t = 1..T (Nichol & Dhariwal's cosine schedule), index 0 = t=1."""
    s = 0.008
    t = torch.arange(T + 1, dtype=torch.float64) / T
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    ab = (f / f[0])[1:]
    return ab.clamp(1e-5, 0.9999).float()


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / half)
    a = t.float()[:, None] * freqs[None]
    return torch.cat([a.sin(), a.cos()], dim=-1)


class Denoiser(nn.Module):
    """x_t (B, MAX_OPS, d), t (B,), cond (B, C) -> per-slot logits over the operations.

    The clean latent is predicted as the softmax-weighted mean of the operations' latents
    (`x0_from_logits`; "score interpolation" as in CDCD): at high noise the network's job is a
    classification from the intent, which it learns far faster than regressing raw vectors, and
    every prediction lies in the span of real operations. Trained with cross-entropy on the
    slots plus the MSE of that x0; sampled with DDIM in any number of steps."""

    def __init__(self, d: int = 32, cond_dim: int = 384 + MAX_ARITY, width: int = 192, layers: int = 3,
                 heads: int = 4, T: int = 200, words_dim: int = 0, dropout: float = 0.0):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d, self.T, self.width, self.words_dim = d, T, width, words_dim
        self.inp = nn.Linear(d, width)
        self.pos = nn.Parameter(torch.randn(MAX_OPS + 1, width) * 0.02)
        self.t_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.c_mlp = nn.Sequential(nn.Linear(cond_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.null = nn.Parameter(torch.zeros(cond_dim))  # the "no intent" condition (guidance)
        if words_dim:
            self.w_proj = nn.Sequential(nn.Linear(words_dim, width), nn.LayerNorm(width))
            # always one key to attend to: the words of a dropped (or empty) intent are all masked
            self.null_word = nn.Parameter(torch.randn(1, 1, width) * 0.02)
            self.w_kv = nn.Linear(width, 2 * width)  # keys and values of the words, shared by every block
            self.blocks = nn.ModuleList(WordsBlock(width, heads, dropout) for _ in range(layers))
        else:
            layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=dropout, batch_first=True,
                                               norm_first=True)
            self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(width)
        self.out = nn.Linear(width, len(VOCAB))
        self.register_buffer("alphas_bar", cosine_alphas_bar(T))
        self.register_buffer("table", torch.zeros(len(VOCAB), d))  # the action latents, frozen (set_table)

    def set_table(self, table: torch.Tensor) -> None:
        self.table.copy_(table.detach())

    def forward(self, x_t, t, cond, words=None, words_mask=None):
        """`words` (B, L, words_dim) with `words_mask` (B, L), True where a word is real; None (or
        a model without `words_dim`): the pooled condition alone."""
        temb = self.t_mlp(timestep_embedding(t, self.width))
        c = self.c_mlp(cond) + temb
        # the intent goes in as a token of its own and into every slot: at high noise the slots
        # carry nothing else, and the program must come from the intent
        h = torch.cat([c[:, None], self.inp(x_t) + c[:, None]], dim=1) + self.pos
        if not self.words_dim:
            return self.out(self.norm(self.blocks(h))[:, 1:])
        k, v, bias = self.words_kv(words, words_mask, h.shape[0])
        for block in self.blocks:
            h = block(h, k, v, bias)
        return self.out(self.norm(h)[:, 1:])

    def words_kv(self, words, words_mask, batch: int):
        """Keys, values (Bw, heads, 1 + L, width/heads) and the additive mask of the word memory.
        Bw is 1 when every row reads the same words (the sampler's draws for one intent), so
        they are projected once, not once per draw."""
        Bw = 1 if words is None else words.shape[0]
        memory = self.null_word.expand(Bw, 1, -1)
        keep = torch.ones(Bw, 1, dtype=torch.bool, device=memory.device)
        if words is not None and words.shape[1]:
            memory = torch.cat([memory, self.w_proj(words.float())], dim=1)
            keep = torch.cat([keep, words_mask.bool()], dim=1)
        heads = self.blocks[0].heads
        k, v = self.w_kv(memory).view(Bw, memory.shape[1], 2, heads, -1).permute(2, 0, 3, 1, 4)
        bias = torch.zeros(keep.shape, device=memory.device).masked_fill(~keep, float("-inf"))[:, None, None]
        if Bw != batch:
            if Bw != 1:
                raise ValueError(f"word vectors for {Bw} intents but {batch} latents")
            k, v, bias = k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1), bias.expand(batch, -1, -1, -1)
        return k, v, bias

    def x0_from_logits(self, logits):
        return torch.softmax(logits, dim=-1) @ self.table

    def noised(self, x0, t, noise):
        ab = self.alphas_bar[t][:, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    @torch.no_grad()
    def sample(self, cond, steps: int = 10, guidance: float = 1.0, generator=None, eta: float = 0.0,
               words=None, words_mask=None):
        """DDIM (eta=0: deterministic given the starting noise) in `steps` steps -> (x0, logits of
        the last step). Classifier-free guidance mixes conditional and unconditional logits when
        guidance != 1."""
        x = torch.randn(cond.shape[0], MAX_OPS, self.d, generator=generator, device=cond.device)
        return self.run(x, cond, steps, guidance, generator, eta, words, words_mask)

    def run(self, x, cond, steps: int = 10, guidance: float = 1.0, generator=None, eta: float = 0.0,
            words=None, words_mask=None):
        """DDIM from the starting latent `x` (B, MAX_OPS, d) -> (x0, logits of the last step); with
        gradients where the caller allows them (the crucible's policy is this map, noise given)."""
        if not 1 <= steps <= self.T:
            raise ValueError(f"steps must be in 1..{self.T}, got {steps}")
        B = cond.shape[0]
        ts = torch.linspace(self.T - 1, 0, steps, device=cond.device).round().long()
        null = self.null.expand_as(cond)
        logits = None
        for i, t in enumerate(ts):
            tt = t.expand(B)
            logits = self(x, tt, cond, words, words_mask)
            if guidance != 1.0:
                uncond = self(x, tt, null)  # no words either
                logits = uncond + guidance * (logits - uncond)
            x0 = self.x0_from_logits(logits)
            if i + 1 == len(ts):
                return x0, logits
            ab, ab_prev = self.alphas_bar[t], self.alphas_bar[ts[i + 1]]
            eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
            sigma = eta * ((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)).clamp(min=0).sqrt()
            noise = torch.randn(x.shape, generator=generator, device=x.device) if eta > 0 else 0.0
            x = ab_prev.sqrt() * x0 + (1 - ab_prev - sigma ** 2).clamp(min=0).sqrt() * eps + sigma * noise
        return self.x0_from_logits(logits), logits


class WordsBlock(nn.Module):
    """Pre-norm transformer block: self-attention over the slots, cross-attention from the slots
    to the intent's words (keys and values given), then an MLP. `dropout` on each branch's
    output before it joins the residual stream (training only)."""

    def __init__(self, width: int, heads: int, dropout: float = 0.0):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2, self.ln3 = nn.LayerNorm(width), nn.LayerNorm(width), nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.q, self.o = nn.Linear(width, width), nn.Linear(width, width)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
        self.drop = nn.Dropout(dropout)

    def forward(self, h, k, v, bias):
        x = self.ln1(h)
        h = h + self.drop(self.attn(x, x, x, need_weights=False)[0])
        B, S, W = h.shape
        q = self.q(self.ln2(h)).view(B, S, self.heads, -1).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        h = h + self.drop(self.o(a.transpose(1, 2).reshape(B, S, W)))
        return h + self.drop(self.mlp(self.ln3(h)))


class CoherenceScorer(nn.Module):
    """(intent condition, program tokens) -> logit that the program is a valid tool for the intent."""

    def __init__(self, cond_dim: int = 384 + MAX_ARITY, d: int = 48, width: int = 128):
        super().__init__()
        self.table = nn.Embedding(len(VOCAB), d)
        self.pos = nn.Parameter(torch.randn(MAX_OPS, d) * 0.02)
        self.seq = nn.GRU(d, width, batch_first=True, bidirectional=True)
        self.cond = nn.Sequential(nn.Linear(cond_dim, 2 * width), nn.GELU())
        self.head = nn.Sequential(nn.Linear(6 * width, 256), nn.GELU(), nn.Linear(256, 1))

    def forward(self, cond, tok):
        h, _ = self.seq(self.table(tok) + self.pos)
        p = h.mean(dim=1)
        c = self.cond(cond)
        return self.head(torch.cat([p, c, p * c], dim=-1)).squeeze(-1)


def pad_words(words: list, device="cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Per-text word vectors (L_i, dim) -> (B, max L, dim) float32 and the mask of real words."""
    if not len(words):
        raise ValueError("pad_words needs at least one text")
    n = max(1, max(len(w) for w in words))
    dim = words[0].shape[-1]
    out = torch.zeros(len(words), n, dim)
    mask = torch.zeros(len(words), n, dtype=torch.bool)
    for i, w in enumerate(words):
        if len(w):
            out[i, :len(w)] = torch.tensor(w, dtype=torch.float32)  # a copy: w may be read-only (Ray)
            mask[i, :len(w)] = True
    return out.to(device), mask.to(device)
