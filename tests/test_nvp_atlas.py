"""The NVP atlas format: validation errors name file, group and problem; views preserve energy."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from emergence.nvp.atlas import (
    AtlasError, Domain, downsample, entropy, gradient, load_atlas, load_npy, pairs, pyramid, snapshot_metadata, write_atlas,
)


def field(n=2, t=3, h=64, w=64, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, (n, t, h, w)).astype(np.float32)


def test_round_trip(tmp_path):
    path = write_atlas(tmp_path / "a.h5", [Domain("heat", field(), 0.1, 1.0), Domain("wave", field(1, 4, 128, 384, 1), 0.2, 0.5)])
    atlas = load_atlas(path)
    assert set(atlas) == {"heat", "wave"}
    np.testing.assert_array_equal(atlas["heat"].energy, field())
    assert (atlas["wave"].dt, atlas["wave"].dx, atlas["wave"].shape) == (0.2, 0.5, (128, 384))
    assert not list(tmp_path.glob("*.tmp*"))


def _write_raw(path, data, attrs=None, group="heat"):
    with h5py.File(path, "w") as f:
        g = f.create_group(group)
        g.create_dataset("energy", data=data)
        for k, v in (attrs if attrs is not None else {"domain": group, "dt": 0.1, "dx": 1.0}).items():
            g.attrs[k] = v


@pytest.mark.parametrize(
    "data, attrs, message",
    [
        (field().astype(np.float64), None, "must be float32"),
        (field(h=48, w=48), None, "map shape 48x48 not allowed"),
        (field(t=1), None, "T = 1"),
        (field()[0], None, "shape (N, T, H, W)"),
        (np.where(np.arange(64) == 3, np.nan, field()).astype(np.float32), None, "non-finite energy"),
        (field() - 2.0, None, "negative energy"),
        (field(), {"domain": "heat", "dt": 0.1}, "missing attribute 'dx'"),
        (field(), {"domain": "heat", "dt": -1.0, "dx": 1.0}, "'dt' must be a positive"),
    ],
)
def test_bad_files_name_file_group_and_problem(tmp_path, data, attrs, message):
    path = tmp_path / "bad.h5"
    _write_raw(path, data, attrs)
    with pytest.raises(AtlasError) as err:
        load_atlas(path)
    assert str(path) in str(err.value) and "/heat" in str(err.value) and message in str(err.value)


def test_npy_accepts_one_or_many_sequences(tmp_path):
    np.save(tmp_path / "one.npy", field()[0])
    np.save(tmp_path / "many.npy", field())
    assert load_npy(tmp_path / "one.npy", "heat").energy.shape == (1, 3, 64, 64)
    assert load_npy(tmp_path / "many.npy", "heat").energy.shape == (2, 3, 64, 64)
    np.save(tmp_path / "bad.npy", field()[0, 0])
    with pytest.raises(AtlasError, match="bad.npy: energy must have shape"):
        load_npy(tmp_path / "bad.npy", "heat")


def test_write_refuses_invalid_data_and_leaves_nothing(tmp_path):
    with pytest.raises(AtlasError, match="negative energy"):
        write_atlas(tmp_path / "x.h5", [Domain("heat", field() - 5, 0.1, 1.0)])
    assert list(tmp_path.iterdir()) == []


def test_pairs_are_consecutive_windows():
    e = field(n=2, t=5)
    x, y = pairs(e, window=2)
    assert x.shape == (6, 2, 64, 64) and y.shape == (6, 64, 64)
    np.testing.assert_array_equal(x[4], e[1, 1:3])
    np.testing.assert_array_equal(y[4], e[1, 3])
    with pytest.raises(ValueError, match="window"):
        pairs(e, window=5)


def test_downsampling_and_pyramid_preserve_total_energy():
    e = field(n=1, t=2, h=256, w=256)[0, 0].astype(np.float64)
    levels = pyramid(e)
    assert sorted(levels) == [64, 128, 256]
    for s, lvl in levels.items():
        assert lvl["energy"].shape == (s, s) and lvl["grad"].shape == (2, s, s)
        assert lvl["energy"].sum() == pytest.approx(e.sum(), rel=1e-12)
    assert downsample(np.ones((4, 6)), 2).tolist() == [[4.0, 4.0, 4.0], [4.0, 4.0, 4.0]]


def test_gradient_of_a_plane_wave():
    h = 64
    x = np.arange(h) * 2 * np.pi / h
    f = np.sin(x)[None, :].repeat(h, 0)
    g = gradient(f, dx=2 * np.pi / h)
    np.testing.assert_allclose(g[1], np.cos(x)[None, :].repeat(h, 0), atol=2e-3)
    np.testing.assert_allclose(g[0], 0.0, atol=1e-12)


def test_entropy_and_metadata(tmp_path):
    flat = np.ones((64, 64))
    spike = np.zeros((64, 64))
    spike[3, 4] = 1.0
    assert entropy(flat) == pytest.approx(np.log(64 * 64))
    assert entropy(spike) == pytest.approx(0.0)
    atlas = load_atlas(write_atlas(tmp_path / "a.h5", [Domain("heat", field(), 0.1, 1.0)]))
    meta = snapshot_metadata(atlas)
    assert meta.height == 6 and set(meta.columns) == {"domain", "sequence", "t", "energy_sum", "entropy", "file"}
    assert meta["energy_sum"][0] == pytest.approx(float(field()[0, 0].sum(dtype=np.float64)))
