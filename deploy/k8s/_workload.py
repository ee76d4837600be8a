"""The Triton pods: Deployment, Service, ServiceAccounts, PodDisruptionBudget, and the
controller's permission to find the replicas.

Every value the image promises is named once here and checked against
`deploy/docker/Dockerfile` by the tests: the repository path, the ports and the user.
"""

from __future__ import annotations

import hashlib
from typing import Any

from tritonab.deploy.k8s._proxy import nginx_config, proxy_container
from tritonab.deploy.k8s.spec import DeploySpec, Repository

MODEL_REPOSITORY = "/models"
PORTS = {"http": 8000, "grpc": 8001, "metrics": 8002}
RUN_AS = 10001
TLS_DIR = "/etc/tritonab/tls"
ACCESS_KEY_ENV = "TRITONAB_ACCESS_KEY"
SYNC_IMAGES = {
    "s3://": "public.ecr.aws/aws-cli/aws-cli:2.17.40",
    "gs://": "gcr.io/google.com/cloudsdktool/google-cloud-cli:489.0.0-slim",
}
Manifest = dict[str, Any]


def labels(spec: DeploySpec) -> dict[str, str]:
    """The labels that select the deployment's pods."""
    return {"app.kubernetes.io/name": "tritonab", "app.kubernetes.io/instance": spec.name}


def metadata(spec: DeploySpec, name: str, **extra_labels: str) -> dict[str, Any]:
    """`metadata` with the namespace and the common labels."""
    return {
        "name": name,
        "namespace": spec.namespace,
        "labels": {**labels(spec), "app.kubernetes.io/managed-by": "tritonab", **extra_labels},
    }


def restricted_security() -> dict[str, Any]:
    """A container securityContext meeting the `restricted` Pod Security Standard."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def triton_args(spec: DeploySpec) -> list[str]:
    """Flags added to the image's `tritonserver` entrypoint: TLS, the access key, extras."""
    args: list[str] = []
    if spec.tls is not None:
        args += [
            "--grpc-use-ssl=true",
            f"--grpc-server-cert={TLS_DIR}/tls.crt",
            f"--grpc-server-key={TLS_DIR}/tls.key",
        ]
        if spec.tls.mutual:
            args += ["--grpc-use-ssl-mutual=true", f"--grpc-root-cert={TLS_DIR}/ca.crt"]
        # HTTP only to the TLS proxy beside it. Metrics would follow `--http-address` to
        # loopback (Triton's default): they stay on every address for Prometheus.
        args += ["--http-address=127.0.0.1", "--metrics-address=0.0.0.0"]
    if spec.access_key is not None:
        key = spec.access_key
        apis = ",".join(key.protect)
        # Kubernetes expands $(VAR) in args from the container's environment.
        args += [
            f"--grpc-restricted-protocol={apis}:{key.header}=$({ACCESS_KEY_ENV})",
            f"--http-restricted-api={apis}:{key.header}=$({ACCESS_KEY_ENV})",
        ]
    return args + list(spec.extra_args)


def _probe(path: str, period: int, failures: int, port: str = "http", scheme: str = "HTTP") -> dict[str, Any]:
    """An HTTP probe on one of Triton's health endpoints."""
    get: dict[str, Any] = {"path": path, "port": port}
    if scheme != "HTTP":
        get["scheme"] = scheme
    return {
        "httpGet": get,
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _probes(spec: DeploySpec) -> dict[str, Any]:
    """Startup, readiness and liveness of the Triton container."""
    if spec.tls is None:
        return {
            # Model loads can take minutes: the startup probe holds the others off until then.
            "startupProbe": _probe("/v2/health/ready", 10, 60),
            "readinessProbe": _probe("/v2/health/ready", 5, 3),
            "livenessProbe": _probe("/v2/health/live", 10, 3),
        }
    # Triton's HTTP listens on loopback, which the kubelet cannot reach. Readiness goes the
    # clients' way, HTTPS through the proxy (the kubelet does not verify certificates, and
    # the proxy lets health through without a client certificate): a pod whose proxy is
    # down leaves the endpoints too. Liveness must not depend on the sidecar (a proxy
    # failure would restart Triton and reload every model), so it asks Triton's own
    # metrics listener, which stays plain HTTP on every address for Prometheus.
    return {
        "startupProbe": _probe("/v2/health/ready", 10, 60, scheme="HTTPS"),
        "readinessProbe": _probe("/v2/health/ready", 5, 3, scheme="HTTPS"),
        "livenessProbe": _probe("/metrics", 10, 3, port="metrics"),
    }


def proxy_config_name(spec: DeploySpec) -> str:
    """The ConfigMap holding the TLS proxy's nginx.conf."""
    return f"{spec.name}-tls-proxy"


def proxy_config(spec: DeploySpec) -> list[Manifest]:
    """The TLS proxy's ConfigMap (none without `tls`)."""
    if spec.tls is None:
        return []
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata(
                spec, proxy_config_name(spec), **{"app.kubernetes.io/component": "tls-proxy"}
            ),
            "data": {"nginx.conf": nginx_config(spec.tls, upstream_port=PORTS["http"], tls_dir=TLS_DIR)},
        }
    ]


def _resources(spec: DeploySpec) -> dict[str, Any]:
    """Requests and limits, GPUs in both."""
    res = spec.resources
    requests: dict[str, Any] = {"cpu": res.requests.cpu, "memory": res.requests.memory}
    limits: dict[str, Any] = {"cpu": res.limits.cpu, "memory": res.limits.memory}
    if res.gpus:
        requests[res.gpu_resource] = limits[res.gpu_resource] = res.gpus
    return {"requests": requests, "limits": limits}


def _volumes(spec: DeploySpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's volumes and the Triton container's mounts."""
    repo = spec.repository
    if repo.pvc is not None:
        models: dict[str, Any] = {
            "name": "models",
            "persistentVolumeClaim": {"claimName": repo.pvc, "readOnly": True},
        }
    else:
        models = {"name": "models", "emptyDir": {"sizeLimit": repo.size_limit}}
    model_mount: dict[str, Any] = {"name": "models", "mountPath": MODEL_REPOSITORY, "readOnly": True}
    if repo.pvc is not None and repo.sub_path:
        model_mount["subPath"] = repo.sub_path
    volumes = [
        models,
        {"name": "tmp", "emptyDir": {}},
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": spec.resources.shm}},
    ]
    mounts = [model_mount, {"name": "tmp", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}]
    if spec.tls is not None:
        volumes.append({"name": "tls", "secret": {"secretName": spec.tls.secret, "defaultMode": 0o440}})
        mounts.append({"name": "tls", "mountPath": TLS_DIR, "readOnly": True})
        volumes += [
            {"name": "proxy-config", "configMap": {"name": proxy_config_name(spec), "defaultMode": 0o444}},
            {"name": "proxy-tmp", "emptyDir": {"sizeLimit": "256Mi"}},
        ]
    if spec.logs is not None:
        volumes.append({"name": "logs", "persistentVolumeClaim": {"claimName": spec.logs.claim}})
        mounts.append({"name": "logs", "mountPath": spec.logs.path})
    return volumes, mounts


def _environment(spec: DeploySpec) -> list[dict[str, Any]]:
    """HOME on the writable /tmp, the log folder, the access key from its Secret."""
    env: list[dict[str, Any]] = [
        {"name": "HOME", "value": "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    if spec.logs is not None:
        env.append({"name": "TRITONAB_LOG_DIR", "value": spec.logs.path})
    if spec.access_key is not None:
        ref = {"name": spec.access_key.secret, "key": spec.access_key.key}
        env.append({"name": ACCESS_KEY_ENV, "valueFrom": {"secretKeyRef": ref}})
    return env


def _sync_container(repo: Repository) -> dict[str, Any]:
    """The init container copying an object-storage repository into the pod."""
    assert repo.uri is not None
    scheme = repo.uri[:5]
    if scheme == "s3://":
        command = ["aws", "s3", "sync", "--no-progress", "--only-show-errors", repo.uri, MODEL_REPOSITORY]
    else:
        command = ["gcloud", "storage", "rsync", "--recursive", repo.uri, MODEL_REPOSITORY]
    container: dict[str, Any] = {
        "name": "sync-models",
        "image": repo.sync_image or SYNC_IMAGES[scheme],
        "command": command,
        "env": [{"name": "HOME", "value": "/tmp"}],
        "volumeMounts": [
            {"name": "models", "mountPath": MODEL_REPOSITORY},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": restricted_security(),
        "resources": {
            "requests": {"cpu": "100m", "memory": "256Mi"},
            "limits": {"cpu": "1", "memory": "1Gi"},
        },
    }
    if repo.credentials_secret:
        container["envFrom"] = [{"secretRef": {"name": repo.credentials_secret}}]
    return container


def _placement(spec: DeploySpec) -> dict[str, Any]:
    """Regions (required node affinity), zones and hosts (spread), GPU tolerations."""
    selector = {"matchLabels": labels(spec)}
    zone_rule = "DoNotSchedule" if spec.zone_spread == "required" else "ScheduleAnyway"
    placement: dict[str, Any] = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "topology.kubernetes.io/region",
                                    "operator": "In",
                                    "values": list(spec.regions),
                                }
                            ]
                        }
                    ]
                }
            }
        },
        "topologySpreadConstraints": [
            {
                "maxSkew": 1,
                "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": zone_rule,
                "labelSelector": selector,
            },
            {
                "maxSkew": 1,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "ScheduleAnyway",
                "labelSelector": selector,
            },
        ],
    }
    if spec.node_selector:
        placement["nodeSelector"] = dict(spec.node_selector)
    if spec.resources.gpus:
        placement["tolerations"] = [
            {"key": spec.resources.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
        ]
    return placement


def deployment(spec: DeploySpec) -> Manifest:
    """The Triton Deployment."""
    volumes, mounts = _volumes(spec)
    # With TLS, the port named `http` is the proxy's: Triton's HTTP is loopback only.
    ports = [name for name in PORTS if spec.tls is None or name != "http"]
    container: dict[str, Any] = {
        "name": "triton",
        "image": spec.image,
        "imagePullPolicy": "IfNotPresent",
        "args": triton_args(spec),
        "ports": [{"name": name, "containerPort": PORTS[name], "protocol": "TCP"} for name in ports],
        "env": _environment(spec),
        "resources": _resources(spec),
        "volumeMounts": mounts,
        "securityContext": restricted_security(),
        **_probes(spec),
        # Endpoints drop the pod before Triton stops taking requests.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "5"]}}},
    }
    containers = [container]
    template_metadata: dict[str, Any] = {"labels": {**labels(spec), "app.kubernetes.io/component": "triton"}}
    if spec.tls is not None:
        containers.append(
            proxy_container(
                spec.tls,
                security=restricted_security(),
                tls_dir=TLS_DIR,
                config_volume="proxy-config",
                tmp_volume="proxy-tmp",
            )
        )
        # A changed proxy config rolls the pods (nginx reads its config once, at start).
        config = proxy_config(spec)[0]["data"]["nginx.conf"]
        digest = hashlib.sha256(config.encode()).hexdigest()
        template_metadata["annotations"] = {"tritonab.io/tls-proxy-config": f"sha256:{digest}"}
    pod: dict[str, Any] = {
        "serviceAccountName": spec.name,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS,
            "runAsGroup": RUN_AS,
            "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 40,
        "containers": containers,
        "volumes": volumes,
        **_placement(spec),
    }
    if spec.repository.uri is not None:
        pod["initContainers"] = [_sync_container(spec.repository)]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(spec, spec.name, **{"app.kubernetes.io/component": "triton"}),
        "spec": {
            "replicas": spec.replicas.min,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": labels(spec)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {"metadata": template_metadata, "spec": pod},
        },
    }


def service(spec: DeploySpec) -> Manifest:
    """The Service: named gRPC, HTTP and metrics ports (its EndpointSlices are the fleet)."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(spec, spec.name),
        "spec": {
            "type": "ClusterIP",
            "selector": labels(spec),
            "ports": [
                {"name": name, "port": port, "targetPort": name, "protocol": "TCP"}
                for name, port in PORTS.items()
            ],
        },
    }


def service_account(spec: DeploySpec) -> Manifest:
    """The pods' identity, with no API token mounted (Triton never calls the API)."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata(spec, spec.name),
        "automountServiceAccountToken": False,
    }


def disruption_budget(spec: DeploySpec) -> Manifest:
    """At most one pod evicted at a time (a voluntary disruption: a drain, an upgrade)."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(spec, spec.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": labels(spec)}},
    }


def controller_access(spec: DeploySpec) -> list[Manifest]:
    """A ServiceAccount for the rollout controller, allowed to read the Service's
    EndpointSlices (how `Fleet.from_kubernetes` finds the replicas) and nothing else."""
    name = f"{spec.name}-controller"
    role_labels = {"app.kubernetes.io/component": "controller"}
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": metadata(spec, name, **role_labels),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": metadata(spec, name, **role_labels),
            "rules": [
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": metadata(spec, name, **role_labels),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": spec.namespace}],
        },
    ]
