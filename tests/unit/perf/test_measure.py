"""Stability rule, range parsing, the server-side latency split, and the generator on a fake client."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from tritonab.errors import PerfError
from tritonab.perf import MeasureSettings, ServerStats, Window, parse_range, split_latency
from tritonab.perf._measure import is_stable, measure_level
from tritonab.perf._server_stats import stats_from_json


def _window(throughput, latency_us):
    return Window(1, 1.0, int(throughput), 0, np.full(10, float(latency_us)))


def test_stability_needs_three_within_percentage():
    settings = MeasureSettings(stability_percentage=10)
    assert not is_stable([_window(100, 1000), _window(100, 1000)], settings)
    assert is_stable(
        [_window(50, 5000), _window(100, 1000), _window(105, 1050), _window(109, 1000)], settings
    )
    assert not is_stable([_window(100, 1000), _window(105, 1000), _window(115, 1000)], settings)
    assert not is_stable([_window(100, 1000), _window(100, 1000), _window(100, 1200)], settings)


def test_parse_range():
    assert parse_range("1:8:2", integer=True) == [1, 3, 5, 7]
    assert parse_range("4", integer=True) == [4]
    assert parse_range("50:100:25", integer=False) == [50.0, 75.0, 100.0]
    with pytest.raises(PerfError, match="expected START"):
        parse_range("4:1", integer=True)
    with pytest.raises(PerfError, match="must be at least 3"):
        MeasureSettings(max_trials=2)


def test_stats_delta_and_split():
    doc = {
        "model_stats": [
            {
                "name": "m",
                "version": "1",
                "inference_stats": {
                    "success": {"count": "10", "ns": "20000000"},
                    "queue": {"count": "10", "ns": "1000000"},
                    "compute_input": {"count": "10", "ns": "500000"},
                    "compute_infer": {"count": "10", "ns": "15000000"},
                    "compute_output": {"count": "10", "ns": "500000"},
                },
            },
            {"name": "other", "inference_stats": {}},
        ]
    }
    delta = stats_from_json(doc, "m") - ServerStats()
    parts = delta.per_request_us()
    assert parts["queue_us"] == 100 and parts["compute_infer_us"] == 1500 and "cache_hit_us" not in parts
    split = split_latency(2500.0, delta, client_send_us=50, client_recv_us=50)
    assert split["network_us"] == pytest.approx(2500 - 50 - 50 - (100 + 50 + 1500 + 50))
    assert split_latency(100.0, delta)["network_us"] == 0.0  # floored like perf_analyzer
    assert split_latency(100.0, None)["queue_us"] == 0.0


class _FakeClient:
    """Answers after 1 ms; every 10th request fails as a server error would."""

    def __init__(self):
        self.calls = 0

    async def infer(self, model, inputs, model_version="", parameters=None, headers=None):
        self.calls += 1
        await asyncio.sleep(0.001)
        if self.calls % 10 == 0:
            raise InferenceServerException("boom")


class _FakeConnection:
    """What the load generator reads of a connection: its client and per-call arguments."""

    def __init__(self):
        self.client = _FakeClient()

    def call_kwargs(self):
        return {"headers": None}


@pytest.mark.parametrize("mode,load", [("concurrency", 2), ("request_rate", 200.0)])
def test_measure_level_on_fake_client(mode, load):
    client = _FakeConnection()
    settings = MeasureSettings(100, 100, 3, schedule="constant")
    record, windows = asyncio.run(measure_level(client, lambda i: ("m", "", [], None), mode, load, settings))
    assert len(windows) == 3 and record.trials == 3
    assert record.errors > 0 and 0.05 < record.error_rate < 0.15
    assert record.p50_us >= 1000 and record.throughput > 0
    assert not record.has_server_stats
