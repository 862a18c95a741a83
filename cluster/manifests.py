"""Offline validation of the deployment manifests in ``cluster/``.

Nothing here starts or connects to Ray: each check is what the consumer of the file (the KubeRay API
server, ``serve deploy``, ``ray up``) would reject, run ahead of time so a typo fails in CI rather than
at deploy time. Ray is imported lazily, only by the validators that need its schemas.
"""

from __future__ import annotations

import copy
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

CLUSTER_DIR = Path(__file__).resolve().parent
KUBERAY_DIR = CLUSTER_DIR / "kuberay"
CRD_DIR = CLUSTER_DIR / "crds"
SERVE_CONFIG_PATH = CLUSTER_DIR / "serve_config.yaml"
RAY_UP_PATH = CLUSTER_DIR / "ray_up.yaml"
PROMETHEUS_PATH = CLUSTER_DIR / "prometheus.yml"
GRAFANA_DASHBOARD_PATH = CLUSTER_DIR / "grafana_dashboard.json"
KUBERAY_MANIFESTS = {
    "RayCluster": KUBERAY_DIR / "raycluster.yaml",
    "RayJob": KUBERAY_DIR / "rayjob.yaml",
    "RayService": KUBERAY_DIR / "rayservice.yaml",
}
# KubeRay's own v1 openAPIV3Schema per kind, vendored from its CRDs (see crds/README.md).
KUBERAY_CRDS = {
    "RayCluster": CRD_DIR / "ray.io_rayclusters.v1.json",
    "RayJob": CRD_DIR / "ray.io_rayjobs.v1.json",
    "RayService": CRD_DIR / "ray.io_rayservices.v1.json",
}
# Where each kind keeps its RayCluster spec (RayJob's is optional: it may use clusterSelector instead).
_CLUSTER_SPEC_KEY = {"RayCluster": None, "RayJob": "rayClusterSpec", "RayService": "rayClusterConfig"}


def load_yaml(path: str | Path) -> Any:
    """Parse one YAML document with ``safe_load`` (manifests must never need arbitrary Python tags)."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def _format_path(parts: Iterable[Any]) -> str:
    """``["spec", "workerGroupSpecs", 0, "replica"]`` -> ``spec.workerGroupSpecs[0].replica``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


# The CRDs leave top-level ``metadata`` as a bare object (the API server checks ObjectMeta itself), so
# check here the ObjectMeta fields a manifest may set, closed like the rest.
_OBJECT_META = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
    },
}


def _strict_json_schema(node: dict) -> dict:
    """A CRD's structural OpenAPI v3 schema -> JSON Schema with ``kubectl apply --validate=strict`` semantics.

    The API server would silently prune an unknown field; strict validation rejects it, so every object
    that lists ``properties`` is closed unless it says ``x-kubernetes-preserve-unknown-fields``. The
    OpenAPI-only keywords jsonschema does not know are translated (``nullable``, ``x-kubernetes-int-or-string``);
    the other ``x-kubernetes-*`` ones, ``format`` and ``default`` are ignored by jsonschema, and the CEL rules
    (``x-kubernetes-validations``: immutability, ``managedBy``) are not checked.
    """
    node = dict(node)
    if "properties" in node:
        node["properties"] = {key: _strict_json_schema(sub) for key, sub in node["properties"].items()}
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            node[key] = _strict_json_schema(node[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in node:
            node[key] = [_strict_json_schema(sub) for sub in node[key]]
    if node.get("x-kubernetes-int-or-string"):
        node.pop("anyOf", None)  # [{type: integer}, {type: string}]: one type list gives a clearer error
        node["type"] = ["integer", "string"]
    if node.get("nullable") and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
    open_object = "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and not open_object:
        node["additionalProperties"] = False
    return node


@lru_cache(maxsize=None)
def _kuberay_schema(kind: str) -> dict:
    """The JSON Schema :func:`validate_kuberay` checks a ``kind`` manifest against (from the vendored CRD)."""
    with open(KUBERAY_CRDS[kind], encoding="utf-8") as f:
        schema = _strict_json_schema(json.load(f))
    props = schema["properties"]
    props["apiVersion"] = {"const": "ray.io/v1"}
    props["kind"] = {"const": kind}
    props["metadata"] = _OBJECT_META
    # kubectl needs apiVersion, kind and metadata.name; a manifest without a spec is useless for all three kinds.
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    return schema


@lru_cache(maxsize=None)
def _kuberay_validator(kind: str):
    import jsonschema

    # No check_schema() here (1-2 s per CRD): the tests check the vendored schemas once.
    return jsonschema.Draft202012Validator(_kuberay_schema(kind))


def cluster_spec(doc: dict) -> dict | None:
    """The RayCluster spec inside a RayCluster/RayJob/RayService manifest (None for a RayJob using clusterSelector)."""
    key = _CLUSTER_SPEC_KEY[doc["kind"]]
    return doc["spec"] if key is None else doc["spec"].get(key)


@lru_cache(maxsize=1)
def _ray_start_options() -> frozenset[str]:
    """Long options of this Ray's ``ray start``: KubeRay passes each ``rayStartParams`` key as ``--key=value``."""
    from ray.scripts.scripts import start

    return frozenset(opt[2:] for param in start.params for opt in param.opts if opt.startswith("--"))


def _check_ray_start_params(doc: dict) -> list[str]:
    """The CRD allows any ``rayStartParams`` key (a string map); ``ray start`` in the pod would not."""
    key = _CLUSTER_SPEC_KEY[doc["kind"]]
    prefix = ["spec"] + ([key] if key else [])
    spec = cluster_spec(doc) or {}
    groups = [(["headGroupSpec"], spec.get("headGroupSpec", {}))]
    groups += [(["workerGroupSpecs", i], group) for i, group in enumerate(spec.get("workerGroupSpecs", []))]
    return [
        f"{_format_path(prefix + where + ['rayStartParams', param])}: unknown key (not a `ray start` option)"
        for where, group in groups
        for param in group.get("rayStartParams", {})
        if param not in _ray_start_options()
    ]


def _describe_schema_error(error) -> list[str]:
    """One message per offending path; an unexpected key is reported at its own path, not its parent's."""
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extras = sorted(k for k in error.instance if k not in allowed)
        if extras:
            return [
                f"{_format_path(path + [key])}: unknown key (allowed here: {sorted(allowed)})"
                for key in extras
            ]
    return [f"{_format_path(path)}: {error.message}"]


def validate_kuberay(doc: dict) -> dict:
    """Validate a KubeRay RayCluster/RayJob/RayService against KubeRay's own v1 CRD schema (``crds/``).

    The API server prunes unknown fields silently (a ``replica:`` typo would just give the default), so,
    as ``kubectl apply --validate=strict`` does, unknown fields are rejected at every level (see
    :func:`_strict_json_schema`), and ``rayStartParams`` keys must be ``ray start`` options. Embedded
    YAML strings are checked too: a RayJob's ``runtimeEnvYAML`` must parse to a mapping, and a
    RayService's ``serveConfigV2`` must pass :func:`validate_serve_config`. Raises ``ValueError`` naming
    every bad path; returns ``doc``.
    """
    if not isinstance(doc, dict):
        raise ValueError("invalid KubeRay manifest: must be a mapping")
    kind = doc.get("kind")
    if not isinstance(kind, str) or kind not in KUBERAY_CRDS:
        raise ValueError(f"invalid KubeRay manifest:\n  kind: {kind!r} is not one of {sorted(KUBERAY_CRDS)}")
    errors = sorted(_kuberay_validator(kind).iter_errors(doc), key=lambda e: list(map(str, e.absolute_path)))
    messages = [m for e in errors for m in _describe_schema_error(e)] or _check_ray_start_params(doc)
    if messages:
        raise ValueError("invalid KubeRay manifest:\n  " + "\n  ".join(messages))

    spec = doc["spec"]
    if kind == "RayJob" and "runtimeEnvYAML" in spec:
        try:
            runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
        except yaml.YAMLError as e:
            raise ValueError(f"spec.runtimeEnvYAML: not valid YAML: {e}") from e
        if not isinstance(runtime_env, dict):
            raise ValueError("spec.runtimeEnvYAML: must be a YAML mapping (a runtime_env dict)")
    if kind == "RayService":
        try:
            validate_serve_config(serve_config_from_rayservice(doc))
        except ValueError as e:
            raise ValueError(f"spec.serveConfigV2: {e}") from e
    for i, group in enumerate((cluster_spec(doc) or {}).get("workerGroupSpecs", [])):
        # minReplicas and maxReplicas are required by the CRD; replicas defaults to 0 there.
        if not group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]:
            raise ValueError(
                f"workerGroupSpecs[{i}] ({group['groupName']}): need minReplicas <= replicas <= maxReplicas"
            )
    return doc


def serve_config_from_rayservice(doc: dict) -> dict:
    """The Serve deploy config a RayService embeds as YAML text in ``spec.serveConfigV2``."""
    try:
        config = yaml.safe_load(doc["spec"]["serveConfigV2"])
    except yaml.YAMLError as e:
        raise ValueError(f"not valid YAML: {e}") from e
    if not isinstance(config, dict):
        raise ValueError("must be a YAML mapping (a Serve deploy config)")
    return config


def _field_names(model_cls) -> set[str]:
    names = set()
    for name, field in model_cls.model_fields.items():
        names.add(name)
        if field.alias:
            names.add(field.alias)
    return names


def _check_known_keys(where: str, data: Any, model_cls) -> None:
    if isinstance(data, dict):
        unknown = sorted(set(data) - _field_names(model_cls))
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {unknown} for {model_cls.__name__}")


def validate_serve_config(doc: dict):
    """Validate a Serve deploy config with Serve's own ``ServeDeploySchema`` (what ``serve deploy`` uses).

    Accepts either the config itself (``cluster/serve_config.yaml``) or a RayService manifest, whose
    ``serveConfigV2`` is parsed and validated the same way. ``ServeDeploySchema`` deliberately ignores
    unknown keys (forward compatibility), so a typo such as ``max_ongoing_request`` would be dropped
    silently; unknown keys at the config, application, deployment and ``ray_actor_options`` levels
    (and ``http_options``) are therefore rejected here. Raises ``ValueError``; returns the parsed ``ServeDeploySchema``.
    """
    from pydantic import ValidationError
    from ray.serve.schema import (
        DeploymentSchema,
        HTTPOptionsSchema,
        RayActorOptionsSchema,
        ServeApplicationSchema,
        ServeDeploySchema,
    )

    if isinstance(doc, dict) and doc.get("kind") == "RayService":
        doc = serve_config_from_rayservice(doc)
    if not isinstance(doc, dict):
        raise ValueError("a Serve deploy config must be a mapping")

    _check_known_keys("<root>", doc, ServeDeploySchema)
    _check_known_keys("http_options", doc.get("http_options"), HTTPOptionsSchema)
    for i, app in enumerate(doc.get("applications") or []):
        _check_known_keys(f"applications[{i}]", app, ServeApplicationSchema)
        for j, dep in enumerate((app.get("deployments") or []) if isinstance(app, dict) else []):
            where = f"applications[{i}].deployments[{j}]"
            _check_known_keys(where, dep, DeploymentSchema)
            if isinstance(dep, dict):
                _check_known_keys(f"{where}.ray_actor_options", dep.get("ray_actor_options"), RayActorOptionsSchema)
    try:
        return ServeDeploySchema.model_validate(doc)
    except ValidationError as e:
        raise ValueError(f"invalid Serve deploy config: {e}") from e


def validate_ray_up(doc: dict) -> dict:
    """Validate a ``ray up`` config with Ray's own cluster-launcher validator, offline.

    ``prepare_config`` only merges the provider's ``defaults.yaml`` shipped in the wheel and fills
    per-node-type worker counts; ``validate_config`` then checks ``ray-schema.json`` (which rejects
    unknown keys) and the cross-field rules. ``bootstrap_config`` is deliberately not called: for AWS
    it talks to EC2/IAM. Raises ``ValueError`` (chained to Ray's error); returns the prepared config.
    """
    import jsonschema
    from ray.autoscaler._private.util import prepare_config, validate_config

    if not isinstance(doc, dict):
        raise ValueError("a ray up config must be a mapping")
    try:
        prepared = prepare_config(copy.deepcopy(doc))
        validate_config(prepared)
    except jsonschema.ValidationError as e:
        raise ValueError(f"invalid ray up config at {_format_path(e.absolute_path)}: {e.message}") from e
    except (KeyError, AssertionError, RuntimeError, ValueError, NotImplementedError) as e:
        raise ValueError(f"invalid ray up config: {type(e).__name__}: {e}") from e
    return prepared
