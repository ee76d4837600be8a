"""PromQL over the router's per-variant metrics, through `prometheus-api-client`.

Every query returns `None` when Prometheus has no data for it (a rollout then holds,
never advances); an unreachable Prometheus raises `MonitoringError`.
"""

from __future__ import annotations

import math

from tritonab.errors import MonitoringError


def _selector(experiment: str, variant: str) -> str:
    def quote(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"')

    return f'experiment="{quote(experiment)}",variant="{quote(variant)}"'


class RouterQueries:
    """Per-variant request rate, error rate and latency quantiles from Prometheus.

    Args:
        url: Prometheus base URL, e.g. `http://127.0.0.1:9090`.
        window: PromQL range for rates, e.g. `1m` or `30s`.
    """

    def __init__(self, url: str, *, window: str = "1m", timeout: float = 5.0) -> None:
        from prometheus_api_client import PrometheusConnect

        self.url = url
        self.window = window
        self.timeout = timeout
        self._client = PrometheusConnect(url=url, disable_ssl=True)

    def instant(self, promql: str) -> float | None:
        """The single value of an instant query (None when empty or NaN).

        Raises:
            MonitoringError: Prometheus unreachable or the query rejected.
        """
        try:
            result = self._client.custom_query(promql, timeout=self.timeout)
        except Exception as exc:  # requests/prometheus-api-client raise many types
            raise MonitoringError(f"Prometheus `{self.url}`: query `{promql}` failed: {exc}") from None
        if not result:
            return None
        value = float(result[0]["value"][1])
        return None if math.isnan(value) or math.isinf(value) else value

    def series(self, promql: str, start: float, end: float, step: float = 1.0) -> list[tuple[float, float]]:
        """The (time, value) points of a range query's first series (NaNs left out).

        Raises:
            MonitoringError: Prometheus unreachable or the query rejected.
        """
        from datetime import datetime, timezone

        try:
            result = self._client.custom_query_range(
                promql,
                start_time=datetime.fromtimestamp(start, timezone.utc),
                end_time=datetime.fromtimestamp(end, timezone.utc),
                step=f"{step:g}s",
                timeout=self.timeout,
            )
        except Exception as exc:  # requests/prometheus-api-client raise many types
            raise MonitoringError(f"Prometheus `{self.url}`: range query `{promql}` failed: {exc}") from None
        if not result:
            return []
        points = ((float(t), float(v)) for t, v in result[0]["values"])
        return [(t, v) for t, v in points if math.isfinite(v)]

    def rows(self, experiment: str, variant: str, window: str | None = None) -> float | None:
        """Rows routed to the variant during the window."""
        sel = _selector(experiment, variant)
        return self.instant(f"sum(increase(tritonab_requests_total{{{sel}}}[{window or self.window}]))")

    def request_rate(self, experiment: str, variant: str, window: str | None = None) -> float | None:
        """Rows per second routed to the variant."""
        sel = _selector(experiment, variant)
        return self.instant(f"sum(rate(tritonab_requests_total{{{sel}}}[{window or self.window}]))")

    def error_rate(self, experiment: str, variant: str, window: str | None = None) -> float | None:
        """Failed rows / routed rows over the window (None when nothing was routed)."""
        w = window or self.window
        sel = _selector(experiment, variant)
        return self.instant(
            f"sum(increase(tritonab_errors_total{{{sel}}}[{w}])) / "
            f"sum(increase(tritonab_requests_total{{{sel}}}[{w}]))"
        )

    def latency_quantile(
        self, experiment: str, variant: str, q: float = 0.99, window: str | None = None
    ) -> float | None:
        """Latency quantile in microseconds from the router's histogram."""
        w = window or self.window
        sel = _selector(experiment, variant)
        return self.instant(
            f"histogram_quantile({q}, sum by (le) (rate(tritonab_request_latency_us_bucket{{{sel}}}[{w}])))"
        )
