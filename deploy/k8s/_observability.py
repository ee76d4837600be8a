"""Watching the pods: a PodMonitor for the metrics port, one PrometheusRule with every
rule file of `monitoring/rules/` (thresholds from the spec), and a Grafana dashboard per
experiment as a ConfigMap for Grafana's sidecar (label `grafana_dashboard: "1"`)."""

from __future__ import annotations

import json
from typing import Any

from tritonab.deploy.k8s._workload import Manifest, labels, metadata
from tritonab.deploy.k8s.spec import DeploySpec
from tritonab.monitoring.alerts import load_rule_groups
from tritonab.monitoring.dashboards import dashboard, slug


def pod_monitor(spec: DeploySpec) -> Manifest:
    """The Prometheus Operator scrapes every pod's `metrics` port."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": metadata(spec, spec.name, **spec.monitoring.labels),
        "spec": {
            "selector": {"matchLabels": labels(spec)},
            "namespaceSelector": {"matchNames": [spec.namespace]},
            "podMetricsEndpoints": [
                {
                    "port": "metrics",
                    "path": "/metrics",
                    "scheme": "http",
                    "interval": spec.monitoring.scrape_interval,
                }
            ],
        },
    }


def prometheus_rule(spec: DeploySpec) -> Manifest:
    """Every shipped rule group, with the spec's alert thresholds."""
    groups: list[dict[str, Any]] = load_rule_groups(thresholds=spec.alerts.thresholds())
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata(spec, spec.name, **spec.monitoring.labels),
        "spec": {"groups": groups},
    }


def dashboard_name(spec: DeploySpec, experiment: str) -> str:
    """The ConfigMap of an experiment's dashboard."""
    return f"{spec.name}-dashboard-{slug(experiment)}"[:253]


def dashboard_maps(spec: DeploySpec) -> list[Manifest]:
    """One ConfigMap per experiment of `monitoring.dashboards`."""
    maps = []
    for experiment in spec.monitoring.dashboards:
        document = json.dumps(dashboard(experiment), indent=2, sort_keys=True)
        maps.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata(spec, dashboard_name(spec, experiment), grafana_dashboard="1"),
                "data": {f"tritonab-{slug(experiment)}.json": document},
            }
        )
    return maps
