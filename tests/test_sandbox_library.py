"""The sandbox library: limits, comparison, the test harness, backends' selection and flags,
and the command line. Runs that need a sandbox use bubblewrap (skipped where it can't run)."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from emergence.sandbox import (BubblewrapExecutor, DockerExecutor, Limits, ProcessExecutor, SandboxUnavailable,
                               bwrap_missing, open_executor, parse_tests, values_equal)
from emergence.sandbox.harness import check_source

NO_BWRAP = bwrap_missing()
needs_bwrap = pytest.mark.skipif(NO_BWRAP is not None, reason=f"bubblewrap unavailable: {NO_BWRAP}")


# --- comparison -----------------------------------------------------------------------------
@pytest.mark.parametrize("got,expected,equal", [
    (3.875, 3.875000001, True), (0.1 + 0.2, 0.3, True), (1.0, 1.1, False), (2, 2.0, True), (2, 3, False),
    (True, 1, False), (1, True, False), (False, False, True), (None, None, True), (None, 0, False),
    ([1, [2, 3]], (1, (2, 3)), True), ([1, 2], [2, 1], False), ([1], [1, 1], False),
    ({"a": 1.0, "b": [1]}, {"b": [1], "a": 1}, True), ({"a": 1}, {"a": 1, "b": 2}, False),
    (float("nan"), float("nan"), True), (float("inf"), float("inf"), True), (float("inf"), 1e308, False),
    ("abc", "abc", True), ("1", 1, False), ({"__repr__": "<object>"}, {"__repr__": "<object>"}, False),
])
def test_values_equal(got, expected, equal):
    assert values_equal(got, expected) is equal


# --- limits and input validation -------------------------------------------------------------
def test_limits_validate_with_named_fields():
    assert Limits().memory_mb == 256
    with pytest.raises(ValueError, match="memory_mb"):
        Limits(memory_mb=0)
    with pytest.raises(ValueError, match="wall_s"):
        Limits(wall_s=math.nan)
    with pytest.raises(ValueError, match="max_procs"):
        Limits(max_procs=2.5)
    with pytest.raises(ValueError, match="unknown field"):
        Limits.from_dict({"walltime": 3})
    assert Limits.from_dict({"wall_s": 2}).replace(cpu_s=1).cpu_s == 1


def test_parse_tests_names_the_bad_case():
    assert parse_tests([{"args": [1, 2], "expected": 3}])[0].args == [1, 2]
    with pytest.raises(ValueError, match=r"tests\[1\]"):
        parse_tests([{"args": []}, {"expected": 1}])
    with pytest.raises(ValueError, match=r"tests\[0\].args"):
        parse_tests([{"args": "x"}])
    with pytest.raises(ValueError, match="tests"):
        parse_tests({"args": []})
    with pytest.raises(ValueError, match="entry"):
        check_source("x = 1", "class")
    with pytest.raises(ValueError, match="code"):
        check_source(b"x = 1", "f")


# --- backend selection ------------------------------------------------------------------------
def test_process_backend_needs_explicit_opt_in():
    with pytest.raises(SandboxUnavailable, match="not a security boundary"):
        open_executor("process")
    with pytest.raises(SandboxUnavailable, match="allow_unsafe"):
        ProcessExecutor()
    with pytest.raises(ValueError, match="unknown"):
        open_executor("chroot")


def test_docker_flags_isolate_the_container():
    flags = DockerExecutor(Limits(memory_mb=128, max_procs=16)).run_flags()
    joined = " ".join(flags)
    for must in ("--network none", "--read-only", "--cap-drop ALL", "--security-opt no-new-privileges",
                 "--user 65534:65534", "--pids-limit 20", "--memory 192m", "--memory-swap 192m",
                 "--ipc none"):
        assert must in joined, must
    assert "--tmpfs /work:" in joined


def test_docker_backend_says_why_it_is_unavailable():
    try:
        DockerExecutor().check_available()
    except SandboxUnavailable as exc:
        assert "docker" in str(exc)


@needs_bwrap
def test_bubblewrap_command_drops_privileges():
    cmd = BubblewrapExecutor().command()
    for flag in ("--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
                 "--disable-userns", "--cap-drop"):
        assert flag in cmd
    assert cmd[cmd.index("--uid") + 1] == "65534"
    assert "/root" not in cmd and "/home" not in cmd


# --- the harness, end to end in bubblewrap ------------------------------------------------------
@pytest.fixture(scope="module")
def sb():
    if NO_BWRAP:
        pytest.skip(NO_BWRAP)
    with BubblewrapExecutor(Limits(wall_s=2.0, cpu_s=2.0)) as ex:
        yield ex


def test_every_test_gets_its_own_status(sb):
    code = ("import time\n"
            "def f(x):\n"
            "    if x == 0: raise ZeroDivisionError('no zero')\n"
            "    if x == 1: time.sleep(10)\n"
            "    print('called with', x)\n"
            "    return (x, {x})\n")
    tests = [{"args": [0], "expected": None}, {"args": [1], "expected": None}, {"args": [2], "expected": [2, [2]]},
             {"args": [3], "expected": [3, [4]]}]
    r = sb.run(code, "f", tests, limits={"wall_s": 0.5})
    assert [t.status for t in r.tests] == ["error", "timeout", "passed", "failed"], r.to_json()
    assert "ZeroDivisionError: no zero" in r.tests[0].error
    assert r.tests[2].stdout == "called with 2\n" and r.tests[2].returned == [2, [2]]
    assert "expected" in r.tests[3].error and r.status == "failed" and r.passed == 1
    assert all(t.duration_s > 0 for t in r.tests)


def test_code_that_does_not_load_is_an_error(sb):
    r = sb.run("def f(:\n", "f", [{"args": [], "expected": 1}])
    assert r.status == "error" and "SyntaxError" in r.error
    r = sb.run("def g():\n    return 1\n", "f", [{"args": [], "expected": 1}])
    assert r.status == "error" and "defines no callable 'f'" in r.error
    r = sb.run("raise RuntimeError('at import')\ndef f():\n    return 1\n", "f", [{"args": [], "expected": 1}])
    assert r.status == "error" and "at import" in r.error


def test_odd_return_values_are_reported_not_trusted(sb):
    code = "class X:\n    def __repr__(self):\n        return 'X()'\ndef f(kind):\n    return X() if kind else 'x' * 5000\n"
    r = sb.run(code, "f", [{"args": [1], "expected": "X()"}, {"args": [0], "expected": "x" * 5000}])
    assert r.tests[0].status == "failed" and r.tests[0].returned == {"__repr__": "X()"}
    assert r.tests[1].status == "passed" and r.tests[1].returned["__truncated__"].startswith('"xxx')


def test_tests_do_not_share_state(sb):
    code = "seen = []\ndef f(x):\n    seen.append(x)\n    open('marker', 'a').write('x')\n    return len(seen) + len(open('marker').read())\n"
    r = sb.run(code, "f", [{"args": [i], "expected": 2} for i in range(3)])
    assert r.status == "passed", r.to_json()  # fresh module and fresh work dir per test


def test_forging_the_result_channel_gains_nothing(sb):
    # the code writes a fake "passed" record to every fd it can find; only its return value counts
    code = ("import os, json\n"
            "def f():\n"
            "    fake = json.dumps({'ok': True, 'value': 42}).encode()\n"
            "    for fd in range(3, 64):\n"
            "        try: os.write(fd, fake)\n"
            "        except OSError: pass\n"
            "    return 7\n")
    r = sb.run(code, "f", [{"args": [], "expected": 42}])
    assert r.tests[0].status in ("failed", "error") and r.tests[0].returned != 42


# --- command line ----------------------------------------------------------------------------
def cli(*args):
    return subprocess.run([sys.executable, "-m", "emergence.sandbox", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@needs_bwrap
def test_cli_prints_one_json_object(tmp_path):
    (tmp_path / "tool.py").write_text("def mean(xs):\n    print('hi')\n    return sum(xs) / len(xs)\n")
    (tmp_path / "row.json").write_text(json.dumps({"id": "x", "tests": [{"args": [[1, 2]], "expected": 1.5},
                                                                       {"args": [[]], "expected": 0}]}))
    p = cli("--code", tmp_path / "tool.py", "--entry", "mean", "--tests", tmp_path / "row.json", "--timeout", 2)
    assert p.returncode == 0, p.stderr  # the code's failure is not the sandbox's
    out = json.loads(p.stdout)
    assert out["status"] == "failed" and [t["status"] for t in out["tests"]] == ["passed", "error"]
    assert "ZeroDivisionError" in out["tests"][1]["error"] and out["stdout"] == "hi\nhi\n"


def test_cli_rejects_bad_input_with_a_message(tmp_path):
    (tmp_path / "tool.py").write_text("def f():\n    return 1\n")
    (tmp_path / "bad.json").write_text("{not json")
    p = cli("--code", tmp_path / "tool.py", "--entry", "f", "--tests", tmp_path / "bad.json")
    assert p.returncode == 2 and "neither JSON" in json.loads(p.stdout)["error"]
    p = cli("--code", tmp_path / "missing.py", "--entry", "f", "--tests", tmp_path / "bad.json")
    assert p.returncode == 2 and "missing.py" in json.loads(p.stdout)["error"]
    p = cli("--code", tmp_path / "tool.py", "--entry", "f", "--tests", tmp_path / "bad.json", "--backend", "process")
    assert p.returncode == 2 and "allow-unsafe" in json.loads(p.stdout)["error"]


def test_stale_cgroups_of_dead_processes_are_reaped():
    from emergence.sandbox import cgroup

    cg = cgroup.Cgroup.create()
    if cg is None:
        pytest.skip("cgroups can't be created here")
    try:
        dead = 2 ** 22 + 12345  # above pid_max's default: no such process
        stale = [d.parent / f"{cgroup.PREFIX}-{dead}-feedfacecafe" for d in set(cg.dirs.values())]
        for d in stale:
            d.mkdir()
        assert cgroup.reap_stale() >= len(stale)
        assert not any(d.exists() for d in stale)
        assert all(d.exists() for d in cg.dirs.values())  # a live owner's group stays
    finally:
        cg.remove()


def test_docker_backend_end_to_end_where_a_daemon_runs():
    try:
        ex = open_executor("docker")
    except SandboxUnavailable as exc:
        pytest.skip(str(exc))
    with ex:
        r = ex.run("import socket\ndef f(x):\n    return x * 2\n", "f", [{"args": [21], "expected": 42}])
        assert r.status == "passed", r.to_json()
        r = ex.run("def f():\n    return open('/etc/hostname').read()\n", "f", [{"args": [], "expected": None}])
        assert r.tests[0].status in ("failed", "error")
