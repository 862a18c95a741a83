"""One Ray cluster: a job started while a cluster runs joins it and says so, instead of starting a
private local Ray beside it. The running cluster here is the test session's; the job finds it the
way `ray job submit` tells it (RAY_ADDRESS)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_a_sweep_joins_the_running_cluster_and_says_so(ray_session, tmp_path):
    from ray._private.state import jobs

    gcs = ray_session.get_runtime_context().gcs_address
    drivers_before = {j["JobID"] for j in jobs()}
    out = tmp_path / "coupling"
    env = {**os.environ, "RAY_ADDRESS": gcs, "EMERGENCE_JOIN_HEAD": "0"}
    r = subprocess.run([sys.executable, "-m", "tune.coupling", "--quick", "--out", str(out),
                        "--storage", str(out / "tune")], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert f"Ray: joined the cluster at {gcs}" in r.stderr, r.stderr[-3000:]
    assert "private" not in r.stderr
    summary = next(line.split(": ", 1)[1] for line in r.stdout.splitlines() if line.startswith("summary: "))
    assert os.path.isfile(summary) and summary.startswith(str(out))
    # its driver is a job of this cluster, with the sweep's pid, now finished
    new = [j for j in jobs() if j["JobID"] not in drivers_before]
    assert len(new) == 1 and new[0]["IsDead"], new
