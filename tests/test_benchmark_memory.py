"""The memory benchmark's own pieces (no Ray, no dataset needed): exact ground truth with ties,
the IDX reader, the missing-dataset message, and the README table."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.memory_data import DatasetMissing, exact_distances, exact_topk, fashion_mnist, read_idx_images

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "memory.json"


def test_exact_topk_is_exact_and_breaks_ties_by_id():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (500, 20)).astype(np.uint8)
    x[[7, 300, 41]] = x[3]  # four equal rows: tied at distance 0 from a query equal to them
    q = np.vstack([x[3], rng.integers(0, 256, (9, 20)).astype(np.uint8)])
    ids, dist = exact_topk(x, q, 10)
    assert ids[0, :4].tolist() == [3, 7, 41, 300] and (dist[0, :4] == 0).all()
    for i in range(len(q)):
        d = ((x.astype(np.int64) - q[i].astype(np.int64)) ** 2).sum(1)
        assert ids[i].tolist() == np.lexsort((np.arange(len(d)), d))[:10].tolist()
    assert (exact_distances(x, q, ids) == dist).all()


def test_idx_reader_and_missing_dataset(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "imgs.gz"
    with gzip.open(path, "wb") as f:
        f.write(np.array([2051, 2, 3, 4], dtype=">u4").tobytes() + images.tobytes())
    assert (read_idx_images(str(path)) == images.reshape(2, 12)).all()
    with pytest.raises(DatasetMissing, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist(directory=str(tmp_path / "nowhere"), cache_dir=str(tmp_path))


@pytest.mark.skipif(not RESULTS.exists(), reason="no benchmarks/results/memory.json yet")
def test_readme_table_renders_every_target():
    from benchmarks.readme_table import TABLES

    report = json.loads(RESULTS.read_text())
    table = TABLES["memory"](report)
    for name in report["targets"]:
        assert f"| {name} |" in table
