"""A Grafana dashboard per experiment, as JSON, on the router's metrics.

Panels: each variant's share of rows against its target weight, rows per second, error
rate, latency quantiles (p50, p90, p99), the weight every replica routes by (a rollout
as it moves, and a replica that missed a reload), log records dropped, and the
experiment's firing alerts. Variables: the Prometheus data source and the `job` (one
deployment, or all).

    from tritonab.monitoring.dashboards import dashboard
    json.dump(dashboard("demo_ab"), open("demo_ab.json", "w"))

`tritonab deploy render` writes one per experiment of the deploy spec, as a ConfigMap
labelled for Grafana's dashboard sidecar and as a plain JSON file.
"""

from __future__ import annotations

import re
from typing import Any

SERVED = 'variant!~"shadow:.*|_invalid"'
RATE = "$__rate_interval"
SCHEMA_VERSION = 39


def _selector(experiment: str, *extra: str) -> str:
    """`{experiment="...",job=~"$job",...}`."""
    quoted = experiment.replace("\\", "\\\\").replace('"', '\\"')
    return "{" + ",".join((f'experiment="{quoted}"', 'job=~"$job"', *extra)) + "}"


def panel_queries(experiment: str) -> dict[str, list[tuple[str, str]]]:
    """Every panel's PromQL, by panel title: `(expression, legend)` pairs.

    The expressions use Grafana's `$__rate_interval` and `$job`; they are what the
    dashboard shows, and what the tests parse with promtool and run on a real Prometheus.
    """
    served = _selector(experiment, SERVED)
    rows = f"sum by (variant) (rate(tritonab_requests_total{served}[{RATE}]))"
    errors = f"sum by (variant) (rate(tritonab_errors_total{served}[{RATE}]))"
    bucket = f"sum by (le, variant) (rate(tritonab_request_latency_us_bucket{served}[{RATE}]))"
    firing = _selector(experiment, 'alertstate="firing"')
    return {
        "Share of rows vs target weight": [
            (f"{rows} / ignoring (variant) group_left () sum({rows})", "{{variant}} share"),
            (f"avg by (variant) (tritonab_variant_weight{_selector(experiment)})", "{{variant}} target"),
        ],
        "Rows per second": [(rows, "{{variant}}")],
        "Error rate": [(f"{errors} / {rows}", "{{variant}}")],
        "Latency of variant calls": [
            (f"histogram_quantile({q}, {bucket})", f"{{{{variant}}}} p{round(q * 100)}")
            for q in (0.5, 0.9, 0.99)
        ],
        "Weight per replica (rollout)": [
            (f"tritonab_variant_weight{_selector(experiment)}", "{{variant}} @ {{instance}}")
        ],
        "Log records dropped per second": [
            (
                f"sum by (stream) (rate(tritonab_log_dropped_total{_selector(experiment)}[{RATE}]))",
                "{{stream}}",
            )
        ],
        "Firing alerts": [
            (
                f"count by (alertname) (ALERTS{firing})",
                "{{alertname}}",
            )
        ],
    }


_UNITS = {
    "Share of rows vs target weight": "percentunit",
    "Rows per second": "rps",
    "Error rate": "percentunit",
    "Latency of variant calls": "µs",
    "Weight per replica (rollout)": "percentunit",
    "Log records dropped per second": "rps",
    "Firing alerts": "short",
}
_WIDE = {"Share of rows vs target weight", "Weight per replica (rollout)"}


def slug(text: str) -> str:
    """A lowercase name of letters, digits and dashes (for uids and Kubernetes names)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"


def dashboard(experiment: str, *, title: str | None = None) -> dict[str, Any]:
    """The Grafana dashboard of one experiment (JSON-ready).

    Args:
        experiment: the router's name.
        title: the dashboard's title (default `tritonab: <experiment>`).

    Returns:
        The dashboard model (`schemaVersion` 39, Grafana 10 and later).
    """
    panels = []
    x = y = 0
    for index, (name, queries) in enumerate(panel_queries(experiment).items(), start=1):
        width = 24 if name in _WIDE else 12
        if x + width > 24:
            x, y = 0, y + 8
        panels.append(_panel(index, name, queries, {"h": 8, "w": width, "x": x, "y": y}))
        x += width
        if x >= 24:
            x, y = 0, y + 8
    return {
        "title": title or f"tritonab: {experiment}",
        "uid": f"tritonab-{slug(experiment)}"[:40],
        "description": f"Experiment `{experiment}`: shares vs targets, errors, latency, weights, log drops",
        "tags": ["tritonab", "triton"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "timezone": "",
        "templating": {"list": _variables(experiment)},
        "annotations": {"list": []},
        "panels": panels,
    }


def _panel(index: int, name: str, queries: list[tuple[str, str]], grid: dict[str, int]) -> dict[str, Any]:
    """One time-series panel (targets dashed when their legend ends with `target`)."""
    overrides = []
    if any(legend.endswith("target") for _, legend in queries):
        overrides.append(
            {
                "matcher": {"id": "byRegexp", "options": ".* target$"},
                "properties": [
                    {"id": "custom.lineStyle", "value": {"fill": "dash", "dash": [10, 10]}},
                ],
            }
        )
    custom: dict[str, Any] = {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 0}
    if name.startswith("Weight"):
        custom["lineInterpolation"] = "stepAfter"
    return {
        "id": index,
        "type": "timeseries",
        "title": name,
        "gridPos": grid,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "targets": [
            {
                "refId": chr(ord("A") + i),
                "expr": expr,
                "legendFormat": legend,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
            }
            for i, (expr, legend) in enumerate(queries)
        ],
        "fieldConfig": {"defaults": {"unit": _UNITS[name], "custom": custom}, "overrides": overrides},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
    }


def _variables(experiment: str) -> list[dict[str, Any]]:
    """The data source, and the deployments (`job`) that serve the experiment."""
    quoted = experiment.replace('"', '\\"')
    return [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
        },
        {
            "name": "job",
            "label": "deployment (job)",
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {
                "query": f'label_values(tritonab_requests_total{{experiment="{quoted}"}}, job)',
                "refId": "job",
            },
            "definition": f'label_values(tritonab_requests_total{{experiment="{quoted}"}}, job)',
            "includeAll": True,
            "allValue": ".*",
            "multi": True,
            "refresh": 2,
            "current": {"text": "All", "value": "$__all"},
            "hide": 0,
        },
    ]
