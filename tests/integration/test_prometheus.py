"""A real Prometheus scraping the real Triton; PromQL over the router's metrics."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from tritonab.client import ExperimentClient
from tritonab.deploy.prometheus_server import scrape_config
from tritonab.errors import ClientError, MonitoringError
from tritonab.monitoring.promql import RouterQueries

pytestmark = pytest.mark.integration


def wait_for(fn, timeout=20.0):
    deadline = time.monotonic() + timeout
    value = fn()
    while value is None and time.monotonic() < deadline:
        time.sleep(0.25)
        value = fn()
    return value


def test_queries_see_each_variant(server, prometheus):
    x = np.zeros((1, 30), dtype=np.float32)
    stop = threading.Event()

    def traffic():
        with ExperimentClient(server.urls.grpc) as client:
            for i in range(5000):  # bounded; stopped as soon as the queries see data
                if stop.is_set():
                    return
                try:
                    client.infer("ab_failing", {"input": x}, unit_id=f"prom-{i % 50}")
                except ClientError:
                    pass
                time.sleep(0.005)

    worker = threading.Thread(target=traffic)
    worker.start()
    queries = RouterQueries(prometheus.url, window="1m")
    try:
        # Counters need two scrapes under traffic before `increase` sees anything.
        assert wait_for(lambda: (queries.rows("ab_failing", "treatment") or 0) > 0 or None)
        assert wait_for(lambda: (queries.rows("ab_failing", "control") or 0) > 0 or None)
    finally:
        stop.set()
        worker.join(timeout=30)
    assert queries.error_rate("ab_failing", "treatment") == pytest.approx(1.0)
    assert queries.error_rate("ab_failing", "control") == pytest.approx(0.0)
    p99 = wait_for(lambda: queries.latency_quantile("ab_failing", "control", 0.99))
    assert p99 is not None and p99 > 0
    assert queries.request_rate("ab_failing", "control") > 0


def test_no_data_is_none_not_zero(prometheus):
    queries = RouterQueries(prometheus.url)
    assert queries.error_rate("no_such_experiment", "control") is None
    assert queries.latency_quantile("no_such_experiment", "control") is None


def test_unreachable_prometheus_raises():
    with pytest.raises(MonitoringError, match="query .* failed"):
        RouterQueries("http://127.0.0.1:9", timeout=1).rows("e", "v")


def test_scrape_config_is_generated_not_templated():
    config = scrape_config(["http://127.0.0.1:8002/metrics", "127.0.0.1:9002"], interval_s=0.5)
    assert config["scrape_configs"][0]["static_configs"][0]["targets"] == ["127.0.0.1:8002", "127.0.0.1:9002"]
    assert config["global"]["scrape_interval"] == "500ms"
