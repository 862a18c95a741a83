"""Deployment manifests (KubeRay, Serve, ``ray up``, Prometheus, Grafana) and their offline validators."""
