"""NVP metrics tell persistence, a perfect model and a calibrated one apart."""

from __future__ import annotations

import numpy as np
import pytest

from emergence.nvp import metrics as m
from emergence.nvp.synthetic import generate


@pytest.fixture(scope="module")
def seq():
    e = generate("heat", 4, 6, shape=(64, 64), seed=3).astype(np.float64)
    return e[:, 3], e[:, 4], e[:, 2]  # prev, true, prev2


def test_persistence_scores_zero_and_perfect_scores_one(seq):
    prev, true, _ = seq
    p = m.evaluate(m.persistence(prev), true, prev)
    assert p["skill"] == pytest.approx(0.0) and p["change_fidelity"] == pytest.approx(0.0)
    assert p["entropy_coherence"] == pytest.approx(0.0)
    perfect = m.evaluate(true, true, prev)
    assert perfect["skill"] == 1.0 and perfect["change_fidelity"] == 1.0 and perfect["rmse"] == 0.0
    assert perfect["gradient_alignment"] == pytest.approx(1.0)
    assert perfect["entropy_coherence"] == pytest.approx(1.0) and perfect["entropy_violation_rate"] == 0.0


def test_halfway_prediction_scores_in_between(seq):
    prev, true, _ = seq
    half = prev + 0.5 * (true - prev)
    r = m.evaluate(half, true, prev)
    assert r["skill"] == pytest.approx(0.5) and r["change_fidelity"] == pytest.approx(0.5)


def test_linear_extrapolation_is_exact_on_linear_sequences():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 2, (3, 64, 64)), rng.uniform(0, 0.1, (3, 64, 64))
    assert m.rmse(m.linear_extrapolation(a, a + b), a + 2 * b) == pytest.approx(0.0, abs=1e-12)


def test_coverage_of_a_calibrated_gaussian_is_95_percent():
    rng = np.random.default_rng(1)
    mean = rng.uniform(1, 2, (8, 64, 64))
    std = np.full_like(mean, 0.1)
    true = mean + std * rng.standard_normal(mean.shape)
    assert m.coverage(mean, std, true) == pytest.approx(0.95, abs=0.01)
    assert m.coverage(mean, std / 4, true) < 0.5  # overconfident heads are caught
    with pytest.raises(ValueError, match="std"):
        m.coverage(mean, -std, true)


def test_sharpening_the_field_is_an_entropy_violation(seq):
    prev, true, _ = seq
    sharpened = prev ** 3  # concentrates energy: entropy drops while diffusion raises it
    assert m.entropy_violation_rate(sharpened, true, prev) == 1.0
    assert m.entropy_violation_rate(true, true, prev) == 0.0


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\(B, H, W\)"):
        m.rmse(np.zeros((64, 64)), np.zeros((64, 64)))


def test_change_fidelity_weighs_every_snapshot_the_same():
    """Pooled, the ratio would equal skill; per field, a quiet snapshot predicted badly counts
    as much as an active one predicted perfectly."""
    rng = np.random.default_rng(3)
    prev = rng.uniform(1, 2, (2, 64, 64))
    change = np.stack([rng.normal(0, 1.0, (64, 64)), rng.normal(0, 0.01, (64, 64))])  # active, quiet
    true = prev + change
    pred = true.copy()
    pred[1] = prev[1]  # the quiet snapshot: persistence
    assert m.change_fidelity(pred, true, prev) == pytest.approx(0.5)
    assert m.skill(pred, true, prev) > 0.99  # pooled RMSE barely sees the quiet snapshot
