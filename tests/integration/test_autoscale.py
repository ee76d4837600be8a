"""`tritonab autoscale plan` on the real Prometheus scraping the real Triton under load,
and the desired-replicas gauge scraped over HTTP."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.deploy.autoscale import PrometheusRates, ReplicaExporter, ScalingSettings, plan
from tritonab.deploy.server import free_port
from tritonab.errors import ClientError, MonitoringError

pytestmark = pytest.mark.integration

QUERY = 'sum(rate(nv_inference_request_success{model="demo_ab"}[3s]))'


class Traffic:
    """Requests to `demo_ab` from a thread, paced to about `rps`, counted."""

    def __init__(self, url: str, rps: float) -> None:
        self.url, self.pause, self.sent, self.stop = url, 1.0 / rps, 0, threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        x = np.zeros((1, 30), dtype=np.float32)
        with ExperimentClient(self.url) as client:
            while not self.stop.is_set():
                try:
                    client.infer("demo_ab", {"input": x}, unit_id=f"as-{self.sent % 40}")
                    self.sent += 1
                except ClientError:
                    pass
                time.sleep(self.pause)

    def __enter__(self) -> Traffic:
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    @property
    def rate(self) -> float:
        return self.sent / (time.monotonic() - self.started)


def test_plan_forecasts_the_served_rate(server, prometheus, tmp_path, capsys):
    with Traffic(server.urls.grpc, rps=40.0) as traffic:
        deadline = time.monotonic() + 30
        rates = PrometheusRates(prometheus.url, QUERY)
        while time.monotonic() < deadline and len(rates.rates(time.time() - 10, time.time(), 1.0)) < 6:
            time.sleep(0.5)
        out = tmp_path / "plan.json"
        code = main(
            [
                "autoscale", "plan", "--prometheus", prometheus.url, "--query", QUERY,
                "--step", "1s", "--history", "1m", "--horizon", "10s", "--capacity-rps", "2",
                "--json", str(out),
            ]
        )  # fmt: skip
        sent_rate = traffic.rate
    assert code == 0
    document = json.loads(out.read_text())
    # the rate Prometheus computed from Triton's counter is the rate the client sent
    assert 0.5 * sent_rate <= document["observed_rps"] <= 1.5 * sent_rate
    assert document["desired_replicas"] >= document["observed_rps"] / (2 * 0.7)
    assert len(document["forecast"]) == 10
    assert "desired replicas:" in capsys.readouterr().out


def test_exporter_serves_the_plan_over_http(prometheus):
    """A plan on `sum(up)` (1 while Prometheus scrapes Triton), published as the gauge."""
    settings = ScalingSettings(capacity_rps=5.0, step_s=1.0, history_s=60.0, horizon_s=5.0)
    decision = plan(PrometheusRates(prometheus.url, "sum(up)"), settings)
    exporter = ReplicaExporter("triton")
    port = free_port()
    exporter.start(port)
    try:
        exporter.apply(decision)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    finally:
        exporter.close()
    assert f'tritonab_desired_replicas{{deployment="triton"}} {float(decision.desired)}' in text


def test_unreachable_prometheus_is_a_monitoring_error():
    with pytest.raises(MonitoringError, match="range query .* failed"):
        PrometheusRates("http://127.0.0.1:9", "sum(up)", timeout=1).rates(0.0, 60.0, 1.0)
