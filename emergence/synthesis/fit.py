"""Training the engine's three networks, and the figures that say whether they learned.

`fit()` runs three phases -- contrastive action encoder, diffusion denoiser over the encoder's
(then frozen) latents, coherence scorer -- epoch by epoch. It is plain PyTorch: Ray Train's
`training/emergence.py` calls it on every worker with its rank (each rank takes its share of
every batch) and a `wrap` that makes the modules DistributedDataParallel; `report` gets each
epoch's metrics and a state dict that `resume=` accepts to continue where a run stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import random
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..progress import EpochProgress
from .decode import sequence_type
from .models import (MAX_OPS, VOCAB, ActionEncoder, CoherenceScorer, Denoiser, condition, contrastive_loss, pad_words,
                     tokens)

TEXT_DIM = 384  # the intent encoders' vector size

PHASES = ("contrastive", "diffusion", "swa", "scorer")


@dataclass
class FitConfig:
    d: int = 32
    width: int = 192
    layers: int = 3
    T: int = 200
    batch: int = 256
    lr: float = 2e-3
    epochs_contrastive: int = 8
    epochs_diffusion: int = 40
    epochs_scorer: int = 6
    # stochastic weight averaging of the denoiser (Izmailov et al., 2018): after its cosine schedule,
    # this many more epochs at the constant rate `swa_lr`, the weights averaged over their ends
    epochs_swa: int = 0
    swa_lr: float = 2e-4
    cond_drop: float = 0.1  # classifier-free guidance: train unconditionally this often
    mse_weight: float = 1.0  # MSE of the predicted x0 next to the slots' cross-entropy
    sample_steps: int = 10
    words: bool = False  # the denoiser also attends to the intent's word vectors (TrainData.words)
    word_drop: float = 0.0  # in diffusion training, each word is hidden from the denoiser this often
    dropout: float = 0.0  # the denoiser's residual dropout (its blocks' branches), training only
    seed: int = 0

    def check(self) -> "FitConfig":
        for name in ("d", "width", "layers", "T", "batch", "sample_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        for name in ("epochs_contrastive", "epochs_diffusion", "epochs_swa", "epochs_scorer"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be ≥ 0, got {getattr(self, name)}")
        if self.sample_steps > self.T:
            raise ValueError(f"sample_steps ({self.sample_steps}) must be ≤ T ({self.T}), the training schedule's steps")
        if self.width % 4:
            raise ValueError(f"width must be a multiple of 4 (the denoiser's attention heads), got {self.width}")
        for name in ("lr", "swa_lr"):
            if not 0 < getattr(self, name) < 1:
                raise ValueError(f"{name} must be in (0, 1), got {getattr(self, name)}")
        for name in ("cond_drop", "word_drop", "dropout"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        return self


@dataclass
class TrainData:
    """Arrays over corpus records: intent embeddings, arities, program tokens, program ids, and
    (for a denoiser that attends to words) each description's word vectors."""
    emb: np.ndarray
    arity: np.ndarray
    tok: np.ndarray
    pid: np.ndarray
    is_val: np.ndarray
    words: np.ndarray | None = None  # object array of (L_i, dim) float16 arrays

    @classmethod
    def from_records(cls, records, emb: np.ndarray, words: list | None = None) -> "TrainData":
        if len(records) != len(emb):
            raise ValueError(f"{len(records)} records but {len(emb)} embeddings")
        if words is not None and len(words) != len(records):
            raise ValueError(f"{len(records)} records but {len(words)} word-vector lists")
        if any(r.split not in ("train", "val") for r in records):
            raise ValueError("only 'train' and 'val' records are training data (calibration wordings fit the "
                             "ranking alone)")
        ids: dict = {}
        pid = np.array([ids.setdefault((r.start, tuple(r.ops)), len(ids)) for r in records])
        if words is not None:
            arr = np.empty(len(words), dtype=object)
            arr[:] = [np.asarray(w, np.float16) for w in words]
            words = arr
        return cls(np.asarray(emb, np.float32), np.array([r.arity for r in records]),
                   np.array([tokens(r.ops) for r in records]), pid,
                   np.array([r.split == "val" for r in records]), words)

    def part(self, val: bool) -> "TrainData":
        m = self.is_val == val
        return TrainData(self.emb[m], self.arity[m], self.tok[m], self.pid[m], self.is_val[m],
                         None if self.words is None else self.words[m])

    def __len__(self):
        return len(self.emb)


def unwrap(m):
    return getattr(m, "module", m)


def _batches(n: int, batch: int, rng: np.random.Generator, rank: int, world: int):
    """Shuffled batches; each rank takes its own slice of every batch (same count on every rank)."""
    order = rng.permutation(n)
    for i in range(0, n - batch + 1 if n >= batch else 1, batch):
        idx = order[i:i + batch]
        yield idx[rank::world]


def _cond(data: TrainData, idx, device="cpu") -> torch.Tensor:
    return condition(torch.from_numpy(data.emb[idx]), torch.from_numpy(data.arity[idx])).to(device)


def _words(data: TrainData, idx, device="cpu") -> tuple:
    """(word vectors, mask) for these records, or (None, None) when the data has none."""
    if data.words is None:
        return None, None
    return pad_words(list(data.words[idx]), device)


def _long(a, device="cpu") -> torch.Tensor:
    return torch.from_numpy(np.asarray(a)).long().to(device)


# -- negatives for the coherence scorer -----------------------------------------------------

def negatives(ops: list[str], rng: random.Random, pool: list[list[str]]) -> list[tuple[list[str], str]]:
    """Three programs that are not this one: a near miss (one operation swapped, still typing),
    an edit (one dropped or inserted, still typing) and an easy one (another corpus program, or an
    ill-typed jumble). Each tagged with its kind."""
    ops_names = VOCAB[1:]
    out = []
    for _ in range(20):
        i = rng.randrange(len(ops))
        cand = ops[:i] + [rng.choice(ops_names)] + ops[i + 1:]
        if cand != ops and sequence_type(cand):
            out.append((cand, "near"))
            break
    for _ in range(20):
        if len(ops) > 1 and rng.random() < 0.5:
            i = rng.randrange(len(ops))
            cand = ops[:i] + ops[i + 1:]
        elif len(ops) < MAX_OPS:
            i = rng.randrange(len(ops) + 1)
            cand = ops[:i] + [rng.choice(ops_names)] + ops[i:]
        else:
            continue
        if cand != ops and sequence_type(cand):
            out.append((cand, "edit"))
            break
    if rng.random() < 0.5:
        cand = rng.choice(pool)
        if cand != ops:
            out.append((cand, "other"))
    else:
        while True:
            cand = [rng.choice(ops_names) for _ in range(rng.randint(1, MAX_OPS))]
            if not sequence_type(cand):
                out.append((cand, "invalid"))
                break
    return out


def scorer_pairs(data: TrainData, seed: int):
    """(record index, tokens, label, kind) for every positive and its negatives."""
    rng = random.Random(seed)
    progs = [[VOCAB[t] for t in row if t] for row in data.tok]
    uniq = list({tuple(p): p for p in progs}.values())
    idx, tok, label, kind = [], [], [], []
    for i, p in enumerate(progs):
        idx.append(i), tok.append(data.tok[i]), label.append(1.0), kind.append("positive")
        for cand, k in negatives(p, rng, uniq):
            idx.append(i), tok.append(tokens(cand)), label.append(0.0), kind.append(k)
    return np.array(idx), np.array(tok), np.array(label, np.float32), np.array(kind)


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability a random positive outscores a random negative (ties count half)."""
    from scipy.stats import rankdata
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("ROC-AUC needs positives and negatives")
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


# -- evaluation figures -----------------------------------------------------------------------

@torch.no_grad()
def contrastive_accuracy(enc: ActionEncoder, data: TrainData, batch: int = 256, seed: int = 0, device="cpu") -> dict:
    """Text -> program top-1 accuracy: within batches of `batch` (the usual contrastive figure),
    and against every distinct program of the split."""
    enc.eval()
    tz = enc.encode_texts(torch.from_numpy(data.emb).to(device)).cpu()
    uniq, inverse = np.unique(data.pid, return_inverse=True)
    first = np.array([np.flatnonzero(data.pid == u)[0] for u in uniq])
    pz = enc.encode_programs(_long(data.tok[first], device)).cpu()
    full = float(((tz @ pz.T).argmax(1).numpy() == inverse).mean())
    rng = np.random.default_rng(seed)
    hits = total = 0
    for idx in _batches(len(data), batch, rng, 0, 1):
        sims = tz[idx] @ enc.encode_programs(_long(data.tok[idx], device)).cpu().T
        pred = sims.argmax(1).numpy()
        hits += int((data.pid[idx][pred] == data.pid[idx]).sum())
        total += len(idx)
    return {"in_batch_accuracy": hits / max(total, 1), "all_programs_accuracy": full}


@torch.no_grad()
def denoising_figures(den: Denoiser, table: torch.Tensor, data: TrainData, steps: int, limit: int = 2000,
                      seed: int = 0, device="cpu") -> dict:
    """On data with unit variance per element:
    - `denoising_mse`: the DDPM objective on held-out data -- per-element MSE of the predicted x0
      from x_t, t drawn uniformly from the schedule (`mse_at_half_T`: at t = T/2 only);
    - `sample_mse`: per-element MSE between DDIM samples drawn from pure noise (conditioned on the
      intent) and the described program's latents -- a generation figure, not a denoising one: a
      description that fits several programs counts any other one as error;
    - `exact_program`: how often rounding each sampled slot gives back the described program."""
    den.eval()
    idx = np.arange(min(limit, len(data)))
    g = torch.Generator(device=device).manual_seed(seed)
    words, mask = _words(data, idx, device)
    x0, logits = den.sample(_cond(data, idx, device), steps=steps, generator=g, words=words, words_mask=mask)
    true = table[_long(data.tok[idx], device)]
    mse = float(((x0 - true) ** 2).mean())
    exact = float((logits.argmax(-1).cpu().numpy() == data.tok[idx]).all(1).mean())
    t = torch.full((len(idx),), den.T // 2, device=device)
    noise = torch.randn(true.shape, generator=g, device=device)
    half = den.x0_from_logits(den(den.noised(true, t, noise), t, _cond(data, idx, device), words, mask))
    t = torch.randint(0, den.T, (len(idx),), generator=g, device=device)
    noise = torch.randn(true.shape, generator=g, device=device)
    pred = den.x0_from_logits(den(den.noised(true, t, noise), t, _cond(data, idx, device), words, mask))
    return {"denoising_mse": float(((pred - true) ** 2).mean()), "sample_mse": mse, "exact_program": exact,
            "mse_at_half_T": float(((half - true) ** 2).mean())}


@torch.no_grad()
def denoising_mse(den: Denoiser, table: torch.Tensor, data: TrainData, draws: int = 8, seed: int = 0,
                  batch: int = 512, device="cpu") -> dict:
    """The DDPM objective over *all* of `data` (held-out programs), `draws` times with fresh t
    ~ U[0, T) and noise: {"mean", "sd" (between draws), "draws", "records", "by_t"}. Records are
    ordered by program length, so a prefix (`denoising_figures`' first 2000) leaves out the longest
    programs and reads low; this is the estimate the benchmark's target uses."""
    den.eval()
    g = torch.Generator(device=device).manual_seed(seed)
    bands = [(0, den.T // 2), (den.T // 2, 3 * den.T // 4), (3 * den.T // 4, 9 * den.T // 10), (9 * den.T // 10, den.T)]
    per_draw, band_sum, band_n = [], np.zeros(len(bands)), np.zeros(len(bands))
    for _ in range(draws):
        total = 0.0
        for start in range(0, len(data), batch):
            idx = np.arange(start, min(start + batch, len(data)))
            true = table[_long(data.tok[idx], device)]
            t = torch.randint(0, den.T, (len(idx),), generator=g, device=device)
            noise = torch.randn(true.shape, generator=g, device=device)
            words, mask = _words(data, idx, device)
            pred = den.x0_from_logits(den(den.noised(true, t, noise), t, _cond(data, idx, device), words, mask))
            err = ((pred - true) ** 2).mean(dim=(1, 2))
            total += float(err.sum())
            for b, (lo, hi) in enumerate(bands):
                sel = (t >= lo) & (t < hi)
                band_sum[b] += float(err[sel].sum())
                band_n[b] += int(sel.sum())
        per_draw.append(total / len(data))
    return {"mean": float(np.mean(per_draw)), "sd": float(np.std(per_draw)), "draws": draws, "records": len(data),
            "by_t": {f"[{lo}, {hi})": float(band_sum[b] / max(1, band_n[b])) for b, (lo, hi) in enumerate(bands)}}


@torch.no_grad()
def scorer_figures(scorer: CoherenceScorer, data: TrainData, seed: int = 1, device="cpu") -> dict:
    scorer.eval()
    idx, tok, label, kind = scorer_pairs(data, seed)
    s = scorer(_cond(data, idx, device), _long(tok, device)).cpu().numpy()
    out = {"roc_auc": roc_auc(s, label)}
    for k in ("near", "edit", "other", "invalid"):
        m = (kind == "positive") | (kind == k)
        if (kind == k).any():
            out[f"roc_auc_{k}"] = roc_auc(s[m], label[m])
    return out


# -- training ---------------------------------------------------------------------------------

@dataclass
class Bundle:
    encoder: ActionEncoder
    denoiser: Denoiser
    scorer: CoherenceScorer
    config: FitConfig

    def to(self, device) -> "Bundle":
        for m in (self.encoder, self.denoiser, self.scorer):
            m.to(device)
        return self

    def state(self) -> dict:
        return {"encoder": self.encoder.state_dict(), "denoiser": self.denoiser.state_dict(),
                "scorer": self.scorer.state_dict(), "config": asdict(self.config), "vocab": VOCAB}

    @classmethod
    def from_state(cls, state: dict) -> "Bundle":
        if state.get("vocab") != VOCAB:
            raise ValueError("checkpoint was trained on a different set of operations; retrain it")
        cfg = FitConfig(**{"words": False, **state["config"]})  # models from before word attention
        b = cls.new(cfg)
        b.encoder.load_state_dict(state["encoder"])
        b.denoiser.load_state_dict(state["denoiser"])
        b.scorer.load_state_dict(state["scorer"])
        for m in (b.encoder, b.denoiser, b.scorer):
            m.eval()
        return b

    @classmethod
    def new(cls, cfg: FitConfig) -> "Bundle":
        torch.manual_seed(cfg.seed)
        return cls(ActionEncoder(d=cfg.d), Denoiser(d=cfg.d, width=cfg.width, layers=cfg.layers, T=cfg.T,
                                                    words_dim=TEXT_DIM if cfg.words else 0, dropout=cfg.dropout),
                   CoherenceScorer(), cfg)


def fit(data: TrainData, cfg: FitConfig, *, rank: int = 0, world: int = 1, wrap=lambda m: m, report=None,
        resume: dict | None = None, log=print, device: str = "cpu") -> Bundle:
    """Train all three phases. `report(phase, epoch, metrics, state)` after every epoch (state
    is what `resume` takes); `resume` skips finished epochs."""
    cfg.check()
    bundle = Bundle.from_state(resume["bundle"]) if resume else Bundle.new(cfg)
    bundle.to(device)
    done = (resume or {}).get("done", {})  # phase -> epochs finished
    train, val = data.part(False), data.part(True)
    if len(train) == 0 or len(val) == 0:
        raise ValueError("need both training and validation records")
    if cfg.words and data.words is None:
        raise ValueError("this config's denoiser attends to word vectors: build the TrainData with words= "
                         "(the encoder's encode_words)")
    if not cfg.words:
        # no batch pads word vectors the model does not read
        train, val = dataclasses.replace(train, words=None), dataclasses.replace(val, words=None)
    rng = np.random.default_rng(cfg.seed + 1000 * sum(done.values()))

    def after(phase, epoch, metrics, opt, sched=None, **extra):
        done[phase] = epoch + 1
        if report:  # copies: the caller may keep the state while training goes on
            state = {"bundle": bundle.state(), "done": dict(done), "phase": phase, "optimizer": opt.state_dict(),
                     "scheduler": sched.state_dict() if sched else None, **extra}
            report(phase, epoch, metrics, copy.deepcopy(state))

    def restore(phase, opt, sched=None):
        """Continue a phase stopped midway with its optimizer (and schedule) as they were."""
        if resume and resume.get("phase") == phase and resume.get("optimizer"):
            opt.load_state_dict(resume["optimizer"])
            if sched is not None and resume.get("scheduler"):
                sched.load_state_dict(resume["scheduler"])

    # 1. contrastive: intents and programs into one space; the op table becomes the latent space
    enc = wrap(bundle.encoder.train())
    opt = torch.optim.AdamW(enc.parameters(), lr=cfg.lr)
    restore("contrastive", opt)
    progress = EpochProgress("contrastive", cfg.epochs_contrastive, done.get("contrastive", 0))
    for epoch in range(done.get("contrastive", 0), cfg.epochs_contrastive):
        enc.train()
        losses = []
        for idx in _batches(len(train), cfg.batch, rng, rank, world):
            tz, pz, scale = enc(torch.from_numpy(train.emb[idx]).to(device), _long(train.tok[idx], device))
            loss = contrastive_loss(tz, pz, scale, _long(train.pid[idx], device))
            opt.zero_grad(), loss.backward(), opt.step()
            losses.append(loss.item())
        m = {"loss": float(np.mean(losses)), **contrastive_accuracy(bundle.encoder, val, device=device)}
        log(progress.line(epoch + 1, _shown(m, "loss", "all_programs_accuracy")))
        after("contrastive", epoch, m, opt)

    # 2. diffusion over the frozen latent table
    table = bundle.encoder.latent_table().detach()
    bundle.denoiser.set_table(table)
    den = wrap(bundle.denoiser.train())
    opt = torch.optim.AdamW(den.parameters(), lr=cfg.lr * 0.5)
    steps_per_epoch = max(1, len(train) // cfg.batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, cfg.epochs_diffusion * steps_per_epoch))
    restore("diffusion", opt, sched)
    core = bundle.denoiser

    def diffusion_epoch(opt, sched=None) -> float:
        den.train()
        losses = []
        for idx in _batches(len(train), cfg.batch, rng, rank, world):
            tok = _long(train.tok[idx], device)
            x0 = table[tok]
            t = torch.randint(0, core.T, (len(idx),), device=device)
            xt = core.noised(x0, t, torch.randn_like(x0))
            cond = _cond(train, idx, device)
            drop = torch.rand(len(idx), device=device) < cfg.cond_drop
            cond = torch.where(drop[:, None], core.null.expand_as(cond), cond)
            words, mask = _words(train, idx, device)
            if mask is not None:  # a dropped intent loses its words too
                mask = mask & ~drop[:, None]
                if cfg.word_drop:  # and any word may be missing: no one word is indispensable
                    mask = mask & (torch.rand(mask.shape, device=device) >= cfg.word_drop)
            logits = den(xt, t, cond, words, mask)
            loss = F.cross_entropy(logits.reshape(-1, len(VOCAB)), tok.reshape(-1)) + \
                cfg.mse_weight * F.mse_loss(core.x0_from_logits(logits), x0)
            opt.zero_grad(), loss.backward()
            torch.nn.utils.clip_grad_norm_(den.parameters(), 1.0)
            opt.step()
            if sched is not None:
                sched.step()
            losses.append(loss.item())
        return float(np.mean(losses))

    progress = EpochProgress("diffusion", cfg.epochs_diffusion, done.get("diffusion", 0))
    for epoch in range(done.get("diffusion", 0), cfg.epochs_diffusion):
        m = {"loss": diffusion_epoch(opt, sched)}
        if (epoch + 1) % 5 == 0 or epoch + 1 == cfg.epochs_diffusion:
            m.update(denoising_figures(core, table, val, cfg.sample_steps, limit=1000, device=device))
        log(progress.line(epoch + 1, _shown(m, "loss", "exact_program", "denoising_mse")))
        after("diffusion", epoch, m, opt, sched)

    # 2b. weight averaging: the denoiser trained on at a constant rate, its weights averaged after
    # every epoch; at the end the average is the denoiser. The average travels in the checkpoint.
    if done.get("swa", 0) < cfg.epochs_swa:
        opt = torch.optim.AdamW(den.parameters(), lr=cfg.swa_lr)
        restore("swa", opt)
        averaged = torch.optim.swa_utils.AveragedModel(core)
        if resume and resume.get("swa_average"):
            averaged.load_state_dict(resume["swa_average"])
        progress = EpochProgress("swa", cfg.epochs_swa, done.get("swa", 0))
        for epoch in range(done.get("swa", 0), cfg.epochs_swa):
            loss = diffusion_epoch(opt)
            averaged.update_parameters(core)
            if epoch + 1 == cfg.epochs_swa:
                core.load_state_dict(averaged.module.state_dict())
            m = {"loss": loss, **denoising_figures(averaged.module, table, val, cfg.sample_steps, limit=1000,
                                                   device=device)}
            log(progress.line(epoch + 1, _shown(m, "loss", "exact_program", "denoising_mse")))
            after("swa", epoch, m, opt, swa_average=averaged.state_dict())

    # 3. coherence scorer: true pairs against near misses, edits, other programs, ill-typed ones
    sc = wrap(bundle.scorer.train())
    opt = torch.optim.AdamW(sc.parameters(), lr=cfg.lr)
    restore("scorer", opt)
    progress = EpochProgress("scorer", cfg.epochs_scorer, done.get("scorer", 0))
    for epoch in range(done.get("scorer", 0), cfg.epochs_scorer):
        sc.train()
        ridx, tok, label, _ = scorer_pairs(train, cfg.seed + epoch)  # fresh negatives every epoch
        losses = []
        for b in _batches(len(ridx), cfg.batch, rng, rank, world):
            logit = sc(_cond(train, ridx[b], device), _long(tok[b], device))
            loss = F.binary_cross_entropy_with_logits(logit, torch.from_numpy(label[b]).to(device))
            opt.zero_grad(), loss.backward(), opt.step()
            losses.append(loss.item())
        m = {"loss": float(np.mean(losses)), **scorer_figures(bundle.scorer, val, device=device)}
        log(progress.line(epoch + 1, _shown(m, "loss", "roc_auc")))
        after("scorer", epoch, m, opt)

    for mod in (bundle.encoder, bundle.denoiser, bundle.scorer):
        mod.eval()
    return bundle.to("cpu")


def _shown(metrics: dict, *keys: str) -> dict:
    """The few figures an epoch's console line shows (every figure goes to the run's report)."""
    return {k: metrics[k] for k in keys if k in metrics}


def figures(bundle: Bundle, data: TrainData) -> dict:
    """The validation figures of a trained bundle (the benchmark reports these)."""
    if bundle.config.words and data.words is None:
        raise ValueError("this model attends to word vectors: the TrainData needs words=")
    val = data.part(True)
    table = bundle.encoder.latent_table().detach()
    return {"contrastive": contrastive_accuracy(bundle.encoder, val),
            "denoising": denoising_figures(bundle.denoiser, table, val, bundle.config.sample_steps),
            "scorer": scorer_figures(bundle.scorer, val)}

