"""Offline checks of the deployment manifests in cluster/ (no Ray cluster is started: no ray.init)."""

from __future__ import annotations

import copy
import json
import re

import pytest
import yaml

from cluster import manifests
from cluster.manifests import (
    CRD_DIR,
    GRAFANA_DASHBOARD_PATH,
    KUBERAY_CRDS,
    KUBERAY_MANIFESTS,
    PROMETHEUS_PATH,
    RAY_UP_PATH,
    SERVE_CONFIG_PATH,
    cluster_spec,
    load_yaml,
    serve_config_from_rayservice,
    validate_kuberay,
    validate_ray_up,
    validate_serve_config,
)

RAY_SD_FILE = "/tmp/ray/prom_metrics_service_discovery.json"


@pytest.fixture(autouse=True)
def _no_ray_session():
    """These tests must stay offline: fail loudly if anything here (or an import) starts Ray.
    (The shared session may already be up from earlier tests; what matters is that we didn't start it.)"""
    import ray

    was_up = ray.is_initialized()
    yield
    assert ray.is_initialized() == was_up


@pytest.fixture(scope="module")
def kuberay_docs() -> dict[str, dict]:
    return {kind: load_yaml(path) for kind, path in KUBERAY_MANIFESTS.items()}


@pytest.fixture(scope="module")
def serve_config() -> dict:
    return load_yaml(SERVE_CONFIG_PATH)


@pytest.fixture(scope="module")
def ray_up() -> dict:
    return load_yaml(RAY_UP_PATH)


def _containers(doc: dict):
    spec = cluster_spec(doc)
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        yield from group["template"]["spec"]["containers"]


# --------------------------------------------------------------------------------------------- KubeRay


@pytest.mark.parametrize(
    "kind, name",
    [("RayCluster", "emergence"), ("RayJob", "emergence-coupling-sweep"), ("RayService", "emergence-serve")],
)
def test_kuberay_manifest_validates(kuberay_docs, kind, name):
    doc = kuberay_docs[kind]
    assert validate_kuberay(copy.deepcopy(doc)) == doc
    assert doc["apiVersion"] == "ray.io/v1"
    assert doc["kind"] == kind
    assert doc["metadata"]["name"] == name
    spec = cluster_spec(doc)
    assert spec["authOptions"] == {"mode": "token"}
    assert spec["enableInTreeAutoscaling"] is True
    assert spec["autoscalerOptions"]["version"] == "v2"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


@pytest.mark.parametrize("kind", sorted(KUBERAY_MANIFESTS))
def test_kuberay_images_match_ray_version(kuberay_docs, kind):
    import ray

    spec = cluster_spec(kuberay_docs[kind])
    assert spec["rayVersion"] == ray.__version__ == "2.60.0"
    images = {c["image"] for c in _containers(kuberay_docs[kind])}
    assert images, "no containers found"
    for image in images:
        assert re.fullmatch(rf"rayproject/ray:{re.escape(spec['rayVersion'])}-py311(-gpu)?", image), image


def test_raycluster_shape(kuberay_docs):
    spec = kuberay_docs["RayCluster"]["spec"]
    head = spec["headGroupSpec"]
    assert head["rayStartParams"] == {"num-cpus": "0", "dashboard-host": "0.0.0.0"}
    (head_container,) = head["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in head_container["ports"]}
    assert ports == {"gcs-server": 6379, "dashboard": 8265, "client": 10001, "serve": 8000, "metrics": 8080}

    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    assert set(groups) == {"cpu-workers", "gpu-workers"}
    cpu, gpu = groups["cpu-workers"], groups["gpu-workers"]
    assert (cpu["replicas"], cpu["minReplicas"], cpu["maxReplicas"]) == (1, 0, 8)
    assert (gpu["replicas"], gpu["minReplicas"], gpu["maxReplicas"]) == (0, 0, 4)
    cpu_limits = cpu["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert (cpu_limits["cpu"], cpu_limits["memory"]) == ("4", "16Gi")
    gpu_container = gpu["template"]["spec"]["containers"][0]
    assert gpu_container["image"].endswith("-gpu")
    assert gpu_container["resources"]["limits"] == {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1}
    assert gpu["rayStartParams"] == {"num-gpus": "1"}


def test_rayjob_shape(kuberay_docs):
    spec = kuberay_docs["RayJob"]["spec"]
    assert spec["entrypoint"] == "python -m tune.coupling --quick"
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] == 600
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env == {"working_dir": "/home/ray/emergence", "env_vars": {"RAY_AUTH_MODE": "token"}}
    assert "pip" not in runtime_env


def _rename(path: list, new_key: str):
    """A mutation that renames the key at ``path`` (keeping its value): the typo under test."""

    def mutate(doc):
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[new_key] = parent.pop(path[-1])

    return mutate


def _set(path: list, value):
    def mutate(doc):
        parent = doc
        for part in path[:-1]:
            parent = parent[part]
        parent[path[-1]] = value

    return mutate


_RJ = ["spec", "rayClusterSpec"]  # RayJob's embedded cluster
_RS = ["spec", "rayClusterConfig"]  # RayService's (KubeRay v1 has no rayClusterSpec there)
_HEAD_CONTAINER = ["spec", "headGroupSpec", "template", "spec", "containers", 0]
TYPOS = [
    ("RayCluster", _rename(["spec", "workerGroupSpecs"], "workerGroupSpec"), r"spec\.workerGroupSpec: unknown key"),
    ("RayCluster", _rename(["spec", "headGroupSpec", "rayStartParams"], "rayStartParam"),
     r"spec\.headGroupSpec\.rayStartParam: unknown key"),
    ("RayCluster", _rename(["spec", "workerGroupSpecs", 1, "replicas"], "replica"),
     r"spec\.workerGroupSpecs\[1\]\.replica: unknown key"),
    ("RayCluster", _rename(["spec", "headGroupSpec", "template", "spec", "containers", 0, "image"], "imgae"),
     r"spec\.headGroupSpec\.template\.spec\.containers\[0\]\.imgae: unknown key"),
    ("RayCluster", _rename(["spec", "workerGroupSpecs", 1, "template", "spec", "containers", 0, "resources", "limits"],
                           "limit"), r"containers\[0\]\.resources\.limit: unknown key"),
    # The CRD takes any rayStartParams key (a string map); validate_kuberay checks them against `ray start`.
    ("RayCluster", _rename(["spec", "headGroupSpec", "rayStartParams", "num-cpus"], "num_cpus"),
     r"rayStartParams\.num_cpus: unknown key"),
    ("RayCluster", _rename(["spec", "autoscalerOptions", "version"], "verison"),
     r"spec\.autoscalerOptions\.verison: unknown key"),
    ("RayCluster", _set(["spec", "headGroupSpec", "rayStartParams", "num-cpus"], 0), r"num-cpus: 0 is not of type 'string'"),
    ("RayCluster", _set(["apiVersion"], "ray.io/v1alpha1"), r"apiVersion: 'ray.io/v1' was expected"),
    ("RayCluster", _set(["kind"], "Raycluster"), r"kind: 'Raycluster' is not one of"),
    ("RayJob", _rename(["spec", "entrypoint"], "entryPoint"), r"spec\.entryPoint: unknown key"),
    ("RayJob", _rename(_RJ + ["workerGroupSpecs", 0, "replicas"], "replica"),
     r"spec\.rayClusterSpec\.workerGroupSpecs\[0\]\.replica: unknown key"),
    ("RayJob", _rename(["spec", "shutdownAfterJobFinishes"], "shutdownAfterJobFinish"), r"shutdownAfterJobFinish: unknown"),
    ("RayJob", _set(["spec", "runtimeEnvYAML"], "- working_dir\n"), r"spec\.runtimeEnvYAML: must be a YAML mapping"),
    ("RayService", _rename(["spec", "serveConfigV2"], "serveConfig"), r"spec\.serveConfig: unknown key"),
    ("RayService", _rename(_RS + ["headGroupSpec", "template", "spec", "containers", 0, "env", 0, "value"], "val"),
     r"env\[0\]\.val: unknown key"),
    # The original mistake: RayService's cluster under RayJob's key name.
    ("RayService", _rename(_RS, "rayClusterSpec"), r"spec\.rayClusterSpec: unknown key"),
    ("RayService", _rename(_RS, "rayClusterSpec"), r"spec: 'rayClusterConfig' is a required property"),
    # Unknown fields anywhere in the CRD's (Kubernetes core) nested types, not only in KubeRay's own.
    ("RayCluster", _set(_HEAD_CONTAINER + ["imagePullPolicyy"], "Always"),
     r"spec\.headGroupSpec\.template\.spec\.containers\[0\]\.imagePullPolicyy: unknown key"),
    ("RayCluster", _set(["spec", "headGroupSpec", "replicas"], 1), r"spec\.headGroupSpec\.replicas: unknown key"),
    ("RayCluster", _rename(["spec", "workerGroupSpecs", 1, "template", "spec", "tolerations"], "toleration"),
     r"spec\.workerGroupSpecs\[1\]\.template\.spec\.toleration: unknown key"),
    ("RayCluster", _rename(["spec", "authOptions", "mode"], "mod"), r"spec\.authOptions\.mod: unknown key"),
    ("RayCluster", _set(["metadata", "namespce"], "default"), r"metadata\.namespce: unknown key"),
    ("RayService", _set(_RS + ["workerGroupSpecs", 0, "template", "spec", "nodeSelectors"], {}),
     r"spec\.rayClusterConfig\.workerGroupSpecs\[0\]\.template\.spec\.nodeSelectors: unknown key"),
    ("RayJob", _set(["spec", "clusterSpec"], {}), r"spec\.clusterSpec: unknown key"),
    # Missing required fields (required by the CRD, or by kubectl for metadata).
    ("RayCluster", lambda d: d["spec"].pop("headGroupSpec"), r"spec: 'headGroupSpec' is a required property"),
    ("RayCluster", lambda d: d["spec"]["workerGroupSpecs"][0].pop("groupName"),
     r"spec\.workerGroupSpecs\[0\]: 'groupName' is a required property"),
    ("RayJob", lambda d: d["spec"]["rayClusterSpec"]["workerGroupSpecs"][0].pop("maxReplicas"),
     r"spec\.rayClusterSpec\.workerGroupSpecs\[0\]: 'maxReplicas' is a required property"),
    ("RayService", lambda d: d["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]["containers"][0]
     .pop("name"), r"containers\[0\]: 'name' is a required property"),
    ("RayService", lambda d: d["metadata"].pop("name"), r"metadata: 'name' is a required property"),
    # Types and enums from the CRD (resource quantities are int-or-string).
    ("RayCluster", _set(_HEAD_CONTAINER + ["ports", 0, "containerPort"], "6379"),
     r"ports\[0\]\.containerPort: '6379' is not of type 'integer'"),
    ("RayCluster", _set(_HEAD_CONTAINER + ["resources", "limits", "cpu"], True),
     r"resources\.limits\.cpu: True is not of type 'integer', 'string'"),
    ("RayCluster", _set(_HEAD_CONTAINER + ["resources", "limits", "memory"], "8 GiB"),
     r"resources\.limits\.memory: '8 GiB' does not match"),
    ("RayCluster", _set(["spec", "autoscalerOptions", "version"], "v3"),
     r"autoscalerOptions\.version: 'v3' is not one of"),
    ("RayCluster", _set(["spec", "authOptions", "mode"], "Token"), r"authOptions\.mode: 'Token' is not one of"),
    ("RayService", _set(["spec", "serveConfigV2"], "applications:\n  - name: emergence\n    import_pth: x:y\n"),
     r"spec\.serveConfigV2: .*unknown key\(s\) \['import_pth'\]"),
    ("RayCluster", _set(["spec", "workerGroupSpecs", 0, "replicas"], 9), r"minReplicas <= replicas <= maxReplicas"),
]


@pytest.mark.parametrize("kind, mutate, message", TYPOS)
def test_kuberay_typo_fails(kuberay_docs, kind, mutate, message):
    original = kuberay_docs[kind]
    doc = copy.deepcopy(original)
    mutate(doc)
    assert doc != original
    with pytest.raises(ValueError, match=message):
        validate_kuberay(doc)
    validate_kuberay(original)  # the deep copy left the fixture intact


def test_vendored_crds_are_kuberays_v1_schemas():
    """The vendored files are KubeRay's v1 openAPIV3Schemas (with source recorded), and convert to valid JSON Schema."""
    import jsonschema

    readme = (CRD_DIR / "README.md").read_text(encoding="utf-8")
    assert "ray-project/kuberay" in readme and "feeaf72fa" in readme and "Apache-2.0" in readme
    for kind, path in KUBERAY_CRDS.items():
        with open(path, encoding="utf-8") as f:
            crd = json.load(f)
        assert set(crd["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}, kind
        jsonschema.Draft202012Validator.check_schema(manifests._kuberay_schema(kind))
    with open(KUBERAY_CRDS["RayService"], encoding="utf-8") as f:
        rayservice_spec = json.load(f)["properties"]["spec"]
    assert "rayClusterConfig" in rayservice_spec["required"]
    assert "rayClusterSpec" not in rayservice_spec["properties"]


@pytest.mark.parametrize("kind", sorted(KUBERAY_MANIFESTS))
def test_kuberay_manifest_matches_vendored_crd(kuberay_docs, kind):
    """Plain jsonschema against the strict form of the CRD, independent of validate_kuberay's extra checks."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(manifests._kuberay_schema(kind))
    assert [e.message for e in validator.iter_errors(kuberay_docs[kind])] == []


def test_strict_json_schema_follows_kubernetes_semantics():
    """Objects with properties are closed unless x-kubernetes-preserve-unknown-fields; int-or-string and nullable."""
    import jsonschema

    crd_like = {
        "type": "object",
        "properties": {
            "closed": {"type": "object", "properties": {"a": {"type": "string"}}},
            "open": {"type": "object", "properties": {"a": {"type": "string"}},
                     "x-kubernetes-preserve-unknown-fields": True},
            "map": {"type": "object", "additionalProperties": {"type": "string"}},
            "quantity": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True,
                         "pattern": "^[0-9]+$"},
            "list": {"type": "array", "items": {"type": "object", "properties": {"b": {"type": "integer"}}}},
            "maybe": {"type": "string", "nullable": True},
        },
    }
    validator = jsonschema.Draft202012Validator(manifests._strict_json_schema(crd_like))

    def ok(doc):
        return not list(validator.iter_errors(doc))

    assert ok({"closed": {"a": "x"}, "open": {"a": "x", "extra": 1}, "map": {"any": "x"}, "quantity": 2,
               "list": [{"b": 1}], "maybe": None})
    assert ok({"quantity": "2"})
    assert not ok({"extra": 1})  # the root has properties: closed
    assert not ok({"closed": {"extra": 1}})
    assert not ok({"list": [{"c": 1}]})
    assert not ok({"open": {"a": 1}})  # open to unknown keys, but known ones are still typed
    assert not ok({"quantity": "two"})
    assert not ok({"quantity": 1.5})
    assert not ok({"map": {"any": 1}})
    assert "additionalProperties" not in crd_like["properties"]["closed"]  # the input is not mutated


# ----------------------------------------------------------------------------------------------- Serve


def test_serve_config_validates(serve_config):
    schema = validate_serve_config(serve_config)
    assert schema.proxy_location.value == "EveryNode"
    assert (schema.http_options.host, schema.http_options.port) == ("127.0.0.1", 8000)
    (app,) = schema.applications
    assert (app.name, app.route_prefix, app.runtime_env) == ("emergence", "/", {})
    (deployment,) = app.deployments
    assert deployment.name == "EmergenceAPI"
    assert deployment.num_replicas == 1
    assert deployment.max_ongoing_requests == 16
    assert deployment.ray_actor_options.num_cpus == 0


def test_serve_import_path_module_is_serving_app(serve_config):
    (app,) = serve_config["applications"]
    module, _, attribute = app["import_path"].partition(":")
    assert module == "serving.app"
    assert attribute == "app"


def test_rayservice_embeds_the_same_applications(kuberay_docs, serve_config):
    embedded = serve_config_from_rayservice(kuberay_docs["RayService"])
    assert embedded["applications"] == serve_config["applications"]
    validated = validate_serve_config(kuberay_docs["RayService"])
    assert validated.applications == validate_serve_config(serve_config).applications
    # Inside a pod the proxy must listen on all interfaces for the serve Service to reach it.
    assert validated.http_options.host == "0.0.0.0"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d["applications"][0]["deployments"][0].__setitem__("max_ongoing_request", 8),
         r"unknown key\(s\) \['max_ongoing_request'\]"),
        (lambda d: d["applications"][0]["deployments"][0]["ray_actor_options"].__setitem__("num_cpu", 1),
         r"ray_actor_options: unknown key\(s\) \['num_cpu'\]"),
        (lambda d: d.__setitem__("proxy_locaton", "HeadOnly"), r"unknown key\(s\) \['proxy_locaton'\]"),
        (lambda d: d["applications"][0]["deployments"][0]["ray_actor_options"].__setitem__("num_cpus", -1),
         r"invalid Serve deploy config"),
        (lambda d: d.pop("applications"), r"invalid Serve deploy config"),
    ],
)
def test_serve_config_errors_fail(serve_config, mutate, message):
    doc = copy.deepcopy(serve_config)
    mutate(doc)
    with pytest.raises(ValueError, match=message):
        validate_serve_config(doc)


# ------------------------------------------------------------------------------------------------ ray up


def test_ray_up_passes_rays_validator(ray_up):
    prepared = validate_ray_up(ray_up)
    assert prepared["cluster_name"] == "emergence"
    assert prepared["provider"] == {**prepared["provider"], "type": "aws", "region": "us-west-2"}
    assert prepared["head_node_type"] == "head"
    types = prepared["available_node_types"]
    assert set(types) == {"head", "cpu_worker", "gpu_worker"}
    assert types["head"]["resources"] == {"CPU": 0}
    assert types["head"]["max_workers"] == 0  # filled in by prepare_config
    assert types["head"]["node_config"]["InstanceType"] == "m5.2xlarge"
    assert types["cpu_worker"]["node_config"]["InstanceType"] == "m5.4xlarge"
    assert types["gpu_worker"]["node_config"]["InstanceType"] == "g5.xlarge"
    assert types["gpu_worker"]["resources"]["GPU"] == 1
    assert sum(t["max_workers"] for n, t in types.items() if n != "head") <= prepared["max_workers"]
    assert prepared["file_mounts"]["~/emergence"] == "."
    assert any("~/emergence" in c or "$HOME/emergence" in c for c in prepared["setup_commands"])
    head_start = " ".join(prepared["head_start_ray_commands"])
    worker_start = " ".join(prepared["worker_start_ray_commands"])
    assert "ray start --head" in head_start and "--dashboard-host=0.0.0.0" in head_start
    assert "--metrics-export-port=8080" in head_start and "--metrics-export-port=8080" in worker_start
    assert "--address=$RAY_HEAD_IP:6379" in worker_start
    assert ray_up["docker"]["image"] == "rayproject/ray:2.60.0-py311"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.__setitem__("max_worker", 3), r"<root>: Additional properties are not allowed \('max_worker'"),
        (lambda d: d["available_node_types"]["cpu_worker"].__setitem__("min_worker", 1),
         r"available_node_types\.cpu_worker: Additional properties are not allowed \('min_worker'"),
        (lambda d: d["docker"].__setitem__("imgae", "x"), r"docker: Additional properties are not allowed"),
        (lambda d: d["auth"].__setitem__("ssh_usr", "ubuntu"), r"auth: Additional properties are not allowed"),
        (lambda d: d["available_node_types"]["gpu_worker"]["resources"].__setitem__("GPU", "one"),
         r"available_node_types\.gpu_worker\.resources\.GPU: 'one' is not of type 'integer'"),
        (lambda d: d.__setitem__("head_node_type", "ray.head.default"), r"head_node_type. must be one of"),
        (lambda d: d["available_node_types"]["cpu_worker"].__setitem__("min_workers", 20),
         r"smaller than the sum of .min_workers."),
    ],
)
def test_ray_up_errors_fail_rays_validator(ray_up, mutate, message):
    doc = copy.deepcopy(ray_up)
    mutate(doc)
    with pytest.raises(ValueError, match=message) as excinfo:
        validate_ray_up(doc)
    assert excinfo.value.__cause__ is not None  # Ray's own error, re-raised with the path
    validate_ray_up(ray_up)


def test_ray_up_unknown_key_is_rejected_by_ray_itself(ray_up):
    """Independent of our wrapper: Ray's validate_config raises jsonschema's error for an unknown key."""
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    doc = copy.deepcopy(ray_up)
    doc["available_node_types"]["head"]["node_confg"] = doc["available_node_types"]["head"].pop("node_config")
    with pytest.raises(jsonschema.ValidationError):
        validate_config(prepare_config(doc))


# ---------------------------------------------------------------------------------------------- Prometheus

# The dashboard's tests are in tests/test_grafana_dashboard.py.


def test_prometheus_config_uses_ray_service_discovery():
    config = load_yaml(PROMETHEUS_PATH)
    assert config["global"]["scrape_interval"] == "10s"
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert len(jobs) == len(config["scrape_configs"]), "duplicate job_name"
    assert jobs["ray"]["file_sd_configs"] == [{"files": [RAY_SD_FILE]}]
    static_targets = [t for job in jobs.values() for sc in job.get("static_configs", []) for t in sc["targets"]]
    assert "127.0.0.1:8080" in static_targets
    with open(PROMETHEUS_PATH, encoding="utf-8") as f:
        assert "make run" in f.read()  # the static target documents where port 8080 comes from


def test_manifests_module_paths_exist():
    for path in [
        SERVE_CONFIG_PATH, RAY_UP_PATH, PROMETHEUS_PATH, GRAFANA_DASHBOARD_PATH, CRD_DIR / "README.md",
        *KUBERAY_MANIFESTS.values(), *KUBERAY_CRDS.values(),
    ]:
        assert path.is_file(), path
