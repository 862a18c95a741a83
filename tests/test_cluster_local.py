"""`make run`'s head: jobs find it, `make stop` ends only its processes, runs go to one persistent
place. No Ray is started here: the processes are stand-ins with the command lines Ray's have."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest


def test_head_address_is_found_when_its_port_answers(monkeypatch):
    from cluster import ray_session

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        monkeypatch.setattr(ray_session, "GCS_PORT", port)
        monkeypatch.setenv("EMERGENCE_JOIN_HEAD", "1")
        assert ray_session.head_address() == ray_session.HEAD_ADDRESS
        monkeypatch.setenv("EMERGENCE_JOIN_HEAD", "0")  # the test suite's setting
        assert ray_session.head_address() is None
    monkeypatch.setenv("EMERGENCE_JOIN_HEAD", "1")
    assert ray_session.head_address() is None  # nothing listens there any more


def _stand_in(tmp_path, argv_tail: list[str]) -> subprocess.Popen:
    """A process whose command line carries `argv_tail`, with a child of its own (a 'worker')."""
    code = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); time.sleep(60)"
    return subprocess.Popen([sys.executable, "-c", code, *argv_tail])


def _wait_children(proc, n=1, timeout=10.0):
    import psutil

    deadline = time.time() + timeout
    while time.time() < deadline:
        kids = psutil.Process(proc.pid).children(recursive=True)
        if len(kids) >= n:
            return kids
        time.sleep(0.05)
    raise AssertionError("stand-in child did not start")


def test_stop_ends_only_the_heads_processes(tmp_path):
    import psutil

    from cluster.local import _terminate, head_processes

    ours_dir = str(tmp_path / "emergence-ray-1")
    ours = _stand_in(tmp_path, [f"--session-dir={ours_dir}/session_x", f"--temp-dir={ours_dir}"])
    theirs = _stand_in(tmp_path, [f"--session-dir={ours_dir}0/session_y"])  # another Ray: a longer name
    viewer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)",
                               f"{ours_dir}/session_x/logs/raylet.out"])  # a `tail` on one of its logs
    try:
        our_kids = _wait_children(ours)
        their_kids = _wait_children(theirs)
        found = {p.pid for p in head_processes(ours_dir)}
        assert found == {ours.pid, *(k.pid for k in our_kids)}
        _terminate(head_processes(ours_dir), grace_s=5)
        assert ours.wait(timeout=10) is not None
        assert not any(psutil.pid_exists(k.pid) and psutil.Process(k.pid).status() != psutil.STATUS_ZOMBIE
                       for k in our_kids)
        assert theirs.poll() is None and all(k.is_running() for k in their_kids) and viewer.poll() is None
    finally:
        viewer.kill()
        for p in (ours, theirs):
            for k in psutil.Process(p.pid).children(recursive=True) if psutil.pid_exists(p.pid) else []:
                k.kill()
            p.kill()
            p.wait()


def test_runs_go_to_one_persistent_place(monkeypatch, tmp_path):
    from emergence.paths import runs_path, runs_root

    monkeypatch.setenv("EMERGENCE_RUNS", str(tmp_path / "r"))
    assert runs_path("train") == str(tmp_path / "r" / "train")
    monkeypatch.delenv("EMERGENCE_RUNS")
    monkeypatch.chdir(tmp_path)
    assert runs_root() == tmp_path / "runs"
    job_copy = tmp_path / "session_1" / "runtime_resources" / "working_dir_files" / "_ray_pkg_abc"
    job_copy.mkdir(parents=True)
    monkeypatch.chdir(job_copy)  # what `ray job submit --working-dir .` runs in: deleted with the session
    assert runs_root() == __import__("pathlib").Path.home() / ".emergence" / "runs"


@pytest.mark.parametrize("module", ["training.emergence", "training.nvp", "tune.coupling", "tune.loss_weights"])
def test_every_job_names_its_run_directory_in_help(module, capsys):
    import importlib

    mod = importlib.import_module(module)
    parse = getattr(mod, "parse_args", None)
    with pytest.raises(SystemExit):
        (parse or mod.main)(["--help"])
    out = capsys.readouterr().out
    assert "EMERGENCE_RUNS" in out.replace("\n", " ")


def test_local_start_refuses_a_corrupt_model_before_starting_ray(tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    (tmp_path / "README.md").write_text("---\nsha256: \"00\"\n---\n")
    env = {**os.environ, "EMERGENCE_ENGINE_MODEL": str(bad), "EMERGENCE_GCS_PORT": "1"}
    r = subprocess.run([sys.executable, "-m", "cluster.local", "start"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0 and "does not match its model card" in r.stderr
    assert "Starting the Ray head" not in r.stdout
