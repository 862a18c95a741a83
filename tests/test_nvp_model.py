"""NVP model, loss, training step, persistence, evaluator, thermodynamic limits and prediction log."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from emergence.nvp import metrics as M
from emergence.nvp.atlas import Domain, entropy
from emergence.nvp.evaluate import evaluate_domain, table
from emergence.nvp.loss import map_entropy, nvp_loss
from emergence.nvp.model import NVPConfig, NVPNet, check_window, features
from emergence.nvp.synthetic import generate
from emergence.nvp.thermo import ThermodynamicViolation, check_field, thermo_compile
from emergence.nvp.train import (
    NVPModel, calibrate_std, create_state, default_weights, make_samples, predict_samples, split_by_sequence,
    train_step,
)
from emergence.nvp.vector_log import log_energy_vector, read_energy_vectors, to_parquet

SMALL = NVPConfig(history=2, widths=(4, 8), latent=16, embed=4)


@pytest.fixture(scope="module")
def heat():
    return Domain("heat", generate("heat", 3, 6, (64, 64), seed=1), 1.0, 1.0)


@pytest.fixture(scope="module")
def small_model():
    params = NVPNet(SMALL).init(jax.random.key(0), jnp.ones((1, 2, 8, 8)), jnp.zeros((1,), jnp.int32),
                                jnp.zeros((1,)), jnp.zeros((1,)))["params"]
    return NVPModel(SMALL, params)


def test_config_validates_and_round_trips():
    with pytest.raises(ValueError, match="history"):
        NVPConfig(history=0)
    with pytest.raises(ValueError, match="widths"):
        NVPConfig(widths=())
    cfg = NVPConfig(history=3, widths=(4, 8, 16))
    assert NVPConfig.from_json(cfg.to_json()) == cfg
    assert cfg.multiple == 4
    assert cfg.domain_id("heat") == 1 and cfg.domain_id("mars") == 0 and cfg.domain_id(None) == 0


def test_features_are_dimensionless():
    w = jnp.asarray(generate("reaction", 2, 3, (64, 64), seed=0)[:, 1:])
    f1, m1, s1 = features(w)
    f2, m2, s2 = features(7.5 * w)
    np.testing.assert_allclose(np.asarray(f1), np.asarray(f2), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(m2), 7.5 * np.asarray(m1), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(s2), 7.5 * np.asarray(s1), rtol=1e-5)


def test_prediction_scales_with_the_input(small_model, heat):
    """Normalisation makes the model scale-equivariant: E -> cE gives mean -> c mean, std -> c std."""
    w = heat.energy[0, :2]
    m1, s1 = small_model.predict(w, "heat")
    m2, s2 = small_model.predict(3.0 * w, "heat")
    np.testing.assert_allclose(m2, 3.0 * m1, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(s2, 3.0 * s1, rtol=1e-4, atol=1e-7)
    assert (s1 > 0).all()


def test_any_allowed_shape_and_clear_shape_errors(small_model):
    w = np.ones((2, 128, 384), np.float32)
    mean, std = small_model.predict(w)
    assert mean.shape == (128, 384) and std.shape == (128, 384)
    with pytest.raises(ValueError, match="history=2"):
        small_model.predict(np.ones((1, 3, 64, 64), np.float32))
    with pytest.raises(ValueError, match="divisible"):
        check_window(np.ones((1, 3, 63, 64)), NVPConfig())
    with pytest.raises(ValueError, match="finite"):
        small_model.predict(np.full((2, 8, 8), np.nan, np.float32))


def test_entropy_matches_the_atlas_definition():
    e = np.random.default_rng(0).random((3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(map_entropy(jnp.asarray(e))), entropy(e), rtol=1e-5)
    assert abs(float(map_entropy(jnp.ones((8, 8)))) - np.log(64)) < 1e-5


def test_loss_terms():
    rng = np.random.default_rng(0)
    window = jnp.asarray(rng.random((2, 2, 8, 8)) + 1.0, jnp.float32)
    target = window[:, -1] + 0.01
    s = jnp.ones(2)
    y = (target - window[:, -1]) / s[:, None, None]
    exact, parts = nvp_loss(y, jnp.full(y.shape, -4.0), window, target, s)
    off, parts_off = nvp_loss(y + 1.0, jnp.full(y.shape, -4.0), window, target, s)
    assert float(parts["mse"]) == 0.0 and float(parts["conservation"]) == 0.0
    assert float(parts_off["conservation"]) == pytest.approx(1.0, rel=1e-5)
    assert float(off) > float(exact)
    # the NLL rewards a variance that matches the error: too small a variance costs more
    _, small_var = nvp_loss(y + 0.1, jnp.full(y.shape, -10.0), window, target, s)
    _, right_var = nvp_loss(y + 0.1, jnp.full(y.shape, np.log(0.01)), window, target, s)
    assert float(right_var["data"]) < float(small_var["data"])


def test_samples_and_sequence_split(heat):
    cfg = NVPConfig()
    s = make_samples({"heat": heat}, cfg)
    assert cfg.history == 3 and len(s) == 3 * (6 - 3) and s.window.shape == (9, 3, 64, 64)
    np.testing.assert_array_equal(s.window[1], heat.energy[0, 1:4])
    np.testing.assert_array_equal(s.target[1], heat.energy[0, 4])
    train, val = split_by_sequence(s, 0.3)
    assert set(train.sequence) & set(val.sequence) == set() and len(train) + len(val) == len(s)
    assert (make_samples([heat], cfg, known=False).domain_id == 0).all()
    with pytest.raises(ValueError, match="too short"):
        make_samples([Domain("heat", heat.energy[:, :3], 1.0, 1.0)], cfg)


def test_train_step_fits_a_batch(heat):
    s = make_samples([heat], SMALL)
    state = create_state(SMALL, (64, 64), lr=3e-3, total_steps=60)
    batch = s.batch(np.arange(8))
    w = default_weights()
    _, first = train_step(state, batch, w)
    for _ in range(40):
        state, parts = train_step(state, batch, w)
    # the NLL and MSE fall (the beta-weighted loss itself need not: its weights shrink with the variance)
    assert float(parts["nll"]) < float(first["nll"]) - 0.5
    assert float(parts["mse"]) < 0.6 * float(first["mse"])


def test_save_load_round_trip(tmp_path, small_model, heat):
    small_model.std_scale = 1.3
    path = small_model.save(tmp_path / "m")
    again = NVPModel.load(path)
    w = heat.energy[1, :2]
    np.testing.assert_array_equal(small_model.predict(w)[0], again.predict(w)[0])
    np.testing.assert_allclose(again.predict(w)[1], small_model.predict(w)[1])
    small_model.save(tmp_path / "m")  # overwriting an existing model is atomic and works
    with pytest.raises(FileNotFoundError, match="not an NVP model directory"):
        NVPModel.load(tmp_path)
    small_model.std_scale = 1.0


def test_calibration_hits_95_percent_on_its_own_data(small_model, heat):
    s = make_samples([heat], SMALL)
    small_model.std_scale = calibrate_std(small_model, s)
    mean, std = predict_samples(small_model, s)
    assert M.coverage(mean, std, s.target) == pytest.approx(0.95, abs=0.01)
    small_model.std_scale = 1.0


def test_calibration_is_per_domain(small_model, heat):
    adv = Domain("advection", generate("advection", 3, 6, (64, 64), seed=4), 1.0, 1.0)
    s = make_samples([heat, adv], SMALL)
    scale = calibrate_std(small_model, s)
    assert scale.shape == (4,) and scale[1] != scale[2]  # heat and advection fitted apart
    assert scale[3] == scale[0]  # reaction: no validation data, so the unknown id's factor
    small_model.std_scale = scale
    try:
        for d in (1, 2):
            sub = s.take(s.domain_id == d)
            mean, std = predict_samples(small_model, sub)
            assert M.coverage(mean, std, sub.target) == pytest.approx(0.95, abs=0.01)
    finally:
        small_model.std_scale = 1.0
    with pytest.raises(ValueError, match="std_scale"):
        small_model.std_scale = [1.0, 2.0]


def test_evaluator_reports_model_and_baselines(small_model):
    dom = Domain("advection", generate("advection", 2, 14, (64, 64), seed=5), 1.0, 1.0)
    res = evaluate_domain(small_model, dom, known=False, limits=thermo_compile(second_law=True, mode="project"))
    one = res["one_step"]
    assert set(one) == {"model", "persistence", "linear", "model_enforced"}
    assert one["persistence"]["skill"] == 0.0 and one["persistence"]["change_fidelity"] == 0.0
    assert one["model_enforced"]["entropy_violation_rate"] == 0.0  # the projection enforces the second law
    assert {"rmse@10", "skill@10"} <= set(res["rollout"]["model"]) and "rmse@50" not in res["rollout"]["model"]  # 14 frames
    assert res["rollout"]["persistence"]["skill@10"] == 0.0
    assert "advection*" in table([res])


def test_thermo_limits():
    rng = np.random.default_rng(0)
    prev = rng.random((16, 16)) + 0.5
    with pytest.raises(ValueError, match="mode"):
        thermo_compile(mode="fix")
    with pytest.raises(ValueError, match="energy_budget"):
        thermo_compile(energy_budget=-1)
    sharper = prev.copy()
    sharper[0, 0] += 50.0  # concentrates energy: entropy drops and total grows
    strict = thermo_compile(energy_budget=0.01, second_law=True)
    with pytest.raises(ThermodynamicViolation, match="budget") as info:
        strict(sharper, prev)
    assert "second law" in str(info.value) and info.value.checks
    fixed, checks = thermo_compile(energy_budget=0.01, second_law=True, mode="project")(sharper, prev)
    c = check_field(fixed, prev, strict)
    assert c["violations"] == [] and checks[0]["projected"] and checks[0]["violations_before"]
    negative = prev - 0.7
    out, checks = thermo_compile(mode="project")(negative, prev)
    assert out.min() >= 0 and checks[0]["projected"]
    ok, checks = strict(prev * 1.001, prev)
    assert not checks[0]["projected"] and checks[0]["violations"] == []


def test_energy_vector_log(tmp_path):
    prev = np.ones((64, 64))
    mean = prev * 1.01
    path = tmp_path / "log" / "vectors.jsonl"
    rec = log_energy_vector(path, prev, mean, np.full_like(mean, 0.1), domain="heat", model="m", include_field=True,
                            checks=check_field(mean, prev))
    assert rec["energy_out"] == pytest.approx(4096 * 1.01) and len(rec["field"]) == 16
    log_energy_vector(path, prev, mean)
    with open(path, "a") as f:
        f.write('{"torn": ')  # a crash mid-write leaves a partial last line
    rows = read_energy_vectors(path)
    assert len(rows) == 2 and rows[0]["domain"] == "heat"
    import polars as pl

    frame = pl.read_parquet(to_parquet(path, tmp_path / "vectors.parquet"))
    assert frame.height == 2 and "entropy_out" in frame.columns
    with pytest.raises(ValueError, match="shape"):
        log_energy_vector(path, prev, mean[:8])
    assert json.loads(path.read_text().splitlines()[0])["model"] == "m"


def test_augment_noises_some_inputs_never_targets(heat):
    from emergence.nvp.train import augment

    s = make_samples([heat], SMALL)
    batch = s.batch(np.arange(len(s)))
    out = augment(batch, np.random.default_rng(0), noise=0.1)
    clean = augment(batch, np.random.default_rng(0), noise=0.0)
    np.testing.assert_array_equal(out["target"], clean["target"])  # same rotation, target untouched
    noisy = out["noisy"].astype(bool)
    assert 0 < noisy.sum() < len(s) and not clean["noisy"].any()
    diff = out["window"] - clean["window"]
    assert not diff[~noisy].any()  # the clean part is untouched: the variance head learns from it
    change = np.sqrt(np.mean((clean["window"][:, -1] - clean["window"][:, -2]) ** 2))
    assert 0.05 * change < diff[noisy].std() < 0.2 * change


def test_noisy_samples_do_not_train_the_variance():
    from emergence.nvp.loss import nvp_loss

    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.uniform(1, 2, (2, 2, 64, 64)), jnp.float32)
    y = w[:, -1] + 0.1
    mu, lv = jnp.zeros((2, 64, 64)), jnp.zeros((2, 64, 64))
    s = jnp.ones(2)
    g = jax.grad(lambda lv: nvp_loss(mu, lv, w, y, s, noisy=jnp.array([1.0, 0.0]))[0])(lv)
    assert not np.asarray(g[0]).any() and np.asarray(g[1]).any()


def test_a_diverging_rollout_is_recorded_not_fatal():
    from emergence.nvp.evaluate import rollout

    class Exploding:
        config = NVPConfig(history=2)

        def predict(self, window, domain=None, dt=1.0, dx=1.0):
            return window[:, -1] * 1e6, np.ones_like(window[:, -1])

    dom = Domain("heat", generate("heat", 2, 14, (64, 64), seed=2), 1.0, 1.0)
    r = rollout(Exploding(), dom)
    assert r["model"]["diverged_at"] == 1 and r["model"]["rmse@10"] == float("inf")
    assert np.isfinite(r["linear"]["rmse@10"])
