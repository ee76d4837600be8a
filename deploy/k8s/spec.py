"""The deploy spec: what a user writes in `deploy.yaml` to run tritonab's Triton on
Kubernetes. `tritonab deploy render` turns it into manifests (`render.py`).

    name: tritonab
    namespace: ml-serving
    image: registry.example.com/tritonab-triton:0.1.0
    replicas: {min: 2, max: 20}
    resources:
      requests: {cpu: "4", memory: 16Gi}
      limits: {cpu: "8", memory: 16Gi}
      gpus: 1
    repository: {pvc: model-repository}            # or {uri: s3://bucket/models, ...}
    regions: [eu-west-1]
    autoscaling: {kind: keda, prometheus: http://prometheus.monitoring:9090, threshold: 200}

Parsed with pydantic, so every error names its field path (`resources.limits.memory: ...`).
"""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tritonab._specfile import read_yaml, validate_mapping
from tritonab.errors import DeployError

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_QUANTITY = re.compile(r"^[+]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[EPTGMK]i|[numkMGTPE])?$")
_DURATION = re.compile(r"^(\d+(ms|s|m|h))+$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")

RestrictedAPI = Literal[
    "health",
    "metadata",
    "inference",
    "shared-memory",
    "model-config",
    "model-repository",
    "statistics",
    "trace",
    "logging",
]

DEFAULT_PROTECTED: tuple[RestrictedAPI, ...] = (
    "model-repository",
    "model-config",
    "shared-memory",
    "statistics",
    "trace",
    "logging",
)
"""What an access key protects by default: model control and everything but health,
metadata and inference."""

TLS_OWNED_FLAGS = (
    "--allow-http",
    "--http-address",
    "--http-port",
    "--allow-metrics",
    "--metrics-address",
    "--metrics-port",
)
"""Triton flags the manifests set or rely on when `tls` puts a proxy in front of HTTP."""


def dns_label(value: str, what: str, max_length: int = 63) -> str:
    """A Kubernetes DNS-1123 label (lowercase letters, digits, dashes)."""
    if len(value) > max_length or not _DNS_LABEL.match(value):
        raise ValueError(
            f"{what} `{value}` must be lowercase letters, digits and dashes, "
            f"start and end with a letter or digit, at most {max_length} characters"
        )
    return value


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity (`500m`, `2`, `16Gi`) as a number."""
    from kubernetes.utils import parse_quantity

    text = str(value)
    if not _QUANTITY.match(text):
        raise ValueError(f"`{text}` is not a Kubernetes quantity (e.g. `500m`, `2`, `16Gi`)")
    return Decimal(parse_quantity(text))  # type: ignore[no-untyped-call]


def pinned_image(value: str) -> str:
    """An image pinned to a tag other than `latest`, or to a digest."""
    last = value.rsplit("/", 1)[-1]
    if "@sha256:" not in value and (":" not in last or last.endswith(":latest")):
        raise ValueError(f"image `{value}` must be pinned to a tag (not `latest`) or a digest")
    return value


def _labels(value: dict[str, str], what: str) -> dict[str, str]:
    """Kubernetes label keys and values."""
    for key, item in value.items():
        if not _LABEL_KEY.match(key) or not _LABEL_VALUE.match(item) or len(item) > 63:
            raise ValueError(f"{what}: `{key}: {item}` is not a valid Kubernetes label")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Replicas(_Model):
    """How many Triton pods: a fixed count (`min` = `max`), or the autoscaler's range."""

    min: int = Field(default=1, ge=1)
    max: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _order(self) -> Replicas:
        """`min` <= `max`."""
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is more than max ({self.max})")
        return self


class Amounts(_Model):
    """CPU and memory, as Kubernetes quantities."""

    cpu: str
    memory: str

    @field_validator("cpu", "memory", mode="before")
    @classmethod
    def _quantity(cls, v: str | int | float) -> str:
        """A valid quantity, kept as written."""
        quantity(v)
        return str(v)


class Resources(_Model):
    """Requests and limits of the Triton container, and its GPUs.

    `gpus` go into both requests and limits of `gpu_resource` (Kubernetes schedules
    extended resources by limit); `shm` sizes the memory-backed `/dev/shm` the Python
    backend exchanges tensors through (a container's default is 64 MiB).
    """

    requests: Amounts
    limits: Amounts
    gpus: int = Field(default=0, ge=0)
    gpu_resource: str = "nvidia.com/gpu"
    shm: str = "1Gi"

    @field_validator("shm", mode="before")
    @classmethod
    def _shm(cls, v: str | int) -> str:
        """A valid quantity."""
        quantity(v)
        return str(v)

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> Resources:
        """Each limit at least its request."""
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if quantity(limit) < quantity(request):
                raise ValueError(f"limits.{name} ({limit}) is below requests.{name} ({request})")
        return self


class Repository(_Model):
    """Where the model repository comes from: a PersistentVolumeClaim, or an object-storage
    URI (`s3://` or `gs://`) copied into the pod by an init container before Triton starts.

    The fleet's source of truth (`tritonab experiment set-weights --repository`) is the
    claim, mounted read-write where the controller runs; the replicas mount it read-only.
    """

    pvc: str | None = None
    sub_path: str | None = None
    uri: str | None = None
    credentials_secret: str | None = Field(
        default=None, description="a Secret whose keys become the sync container's environment"
    )
    sync_image: str | None = Field(default=None, description="default: the cloud's CLI image, pinned")
    size_limit: str = "20Gi"

    @model_validator(mode="after")
    def _one_source(self) -> Repository:
        """Exactly one of `pvc` and `uri`; a URI on a supported store."""
        if (self.pvc is None) == (self.uri is None):
            raise ValueError("give exactly one of `pvc` (a claim) and `uri` (s3:// or gs://)")
        if self.pvc is not None:
            dns_label(self.pvc, "pvc", 253)
        if self.uri is not None and not self.uri.startswith(("s3://", "gs://")):
            raise ValueError(f"uri `{self.uri}` must start with s3:// or gs://")
        if self.uri is None and (self.credentials_secret or self.sync_image):
            raise ValueError("`credentials_secret` and `sync_image` apply to a `uri` source only")
        quantity(self.size_limit)
        return self


class ProxyResources(_Model):
    """Requests and limits of the TLS-terminating proxy (nginx)."""

    requests: Amounts = Field(default_factory=lambda: Amounts(cpu="100m", memory="64Mi"))
    limits: Amounts = Field(default_factory=lambda: Amounts(cpu="1", memory="256Mi"))

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ProxyResources:
        """Each limit at least its request."""
        for name in ("cpu", "memory"):
            request, limit = getattr(self.requests, name), getattr(self.limits, name)
            if quantity(limit) < quantity(request):
                raise ValueError(f"limits.{name} ({limit}) is below requests.{name} ({request})")
        return self


class Proxy(_Model):
    """The nginx sidecar terminating TLS for Triton's HTTP API. The image must run nginx as
    any non-root user with a read-only root filesystem (nginx-unprivileged does)."""

    image: str = "nginxinc/nginx-unprivileged:1.27-alpine"
    resources: ProxyResources = Field(default_factory=ProxyResources)
    workers: int = Field(default=2, ge=1, le=64, description="nginx worker processes")

    @field_validator("image")
    @classmethod
    def _image(cls, v: str) -> str:
        """Pinned, like the Triton image."""
        return pinned_image(v)


class TLS(_Model):
    """TLS from a `kubernetes.io/tls` Secret (`tls.crt`, `tls.key` and, for `mutual`,
    `ca.crt`), mounted read-only. Triton serves gRPC over TLS itself (its `--grpc-*` flags);
    its HTTP endpoint has no TLS, so Triton's HTTP binds 127.0.0.1 inside the pod and an
    nginx sidecar (`proxy`) terminates TLS on the Service's `http` port in front of it.
    With `mutual`, both check client certificates against `ca.crt`."""

    secret: str
    mutual: bool = False
    proxy: Proxy = Field(default_factory=Proxy)

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: str) -> str:
        """A Secret name."""
        return dns_label(v, "secret", 253)


class AccessKey(_Model):
    """An access key from a Secret: Triton refuses the `protect`ed APIs to a request
    without it. HTTP clients send it as the header `header: <key>`; gRPC clients as
    `triton-grpc-protocol-<header>: <key>` (Triton's prefix for gRPC)."""

    secret: str
    key: str = "key"
    header: str = "x-tritonab-key"
    protect: list[RestrictedAPI] = Field(default_factory=lambda: list(DEFAULT_PROTECTED), min_length=1)

    @model_validator(mode="after")
    def _health_stays_open(self) -> AccessKey:
        """The kubelet's probes send no key."""
        if "health" in self.protect:
            raise ValueError("protect: `health` must stay open: the kubelet's probes send no key")
        dns_label(self.secret, "secret", 253)
        return self


class Peers(_Model):
    """Pods allowed to connect: by their namespace's labels, their own labels, or both
    (both: those pods in those namespaces; pod labels alone: in the deployment's namespace)."""

    namespace_labels: dict[str, str] | None = None
    pod_labels: dict[str, str] | None = None

    @model_validator(mode="after")
    def _some(self) -> Peers:
        """At least one selector, valid labels."""
        if self.namespace_labels is None and self.pod_labels is None:
            raise ValueError("give `namespace_labels`, `pod_labels` or both")
        _labels(self.namespace_labels or {}, "namespace_labels")
        _labels(self.pod_labels or {}, "pod_labels")
        return self


class HPA(_Model):
    """A HorizontalPodAutoscaler (autoscaling/v2) on CPU, or on the router's rows per
    second per pod (a Pods metric `tritonab_rows_per_second`, which Prometheus Adapter
    serves from `tritonab_requests_total`)."""

    kind: Literal["hpa"]
    metric: Literal["cpu", "request_rate"] = "cpu"
    target_cpu_percent: int = Field(default=70, ge=1, le=100)
    target_rows_per_second: float | None = Field(default=None, gt=0)
    scale_down_stabilization_s: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _target(self) -> HPA:
        """A request-rate target when scaling on the request rate."""
        if self.metric == "request_rate" and self.target_rows_per_second is None:
            raise ValueError("metric `request_rate` needs `target_rows_per_second` (per pod)")
        return self


class KEDA(_Model):
    """A KEDA ScaledObject with a Prometheus trigger. The default query is the router's rows
    per second over the deployment's pods; `query` may point elsewhere, e.g. at
    `tritonab autoscale run`'s `max(tritonab_desired_replicas{deployment="<name>"})` with
    `threshold: 1` (`AverageValue`: replicas = ceil(value / threshold))."""

    kind: Literal["keda"]
    prometheus: str = Field(
        description="the Prometheus server KEDA queries, e.g. http://prometheus.monitoring:9090"
    )
    query: str | None = None
    threshold: float = Field(gt=0, description="per replica with `AverageValue`")
    activation_threshold: float | None = Field(default=None, ge=0)
    metric_type: Literal["AverageValue", "Value"] = "AverageValue"
    polling_interval_s: int = Field(default=15, ge=1)
    cooldown_s: int = Field(default=300, ge=0)

    @field_validator("prometheus")
    @classmethod
    def _url(cls, v: str) -> str:
        """An http(s) URL."""
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"prometheus `{v}` must be an http:// or https:// URL")
        return v


Autoscaling = Annotated[HPA | KEDA, Field(discriminator="kind")]


class Monitoring(_Model):
    """How Prometheus (the Prometheus Operator) finds the pods and the rules, and which
    experiments get a Grafana dashboard."""

    scrape_interval: str = "15s"
    prometheus: Peers = Field(
        default_factory=lambda: Peers(
            namespace_labels={"kubernetes.io/metadata.name": "monitoring"},
            pod_labels={"app.kubernetes.io/name": "prometheus"},
        ),
        description="the Prometheus pods allowed to scrape the metrics port",
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="on the PodMonitor and PrometheusRule (the operator's selectors)"
    )
    dashboards: list[str] = Field(default_factory=list, description="experiments that get a dashboard")

    @field_validator("scrape_interval")
    @classmethod
    def _interval(cls, v: str) -> str:
        """A Prometheus duration."""
        if not _DURATION.match(v):
            raise ValueError(f"`{v}` is not a duration such as `15s` or `1m`")
        return v

    @field_validator("labels")
    @classmethod
    def _valid(cls, v: dict[str, str]) -> dict[str, str]:
        """Valid labels."""
        return _labels(v, "labels")


class Alerts(_Model):
    """The alert rules' thresholds (`tritonab:config:*` in `monitoring/rules/`)."""

    latency_slo_ms: float = Field(default=100.0, description="a bucket of the router's latency histogram")
    latency_objective: float = Field(default=0.99, gt=0.5, lt=1.0)
    error_rate_max: float = Field(default=0.05, gt=0.0, lt=1.0)
    srm_min_deviation: float = Field(default=0.02, gt=0.0, lt=1.0)

    @field_validator("latency_slo_ms")
    @classmethod
    def _bucket(cls, v: float) -> float:
        """One of the histogram's buckets: the SLO counts calls in buckets."""
        from tritonab.backends._routing import LATENCY_BUCKETS_US

        if v * 1000 not in LATENCY_BUCKETS_US:
            shown = ", ".join(f"{b / 1000:g}" for b in LATENCY_BUCKETS_US)
            raise ValueError(f"{v:g} ms is not a bucket of the router's latency histogram ({shown} ms)")
        return v

    def thresholds(self) -> dict[str, float]:
        """The values of the rules' config records."""
        return {
            "latency_slo_bucket": self.latency_slo_ms * 1000,
            "latency_slo_objective": self.latency_objective,
            "error_rate_max": self.error_rate_max,
            "srm_min_deviation": self.srm_min_deviation,
        }


class LogVolume(_Model):
    """A claim for the routers' exposure and payload logs (`TRITONAB_LOG_DIR`)."""

    claim: str
    path: str = "/var/lib/tritonab/logs"


class DeploySpec(_Model):
    """One Triton deployment of tritonab: the pods, how they scale, who may reach them,
    where they may run, and how they are watched."""

    name: str
    namespace: str = "default"
    image: str
    replicas: Replicas = Field(default_factory=Replicas)
    resources: Resources
    repository: Repository
    regions: list[str] = Field(min_length=1, description="the node regions the pods may run in")
    zone_spread: Literal["required", "preferred"] = "preferred"
    tls: TLS | None = None
    access_key: AccessKey | None = None
    autoscaling: Autoscaling | None = None
    clients: list[Peers] = Field(
        default_factory=lambda: [Peers(pod_labels={"tritonab.io/client": "true"})],
        min_length=1,
        description="who may call the inference (gRPC, HTTP) ports",
    )
    monitoring: Monitoring = Field(default_factory=Monitoring)
    alerts: Alerts = Field(default_factory=Alerts)
    logs: LogVolume | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    extra_args: list[str] = Field(default_factory=list, description="more tritonserver flags")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        """Short enough for the suffixed names (`-controller`, `-dashboard-...`)."""
        return dns_label(v, "name", 40)

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, v: str) -> str:
        """A namespace name."""
        return dns_label(v, "namespace")

    @field_validator("image")
    @classmethod
    def _pinned(cls, v: str) -> str:
        """A tag or digest other than `latest`: every replica runs the same build."""
        return pinned_image(v)

    @field_validator("node_selector")
    @classmethod
    def _selector(cls, v: dict[str, str]) -> dict[str, str]:
        """Valid labels."""
        return _labels(v, "node_selector")

    @model_validator(mode="after")
    def _scaling(self) -> DeploySpec:
        """An autoscaler needs a range; a fixed count needs `min` = `max`."""
        if self.autoscaling is not None and self.replicas.min == self.replicas.max:
            raise ValueError("autoscaling: needs replicas.max above replicas.min")
        if self.autoscaling is None and self.replicas.min != self.replicas.max:
            raise ValueError("replicas: without autoscaling, set max equal to min (or add `autoscaling`)")
        return self

    @model_validator(mode="after")
    def _proxy_owns_http(self) -> DeploySpec:
        """With TLS, the manifests place Triton's HTTP and metrics listeners: extra flags
        moving them would leave the proxy, the probes or the scrape pointing at nothing."""
        if self.tls is None:
            return self
        for arg in self.extra_args:
            if arg.split("=", 1)[0] in TLS_OWNED_FLAGS:
                owned = ", ".join(TLS_OWNED_FLAGS)
                raise ValueError(f"extra_args: `{arg}` conflicts with `tls` (which sets {owned})")
        return self


def load_deploy_dict(data: object, *, source: str = "deploy spec") -> DeploySpec:
    """Validate a parsed deploy spec.

    Raises:
        DeployError: every problem, each with its field path.
    """
    return validate_mapping(DeploySpec, data, source=source, error=DeployError)


def load_deploy_spec(path: str | os.PathLike[str]) -> DeploySpec:
    """Read a deploy spec from YAML.

    Raises:
        DeployError: unreadable file, bad YAML, or an invalid spec.
    """
    return load_deploy_dict(read_yaml(path, error=DeployError), source=f"`{Path(path)}`")
