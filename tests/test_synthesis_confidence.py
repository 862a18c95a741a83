"""The answer's confidence model: features, the logistic fit, and what it is fitted on."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from emergence.synthesis import confidence as conf


def cand(ops, coherence=0.9, alignment=0.5, votes=8, rank_score=3.0):
    return SimpleNamespace(ops=ops, coherence=coherence, alignment=alignment, votes=votes, rank_score=rank_score)


def test_features_of_the_answer():
    best, same, other = cand(["REDUCE.sum"]), cand(["REDUCE.sum"], rank_score=2.9), cand(["REDUCE.max"], rank_score=1.0)
    f = conf.features([best, same, other], n_samples=16)
    assert f[0] == pytest.approx(math.log(0.9 / 0.1)) and f[1] == 0.5
    assert f[2] == pytest.approx(math.log(8 / 16))
    assert f[3] == pytest.approx(2.0)  # the lead over the next *different* program, not over another reading
    assert conf.features([best], 16)[3] == conf.MARGIN_CAP  # alone: a capped lead
    assert conf.features([], 16) is None
    assert math.isfinite(conf.features([cand(["X"], coherence=1.0)], 16)[0])  # clipped, never infinite


def test_logistic_fit_separates_and_is_calibrated_on_its_own_data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    logit = 2.0 * x[:, 2] - 1.0 * x[:, 3] + 0.5
    y = rng.random(400) < 1 / (1 + np.exp(-logit))
    m = conf.fit_logistic(x, y)
    assert m["features"] == list(conf.FEATURES)
    p = np.array([conf.probability(m, row) for row in x.tolist()])
    assert abs(p.mean() - y.mean()) < 0.02  # a logistic fit's mean prediction matches the base rate
    assert m["coef"][2] > 1.0 and m["coef"][3] < -0.4  # the informative directions, with their signs
    assert conf.roc_auc(p, y) > 0.8


def test_logistic_fit_stays_finite_when_classes_separate():
    x = np.array([[0.0], [1.0], [2.0], [3.0]])
    m = conf.fit_logistic(x, [0, 0, 1, 1])
    assert all(math.isfinite(v) for v in m["coef"] + [m["bias"]])
    assert conf.probability(m, [3.0]) > 0.5 > conf.probability(m, [0.0])
    with pytest.raises(ValueError, match="feature matrix"):
        conf.fit_logistic(np.zeros((3, 2)), [1, 0])


def test_roc_auc():
    assert conf.roc_auc([0.9, 0.8, 0.1], [1, 1, 0]) == 1.0
    assert conf.roc_auc([0.5, 0.5], [1, 0]) == 0.5
    assert conf.roc_auc([0.1, 0.9], [1, 0]) == 0.0
    assert conf.roc_auc([0.3], [1]) is None  # one class: undefined, not a number made up


def test_fit_confidence_reports_held_out_figures():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4))
    y = (x[:, 0] + 0.3 * rng.normal(size=200)) > 0
    out = conf.fit_confidence(x, y)
    assert out["records"] == 200 and out["model"] is not None
    assert out["held_out_auc"] > 0.85 and out["coherence_auc"] > 0.85  # here feature 0 carries the signal
    assert out["share_right"] == pytest.approx(y.mean())
    assert conf.fit_confidence(x[:5], [True] * 5)["model"] is None  # one class: nothing to fit
