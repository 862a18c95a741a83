"""How every job module joins Ray: the cluster it runs under, or a private local one."""

from __future__ import annotations

import os
import socket


def ensure_ray(address: str | None = None, *, dashboard: bool = False, log_to_driver: bool = True) -> bool:
    """Initialise Ray unless it already is; True when this call started or connected it.

    Inside `ray job submit` (RAY_ADDRESS set) or with `address`, connect to that cluster;
    otherwise start a private local Ray with 2 CPUs. `dashboard=True` is for jobs that run Ray
    Train: its placement-group cleaner finds the cluster through the State API and, without an
    address, auto-detects -- which fails when another Ray runs on this host (say `make run`'s) --
    so the private Ray's dashboard is named to every process of the job."""
    import ray

    if ray.is_initialized():
        return False
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=log_to_driver)
    elif not dashboard:
        ray.init(address="local", num_cpus=2, log_to_driver=log_to_driver)
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        ray.init(address="local", num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1", dashboard_port=port,
                 runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}},
                 log_to_driver=log_to_driver)
    return True
