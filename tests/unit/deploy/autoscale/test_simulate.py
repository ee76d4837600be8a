"""Trace replay: exact accounting on small traces, and the goal on a diurnal trace."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.deploy.autoscale import ScalingSettings, Trace, diurnal_trace, read_trace, simulate, write_trace
from tritonab.errors import AutoscaleError


def test_constant_load_costs_exactly_its_replicas():
    trace = Trace(np.arange(0.0, 7200.0, 60.0), np.full(120, 100.0))
    result = simulate(trace, ScalingSettings(capacity_rps=50.0, target_utilization=0.7))
    for name in ("hpa", "predictive"):
        r = result.results[name]
        assert r.sla_violation_minutes == 0.0
        assert r.replica_hours == pytest.approx(3 * 2.0)  # ceil(100 / 35) pods for two hours
        assert r.scale_events == 0


def test_a_step_up_is_late_by_the_start_up_for_the_hpa():
    """100 -> 400 rps at 30 min on 50 rps pods: 3 pods carry 150, so the load is over
    capacity from the step until new pods serve (the HPA sees it within a sync, then the
    pods take the 90 s start-up): at least 90 s of violation, and not much more."""
    times = np.arange(0.0, 3600.0, 60.0)
    trace = Trace(times, np.where(times < 1800, 100.0, 400.0))
    r = simulate(trace, ScalingSettings(capacity_rps=50.0), policies=["hpa"]).results["hpa"]
    assert 1.5 <= r.sla_violation_minutes <= 1.5 + 2 * 15 / 60 + 1.0


def test_warmup_is_not_scored():
    times = np.arange(0.0, 7200.0, 60.0)
    trace = Trace(times, np.where(times < 1800, 100.0, 400.0))
    settings = ScalingSettings(capacity_rps=50.0)
    assert (
        simulate(trace, settings, policies=["hpa"], warmup_s=3600).results["hpa"].sla_violation_minutes == 0
    )
    with pytest.raises(AutoscaleError, match="shorter than the trace"):
        simulate(trace, settings, warmup_s=7200)


def test_traces_round_trip_and_bad_files_name_the_line(tmp_path):
    trace = diurnal_trace(days=0.5, seed=4)
    write_trace(trace, tmp_path / "t.csv")
    again = read_trace(tmp_path / "t.csv")
    np.testing.assert_allclose(again.rps, trace.rps, atol=5e-4)
    (tmp_path / "bad.csv").write_text("time_s,rps\n0,1\n60,x\n")
    with pytest.raises(AutoscaleError, match="line 3: `time_s` and `rps` must be numbers"):
        read_trace(tmp_path / "bad.csv")
    (tmp_path / "cols.csv").write_text("t,r\n0,1\n")
    with pytest.raises(AutoscaleError, match="must name `time_s` and `rps`"):
        read_trace(tmp_path / "cols.csv")
    (tmp_path / "order.csv").write_text("time_s,rps\n60,1\n0,1\n")
    with pytest.raises(AutoscaleError, match="must increase strictly"):
        read_trace(tmp_path / "order.csv")


def test_simulate_cli_meets_the_goal_on_a_diurnal_trace(tmp_path, capsys):
    """Two days of history for the daily season, one scored day (about 20 s)."""
    assert (
        main(["autoscale", "trace", "--kind", "diurnal", "--days", "3", "--out", str(tmp_path / "t.csv")])
        == 0
    )
    code = main(
        [
            "autoscale", "simulate", "--trace", str(tmp_path / "t.csv"), "--capacity-rps", "50",
            "--json", str(tmp_path / "sim.json"), "--plot", str(tmp_path / "sim.png"), "--check-goal",
        ]
    )  # fmt: skip
    document = json.loads((tmp_path / "sim.json").read_text())
    hpa, predictive = document["policies"]["hpa"], document["policies"]["predictive"]
    assert hpa["sla_violation_minutes"] > 0  # the trace is one where the HPA is late
    assert predictive["sla_violation_minutes"] <= 0.5 * hpa["sla_violation_minutes"]
    assert predictive["replica_hours"] <= 1.1 * hpa["replica_hours"]
    assert document["goal_met"] is True and code == 0
    assert (tmp_path / "sim.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "goal (<= 0.5x violations at <= 1.1x replica-hours) met" in capsys.readouterr().out
