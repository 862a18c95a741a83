"""The supervisor that runs *inside* a sandbox. Standard library only: it is started as
`python3 -I -S -B runner.py serve` by every backend, with nothing of the project importable.

It never executes untrusted code itself. For each test it forks a child that applies the
limits, loads the code, calls the entry point with that test's arguments and writes the value
it returned to a pipe of its own; the supervisor enforces the wall clock, caps the captured
output, and kills every process the child left behind before the next test starts.

Why the result channel can't be forged: expected values never enter the sandbox (the host
compares), each child gets a fresh pipe that no other test can reach, the supervisor is PID 1 of
the sandbox (signals from inside are ignored) and not dumpable (no ptrace, no /proc/1/fd from
its children), its own host channel (fds 0/1) is closed in every child before the code runs, and
replies carry the job's id. The worst the code can do is claim a return value, which is no more
than returning it. What the code can still change in the supervisor without ptrace (rlimits,
priority) or leave in the namespaces (SysV IPC, keys) is checked after every job; any change
ends the sandbox so the host starts a fresh one.

Protocol on stdin/stdout: frames of a 4-byte big-endian length and a JSON object.
  host -> supervisor  {"code", "entry", "args": [[...], ...], "limits": {...}}
  supervisor -> host  {"ready": true} once, then per job {"tests": [...], "load_error": str|None}
"""

import builtins
import json
import os
import resource
import select
import signal
import struct
import sys
import tempfile
import time

MAX_FRAME = 64 << 20
MAX_VALUE_BYTES = 1 << 20  # a return value bigger than this is an error, not a result


# --- framing --------------------------------------------------------------------------------
def read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame(fd):
    head = read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > MAX_FRAME:
        raise ValueError(f"frame of {n} bytes exceeds {MAX_FRAME}")
    body = read_exact(fd, n)
    if body is None:
        return None
    return json.loads(body)


def write_frame(fd, obj):
    data = json.dumps(obj, allow_nan=True).encode()
    data = struct.pack(">I", len(data)) + data
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# --- values ---------------------------------------------------------------------------------
def to_jsonable(value, depth=0):
    """JSON-safe copy of a returned value: tuples become lists, sets sorted lists, anything
    else its repr tagged so the host never mistakes it for a real string result."""
    if depth > 64:
        raise ValueError("return value nested deeper than 64 levels")
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 1 << 256:
            return {"__repr__": repr(value)[:200]}
        return value
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v, depth + 1) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [to_jsonable(v, depth + 1) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return sorted(items, key=repr)
    if isinstance(value, dict):
        return {str(k): to_jsonable(v, depth + 1) for k, v in value.items()}
    return {"__repr__": repr(value)[:1000]}


# --- the child ------------------------------------------------------------------------------
def apply_limits(limits):
    mb = 1 << 20
    cpu = max(1, int(limits["cpu_s"] + 0.999))
    pairs = [
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_AS, limits["memory_mb"] * mb, limits["memory_mb"] * mb),
        (resource.RLIMIT_FSIZE, limits["file_size_mb"] * mb, limits["file_size_mb"] * mb),
        (resource.RLIMIT_NOFILE, limits["open_files"], limits["open_files"]),
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_MSGQUEUE, 0, 0),  # no POSIX message queues to outlive the test
    ]
    if limits.get("nproc_rlimit"):
        # Only where no pids cgroup bounds the sandbox: RLIMIT_NPROC counts every process of the uid.
        # The host passes max_procs plus what the uid already runs.
        n = int(limits["nproc_rlimit"])
        pairs.append((resource.RLIMIT_NPROC, n, n))
    for which, soft, hard in pairs:
        resource.setrlimit(which, (soft, hard))


def child_main(code_obj, entry, args, limits, result_w, out_w, err_w, workdir):
    """Runs in the forked child; never returns."""
    status = 70
    try:
        os.setsid()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        try:  # the OOM killer takes the code under test before its supervisor
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        if result_w < 3:
            raise RuntimeError("result pipe collides with stdio")
        os.closerange(3, result_w)
        os.closerange(result_w + 1, 1 << 16)
        os.chdir(workdir)
        apply_limits(limits)
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        sys.stdin = open(0, "r", closefd=False)
        payload = run_entry(code_obj, entry, args)
        status = 0
    except BaseException as exc:  # noqa: BLE001 - the child reports everything
        payload = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001
        pass
    try:
        data = json.dumps(payload, allow_nan=True).encode()
        if len(data) > MAX_VALUE_BYTES:
            data = json.dumps({"ok": False, "error": f"return value larger than {MAX_VALUE_BYTES} bytes"}).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(result_w, view):]
    except BaseException:  # noqa: BLE001
        status = 71
    os._exit(status)


def run_entry(code_obj, entry, args):
    namespace = {"__name__": "__tool__", "__builtins__": builtins}
    try:
        exec(code_obj, namespace)
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "stage": "load", "error": f"{type(exc).__name__}: {exc}"[:2000]}
    fn = namespace.get(entry)
    if not callable(fn):
        return {"ok": False, "stage": "load", "error": f"NameError: the code defines no callable {entry!r}"}
    try:
        value = fn(*args)
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}
    try:
        return {"ok": True, "value": to_jsonable(value)}
    except BaseException as exc:  # noqa: BLE001
        return {"ok": False, "error": f"unserializable return value: {type(exc).__name__}: {exc}"[:2000]}


# --- the supervisor -------------------------------------------------------------------------
class Capture:
    """Reads one pipe into a buffer capped at `cap` bytes; past the cap the read end is closed,
    so a flooding writer gets EPIPE instead of being drained forever."""

    def __init__(self, fd, cap):
        self.fd, self.cap, self.buf, self.truncated = fd, cap, bytearray(), False

    def pump(self):
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            self.close()
            return
        room = self.cap - len(self.buf)
        self.buf += chunk[:room]
        if len(chunk) > room:
            self.truncated = True
            self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def kill_leftovers(pgid, pidns):
    """Kill the child's process group, and in a PID namespace of our own every other process
    (detached grandchildren included), then wait until /proc shows none of them."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:
        pass
    if not pidns:
        return
    me = os.getpid()
    deadline = time.monotonic() + 2.0
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except OSError:
            pass
        while True:  # reap our own zombies
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, me)]
        # As PID 1 we inherit every orphan and reap it here; otherwise zombies are init's to reap.
        alive = others if me == 1 else [p for p in others if not _is_zombie(p)]
        if not alive or time.monotonic() > deadline:
            return
        time.sleep(0.001)


def _is_zombie(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True


def run_test(code_obj, entry, args, limits, pidns, index, scratch):
    workdir = os.path.join(scratch, f"t{index}")
    os.mkdir(workdir, 0o700)
    result_r, result_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    start = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.close(result_r), os.close(out_r), os.close(err_r)
        child_main(code_obj, entry, args, limits, result_w, out_w, err_w, workdir)
    for fd in (result_w, out_w, err_w):
        os.close(fd)
    cap = limits["output_bytes"]
    captures = {"result": Capture(result_r, MAX_VALUE_BYTES + 4096), "stdout": Capture(out_r, cap),
                "stderr": Capture(err_r, cap)}
    deadline = start + limits["wall_s"]
    timed_out = False
    wait_status = None
    while True:
        if wait_status is None:
            done, status_now = os.waitpid(pid, os.WNOHANG)
            if done:
                wait_status = status_now
        if wait_status is not None:
            # The child is gone, so everything it wrote is already in the pipes. A grandchild
            # may still hold them open; it is killed below, so take what is there and stop.
            for c in captures.values():
                while c.fd is not None and select.select([c.fd], [], [], 0)[0]:
                    c.pump()
            break
        left = deadline - time.monotonic()
        if left <= 0:
            timed_out = True
            break
        open_fds = {c.fd: c for c in captures.values() if c.fd is not None}
        if open_fds:
            ready, _, _ = select.select(list(open_fds), [], [], min(left, 0.005))
            for fd in ready:
                open_fds[fd].pump()
        else:
            time.sleep(min(left, 0.0005))
    duration = time.monotonic() - start
    kill_leftovers(pid, pidns)
    if wait_status is None:
        try:
            _, wait_status = os.waitpid(pid, 0)
        except ChildProcessError:
            wait_status = 0
    for c in captures.values():
        c.close()
    if pidns:  # the sandbox's own tmpfs mounts: clear them all
        for d in SCRATCH:
            wipe(d)
    else:
        wipe(workdir, keep_root=False)
    record = {"duration_s": round(duration, 6),
              "stdout": captures["stdout"].buf.decode("utf-8", "replace"),
              "stderr": captures["stderr"].buf.decode("utf-8", "replace"),
              "output_truncated": captures["stdout"].truncated or captures["stderr"].truncated}
    if timed_out:
        record.update(status="timeout", error=f"wall clock limit of {limits['wall_s']} s exceeded")
        return record
    raw = bytes(captures["result"].buf)
    if raw:
        try:
            payload = json.loads(raw)
            if not isinstance(payload, dict) or "ok" not in payload:
                raise ValueError("not a result record")
        except (ValueError, RecursionError):
            record.update(status="error", error="the code wrote a malformed result record")
            return record
        if payload["ok"]:
            record.update(status="returned", value=payload.get("value"))
        else:
            record.update(status="error", error=str(payload.get("error"))[:2000], stage=payload.get("stage"))
        return record
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = {"SIGXCPU": "CPU time limit exceeded", "SIGKILL": "killed (memory or process limit, or by the code)",
               "SIGXFSZ": "file size limit exceeded", "SIGSEGV": "segmentation fault"}.get(name, "killed")
        if name == "SIGXCPU":
            record.update(status="timeout", error=f"{why} ({limits['cpu_s']} s)")
        else:
            record.update(status="error", error=f"{why}: {name}")
        return record
    code = os.WEXITSTATUS(wait_status)
    record.update(status="error", error=f"exited with status {code} before returning a value")
    return record


def wipe(path, keep_root=True):
    """Remove everything under `path` (not following links), restoring permissions the code may
    have taken away from itself first, so nothing one test wrote is there for the next."""
    try:
        os.chmod(path, 0o700)  # before listing: a mode-000 directory can't be read
    except OSError:
        pass
    try:
        entries = os.listdir(path)
    except OSError:
        return
    for name in entries:
        p = os.path.join(path, name)
        if os.path.isdir(p) and not os.path.islink(p):
            wipe(p, keep_root=False)
        else:
            try:
                os.unlink(p)
            except OSError:
                pass
    if not keep_root:
        try:
            os.rmdir(path)
        except OSError:
            pass


SCRATCH = ("/work", "/tmp")


def make_undumpable():
    """PR_SET_DUMPABLE=0: same-uid children can't ptrace the supervisor or open its /proc files."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)
    except Exception:  # noqa: BLE001 - best effort where ctypes is missing
        pass


def own_state():
    """What the code under test can change in the supervisor without ptrace (prlimit and
    setpriority only check the uid) or leave behind in the sandbox's namespaces (SysV IPC
    objects, keys). Compared after every job: any change ends this sandbox, so the next job
    starts in a fresh one."""
    limits = tuple(resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_"))
    try:
        nice = os.getpriority(os.PRIO_PROCESS, 0)
    except OSError:
        nice = None
    ipc = []
    for name in ("shm", "msg", "sem"):
        try:
            with open(f"/proc/sysvipc/{name}") as f:
                ipc.append(len(f.read().splitlines()))
        except OSError:
            ipc.append(None)
    try:
        with open("/proc/keys") as f:
            keys = len(f.read().splitlines())
    except OSError:
        keys = None
    return limits, nice, tuple(ipc), keys


def run_job(job, pidns):
    try:
        code_obj = compile(job["code"], "<tool>", "exec")
    except (SyntaxError, ValueError) as exc:
        return {"id": job.get("id"), "load_error": f"{type(exc).__name__}: {exc}", "tests": []}
    # in a sandbox, /work is its private tmpfs; the process backend gets a temporary directory
    scratch = "/work" if pidns else tempfile.mkdtemp(prefix="emergence-sandbox-")
    try:
        tests = [run_test(code_obj, job["entry"], args, job["limits"], pidns, i, scratch)
                 for i, args in enumerate(job["args"])]
    finally:
        if not pidns:
            wipe(scratch, keep_root=False)
    return {"id": job.get("id"), "load_error": None, "tests": tests}


def serve(pidns):
    make_undumpable()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    clean = own_state()
    write_frame(1, {"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]})
    while True:
        job = read_frame(0)
        if job is None:
            return
        try:
            reply = run_job(job, pidns)
        except Exception as exc:  # noqa: BLE001 - a supervisor bug is reported, not hidden
            reply = {"id": job.get("id"), "supervisor_error": f"{type(exc).__name__}: {exc}"}
        tainted = own_state() != clean
        reply["restart"] = tainted
        write_frame(1, reply)
        if tainted:  # the host starts a fresh sandbox for the next job
            return


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "serve":
        sys.stderr.write("usage: runner.py serve [--pidns]\n")
        sys.exit(2)
    serve(pidns="--pidns" in sys.argv[2:])
