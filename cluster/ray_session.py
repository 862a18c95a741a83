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


def head_address() -> str | None:
    """`make run`'s head on this machine when its GCS port answers (a socket connect, no Ray call)."""
    if os.environ.get("EMERGENCE_JOIN_HEAD", "1") == "0":
        return None
    try:
        with socket.create_connection((HOST, GCS_PORT), timeout=0.5):
            return HEAD_ADDRESS
    except OSError:
        return None


def ensure_ray(address: str | None = None, *, dashboard: bool = False, log_to_driver: bool = True,
               num_cpus: int = 2, namespace: str | None = None) -> bool:
    """Initialise Ray unless it already is; True when this call started or connected it.

    `num_cpus` sizes a private Ray only (a running cluster has the CPUs it has). `dashboard=True`
    is for jobs that run Ray Train: its placement-group cleaner finds the cluster through the
    State API and, without an address, auto-detects -- which fails when another Ray runs on this
    host (say `make run`'s) -- so a private Ray's dashboard is named to every process of the job."""
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    joined_head = False
    if not address and (address := head_address()):
        joined_head = True
        # make run's head uses token auth; Ray reads the mode once, so say it before its first use
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if address:
        ctx = ray.init(address=address, log_to_driver=log_to_driver, configure_logging=False, namespace=namespace)
        where = "make run's head" if joined_head else "the cluster"
        _say(f"joined {where} at {address} (dashboard {_url(ctx)})")
    elif not dashboard:
        ray.init(address="local", num_cpus=num_cpus, log_to_driver=log_to_driver, configure_logging=False,
                 namespace=namespace)
        _say(f"no cluster to join (none at {HEAD_ADDRESS}; `make run` starts one): started a private local Ray "
             f"with {num_cpus} CPUs for this job")
    else:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=True, dashboard_host=HOST, dashboard_port=port,
                 runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://{HOST}:{port}"}},
                 log_to_driver=log_to_driver, configure_logging=False, namespace=namespace)
        _say(f"no cluster to join (none at {HEAD_ADDRESS}; `make run` starts one): started a private local Ray "
             f"with {num_cpus} CPUs for this job, dashboard http://{HOST}:{port}")
    return True


def _url(ctx) -> str:
    url = getattr(ctx, "dashboard_url", None) or ""
    return url if not url or url.startswith("http") else f"http://{url}"


def _say(line: str) -> None:
    print(f"Ray: {line}", file=sys.stderr, flush=True)
