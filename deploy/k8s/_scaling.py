"""The autoscaler: a HorizontalPodAutoscaler (autoscaling/v2) on CPU or on the router's
rows per second, or a KEDA ScaledObject whose Prometheus query is the spec's."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tritonab.deploy.k8s._workload import Manifest, metadata
from tritonab.deploy.k8s.spec import HPA, KEDA, DeploySpec

ROWS_METRIC = "tritonab_rows_per_second"
"""The Pods metric Prometheus Adapter serves from `tritonab_requests_total` for the HPA."""


def _quantity(value: float) -> str:
    """A Kubernetes quantity for a rate (`200`, `12500m`)."""
    exact = Decimal(str(value))
    if exact == exact.to_integral_value():
        return str(int(exact))
    return f"{int((exact * 1000).to_integral_value())}m"


def _decimal(value: float) -> str:
    """A plain decimal (`200`, `12.5`): KEDA parses thresholds as floats, not quantities."""
    return format(Decimal(str(value)).normalize(), "f")


def default_query(spec: DeploySpec, window: str = "2m") -> str:
    """The router's rows per second over the deployment's pods (served variants only)."""
    return (
        f'sum(rate(tritonab_requests_total{{namespace="{spec.namespace}",pod=~"{spec.name}-.+",'
        f'variant!~"shadow:.*|_invalid"}}[{window}]))'
    )


def _target(spec: DeploySpec) -> dict[str, str]:
    """What the autoscaler scales."""
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name}


def _hpa(spec: DeploySpec, hpa: HPA) -> Manifest:
    """autoscaling/v2 on CPU utilisation or on rows per second per pod."""
    if hpa.metric == "cpu":
        metric: dict[str, Any] = {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": hpa.target_cpu_percent},
            },
        }
    else:
        assert hpa.target_rows_per_second is not None
        metric = {
            "type": "Pods",
            "pods": {
                "metric": {"name": ROWS_METRIC},
                "target": {"type": "AverageValue", "averageValue": _quantity(hpa.target_rows_per_second)},
            },
        }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(spec, spec.name),
        "spec": {
            "scaleTargetRef": _target(spec),
            "minReplicas": spec.replicas.min,
            "maxReplicas": spec.replicas.max,
            "metrics": [metric],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": hpa.scale_down_stabilization_s}},
        },
    }


def _keda(spec: DeploySpec, keda: KEDA) -> Manifest:
    """keda.sh/v1alpha1 ScaledObject with one Prometheus trigger."""
    trigger_metadata = {
        "serverAddress": keda.prometheus,
        "query": keda.query or default_query(spec),
        "threshold": _decimal(keda.threshold),
    }
    if keda.activation_threshold is not None:
        trigger_metadata["activationThreshold"] = _decimal(keda.activation_threshold)
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": metadata(spec, spec.name),
        "spec": {
            "scaleTargetRef": _target(spec),
            "minReplicaCount": spec.replicas.min,
            "maxReplicaCount": spec.replicas.max,
            "pollingInterval": keda.polling_interval_s,
            "cooldownPeriod": keda.cooldown_s,
            "triggers": [
                {
                    "type": "prometheus",
                    "name": "router-rows",
                    "metricType": keda.metric_type,
                    "metadata": trigger_metadata,
                }
            ],
        },
    }


def autoscaler(spec: DeploySpec) -> list[Manifest]:
    """The spec's autoscaler (none for a fixed replica count)."""
    if spec.autoscaling is None:
        return []
    if isinstance(spec.autoscaling, HPA):
        return [_hpa(spec, spec.autoscaling)]
    return [_keda(spec, spec.autoscaling)]
