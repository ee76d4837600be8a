"""Kubernetes manifests for tritonab's Triton: a deploy spec in, validated manifests out.

from tritonab.deploy.k8s import load_deploy_spec, read_manifests, validate_manifests, write_manifests

spec = load_deploy_spec("examples/deploy.yaml")
write_manifests(spec, "manifests/")
problems = validate_manifests(read_manifests("manifests/"), "1.30")
"""

from tritonab.deploy.k8s._proxy import PROXY_PORT, nginx_config
from tritonab.deploy.k8s._workload import MODEL_REPOSITORY, PORTS, RUN_AS
from tritonab.deploy.k8s.crds import CUSTOM_RESOURCES
from tritonab.deploy.k8s.render import render_manifests, to_yaml, write_manifests
from tritonab.deploy.k8s.spec import (
    HPA,
    KEDA,
    TLS,
    AccessKey,
    Alerts,
    DeploySpec,
    Monitoring,
    Peers,
    Proxy,
    ProxyResources,
    Replicas,
    Repository,
    Resources,
    load_deploy_dict,
    load_deploy_spec,
)
from tritonab.deploy.k8s.validate import (
    KUBERNETES_VERSION,
    Finding,
    read_manifests,
    validate_document,
    validate_manifests,
)

__all__ = [
    "CUSTOM_RESOURCES",
    "HPA",
    "KEDA",
    "KUBERNETES_VERSION",
    "MODEL_REPOSITORY",
    "PORTS",
    "PROXY_PORT",
    "RUN_AS",
    "TLS",
    "AccessKey",
    "Alerts",
    "DeploySpec",
    "Finding",
    "Monitoring",
    "Peers",
    "Proxy",
    "ProxyResources",
    "Replicas",
    "Repository",
    "Resources",
    "load_deploy_dict",
    "load_deploy_spec",
    "nginx_config",
    "read_manifests",
    "render_manifests",
    "to_yaml",
    "validate_document",
    "validate_manifests",
    "write_manifests",
]
