"""The three backends. Each starts the same supervisor (`runner.py`); they differ in the walls
around it.

- bubblewrap: own user, PID, network, IPC, UTS and mount namespaces; the supervisor as PID 1;
  read-only root and /usr; private tmpfs work dirs; uid 65534; no new privileges; dies with its parent; memory and pids cgroups
  when the host lets us create them. Started as the unprivileged `nobody` when we are root, so
  the sandbox's processes are never host-root processes.
- docker: `--network none`, read-only root, tmpfs work dir, pids/memory/CPU limits, uid 65534,
  every capability dropped, no-new-privileges; the supervisor is PID 1 (and reaps). Needs a reachable daemon.
- process: rlimits only. NOT a security boundary (the code can read what this user can read and
  reach the network); refused unless the caller opts in with allow_unsafe=True.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from functools import lru_cache

from .executor import RUNNER_SOURCE, SANDBOX_ENV, Executor, SandboxUnavailable
from .limits import Limits

NOBODY = 65534
PY_FLAGS = ["-I", "-S", "-B"]  # isolated, no site-packages, no .pyc writes: a bare, fast stdlib


def sandbox_python() -> str:
    """A stdlib interpreter every uid can execute (the project's venv may live under /root)."""
    for cand in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.access(cand, os.X_OK):
            return cand
    return os.path.realpath(sys.executable)


class BubblewrapExecutor(Executor):
    name = "bubblewrap"
    pidns = True

    def __init__(self, limits: Limits | None = None, python: str | None = None, bwrap: str | None = None):
        super().__init__(limits)
        self.bwrap = bwrap or shutil.which("bwrap") or "bwrap"
        self.python = python or sandbox_python()
        self.as_root = os.geteuid() == 0
        self.use_cgroup = self.as_root

    def check_available(self) -> None:
        probe_bwrap(self.bwrap)

    def sandbox_uid(self) -> int:
        return NOBODY if self.as_root else os.geteuid()

    def command(self) -> list[str]:
        tmpfs_bytes = str((self.limits.file_size_mb + 16) << 20)
        args = [self.bwrap, "--unshare-all", "--unshare-user", "--die-with-parent", "--new-session", "--clearenv",
                "--ro-bind", "/usr", "/usr"]
        for link in ("bin", "lib", "lib64", "sbin"):
            path = f"/{link}"
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                args += ["--ro-bind", path, path]
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(self.python)))
        if not prefix.startswith("/usr"):
            args += ["--ro-bind", prefix, prefix]
        args += ["--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev", "--size", tmpfs_bytes, "--tmpfs", "/work",
                 "--size", str(16 << 20), "--tmpfs", "/tmp", "--uid", str(NOBODY), "--gid", str(NOBODY),
                 "--hostname", "sandbox", "--chdir", "/work", "--cap-drop", "ALL", "--disable-userns",
                 # The supervisor is PID 1: no bwrap reaper (same uid, dumpable, holding our pipes)
                 # for the code to ptrace, and signals from inside the namespace can't kill it.
                 "--as-pid-1", "--remount-ro", "/"]
        for k, v in SANDBOX_ENV.items():
            args += ["--setenv", k, v]
        args += ["--", self.python, *PY_FLAGS, "-c", RUNNER_SOURCE, "serve", "--pidns"]
        if self.as_root:
            # Never let the sandbox be host-root: RLIMIT_NPROC isn't enforced for root, and a
            # mapped uid 0 owns everything on the host.
            args = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *args]
        return args


@lru_cache(maxsize=4)
def probe_bwrap(bwrap: str = "bwrap") -> None:
    """Check bubblewrap runs here (installed, and user namespaces allowed); raise with what to do."""
    path = shutil.which(bwrap)
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap: `bwrap` is not installed. On Debian/Ubuntu: `sudo apt-get install bubblewrap` "
            "(`make test` and `make run` do this when run as root); elsewhere install your distribution's "
            "bubblewrap package, or use backend='docker' with a reachable Docker daemon.")
    cmd = [path, "--unshare-all", "--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib",
           "--symlink", "usr/lib64", "/lib64", "--symlink", "usr/bin", "/bin", "--proc", "/proc",
           "--uid", str(NOBODY), "--gid", str(NOBODY), "--", "/usr/bin/true"]
    if os.geteuid() == 0:
        cmd = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--", *cmd]
    try:
        r = subprocess.run(cmd, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SandboxUnavailable(f"bubblewrap: probe failed to run ({exc})") from exc
    if r.returncode != 0:
        raise SandboxUnavailable(
            "bubblewrap: installed but can't create namespaces here "
            f"({r.stderr.decode(errors='replace').strip()[:300]}). Allow unprivileged user namespaces "
            "(sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0), or use backend='docker'.")


def bwrap_missing() -> str | None:
    """Why bubblewrap can't run here, or None when it can."""
    try:
        probe_bwrap()
    except SandboxUnavailable as exc:
        return str(exc)
    return None


class DockerExecutor(Executor):
    """The supervisor in a throwaway container; stdin/stdout carry the same frames as bubblewrap's."""

    name = "docker"
    pidns = True

    def __init__(self, limits: Limits | None = None, image: str = "python:3.11-slim"):
        super().__init__(limits)
        self.image = image
        self.container = None

    def _after_stop(self) -> None:
        # Killing `docker run` stops only the client: the container must be killed by name.
        name, self.container = self.container, None
        if name:
            try:
                docker_client().containers.get(name).kill()
            except Exception:  # noqa: BLE001 - already gone (--rm) or daemon unreachable
                pass

    def check_available(self) -> None:
        docker_client(self.image)

    def command(self) -> list[str]:
        self.container = f"emergence-sandbox-{os.getpid()}-{uuid.uuid4().hex[:12]}"
        return ["docker", "run", "--name", self.container, *self.run_flags(), self.image, "python", *PY_FLAGS, "-c", RUNNER_SOURCE,
                "serve", "--pidns"]

    def run_flags(self) -> list[str]:
        lim = self.limits
        mem = f"{lim.memory_mb + 64}m"
        flags = ["-i", "--rm", "--network", "none", "--read-only", "--user", f"{NOBODY}:{NOBODY}",
                 "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--pids-limit", str(lim.max_procs + 4),
                 "--memory", mem, "--memory-swap", mem, "--cpus", str(lim.cpus), "--ipc", "none",
                 "--tmpfs", f"/work:rw,nosuid,nodev,size={(lim.file_size_mb + 16) << 20},mode=1777",
                 "--tmpfs", "/tmp:rw,nosuid,nodev,size=16m,mode=1777", "--workdir", "/work",
                 "--label", "emergence.sandbox=1"]
        for k, v in SANDBOX_ENV.items():
            flags += ["-e", f"{k}={v}"]
        return flags


def docker_client(image: str | None = None):
    """A Docker SDK client with a reachable daemon (and the image present), or SandboxUnavailable."""
    try:
        import docker
    except ImportError as exc:
        raise SandboxUnavailable("docker: the `docker` Python package is not installed") from exc
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except Exception as exc:  # noqa: BLE001 - any failure means no usable daemon
        raise SandboxUnavailable(f"docker: no reachable Docker daemon ({str(exc)[:200]})") from exc
    if image is not None:
        try:
            client.images.get(image)
        except Exception as exc:  # noqa: BLE001
            raise SandboxUnavailable(f"docker: image {image!r} is not present; `docker pull {image}` first") from exc
    if shutil.which("docker") is None:
        raise SandboxUnavailable("docker: the `docker` command-line client is not on PATH")
    return client


class ProcessExecutor(Executor):
    """rlimits only. Not a security boundary: the code runs as this user, with its files and network."""

    name = "process"

    def __init__(self, limits: Limits | None = None, allow_unsafe: bool = False):
        if not allow_unsafe:
            raise SandboxUnavailable(
                "process: this backend is not a security boundary (the code can read this user's files and reach "
                "the network); pass allow_unsafe=True (CLI: --backend process --allow-unsafe) to use it anyway")
        super().__init__(limits)

    def command(self) -> list[str]:
        return [sandbox_python(), *PY_FLAGS, "-c", RUNNER_SOURCE, "serve"]

