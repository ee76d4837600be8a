"""Plans from a rate history, the actuators, and capacity from a perf CSV."""

from __future__ import annotations

import types

import pytest
from kubernetes.client.exceptions import ApiException
from prometheus_client.exposition import generate_latest

from tritonab.deploy.autoscale import (
    Autoscaler,
    ReplicaExporter,
    ScaleActuator,
    ScalingSettings,
    capacity_from_records,
    default_query,
    plan,
)
from tritonab.errors import AutoscaleError
from tritonab.perf import PerfRecord

NOW = 1_800_000_000.0
SETTINGS = ScalingSettings(capacity_rps=100.0, target_utilization=0.5, history_s=3600.0, horizon_s=600.0)


class TableRates:
    """A rate source over a function of time, answering only where it has data."""

    def __init__(self, rate, since: float = NOW - 3600.0, gaps: tuple[float, ...] = ()) -> None:
        self.rate, self.since, self.gaps, self.asked = rate, since, gaps, []

    def rates(self, start: float, end: float, step_s: float) -> dict[float, float]:
        self.asked.append((start, end, step_s))
        out, t = {}, start
        while t <= end:
            if t >= self.since and t not in self.gaps:
                out[t] = self.rate(t)
            t += step_s
        return out


def test_plan_reads_the_history_and_plans_the_forecast():
    source = TableRates(lambda t: 300.0)
    decision = plan(source, SETTINGS, clock=lambda: NOW + 30.0)
    assert source.asked == [(NOW - 3600.0, NOW, 60.0)]  # whole steps only
    assert decision.observed_rps == 300.0
    assert decision.desired == 6  # 300 rps at 50 planned per pod
    assert len(decision.forecast) == 10 and all(p.replicas == 6 for p in decision.forecast)
    assert decision.to_dict()["desired_replicas"] == 6


def test_a_plan_holds_the_scale_down_stabilisation():
    """The rate fell 2 minutes ago: the decisions replayed over the last 5 minutes still
    asked for the old count, so the plan keeps it."""
    decision = Autoscaler(
        TableRates(lambda t: 600.0 if t < NOW - 120 else 100.0), SETTINGS, clock=lambda: NOW
    ).tick()
    assert decision.recommended < 12 <= decision.desired


def test_gaps_carry_the_last_value_and_ticks_read_only_new_steps():
    clock = [NOW]
    source = TableRates(lambda t: 200.0, gaps=(NOW - 60.0,))
    autoscaler = Autoscaler(source, SETTINGS, clock=lambda: clock[0])
    first = autoscaler.tick(current=4)
    assert first.observed_rps == 200.0 and first.history_points == 61
    clock[0] += 120.0
    autoscaler.tick()
    assert source.asked[-1] == (NOW + 60.0, NOW + 120.0, 60.0)
    assert autoscaler.policy.observed == 63


def test_no_history_is_an_error_that_names_the_window():
    with pytest.raises(AutoscaleError, match="no request rate in the last 3600 s"):
        plan(TableRates(lambda t: 1.0, since=NOW + 1), SETTINGS, current=1, clock=lambda: NOW)


def test_default_query_sums_triton_success_rates():
    assert default_query(60.0) == "sum(rate(nv_inference_request_success[60s]))"
    assert default_query(300.0, "m") == 'sum(rate(nv_inference_request_success{model="m"}[300s]))'


class FakeAppsApi:
    """`AppsV1Api`'s two scale calls, over an in-memory Deployment."""

    def __init__(self, replicas: int, fail: int | None = None) -> None:
        self.replicas, self.fail, self.patches = replicas, fail, []

    def read_namespaced_deployment_scale(self, name: str, namespace: str):
        if self.fail:
            raise ApiException(status=self.fail, reason="Not Found")
        return types.SimpleNamespace(spec=types.SimpleNamespace(replicas=self.replicas))

    def patch_namespaced_deployment_scale(self, name: str, namespace: str, body):
        self.patches.append((name, namespace, body))
        self.replicas = body["spec"]["replicas"]


def _decision(desired: int):
    return plan(TableRates(lambda t: 50.0 * desired), SETTINGS, clock=lambda: NOW)


def test_scale_actuator_patches_only_a_change():
    api = FakeAppsApi(replicas=2)
    actuator = ScaleActuator(api, "triton", "serving")
    assert actuator.apply(_decision(5)) == 5
    assert api.patches == [("triton", "serving", {"spec": {"replicas": 5}})]
    actuator.apply(_decision(5))
    assert len(api.patches) == 1 and actuator.current() == 5


def test_scale_actuator_translates_api_errors():
    with pytest.raises(AutoscaleError, match="Deployment `serving/triton`: cannot read its scale") as info:
        ScaleActuator(FakeAppsApi(1, fail=404), "triton", "serving").current()
    assert isinstance(info.value.__cause__, ApiException)


def test_exporter_publishes_the_desired_replicas_gauge():
    exporter = ReplicaExporter("triton")
    assert generate_latest(exporter.registry) == b""
    exporter.apply(_decision(7))
    text = generate_latest(exporter.registry).decode()
    assert 'tritonab_desired_replicas{deployment="triton"} 7.0' in text
    assert 'tritonab_forecast_rps{bound="upper",deployment="triton"}' in text


def _record(throughput: float, p99_ms: float) -> PerfRecord:
    return PerfRecord("concurrency", 1, throughput, 1.0, 1.0, 1.0, p99_ms * 1000.0)


def test_capacity_is_the_best_throughput_inside_the_sla():
    records = [_record(100, 10), _record(180, 30), _record(240, 80), _record(150, 20)]
    assert capacity_from_records(records, p99_sla_ms=50) == 180
    with pytest.raises(
        AutoscaleError, match=r"no measured level has p99 within 5 ms \(the lowest p99 was 10 ms\)"
    ):
        capacity_from_records(records, p99_sla_ms=5)


def test_run_cli_patches_the_deployment_each_tick(monkeypatch, tmp_path, capsys):
    """`autoscale run --patch-scale`: Prometheus and the cluster stood in for (the real
    Prometheus is in tests/integration/test_autoscale.py), capacity from a perf CSV."""
    import tritonab.deploy.autoscale as autoscale
    from tritonab.cli import main
    from tritonab.perf import write_perf_csv

    api = FakeAppsApi(replicas=1)
    monkeypatch.setattr(
        autoscale, "PrometheusRates", lambda url, query: TableRates(lambda t: 330.0, since=0.0)
    )
    monkeypatch.setattr(autoscale, "kubernetes_apps_api", lambda kubeconfig: api)
    write_perf_csv([_record(100, 10), _record(110, 40), _record(160, 90)], tmp_path / "perf.csv")
    code = main(
        [
            "autoscale", "run", "--prometheus", "http://prometheus:9090", "--deployment", "triton",
            "--patch-scale", "--capacity-from", str(tmp_path / "perf.csv"), "--sla-p99", "50",
            "--history", "30m", "--ticks", "2", "--sync", "1s",
        ]
    )  # fmt: skip
    assert code == 0
    # 330 rps at 0.7 x 110 rps per replica: 5 replicas, patched once, kept on the second tick
    assert api.patches == [("triton", "default", {"spec": {"replicas": 5}})]
    assert capsys.readouterr().out.count("desired replicas: 5") == 2


def test_run_cli_holds_the_last_decision_when_prometheus_is_briefly_away(monkeypatch, capsys):
    import tritonab.deploy.autoscale as autoscale
    from tritonab.cli import main
    from tritonab.errors import MonitoringError

    source = TableRates(lambda t: 100.0, since=0.0)
    answer = source.rates

    def flaky(start: float, end: float, step_s: float) -> dict[float, float]:
        if source.asked:
            raise MonitoringError("Prometheus `http://prometheus:9090`: range query failed")
        return answer(start, end, step_s)

    source.rates = flaky  # type: ignore[method-assign]
    api = FakeAppsApi(replicas=1)
    monkeypatch.setattr(autoscale, "PrometheusRates", lambda url, query: source)
    monkeypatch.setattr(autoscale, "kubernetes_apps_api", lambda kubeconfig: api)
    args = ["autoscale", "run", "--prometheus", "http://prometheus:9090", "--deployment", "triton"]
    settings = ["--capacity-rps", "50", "--history", "2m", "--step", "1s", "--sync", "1s"]
    code = main([*args, "--patch-scale", *settings, "--ticks", "2"])
    assert code == 0 and api.replicas == 3  # decided once (100 / 35 -> 3), then held
    assert "warning: holding the last decision: Prometheus" in capsys.readouterr().err


def test_run_cli_needs_an_actuator(capsys):
    from tritonab.cli import main

    code = main(["autoscale", "run", "--prometheus", "http://x", "--deployment", "d", "--capacity-rps", "1"])
    assert code == 2
    assert "give --export-port" in capsys.readouterr().err
