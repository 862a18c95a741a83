"""Untrusted code against the bubblewrap sandbox. Every attack must end with a clear status,
leave the host unchanged and no process behind, and the same sandbox must then answer the next
request normally. Skipped only where bubblewrap can't run (`make test` installs it as root)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from emergence.sandbox import BubblewrapExecutor, Limits, bwrap_missing

REPO = Path(__file__).resolve().parents[1]
OK = ("def f(x):\n    return x + 1\n", "f", [{"args": [1], "expected": 2}])

SKIP = bwrap_missing()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=f"bubblewrap unavailable: {SKIP}")


@pytest.fixture(scope="module")
def sb():
    ex = BubblewrapExecutor(Limits(wall_s=3.0, cpu_s=2.0, memory_mb=256, max_procs=32, file_size_mb=16,
                                   output_bytes=65536))
    ex.warm_up()
    yield ex
    ex.close()


def sandbox_processes() -> set[int]:
    """Host pids running as the sandbox's uid (nobody when we are root, else ourselves: then
    the supervisor's descendants are found through /proc's ppid chain)."""
    uid = 65534 if os.geteuid() == 0 else os.geteuid()
    out = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    out.add(int(entry.name))
            except OSError:
                pass
    return out


def attack(sb, code, args=(), limits=None, entry="f"):
    before = sandbox_processes() if sb.alive else None
    result = sb.run(code, entry, [{"args": list(args), "expected": None}], limits)
    after = sandbox_processes()
    if before is not None and sb.alive:
        assert after <= before, f"processes left behind: {sorted(after - before)}"
    if sb._cgroup is not None and sb.alive:
        assert len(sb._cgroup.pids()) == 2, f"sandbox holds extra processes: {sb._cgroup.pids()}"
    # ...and the same sandbox answers the next request normally
    ok = sb.run(*OK)
    assert ok.status == "passed", ok.to_json()
    return result, result.tests[0]


def test_fork_bomb(sb):
    code = "import os\ndef f():\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"
    r, t = attack(sb, code)
    assert t.status in ("timeout", "error"), t


def test_memory_bomb_one_process(sb):
    r, t = attack(sb, "def f():\n    x = bytearray(2 << 30)\n    return len(x)\n")
    assert t.status == "error" and "MemoryError" in t.error


def test_memory_bomb_many_children_each_below_the_limit(sb):
    # 6 x 150 MB held at once: each child is under RLIMIT_AS (256 MB); together they exceed the
    # sandbox's memory cgroup, so the OOM killer must end some of them
    if sb._cgroup is None:
        pytest.skip("no memory cgroup here: only per-process RLIMIT_AS applies (documented)")
    code = ("import os, time\n"
            "def f():\n"
            "    kids = []\n"
            "    for _ in range(6):\n"
            "        pid = os.fork()\n"
            "        if pid == 0:\n"
            "            b = bytearray(150 << 20)\n"
            "            for i in range(0, len(b), 4096): b[i] = 1\n"
            "            time.sleep(1.0)\n"
            "            os._exit(0)\n"
            "        kids.append(pid)\n"
            "    return sum(os.waitpid(k, 0)[1] == 0 for k in kids)\n")
    sb.warm_up()
    ooms = sb._cgroup.oom_kills()
    # time enough that the cgroup, not the clock, ends it on a loaded machine (six children
    # touching 150 MB each took over 3 s of wall time while the rest of the suite ran)
    r, t = attack(sb, code, limits={"wall_s": 20.0, "cpu_s": 10.0})
    assert sb._cgroup.oom_kills() > ooms
    assert t.status == "error" or (t.status == "failed" and t.returned < 6), t


def test_infinite_loop_hits_cpu_limit(sb):
    r, t = attack(sb, "def f():\n    while True:\n        pass\n", limits={"cpu_s": 0.5, "wall_s": 5})
    assert t.status == "timeout" and "CPU" in t.error, t


def test_sleeping_forever_hits_wall_clock(sb):
    r, t = attack(sb, "import time\ndef f():\n    time.sleep(10**6)\n", limits={"wall_s": 0.5})
    assert t.status == "timeout" and "wall clock" in t.error, t


def test_network_tcp_to_host_loopback_is_unreachable(sb):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    port = server.getsockname()[1]
    code = ("import socket\ndef f(port):\n"
            "    s = socket.create_connection(('127.0.0.1', port), timeout=1)\n    return 'connected'\n")
    try:
        r, t = attack(sb, code, [port])
        assert t.status == "error" and t.returned != "connected", t
        with pytest.raises(BlockingIOError):
            server.accept()
    finally:
        server.close()


def test_network_dns_lookup_fails(sb):
    code = "import socket\ndef f():\n    return socket.getaddrinfo('pypi.org', 443)[0][4][0]\n"
    r, t = attack(sb, code)
    assert t.status == "error" and ("gaierror" in t.error or "OSError" in t.error), t


@pytest.mark.parametrize("path", [str(Path.home()), str(Path.home() / ".ray"), str(REPO), "/etc", "/root", "/home"])
def test_host_folders_are_not_visible(sb, path):
    r, t = attack(sb, "import os\ndef f(p):\n    return os.listdir(p)\n", [path])
    assert t.status == "error" and "FileNotFoundError" in t.error, t


def test_ray_token_and_host_environment_do_not_leak(sb, monkeypatch):
    monkeypatch.setenv("EMERGENCE_TEST_SECRET", "s3cr3t-value")
    sb.close()  # the next run starts a fresh sandbox from this (secret-holding) process
    code = ("import os\ndef f(token):\n"
            "    out = {'env': dict(os.environ)}\n"
            "    for p in ('/proc/1/environ', '/proc/self/environ', token):\n"
            "        try:\n            out[p] = open(p, 'rb').read().decode('latin-1')\n"
            "        except OSError as e:\n            out[p] = type(e).__name__\n"
            "    return out\n")
    r, t = attack(sb, code, [str(Path.home() / ".ray" / "auth_token")])
    assert t.status == "failed", t  # it returned (so we can inspect what it saw)
    seen = repr(t.returned)
    assert "s3cr3t-value" not in seen and "EMERGENCE_TEST_SECRET" not in seen
    assert "RAY_" not in seen


def test_writing_outside_the_work_dir(sb, tmp_path):
    canary = tmp_path / "canary.txt"
    code = ("def f(paths):\n    wrote = []\n    for p in paths:\n"
            "        try:\n            open(p, 'w').write('x')\n            wrote.append(p)\n"
            "        except OSError:\n            pass\n    return wrote\n")
    host_paths = [str(canary), str(REPO / "pwned.txt"), "/usr/pwned", "/root/pwned", "/etc/pwned"]
    r, t = attack(sb, code, [host_paths + ["/tmp/inside-only.txt"]])
    assert t.returned == ["/tmp/inside-only.txt"], t  # only the sandbox's private tmpfs took a write
    for p in host_paths:
        assert not os.path.exists(p), p
    assert not Path("/tmp/inside-only.txt").exists()


def test_a_100mb_file_is_refused(sb):
    code = "def f():\n    with open('big.bin', 'wb') as fh:\n        fh.write(b'0' * (100 << 20))\n    return 'wrote'\n"
    r, t = attack(sb, code)
    assert t.status == "error" and t.returned is None, t


def test_stdout_flood_is_capped(sb):
    r, t = attack(sb, "def f():\n    while True:\n        print('x' * 1000)\n", limits={"wall_s": 2})
    assert t.status in ("error", "timeout") and t.output_truncated, t
    assert len(t.stdout) <= 65536


def test_detached_grandchild_does_not_outlive_the_run(sb, tmp_path):
    code = ("import os, time\ndef f():\n"
            "    if os.fork() == 0:\n        os.setsid()\n"
            "        if os.fork() == 0:\n            time.sleep(3600)\n        os._exit(0)\n"
            "    return 'spawned'\n")
    r, t = attack(sb, code)  # attack() asserts no process is left behind
    assert t.status == "failed" and t.returned == "spawned", t


def test_ctypes_and_posix_bypasses_stay_inside(sb, tmp_path):
    target = tmp_path / "owned"
    code = ("import ctypes, posix\ndef f(path):\n"
            "    rc1 = ctypes.CDLL(None).system(('touch ' + path + '-ctypes').encode())\n"
            "    rc2 = posix.system('touch ' + path + '-posix; id -u > ' + path + '-uid')\n"
            "    return [rc1 != 0, rc2 != 0, posix.getuid()]\n")
    r, t = attack(sb, code, [str(target)])
    assert not list(tmp_path.iterdir())  # nothing reached the host
    assert t.returned[2] == 65534, t  # never root inside


def test_killing_the_parent_ends_the_run_with_a_clear_status(sb):
    sb.warm_up()
    supervisor = sb._proc.pid
    code = "import os, signal\ndef f():\n    for s in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):\n        os.kill(os.getppid(), s)\n    return 1\n"
    r, t = attack(sb, code)
    # the supervisor is PID 1 of the sandbox's namespace: signals from inside can't end it
    assert t.status == "failed" and t.returned == 1, r.to_json()
    assert sb._proc.pid == supervisor


def test_nothing_one_run_writes_is_there_for_the_next(sb):
    code = ("import os\ndef f():\n    out = []\n"
            "    for p in ('/work/left', '/tmp/left', '/dev/shm/left', '/dev/left'):\n"
            "        try:\n            open(p, 'w').write('x')\n            out.append(p)\n"
            "        except OSError:\n            pass\n"
            "    os.makedirs('/tmp/locked/deep', exist_ok=True)\n    os.chmod('/tmp/locked', 0o500)\n"
            "    return out\n")
    r, t = attack(sb, code)
    assert t.returned == ["/work/left", "/tmp/left"], t  # /dev is read-only
    r, t = attack(sb, "import os\ndef f():\n    return [os.listdir('/tmp'), os.listdir('/work')]\n")
    assert t.returned == [[], ["t0"]], t


def test_cpu_quota_bounds_the_whole_sandbox(sb):
    if sb._cgroup is None or "cpu" not in sb._cgroup.dirs:
        pytest.skip("no CPU cgroup here")
    # two busy processes for 1 s of wall time under a 0.5-core quota: about 0.5 s of CPU in all
    code = ("import os, time, resource\ndef f():\n"
            "    pid = os.fork()\n    t = time.time()\n    while time.time() - t < 1.0:\n        pass\n"
            "    if pid == 0:\n        os._exit(0)\n    os.waitpid(pid, 0)\n"
            "    ru = resource.getrusage(resource.RUSAGE_SELF).ru_utime + resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime\n"
            "    return ru\n")
    r, t = attack(sb, code, limits={"cpus": 0.5})
    assert t.status == "failed" and t.returned < 0.8, t  # unbounded, it would be about 2 s on 2 cores


def test_the_supervisor_is_pid_1_and_out_of_reach(sb):
    code = ("import ctypes, os, signal\ndef f():\n"
            "    libc = ctypes.CDLL(None, use_errno=True)\n"
            "    out = {'ptrace': libc.ptrace(16, 1, 0, 0)}\n"  # PTRACE_ATTACH
            "    for p in ('/proc/1/mem', '/proc/1/fd/0', '/proc/1/fd/1'):\n"
            "        try:\n            open(p, 'rb+'); out[p] = 'opened'\n"
            "        except OSError as e:\n            out[p] = type(e).__name__\n"
            "    for sig in (signal.SIGSTOP, signal.SIGKILL):\n"
            "        os.kill(1, sig)\n"
            "    return out\n")
    r, t = attack(sb, code)
    assert t.status == "failed", t  # it returned: SIGKILL/SIGSTOP to PID 1 from inside are ignored
    assert t.returned["ptrace"] == -1 and "opened" not in t.returned.values(), t


def test_tampering_with_the_supervisors_limits_gets_a_fresh_sandbox(sb):
    code = ("import ctypes, os, resource\ndef f():\n"
            "    resource.prlimit(1, resource.RLIMIT_AS, (200 << 20, 200 << 20))\n"
            "    os.setpriority(os.PRIO_PROCESS, 1, 19)\n"
            "    return 1\n")
    r, t = attack(sb, code)  # attack() then runs a normal job, which must pass
    check = sb.run("import os, resource\ndef f():\n    return [resource.getrlimit(resource.RLIMIT_AS)[0] >> 20, "
                   "os.getpriority(os.PRIO_PROCESS, 1)]\n", "f", [{"args": [], "expected": [256, 0]}])
    assert check.status == "passed", check.to_json()


def test_a_forged_reply_frame_is_not_believed(sb):
    # even with a writable host channel, a frame must answer this job id with one record per test
    from emergence.sandbox.executor import well_formed

    assert not well_formed({"id": 7, "tests": [{"status": "passed"}]}, 7, 1)
    assert not well_formed({"id": 6, "tests": [{"status": "returned", "value": 1}]}, 7, 1)
    assert not well_formed({"id": 7, "tests": []}, 7, 1)
    assert well_formed({"id": 7, "tests": [{"status": "returned", "value": 1}]}, 7, 1)


def test_huge_or_deep_raw_results_are_errors_not_crashes(sb):
    code = ("import os\ndef f(kind):\n"
            "    data = b'{\"ok\": true, \"value\": ' + b'9' * 400 + b'}' if kind else b'[' * 50000\n"
            "    for fd in range(3, 16):\n"
            "        try:\n            os.write(fd, data)\n            os._exit(0)\n"
            "        except OSError:\n            pass\n")
    r = sb.run(code, "f", [{"args": [1], "expected": 1.5}, {"args": [0], "expected": 1}])
    assert [t.status for t in r.tests] == ["failed", "error"], r.to_json()
    assert sb.run(*OK).status == "passed"


def test_a_supervisor_that_dies_mid_run_gives_a_clear_status(sb):
    import threading

    sb.warm_up()
    victim = sb._proc.pid
    timer = threading.Timer(0.3, lambda: os.kill(victim, 9))  # from the host, as an OOM kill would
    timer.start()
    r = sb.run("import time\ndef f():\n    time.sleep(5)\n", "f", [{"args": [], "expected": None}])
    timer.join()
    assert r.status == "error" and "supervisor died" in r.error, r.to_json()
    assert sb.run(*OK).status == "passed"
