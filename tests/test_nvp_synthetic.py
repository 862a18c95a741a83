import numpy as np
import pytest

from emergence.nvp import synthetic
from emergence.nvp.synthetic import DOMAINS, add_noise, generate, rotate, thermal_blur

SHAPE = (32, 32)


def _totals(seq):
    return seq.astype(np.float64).sum(axis=(-2, -1))  # (n, t)


def _tv(frame):
    f = frame.astype(np.float64)
    return np.abs(np.diff(f, axis=-1)).sum() + np.abs(np.diff(f, axis=-2)).sum()


@pytest.fixture(scope="module")
def seqs():
    return {d: generate(d, n=2, t=6, shape=SHAPE, seed=1) for d in DOMAINS}


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_shape_dtype_nonneg_finite(seqs, domain):
    s = seqs[domain]
    assert s.shape == (2, 6, *SHAPE)
    assert s.dtype == np.float32
    assert np.isfinite(s).all()
    assert (s >= 0).all()


def test_non_square_shape_allowed():
    s = generate("advection", n=1, t=3, shape=(16, 40), seed=0)
    assert s.shape == (1, 3, 16, 40)


@pytest.mark.parametrize("domain", [d for d, spec in DOMAINS.items() if spec.conserves_energy])
def test_conserving_domains_conserve(seqs, domain):
    tot = _totals(seqs[domain])
    rel = np.abs(tot - tot[:, :1]) / tot[:, :1]
    assert rel.max() < 0.05
    assert rel.max() < 1e-5  # far better in practice: round-off + float32 storage


def test_heat_conserves_tightly(seqs):
    tot = _totals(seqs["heat"])
    assert (np.abs(tot - tot[:, :1]) / tot[:, :1]).max() < 1e-4


def test_heat_with_sources_conserves_and_stays_nonneg():
    s = synthetic.heat_diffusion(2, 6, SHAPE, 1.0, 1.0, np.random.default_rng(3), sources=True)
    assert s.dtype == np.float32 and (s >= 0).all()
    tot = _totals(s)
    assert (np.abs(tot - tot[:, :1]) / tot[:, :1]).max() < 1e-4


def test_flags_truthful():
    assert DOMAINS["heat"].conserves_energy and DOMAINS["advection"].conserves_energy
    assert not DOMAINS["reaction"].conserves_energy


def test_reaction_changes_energy(seqs):
    tot = _totals(seqs["reaction"])
    assert (np.abs(tot[:, -1] - tot[:, 0]) / tot[:, 0]).min() > 0.05


@pytest.mark.parametrize("domain", ["heat", "advection"])
def test_diffusion_diffuses(seqs, domain):
    s = seqs[domain]
    for seq in s:
        assert seq[-1].max() < seq[0].max()
        assert _tv(seq[-1]) < _tv(seq[0])
    if domain == "heat":  # monotone scheme: max principle step by step
        assert (np.diff(s.max(axis=(-2, -1)), axis=1) <= 1e-6).all()


def test_thermal_blur_conserves(seqs):
    s = seqs["heat"]
    b = thermal_blur(s, 1.5)
    assert b.shape == s.shape and b.dtype == np.float32
    np.testing.assert_allclose(_totals(b), _totals(s), rtol=1e-5)
    assert _tv(b[0, 0]) < _tv(s[0, 0])


def test_add_noise_nonneg_and_seeded(seqs):
    s = seqs["reaction"]
    a = add_noise(s, 0.2, np.random.default_rng(0))
    b = add_noise(s, 0.2, np.random.default_rng(0))
    assert a.dtype == np.float32 and (a >= 0).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, s)
    with pytest.raises(ValueError, match="sigma"):
        add_noise(s, -1.0, 0)


def test_rotate(seqs):
    s = seqs["heat"]
    r = rotate(s, 1)
    np.testing.assert_array_equal(r[0, 0], np.rot90(s[0, 0]))
    np.testing.assert_array_equal(rotate(r, 3), s)
    with pytest.raises(ValueError, match="square"):
        rotate(np.zeros((2, 3, 8, 10), np.float32), 1)


def test_reproducible():
    a = generate("heat", n=2, t=3, shape=SHAPE, seed=7)
    b = generate("heat", n=2, t=3, shape=SHAPE, seed=7)
    c = generate("heat", n=2, t=3, shape=SHAPE, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(domain="nope"), "domain"),
        (dict(n=0), "n"),
        (dict(n=1.5), "n"),
        (dict(t=1), "t"),
        (dict(shape=(32,)), "shape"),
        (dict(shape=(32, 32, 3)), "shape"),
        (dict(shape=(0, 32)), "shape"),
        (dict(shape=(32.0, 32)), "shape"),
        (dict(dt=0.0), "dt"),
        (dict(dx=-1.0), "dx"),
    ],
)
def test_bad_args(kwargs, name):
    args = dict(domain="heat", n=1, t=2, shape=(8, 8))
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        generate(**args)


def test_export_writes_a_valid_atlas_with_progress(tmp_path, capsys):
    from emergence.nvp.atlas import load_atlas
    from emergence.nvp.synthetic import DOMAINS, main

    path = main(["--out", str(tmp_path / "syn.h5"), "--n", "2", "--t", "3"])
    atlas = load_atlas(path)
    assert set(atlas) == set(DOMAINS)
    assert all(d.energy.shape == (2, 3, 64, 64) for d in atlas.values())
    assert "3/3" in capsys.readouterr().err


def test_export_refuses_shapes_the_atlas_does_not_allow(tmp_path):
    import pytest

    from emergence.nvp.synthetic import main

    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "bad.h5"), "--n", "1", "--t", "2", "--shape", "32", "32"])
    assert not list(tmp_path.iterdir())
