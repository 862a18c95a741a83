"""Start, inspect and stop the local Ray head with the dashboard and the Serve app.

    python -m cluster.local start    # what `make run` / `emergence up` do
    python -m cluster.local status
    python -m cluster.local stop

The head listens on 127.0.0.1 (GCS 6390, dashboard 8265, metrics 8080) with token auth, which
Ray 2.60 turns on by default; the Ray CLIs need RAY_AUTH_MODE=token to find the token.

POST /predict serves the NVP model at runs/nvp/default (EMERGENCE_NVP_MODEL overrides): the first
start trains it (a few minutes, progress on stderr), later starts reuse it. POST /synthesize
serves the engine at runs/emergence/model.pt (EMERGENCE_ENGINE_MODEL overrides), trained on the
first start by `python -m training.emergence --quick` (a few minutes more).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request

HOST = "127.0.0.1"
GCS_PORT = int(os.environ.get("EMERGENCE_GCS_PORT", "6390"))
DASHBOARD_PORT = int(os.environ.get("EMERGENCE_DASHBOARD_PORT", "8265"))
SERVE_PORT = int(os.environ.get("EMERGENCE_SERVE_PORT", "8000"))
GRPC_PORT = int(os.environ.get("EMERGENCE_GRPC_PORT", "50051"))
METRICS_PORT = int(os.environ.get("EMERGENCE_METRICS_PORT", "8080"))
NUM_CPUS = int(os.environ.get("EMERGENCE_NUM_CPUS", str(os.cpu_count() or 2)))
ADDRESS = f"{HOST}:{GCS_PORT}"
DASHBOARD = f"http://{HOST}:{DASHBOARD_PORT}"
SERVE_URL = f"http://{HOST}:{SERVE_PORT}"


def _ray_cli() -> str:
    exe = os.path.join(os.path.dirname(sys.executable), "ray")
    return exe if os.path.exists(exe) else (shutil.which("ray") or "ray")


def _env() -> dict:
    # The venv's bin goes first on PATH: `ray job submit ... -- python -m ...` runs the job's
    # `python` with the head's PATH, and it must be the interpreter that has the project.
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    return {**os.environ, "PATH": path, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}


def head_running() -> bool:
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
    if head_running():
        print(f"Ray head already running at {ADDRESS}")
    else:
        cmd = [_ray_cli(), "start", "--head", f"--node-ip-address={HOST}", f"--port={GCS_PORT}", f"--num-cpus={NUM_CPUS}",
               "--include-dashboard=true", f"--dashboard-host={HOST}", f"--dashboard-port={DASHBOARD_PORT}",
               f"--metrics-export-port={METRICS_PORT}", "--disable-usage-stats"]
        print("$", " ".join(cmd))
        subprocess.run(cmd, env=_env(), check=True)
    model_path = deploy()
    print(f"""
Emergence is up.
  Ray dashboard   {DASHBOARD}
  Serve API       {SERVE_URL}   (OpenAPI docs: {SERVE_URL}/docs)
  Metrics         http://{HOST}:{METRICS_PORT}/metrics   (Prometheus config: cluster/prometheus.yml)

Try:
  curl -s {SERVE_URL}/healthz
  curl -s -X POST {SERVE_URL}/relax -H 'content-type: application/json' \\
       -d '{{"problem": {{"modules": [{{"kind": "gating", "count": 5, "a": 0.15, "b": 0.05, "gain": [0, 0.02, 0.04, 0.06, 0.08]}}],
            "couplings": [{{"family": "quadratic", "i": [0,1,2,3,4], "j": [1,2,3,4,0], "weight": 0.6}}]}}, "with_optimum": true}}'
  curl -s -X PUT {SERVE_URL}/memory/notes -H 'content-type: application/json' -d '{{"dim": 4, "index": "hnsw", "shards": 2}}'
  curl -s -X POST {SERVE_URL}/memory/notes/add -H 'content-type: application/json' -d '{{"vectors": [[1,0,0,0],[0,1,0,0]], "ids": [1,2], "metadata": [{{"text": "first"}}, {{"text": "second"}}]}}'
  curl -s -X POST {SERVE_URL}/memory/notes/search -H 'content-type: application/json' -d '{{"vector": [0.9,0.1,0,0], "k": 1, "with_metadata": true}}'
  curl -s -X POST {SERVE_URL}/synthesize -H 'content-type: application/json' -d '{{"intent": "keep the words longer than four letters"}}'
  curl -s -X POST {SERVE_URL}/synthesize -H 'content-type: application/json' \\
       -d '{{"intent": "add k to every number", "examples": [{{"args": [[1, 2], 3], "expected": [4, 5]}}]}}'
  curl -s -X POST {SERVE_URL}/synthesize/refine -H 'content-type: application/json' \\
       -d '{{"program": {{"name": "sort_numbers", "intent": "sort the numbers", "params": [{{"name": "numbers", "type": "list[int]"}}], "steps": [{{"op": "SORT.asc"}}]}}, "feedback": "then keep the first 3"}}'
  curl -s {SERVE_URL}/predict/model          # the NVP model: history, domains ({model_path})
  {_predict_curl(model_path)}
  RAY_AUTH_MODE=token ray job submit --address {DASHBOARD} --working-dir . -- python -m tune.coupling --quick
  RAY_AUTH_MODE=token ray job submit --address {DASHBOARD} --working-dir . -- python -m actors.sandbox_worker --code tool.py --entry NAME --tests tests.json
Stop with: make stop
""")


ENGINE_MODEL = os.environ.get("EMERGENCE_ENGINE_MODEL", "runs/emergence/model.pt")


def ensure_engine_model(path: str = ENGINE_MODEL) -> str:
    """The engine for /synthesize; trained (quick) when missing, in its own private Ray, with its
    progress on this terminal. If training fails, /synthesize answers 503 saying so."""
    path = os.path.abspath(path)
    if not os.path.exists(path):
        print("Training the default Emergence Engine model (first start only; a few minutes on 2 cores)")
        rc = subprocess.call([sys.executable, "-m", "training.emergence", "--quick", "--out", path,
                              "--data", os.path.dirname(path)])
        if rc != 0:
            print(f"engine training failed (exit {rc}); POST /synthesize will answer 503 until "
                  f"`python -m training.emergence --quick --out {path}` succeeds")
    print(f"Engine model: {path}")
    return path


def deploy() -> str:
    """Deploy the Serve app (detached) and the shared energy coordinator onto the running head.
    Trains the default NVP model first when there is none; returns its path."""
    from emergence.nvp.default import DEFAULT_MODEL_DIR, ensure_default_model

    # Trained here, before Ray is joined, with its progress bar on this terminal; a replica
    # would train it silently and past the health-check deadline.
    model_path = os.path.abspath(ensure_default_model(DEFAULT_MODEL_DIR, progress=True))
    print(f"NVP model: {model_path}")
    engine_path = ensure_engine_model()

    os.environ["RAY_AUTH_MODE"] = "token"  # a driver joining a token-auth head must say so
    import ray
    from ray import serve

    from actors.energy import get_or_create_coordinator
    from actors.memory_shard import default_root, get_or_create_router
    from actors.sandbox_worker import get_or_create_pool
    from emergence.sandbox import available_backends
    from serving.app import build_app

    ray.init(address=ADDRESS, namespace="emergence", configure_logging=False, log_to_driver=False)
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
    return model_path


def stop() -> None:
    if head_running():
        os.environ["RAY_AUTH_MODE"] = "token"
        try:
            import ray
            from ray import serve

            ray.init(address=ADDRESS, configure_logging=False, log_to_driver=False)
            serve.shutdown()
            ray.shutdown()
        except Exception as exc:  # stopping must go on even if Serve is already gone
            print(f"(serve shutdown: {exc})")
    subprocess.run([_ray_cli(), "stop"], env=_env(), check=False)
    from emergence.sandbox.cgroup import reap_stale

    reap_stale()  # the sandbox workers' cgroups (their processes are gone with Ray)


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
    if args.action == "deploy":
        deploy()
        return 0
    return {"start": start, "stop": stop, "status": status}[args.action]() or 0


if __name__ == "__main__":
    sys.exit(main())
