"""Read Triton's metrics endpoint: the router's per-variant counters and latency histograms.

The text format is parsed by `prometheus_client`; quantiles are interpolated
within histogram buckets the way Prometheus' `histogram_quantile` does.
"""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from tritonab.errors import MonitoringError

REQUESTS = "tritonab_requests"
ERRORS = "tritonab_errors"
LATENCY = "tritonab_request_latency_us"


@dataclass(frozen=True)
class VariantMetrics:
    """What the router reported for one (experiment, variant)."""

    experiment: str
    variant: str
    rows: float
    errors: float
    latency_buckets: tuple[tuple[float, float], ...]  # (upper bound, cumulative count)
    latency_count: float
    latency_sum_us: float

    def latency_quantile(self, q: float) -> float:
        """Latency quantile `q` (0-1) in microseconds (nan without observations)."""
        return histogram_quantile(q, self.latency_buckets)

    @property
    def error_rate(self) -> float:
        return self.errors / self.rows if self.rows else 0.0


def histogram_quantile(q: float, buckets: tuple[tuple[float, float], ...]) -> float:
    """Prometheus' `histogram_quantile` over cumulative `(le, count)` buckets."""
    if not buckets:
        return math.nan
    ordered = sorted(buckets)
    total = ordered[-1][1]
    if total <= 0:
        return math.nan
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for upper, count in ordered:
        if count >= rank:
            if math.isinf(upper):
                return lower_bound  # the highest finite bound, as Prometheus does
            width = count - lower_count
            fraction = (rank - lower_count) / width if width > 0 else 0.0
            return lower_bound + (upper - lower_bound) * fraction
        lower_bound, lower_count = upper, count
    return lower_bound


def fetch_metrics_text(url: str, timeout: float = 5.0) -> str:
    """The raw text of a metrics endpoint.

    Raises:
        MonitoringError: unreachable or not HTTP 200.
    """
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.read().decode("utf-8")
    except (urllib.error.URLError, OSError) as exc:
        raise MonitoringError(f"metrics endpoint `{url}` is unreachable: {exc}") from None


def parse_router_metrics(text: str, experiment: str | None = None) -> dict[tuple[str, str], VariantMetrics]:
    """Per `(experiment, variant)` metrics from Prometheus text (optionally one experiment)."""
    rows: dict[tuple[str, str], float] = {}
    errors: dict[tuple[str, str], float] = {}
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    counts: dict[tuple[str, str], float] = {}
    sums: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (REQUESTS, ERRORS, LATENCY):
            continue
        for sample in family.samples:
            key = (sample.labels.get("experiment", ""), sample.labels.get("variant", ""))
            if experiment is not None and key[0] != experiment:
                continue
            if sample.name == f"{REQUESTS}_total":
                rows[key] = sample.value
            elif sample.name == f"{ERRORS}_total":
                errors[key] = sample.value
            elif sample.name == f"{LATENCY}_bucket":
                buckets.setdefault(key, []).append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{LATENCY}_count":
                counts[key] = sample.value
            elif sample.name == f"{LATENCY}_sum":
                sums[key] = sample.value
    return {
        key: VariantMetrics(
            key[0],
            key[1],
            rows.get(key, 0.0),
            errors.get(key, 0.0),
            tuple(sorted(buckets.get(key, []))),
            counts.get(key, 0.0),
            sums.get(key, 0.0),
        )
        for key in sorted(set(rows) | set(buckets))
    }


def router_metrics(url: str, experiment: str | None = None) -> dict[tuple[str, str], VariantMetrics]:
    """Fetch and parse a Triton metrics endpoint (e.g. `http://127.0.0.1:8002/metrics`)."""
    return parse_router_metrics(fetch_metrics_text(url), experiment)


@dataclass(frozen=True)
class SettledMetrics:
    """Router metrics read until every variant showed its expected rows, or until the deadline.

    `settled` is False when the deadline passed first, or when a variant already showed
    more rows than expected (other traffic: the counts can never settle on `expected`).
    """

    experiment: str
    metrics: dict[tuple[str, str], VariantMetrics]
    expected: dict[str, float]
    settled: bool
    reads: int

    @property
    def rows(self) -> dict[str, float]:
        """Rows per expected variant in the last read (0 for a variant not seen yet)."""
        return {v: self._rows(v) for v in self.expected}

    def _rows(self, variant: str) -> float:
        m = self.metrics.get((self.experiment, variant))
        return m.rows if m is not None else 0.0

    def mismatch(self) -> str:
        """What differs, per variant (empty when settled)."""
        if self.settled:
            return ""
        return ", ".join(
            f"`{v}` shows {self._rows(v):.0f} rows, expected {n:.0f}"
            for v, n in self.expected.items()
            if self._rows(v) != n
        )


def wait_for_rows(
    url: str,
    experiment: str,
    expected: Mapping[str, float],
    *,
    timeout_s: float = 5.0,
    interval_s: float = 0.05,
) -> SettledMetrics:
    """Read the router's metrics until each variant's rows equal `expected`, at most `timeout_s`.

    The router applies its metric updates on a background thread, off the request path:
    as soon as traffic goes idle, and at most about 50 ms behind while it flows. A reader
    that has just seen its last response can therefore be a moment early; this waits for
    the counts it knows it caused.

    Args:
        url: the metrics endpoint (`http://host:8002/metrics`).
        experiment: the router's experiment name.
        expected: rows per variant (e.g. counted from the responses' `AB_VARIANT`).
        timeout_s: the longest to wait.
        interval_s: pause between reads.

    Returns:
        The last read, and whether it matched (`settled`); never raises on a mismatch.

    Raises:
        MonitoringError: the endpoint is unreachable.
    """
    want = {v: float(n) for v, n in expected.items()}
    deadline = time.monotonic() + timeout_s
    reads = 0
    while True:
        metrics = router_metrics(url, experiment)
        reads += 1
        result = SettledMetrics(experiment, metrics, want, False, reads)
        rows = result.rows
        if rows == want:
            return SettledMetrics(experiment, metrics, want, True, reads)
        if any(rows[v] > n for v, n in want.items()) or time.monotonic() >= deadline:
            return result
        time.sleep(interval_s)


LOG_RECORDS = "tritonab_log_records"
LOG_DROPPED = "tritonab_log_dropped"
LOG_WRITER_CPU = "tritonab_log_writer_cpu_seconds"


@dataclass(frozen=True)
class LogMetrics:
    """What the router reported for one (experiment, stream) log: records queued and dropped."""

    experiment: str
    stream: str
    records: float
    dropped: float
    writer_cpu_s: float = 0.0


def parse_log_metrics(text: str, experiment: str | None = None) -> dict[tuple[str, str], LogMetrics]:
    """Per `(experiment, stream)` log counters from Prometheus text."""
    values: dict[tuple[str, str], dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name not in (LOG_RECORDS, LOG_DROPPED, LOG_WRITER_CPU):
            continue
        for sample in family.samples:
            key = (sample.labels.get("experiment", ""), sample.labels.get("stream", ""))
            if (experiment is not None and key[0] != experiment) or not sample.name.endswith("_total"):
                continue
            values.setdefault(key, {})[family.name] = sample.value
    return {
        k: LogMetrics(
            k[0], k[1], v.get(LOG_RECORDS, 0.0), v.get(LOG_DROPPED, 0.0), v.get(LOG_WRITER_CPU, 0.0)
        )
        for k, v in sorted(values.items())
    }


def log_metrics(url: str, experiment: str | None = None) -> dict[tuple[str, str], LogMetrics]:
    """Fetch and parse the routers' log counters (`tritonab_log_records_total`, `..._dropped_total`,
    `tritonab_log_writer_cpu_seconds_total`)."""
    return parse_log_metrics(fetch_metrics_text(url), experiment)
