"""Start, inspect and stop the local Ray head with the dashboard and the Serve app.

    python -m cluster.local start    # what `make run` / `emergence up` do
    python -m cluster.local status
    python -m cluster.local stop     # what `make stop` does: only this head, never another Ray

The head listens on 127.0.0.1 (GCS 6390, dashboard 8265, metrics 8080) with token auth, which
Ray 2.60 turns on by default; the Ray CLIs need RAY_AUTH_MODE=token to find the token. Its
session lives under its own temp dir (/tmp/emergence-ray-6390), which is how `stop` tells its
processes from those of any other Ray on the machine (a test run's, say).

POST /predict and POST /synthesize serve the models shipped in emergence/models (each checked
against its model card before anything starts); EMERGENCE_NVP_MODEL and EMERGENCE_ENGINE_MODEL
point them at models you trained. Nothing is trained here. Jobs submitted to this head (and
`python -m training.*` / `tune.*` run beside it) write their runs under EMERGENCE_RUNS, this
checkout's runs/ unless set.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from cluster.ray_session import GCS_PORT, HOST, gcs_answers
from emergence.paths import runs_root

DASHBOARD_PORT = int(os.environ.get("EMERGENCE_DASHBOARD_PORT", "8265"))
SERVE_PORT = int(os.environ.get("EMERGENCE_SERVE_PORT", "8000"))
GRPC_PORT = int(os.environ.get("EMERGENCE_GRPC_PORT", "50051"))
METRICS_PORT = int(os.environ.get("EMERGENCE_METRICS_PORT", "8080"))
NUM_CPUS = int(os.environ.get("EMERGENCE_NUM_CPUS", str(os.cpu_count() or 2)))
TEMP_DIR = os.path.abspath(os.environ.get("EMERGENCE_RAY_TEMP_DIR", f"/tmp/emergence-ray-{GCS_PORT}"))
ADDRESS = f"{HOST}:{GCS_PORT}"
DASHBOARD = f"http://{HOST}:{DASHBOARD_PORT}"
SERVE_URL = f"http://{HOST}:{SERVE_PORT}"


def _ray_cli() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "ray")
    return exe if os.path.exists(exe) else (shutil.which("ray") or "ray")


def _env() -> dict:
    # The venv's bin goes first on PATH: `ray job submit ... -- python -m ...` runs the job's
    # `python` with the head's PATH, and it must be the interpreter that has the project.
    # EMERGENCE_RUNS: jobs run in a copy of the working dir that Ray deletes with the session, so
    # their run storage, data and models default to this checkout's runs/ instead.
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    # RAY_API_SERVER_ADDRESS: the head's own session (its address file) is under TEMP_DIR, so Train's
    # placement-group cleaner and Tune, running on the head, are told its dashboard instead of
    # auto-detecting -- which finds nothing, or another Ray on the machine.
    return {**os.environ, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0",
            "EMERGENCE_RUNS": str(runs_root()), "RAY_API_SERVER_ADDRESS": DASHBOARD}


def head_running() -> bool:
    if not gcs_answers():  # nothing listens: no head, and no need to ask `ray status` (seconds)
        return False
    try:
        r = subprocess.run([_ray_cli(), "status", "--address", ADDRESS], env=_env(), capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return False
    return r.returncode == 0


def healthz(timeout: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(f"{SERVE_URL}/healthz", timeout=timeout) as resp:
            return json.loads(resp.read())
    except OSError:
        return None


def _predict_curl(model_path: str) -> str:
    """A /predict example fed with the window size the served model reads."""
    try:
        with open(os.path.join(model_path, "config.json")) as f:
            history = int(json.load(f)["history"])
    except (OSError, ValueError, KeyError):
        history = 3  # NVPConfig's default
    py = sys.executable
    return (f"""{py} -c "import json, numpy as np; e = np.random.default_rng(0).random(({history}, 64, 64)); """
            f"""print(json.dumps({{'field': e[-1].tolist(), 'previous': e[:-1].tolist(), 'domain': 'heat', 'steps': 3}}))" \\
       | curl -s -X POST {SERVE_URL}/predict -H 'content-type: application/json' -d @- | head -c 400; echo""")


def start() -> None:
    t0 = time.time()
    engine_path, model_path = served_models()  # a missing or corrupt model stops us before Ray starts
    if head_running():
        print(f"Ray head already running at {ADDRESS}: deploying onto it")
    else:
        cmd = [_ray_cli(), "start", "--head", f"--node-ip-address={HOST}", f"--port={GCS_PORT}", f"--num-cpus={NUM_CPUS}",
               f"--temp-dir={TEMP_DIR}", "--include-dashboard=true", f"--dashboard-host={HOST}",
               f"--dashboard-port={DASHBOARD_PORT}", f"--metrics-export-port={METRICS_PORT}", "--disable-usage-stats"]
        print(f"Starting the Ray head at {ADDRESS} (session and logs under {TEMP_DIR})")
        r = subprocess.run(cmd, env=_env(), capture_output=True, text=True)
        if r.returncode != 0:  # Ray's own banner only when it failed: it says why
            sys.stdout.write(r.stdout + r.stderr)
            raise SystemExit(f"`ray start` failed (exit {r.returncode})")
    deploy(engine_path, model_path)
    print(f"""
Emergence is up ({time.time() - t0:.0f} s).
  Engine          {engine_path}
  NVP model       {model_path}
  Ray dashboard   {DASHBOARD}
  Serve API       {SERVE_URL}   (OpenAPI docs: {SERVE_URL}/docs)
  Metrics         http://{HOST}:{METRICS_PORT}/metrics   (Prometheus config: cluster/prometheus.yml)

Try:
  curl -s -X POST {SERVE_URL}/synthesize -H 'content-type: application/json' -d '{{"intent": "keep the words longer than four letters"}}'
  curl -s {SERVE_URL}/synthesize/model            # the engine, its settings and model card
  curl -s -X POST {SERVE_URL}/relax -H 'content-type: application/json' \
       -d '{{"problem": {{"modules": [{{"kind": "gating", "count": 5, "a": 0.15, "b": 0.05, "gain": [0, 0.02, 0.04, 0.06, 0.08]}}],
            "couplings": [{{"family": "quadratic", "i": [0,1,2,3,4], "j": [1,2,3,4,0], "weight": 0.6}}]}}}}'
  {_predict_curl(model_path)}
  RAY_AUTH_MODE=token ray job submit --address {DASHBOARD} --working-dir . -- python -m tune.coupling --quick
More: README.md (one example per capability), docs/api.md (every route).
Stop with: make stop
""")


def served_models() -> tuple[str, str]:
    """(engine, NVP model) that the app will serve: the shipped ones, or EMERGENCE_ENGINE_MODEL /
    EMERGENCE_NVP_MODEL; each checked (its card's checksum) so a bad file is named before Ray starts."""
    from emergence.models import ModelFileError, check, default_path

    paths = (os.path.abspath(default_path("engine")), os.path.abspath(default_path("nvp")))
    for path in paths:
        try:
            check(path)
        except ModelFileError as exc:
            raise SystemExit(f"error: {exc}") from None
    return paths


def deploy(engine_path: str | None = None, model_path: str | None = None) -> None:
    """Deploy the Serve app (detached) and the shared actors onto the running head."""
    if engine_path is None or model_path is None:
        engine_path, model_path = served_models()
    os.environ["RAY_AUTH_MODE"] = "token"  # a driver joining a token-auth head must say so
    import ray
    from ray import serve

    from actors.energy import get_or_create_coordinator
    from actors.memory_shard import default_root, get_or_create_router
    from actors.sandbox_worker import get_or_create_pool
    from emergence.sandbox import available_backends
    from serving.app import build_app

    ray.init(address=ADDRESS, namespace="emergence", configure_logging=False, log_to_driver=False)
    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # Serve's start-up INFO lines stay in its logs
    try:
        get_or_create_coordinator()
        backends = available_backends()
        if "ok" in (backends["bubblewrap"], backends["docker"]):
            pool = get_or_create_pool(detached=True, size=2)
            ray.get(pool.stats.remote(), timeout=60)  # workers started, sandboxes warm
            print("Sandbox pool: 'sandbox-pool' in namespace 'emergence' (2 workers; no HTTP route runs code)")
        else:
            print(f"Sandbox pool not started: {backends['bubblewrap']}")
        router = get_or_create_router(default_root(), detached=True)
        names = [c["name"] for c in ray.get(router.list_collections.remote(), timeout=120)]
        print(f"Vector memory: 'memory-router' in namespace 'emergence', data in {default_root()} "
              f"(collections: {', '.join(names) or 'none yet'})")
        from serving.memory_grpc.actor import start_detached

        print(f"Memory gRPC: {start_detached(port=GRPC_PORT, host=HOST)} (service emergence.memory.v1.Memory)")
        serve.start(http_options={"host": HOST, "port": SERVE_PORT})
        serve.run(build_app({"model_path": model_path, "engine_path": engine_path}), name="emergence",
                  route_prefix="/", blocking=False)
        deadline = time.time() + 120
        while time.time() < deadline and healthz() is None:
            time.sleep(1)
        if healthz() is None:
            raise SystemExit(f"Serve did not answer on {SERVE_URL}/healthz within 120 s; see `ray status` and the dashboard")
    finally:
        ray.shutdown()


def stop() -> None:
    """Stop this head's processes (found by its temp dir) and nothing else: never `ray stop`, which
    ends every Ray on the machine, a test run's too."""
    if head_running():
        os.environ["RAY_AUTH_MODE"] = "token"
        try:
            import ray
            from ray import serve

            logging.getLogger("ray.serve").setLevel(logging.WARNING)  # no "nothing to shut down" chatter
            ray.init(address=ADDRESS, configure_logging=False, log_to_driver=False)
            serve.shutdown()
            ray.shutdown()
        except Exception as exc:  # stopping must go on even if Serve is already gone
            print(f"(serve shutdown: {exc})")
    procs = head_processes()
    if not procs and head_running():
        print(f"a Ray head answers at {ADDRESS}, but none of its processes runs under {TEMP_DIR}: it was not "
              "started by this make run, so it is left alone (`ray stop` ends it, and every other Ray here)")
    elif not procs:
        print(f"no Ray head of ours is running (none under {TEMP_DIR})")
    else:
        print(f"stopping the Ray head at {ADDRESS}: {len(procs)} processes")
        _terminate(procs)
    from emergence.sandbox.cgroup import reap_stale

    reap_stale()  # the sandbox workers' cgroups (their processes are gone with Ray)


def head_processes(temp_dir: str = TEMP_DIR) -> list:
    """This head's processes: those started with a `--flag=` argument naming its temp dir (GCS,
    raylet, dashboard, monitors: --temp-dir=, --session-dir=, --log_dir=, ...), and every
    descendant of them (workers, actors, Serve replicas). A `tail` or editor open on one of its
    log files names the path without such a flag, and is left alone."""
    import psutil

    temp_dir = os.path.abspath(temp_dir)

    def names_it(arg: str) -> bool:
        flag, eq, value = arg.partition("=")
        return flag.startswith("--") and bool(eq) and (value == temp_dir or value.startswith(temp_dir + os.sep))

    roots = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if any(names_it(arg) for arg in p.info["cmdline"] or ()):
                roots.append(p)
        except (psutil.Error, TypeError):
            continue
    found = {p.pid: p for p in roots}
    for p in roots:
        try:
            found.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            continue
    found.pop(os.getpid(), None)
    return list(found.values())


def _terminate(procs: list, grace_s: float = 10.0) -> None:
    import psutil

    for p in procs:
        try:
            p.send_signal(signal.SIGTERM)
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive, timeout=5)


def status() -> int:
    up = head_running()
    print(f"Ray head {ADDRESS}: {'running' if up else 'not running'}")
    if up:
        subprocess.run([_ray_cli(), "status", "--address", ADDRESS], env=_env(), check=False)
    h = healthz()
    print(f"Serve {SERVE_URL}/healthz: {h if h else 'not answering'}")
    return 0 if up else 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Local Ray head + Serve app for Emergence.")
    ap.add_argument("action", choices=["start", "stop", "status", "deploy"])
    args = ap.parse_args(argv)
    # before anything imports ray: it reads the auth mode once, and this head uses token auth
    os.environ["RAY_AUTH_MODE"] = "token"
    if args.action == "deploy":
        deploy()
        return 0
    return {"start": start, "stop": stop, "status": status}[args.action]() or 0


if __name__ == "__main__":
    sys.exit(main())
