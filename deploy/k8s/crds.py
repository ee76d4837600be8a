"""pydantic models of the custom resources tritonab renders, written from their
published CustomResourceDefinitions (no installed package ships these schemas):

- `PodMonitor` and `PrometheusRule`, `monitoring.coreos.com/v1` (prometheus-operator's
  `example/prometheus-operator-crd/monitoring.coreos.com_*.yaml`);
- `ScaledObject`, `keda.sh/v1alpha1` (KEDA's `config/crd/bases/keda.sh_scaledobjects.yaml`),
  with the parameters its `prometheus` scaler requires.

Each model holds the schema's types, required fields, enums, bounds and patterns for
the fields tritonab writes, and refuses any other field, so a misspelt field fails
here instead of being dropped by the API server. `CUSTOM_RESOURCES` maps
`(apiVersion, kind)` to its model.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

# The CRDs' duration pattern (Prometheus durations: `30s`, `1m30s`, `0`).
Duration = Annotated[
    str,
    StringConstraints(
        pattern=r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$"
    ),
]
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ObjectMeta(_Schema):
    """The metadata tritonab sets (the API server checks the rest of ObjectMeta)."""

    name: str = Field(min_length=1, max_length=253)
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class LabelSelectorRequirement(_Schema):
    key: str
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] | None = None


class LabelSelector(_Schema):
    matchLabels: dict[str, str] | None = None
    matchExpressions: list[LabelSelectorRequirement] | None = None


# -- PodMonitor -------------------------------------------------------------------------------


class NamespaceSelector(_Schema):
    any: bool | None = None
    matchNames: list[str] | None = None


class PodMetricsEndpoint(_Schema):
    port: str | None = None
    portNumber: int | None = Field(default=None, ge=1, le=65535)
    path: str | None = None
    scheme: Literal["http", "https", "HTTP", "HTTPS"] | None = None
    interval: Duration | None = None
    scrapeTimeout: Duration | None = None
    honorLabels: bool | None = None


class PodMonitorSpec(_Schema):
    selector: LabelSelector
    namespaceSelector: NamespaceSelector | None = None
    podMetricsEndpoints: list[PodMetricsEndpoint] | None = None
    jobLabel: str | None = None
    podTargetLabels: list[str] | None = None
    sampleLimit: int | None = Field(default=None, ge=0)


class PodMonitor(_Schema):
    apiVersion: Literal["monitoring.coreos.com/v1"]
    kind: Literal["PodMonitor"]
    metadata: ObjectMeta
    spec: PodMonitorSpec


# -- PrometheusRule -----------------------------------------------------------------------------


class Rule(_Schema):
    """A recording or alerting rule: exactly one of `record` and `alert`."""

    record: str | None = None
    alert: str | None = None
    expr: int | str
    for_: Duration | None = Field(default=None, alias="for")
    keep_firing_for: Duration | None = Field(default=None, min_length=1)
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Rule:
        """`record` xor `alert`; recording rules take no `for` or annotations."""
        if (self.record is None) == (self.alert is None):
            raise ValueError("exactly one of `record` and `alert` must be set")
        if self.record is not None:
            if not _METRIC_NAME.match(self.record):
                raise ValueError(f"record `{self.record}` is not a valid metric name")
            if self.for_ is not None or self.annotations:
                raise ValueError(f"recording rule `{self.record}` cannot have `for` or `annotations`")
        return self


class RuleGroup(_Schema):
    name: str = Field(min_length=1)
    interval: Duration | None = None
    rules: list[Rule] | None = None
    limit: int | None = None
    partial_response_strategy: Annotated[str, StringConstraints(pattern=r"^(?i)(abort|warn)?$")] | None = None
    query_offset: Duration | None = None
    labels: dict[str, str] | None = None


class PrometheusRuleSpec(_Schema):
    groups: list[RuleGroup] | None = None

    @field_validator("groups")
    @classmethod
    def _unique(cls, v: list[RuleGroup] | None) -> list[RuleGroup] | None:
        """`x-kubernetes-list-map-keys: [name]`: group names are unique."""
        names = [g.name for g in v or ()]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate rule group names {dupes}")
        return v


class PrometheusRule(_Schema):
    apiVersion: Literal["monitoring.coreos.com/v1"]
    kind: Literal["PrometheusRule"]
    metadata: ObjectMeta
    spec: PrometheusRuleSpec


# -- ScaledObject ------------------------------------------------------------------------------


class ScaleTargetRef(_Schema):
    name: str = Field(min_length=1)
    apiVersion: str | None = None
    kind: str | None = None
    envSourceContainerName: str | None = None


class AuthenticationRef(_Schema):
    name: str
    kind: Literal["TriggerAuthentication", "ClusterTriggerAuthentication"] | None = None


class ScaleTrigger(_Schema):
    """One trigger; a `prometheus` trigger needs `serverAddress`, `query` and a numeric
    `threshold` in its metadata (KEDA's Prometheus scaler)."""

    type: str = Field(min_length=1)
    metadata: dict[str, str]
    name: str | None = None
    useCachedMetrics: bool | None = None
    authenticationRef: AuthenticationRef | None = None
    metricType: Literal["AverageValue", "Value", "Utilization"] | None = None

    @model_validator(mode="after")
    def _prometheus(self) -> ScaleTrigger:
        """The Prometheus scaler's required parameters."""
        if self.type != "prometheus":
            return self
        missing = [k for k in ("serverAddress", "query", "threshold") if not self.metadata.get(k)]
        if missing:
            raise ValueError(f"a prometheus trigger needs metadata {missing}")
        for key in ("threshold", "activationThreshold"):
            value = self.metadata.get(key)
            if value is not None and not _NUMBER.match(value):  # KEDA parses it as a float
                raise ValueError(f"metadata.{key} `{value}` is not a number")
        if self.metricType == "Utilization":
            raise ValueError("a prometheus trigger takes metricType AverageValue or Value")
        return self


class Fallback(_Schema):
    failureThreshold: int = Field(ge=0)
    replicas: int = Field(ge=0)


class ScaledObjectSpec(_Schema):
    scaleTargetRef: ScaleTargetRef
    triggers: list[ScaleTrigger] = Field(min_length=1)
    pollingInterval: int | None = Field(default=None, ge=1)
    cooldownPeriod: int | None = Field(default=None, ge=0)
    initialCooldownPeriod: int | None = Field(default=None, ge=0)
    idleReplicaCount: int | None = Field(default=None, ge=0)
    minReplicaCount: int | None = Field(default=None, ge=0)
    maxReplicaCount: int | None = Field(default=None, ge=1)
    fallback: Fallback | None = None
    advanced: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _range(self) -> ScaledObjectSpec:
        """KEDA's admission check: min <= max."""
        low, high = self.minReplicaCount, self.maxReplicaCount
        if low is not None and high is not None and low > high:
            raise ValueError(f"minReplicaCount ({low}) is more than maxReplicaCount ({high})")
        return self


class ScaledObject(_Schema):
    apiVersion: Literal["keda.sh/v1alpha1"]
    kind: Literal["ScaledObject"]
    metadata: ObjectMeta
    spec: ScaledObjectSpec


CUSTOM_RESOURCES: dict[tuple[str, str], type[BaseModel]] = {
    ("monitoring.coreos.com/v1", "PodMonitor"): PodMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): PrometheusRule,
    ("keda.sh/v1alpha1", "ScaledObject"): ScaledObject,
}
"""The custom resources tritonab renders, by `(apiVersion, kind)`."""
