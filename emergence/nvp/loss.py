"""The thermodynamic loss L = L_data + lambda1 L_conservation + lambda2 L_entropy_smooth.

All terms are computed in the dimensionless units of the model (the change divided by the
per-sample change scale s), so each sample weighs the same whatever its energy scale.

- L_data: (beta-weighted) Gaussian negative log-likelihood of the true change under (mu, logvar). The variance is
  trained by it, so the predicted std means something (checked by the evaluator's coverage).
- L_conservation: squared error of the predicted total change, sum(dE_pred) vs sum(dE_true), per
  pixel. Where the data conserve energy sum(dE_true) = 0 and this is a conservation penalty; where
  they do not (reaction-diffusion), it teaches the energy budget instead of forcing a false law.
- L_entropy_smooth: the entropy of the normalised map should evolve smoothly: the squared second
  difference H(E_pred) - 2 H(E_t) + H(E_{t-1}) relative to the last entropy change. With history 1
  (no E_{t-1}) it becomes a second-law hinge: entropy of the prediction below that of E_t.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

BETA = 0.5
ENTROPY_FLOOR = 1e-4  # nats

DEFAULT_WEIGHTS = {"conservation": 0.1, "entropy_smooth": 0.05}


def map_entropy(e: jnp.ndarray) -> jnp.ndarray:
    """Shannon entropy (nats) of each (..., H, W) map normalised to a distribution; negative
    entries (a raw prediction can dip below 0) are clipped out, as atlas.entropy would see them."""
    p = jnp.maximum(e, 0.0).reshape(*e.shape[:-2], -1)
    p = p / (jnp.sum(p, axis=-1, keepdims=True) + 1e-30)
    return -jnp.sum(jnp.where(p > 0, p * jnp.log(jnp.where(p > 0, p, 1.0)), 0.0), axis=-1)


def nvp_loss(mu, logvar, window, target, s, weights=None, noisy=None):
    """mu, logvar (B, H, W) from the model; window (B, history, H, W); target E_{t+1} (B, H, W);
    s (B,) the change scale; noisy (B,) optional, 1 where the input window was noised on purpose:
    the variance is not fitted there (it would learn the noisy input's error, not the model's).
    Returns (total, parts)."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    e_t = window[:, -1]
    ss = s[:, None, None]
    y = (target - e_t) / ss

    # beta-NLL (Seitzer et al., 2022, beta = 0.5): each pixel's NLL is weighted by stop_grad(var^beta),
    # which keeps low-variance pixels from dominating the mean's gradient early in training; for a
    # fixed mean the optimal variance is unchanged, so the std stays a calibrated quantity.
    if noisy is not None:
        logvar = jnp.where(noisy[:, None, None] > 0, jax.lax.stop_gradient(logvar), logvar)
    nll = 0.5 * (logvar + (y - mu) ** 2 * jnp.exp(-logvar))
    l_data = jnp.mean(jax.lax.stop_gradient(jnp.exp(BETA * logvar)) * nll)

    l_cons = jnp.mean((jnp.mean(mu, axis=(-2, -1)) - jnp.mean(y, axis=(-2, -1))) ** 2)

    pred = e_t + mu * ss
    h_pred, h_t = map_entropy(pred), map_entropy(e_t)
    if window.shape[1] >= 2:
        h_prev = map_entropy(window[:, -2])
        second = h_pred - 2.0 * h_t + h_prev
        # relative to the last entropy change, floored at 1e-4 nats (float32 resolution of H ~ 8):
        # a batch whose entropy hardly moves must not blow the term up
        l_ent = jnp.mean(second**2) / (jnp.mean((h_t - h_prev) ** 2) + ENTROPY_FLOOR**2)
    else:
        l_ent = jnp.mean(jnp.maximum(h_t - h_pred, 0.0) ** 2) / ENTROPY_FLOOR**2

    total = l_data + w["conservation"] * l_cons + w["entropy_smooth"] * l_ent
    mse = jnp.mean((y - mu) ** 2)
    # plain Gaussian NLL alongside: the beta-weighted term's value rises as the variance shrinks
    # (its weights shrink with it), so it does not compare fits; the NLL does
    return total, {"loss": total, "data": l_data, "conservation": l_cons, "entropy_smooth": l_ent, "mse": mse,
                   "nll": jnp.mean(nll)}
