"""Router metrics from Prometheus text, and Prometheus-style histogram quantiles."""

from __future__ import annotations

import math

import pytest

from tritonab.errors import MonitoringError
from tritonab.monitoring.metrics import fetch_metrics_text, histogram_quantile, parse_router_metrics

TEXT = """\
# HELP tritonab_requests_total Inference rows routed
# TYPE tritonab_requests_total counter
tritonab_requests_total{experiment="ab",variant="control"} 90
tritonab_requests_total{experiment="ab",variant="treatment"} 10
tritonab_requests_total{experiment="other",variant="control"} 5
# TYPE tritonab_errors_total counter
tritonab_errors_total{experiment="ab",variant="control"} 0
tritonab_errors_total{experiment="ab",variant="treatment"} 2
# TYPE tritonab_request_latency_us histogram
tritonab_request_latency_us_bucket{experiment="ab",variant="control",le="100"} 10
tritonab_request_latency_us_bucket{experiment="ab",variant="control",le="1000"} 90
tritonab_request_latency_us_bucket{experiment="ab",variant="control",le="+Inf"} 100
tritonab_request_latency_us_count{experiment="ab",variant="control"} 100
tritonab_request_latency_us_sum{experiment="ab",variant="control"} 50000
# TYPE nv_inference_count counter
nv_inference_count{model="demo_gbt",version="1"} 7
"""


def test_parses_counters_and_histograms_per_variant():
    metrics = parse_router_metrics(TEXT, "ab")
    assert set(metrics) == {("ab", "control"), ("ab", "treatment")}
    control, treatment = metrics[("ab", "control")], metrics[("ab", "treatment")]
    assert (control.rows, control.errors, treatment.rows, treatment.errors) == (90, 0, 10, 2)
    assert treatment.error_rate == pytest.approx(0.2)
    assert control.latency_count == 100 and control.latency_sum_us == 50000
    assert len(parse_router_metrics(TEXT)) == 3


def test_quantiles_interpolate_within_buckets_like_prometheus():
    buckets = ((100.0, 10.0), (1000.0, 90.0), (math.inf, 100.0))
    assert histogram_quantile(0.05, buckets) == pytest.approx(50.0)  # 5 of 10 in [0, 100)
    assert histogram_quantile(0.5, buckets) == pytest.approx(550.0)  # 40 of 80 in [100, 1000)
    assert histogram_quantile(0.99, buckets) == pytest.approx(1000.0)  # +Inf: highest finite bound
    assert math.isnan(histogram_quantile(0.5, ()))
    assert math.isnan(histogram_quantile(0.5, ((100.0, 0.0), (math.inf, 0.0))))


def test_unreachable_endpoint():
    with pytest.raises(MonitoringError, match="unreachable"):
        fetch_metrics_text("http://127.0.0.1:9/metrics", timeout=1)


class _LaggingEndpoint:
    """A real HTTP metrics endpoint whose `control` count grows by 10 rows per read, up to `final`."""

    def __init__(self, final: int) -> None:
        import http.server
        import threading

        self.reads = 0
        endpoint = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint.reads += 1
                rows = min(10 * endpoint.reads, final)
                body = (
                    "# TYPE tritonab_requests_total counter\n"
                    f'tritonab_requests_total{{experiment="ab",variant="control"}} {rows}\n'
                    'tritonab_requests_total{experiment="ab",variant="treatment"} 5\n'
                ).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _LaggingEndpoint:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_wait_for_rows_reads_until_the_counts_catch_up():
    from tritonab.monitoring.metrics import wait_for_rows

    with _LaggingEndpoint(final=30) as endpoint:
        result = wait_for_rows(endpoint.url, "ab", {"control": 30, "treatment": 5}, interval_s=0.001)
    assert result.settled and result.reads == 3
    assert result.rows == {"control": 30.0, "treatment": 5.0} and result.mismatch() == ""


def test_wait_for_rows_says_what_never_settled():
    from tritonab.monitoring.metrics import wait_for_rows

    with _LaggingEndpoint(final=20) as endpoint:
        result = wait_for_rows(endpoint.url, "ab", {"control": 30, "treatment": 5}, timeout_s=0.3)
    assert not result.settled and result.reads >= 2
    assert result.mismatch() == "`control` shows 20 rows, expected 30"


def test_wait_for_rows_stops_at_once_when_a_count_is_already_past_the_expected():
    from tritonab.monitoring.metrics import wait_for_rows

    with _LaggingEndpoint(final=30) as endpoint:
        result = wait_for_rows(endpoint.url, "ab", {"control": 30, "treatment": 3}, timeout_s=30)
    assert not result.settled and result.reads == 1
    assert result.mismatch() == "`control` shows 10 rows, expected 30, `treatment` shows 5 rows, expected 3"
