"""The Grafana dashboard (cluster/grafana_dashboard.json) against the metrics the code defines (offline, no Ray)."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path

import pytest

from cluster.manifests import GRAFANA_DASHBOARD_PATH

ROOT = Path(__file__).resolve().parents[1]
METRIC_DIRS = ("serving", "actors")  # where the code creates ray.serve.metrics / ray.util.metrics objects
METRIC_MODULES = {"ray.serve.metrics", "ray.util.metrics"}
METRIC_RE = re.compile(r"\bray_[a-z0-9_]+")  # Ray prefixes every metric it exports with ray_
# How Ray's Prometheus exporter names the series of a metric called `name`: ray_<name><suffix>.
SUFFIXES = {"Counter": ("_total",), "Gauge": ("",), "Histogram": ("_bucket", "_sum", "_count")}
# Ray's own (system) metrics the dashboard reads; test_ray_system_metrics_exist checks them against Ray's source.
RAY_SYSTEM_METRICS = {"ray_node_cpu_utilization", "ray_node_mem_used"}


def _defined_metrics() -> dict[str, str]:
    """{name: "Counter" | "Gauge" | "Histogram"} for every metric constructed under METRIC_DIRS.

    Only calls of classes imported from ray's metrics modules count (not collections.Counter); the name is
    the first argument (or name=), a string literal or a module-level string constant (serving/metrics.py).
    """
    found = {}
    for path in sorted(p for d in METRIC_DIRS for p in (ROOT / d).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        kinds = {
            alias.asname or alias.name: alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module in METRIC_MODULES
            for alias in node.names
            if alias.name in SUFFIXES
        }
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(getattr(node.value, "value", None), str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in kinds):
                continue
            arg = node.args[0] if node.args else next(k.value for k in node.keywords if k.arg == "name")
            name = arg.value if isinstance(arg, ast.Constant) else constants.get(getattr(arg, "id", None))
            assert isinstance(name, str), f"{path}:{node.lineno}: can't resolve the metric's name"
            assert found.get(name, kinds[node.func.id]) == kinds[node.func.id], f"{name} defined as two kinds"
            found[name] = kinds[node.func.id]
    return found


@pytest.fixture(scope="module")
def defined() -> dict[str, str]:
    return _defined_metrics()


@pytest.fixture(scope="module")
def dashboard() -> dict:
    with open(GRAFANA_DASHBOARD_PATH, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(scope="module")
def exprs(dashboard) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p["targets"]]


@pytest.fixture(scope="module")
def used(exprs) -> set[str]:
    return {m for e in exprs for m in METRIC_RE.findall(e)}


def test_metric_definitions_are_found(defined):
    """The parser sees every capability's metrics (guards against it silently finding nothing)."""
    assert {
        "emergence_requests": "Counter",
        "emergence_request_latency_seconds": "Histogram",
        "emergence_relax_final_energy": "Gauge",
        "emergence_predict_group_size": "Histogram",
        "tool_synthesis": "Counter",
        "tool_synthesis_latency_seconds": "Histogram",
        "tool_synthesis_success_rate": "Gauge",
        "emergence_coordinator_relaxations": "Counter",
        "emergence_sandbox_queued": "Gauge",
        "emergence_memory_request_seconds": "Histogram",
    }.items() <= defined.items()


def test_every_defined_metric_is_on_the_dashboard(defined, used):
    # Counters are read as _total, histograms through their _bucket series (quantiles), gauges as they are.
    primary = {name: f"ray_{name}{SUFFIXES[kind][0]}" for name, kind in defined.items()}
    missing = sorted(series for series in primary.values() if series not in used)
    assert not missing, f"metrics the code defines but no panel shows: {missing}"


def test_every_dashboard_metric_exists(defined, used):
    exported = {f"ray_{name}{suffix}" for name, kind in defined.items() for suffix in SUFFIXES[kind]}
    unknown = sorted(used - exported - RAY_SYSTEM_METRICS)
    assert not unknown, f"dashboard queries metrics nothing exports: {unknown}"


def test_ray_system_metrics_exist():
    """The allow-listed system metrics are ones Ray's reporter agent defines (read from source, not imported)."""
    (ray_dir,) = importlib.util.find_spec("ray").submodule_search_locations
    source = (Path(ray_dir) / "dashboard" / "modules" / "reporter" / "reporter_agent.py").read_text(encoding="utf-8")
    for metric in RAY_SYSTEM_METRICS:
        assert f'"{metric.removeprefix("ray_")}"' in source, metric


def test_dashboard_queries_use_each_kind_correctly(defined, exprs):
    histograms = [name for name, kind in defined.items() if kind == "Histogram"]
    counters = [name for name, kind in defined.items() if kind == "Counter"]
    for hist in histograms:
        # Quantiles come from the buckets' rate, at p50 and p95.
        quantiles = {
            q for e in exprs for q in re.findall(rf"histogram_quantile\((0\.\d+), sum by \(le\b[^)]*\) "
                                                 rf"\(rate\(ray_{hist}_bucket\[", e)
        }
        assert quantiles == {"0.5", "0.95"}, hist
    for expr in exprs:
        # A counter is only meaningful through rate(); label matchers may sit between name and range.
        for counter in counters:
            rest = re.sub(rf"rate\(ray_{counter}_total(\{{[^}}]*\}})?\[", "", expr)
            assert f"ray_{counter}_total" not in rest, expr


def test_grafana_dashboard_shape(dashboard):
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == "emergence"
    assert dashboard["title"] == "Emergence"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"

    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    for panel in panels:
        assert panel["type"] == "timeseries", panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert METRIC_RE.search(target["expr"]), (panel["title"], target["expr"])


def test_grafana_panels_do_not_overlap(dashboard):
    cells = {}
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["w"] > 0 and g["h"] > 0 and 0 <= g["x"] and g["x"] + g["w"] <= 24, panel["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{panel['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = panel["title"]
