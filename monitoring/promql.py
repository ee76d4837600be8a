"""PromQL over the router's per-variant metrics, through `prometheus-api-client`.

Every query returns `None` when Prometheus has no data for it (a rollout then holds,
never advances); an unreachable Prometheus raises `MonitoringError`.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from tritonab.errors import MonitoringError

MAX_POINTS = 10_000  # Prometheus refuses a range query of more than 11,000 points a series


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

    def range_sum(self, promql: str, start: float, end: float, step_s: float) -> dict[float, float]:
        """Values of a range query at `step_s` from `start` to `end` (Unix seconds),
        summed over the series it returns, by timestamp; NaN and missing points left out.
        Long ranges are asked for in pieces of `MAX_POINTS` points.

        Raises:
            MonitoringError: Prometheus unreachable or the query rejected.
        """
        out: dict[float, float] = {}
        piece = step_s * (MAX_POINTS - 1)
        lo = start
        while lo <= end:
            hi = min(end, lo + piece)
            try:
                result = self._client.custom_query_range(
                    promql,
                    start_time=datetime.fromtimestamp(lo, timezone.utc),
                    end_time=datetime.fromtimestamp(hi, timezone.utc),
                    step=f"{step_s:g}s",
                    timeout=self.timeout,
                )
            except Exception as exc:  # requests/prometheus-api-client raise many types
                raise MonitoringError(
                    f"Prometheus `{self.url}`: range query `{promql}` failed: {exc}"
                ) from None
            for series in result:
                for stamp, text in series.get("values", []):
                    value = float(text)
                    if math.isfinite(value):
                        out[float(stamp)] = out.get(float(stamp), 0.0) + value
            lo = hi + step_s
        return out

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
