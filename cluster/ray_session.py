"""How every job module joins Ray: the cluster it runs under, else `make run`'s head, else a private one.

Order: an explicit address (--address), RAY_ADDRESS (set inside `ray job submit`), the head that
`make run` started on this machine (127.0.0.1:EMERGENCE_GCS_PORT) when it answers, and only then a
private local Ray. Each job says on stderr which one it joined. EMERGENCE_JOIN_HEAD=0 skips the
head (the test suite sets it, so its jobs never land on a user's running cluster).
"""

from __future__ import annotations

import os
import socket
import sys

HOST = "127.0.0.1"
GCS_PORT = int(os.environ.get("EMERGENCE_GCS_PORT", "6390"))
HEAD_ADDRESS = f"{HOST}:{GCS_PORT}"


def gcs_answers() -> bool:
    """Whether something listens on the head's GCS port here (a socket connect, no Ray call)."""
    try:
        with socket.create_connection((HOST, GCS_PORT), timeout=0.5):
            return True
    except OSError:
        return False


def head_address() -> str | None:
    """`make run`'s head on this machine when its GCS port answers."""
    if os.environ.get("EMERGENCE_JOIN_HEAD", "1") == "0":
        return None
    return HEAD_ADDRESS if gcs_answers() else None


JOINED: str | None = None  # which Ray this process's ensure_ray joined or started, for reports


def ensure_ray(address: str | None = None, *, dashboard: bool = False, log_to_driver: bool = True,
               num_cpus: int = 2, namespace: str | None = None) -> bool:
    """Initialise Ray unless it already is; True when this call started or connected it.

    `num_cpus` sizes a private Ray only (a running cluster has the CPUs it has). `dashboard=True`
    is for jobs that run Ray Train: its placement-group cleaner finds the cluster through the
    State API and, without an address, auto-detects -- which fails when another Ray runs on this
    host (say `make run`'s) -- so a private Ray's dashboard is named to every process of the job."""
    global JOINED
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS") or head_address()
    if address in (HEAD_ADDRESS, f"ray://{HEAD_ADDRESS}"):
        use_token_auth()  # make run's head uses token auth
    import ray

    if address:
        ctx = ray.init(address=address, log_to_driver=log_to_driver, configure_logging=False, namespace=namespace)
        where = "make run's head" if address == HEAD_ADDRESS else "the cluster"
        JOINED = f"joined {where} at {address}"
        _say(f"{JOINED} (dashboard {_url(ctx)})")
    else:
        extra = {}
        if dashboard:
            with socket.socket() as s:
                s.bind((HOST, 0))
                port = s.getsockname()[1]
            extra = dict(include_dashboard=True, dashboard_host=HOST, dashboard_port=port,
                         runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://{HOST}:{port}"}})
        ray.init(address="local", num_cpus=num_cpus, log_to_driver=log_to_driver, configure_logging=False,
                 namespace=namespace, **extra)
        JOINED = f"a private local Ray with {num_cpus} CPUs"
        _say(f"no cluster to join (none at {HEAD_ADDRESS}; `make run` starts one): started {JOINED} for this job"
             + (f", dashboard http://{HOST}:{port}" if dashboard else ""))
    return True


def use_token_auth() -> None:
    """Say token auth before joining make run's head. Ray caches its auth mode once read, so the
    cached config is refreshed too, as Ray itself does when it turns token auth on."""
    os.environ["RAY_AUTH_MODE"] = "token"
    if "ray" in sys.modules:
        from ray._raylet import Config

        Config.initialize("")


def quiet_train_console():
    """A Ray Train RunConfig's logging_config that keeps Train's own INFO lines (each report, each
    checkpoint) in the run's log files and off the console; and no print patch on the workers
    (it tees every worker print() into Train's logger as well as stdout, so each line came twice;
    Ray passes the setting on to the workers). The jobs print one line an epoch of their own."""
    from ray.train import LoggingConfig

    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    return LoggingConfig(log_level="WARNING")


def _url(ctx) -> str:
    url = getattr(ctx, "dashboard_url", None) or ""
    return url if not url or url.startswith("http") else f"http://{url}"


def _say(line: str) -> None:
    print(f"Ray: {line}", file=sys.stderr, flush=True)
