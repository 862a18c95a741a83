"""Shared fixtures. One Ray session serves the whole test run (starting Ray costs seconds);
pure-library tests never request it, so they run without Ray."""

from __future__ import annotations

import os
import socket

import pytest

# Jobs and benchmarks that the tests start never join a cluster a user has running (`make run`'s
# head): they use the session's Ray, or a private one (cluster.ray_session).
os.environ["EMERGENCE_JOIN_HEAD"] = "0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ray_session():
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if not ray.is_initialized():
        # The dashboard stays on: Tune's placement-group cleanup needs the State API.
        # address="local": a fresh private instance even while `make run` has a cluster up.
        # Train v2's placement-group cleaner finds the cluster through the State API; named here,
        # it does not auto-detect (and fail on) another Ray running on this host.
        port = free_port()
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            dashboard_port=port,
            runtime_env={"env_vars": {"RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{port}"}},
            log_to_driver=False,
            configure_logging=False,
        )
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def serve_session(ray_session):
    """Serve on a free loopback port for the whole run; tests deploy and delete apps on it."""
    from ray import serve

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    yield f"http://127.0.0.1:{port}"
    serve.shutdown()


SHARED_APP = "emergence-shared"


@pytest.fixture(scope="session")
def shared_app(serve_session, tmp_path_factory):
    """The whole app as `make run` serves it (the shipped engine and NVP model), deployed once for
    every test module that only talks to it over HTTP: deploying it costs about 30 s here. Its
    memory and prediction log are the run's own. Modules that need other settings deploy their own.
    Yields (base URL, app name, prediction log path)."""
    import uuid

    from ray import serve

    from serving.app import build_app

    root = tmp_path_factory.mktemp("shared-app")
    log = root / "predictions.jsonl"
    serve.run(build_app({"memory_root": str(root / "memory"), "memory_router": f"router-{uuid.uuid4().hex[:6]}",
                         "log_path": str(log)}), name=SHARED_APP, route_prefix=f"/{SHARED_APP}")
    yield f"{serve_session}/{SHARED_APP}", SHARED_APP, log
    serve.delete(SHARED_APP)
