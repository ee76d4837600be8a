"""The canary state machine with fake router, metrics, gate and statistics."""

from __future__ import annotations

import json

import pytest

from tritonab.errors import ClientError, MonitoringError, RolloutError
from tritonab.monitoring import audit
from tritonab.rollout import (
    CanaryStrategy,
    Controller,
    GateVerdict,
    StatsVerdict,
    TickOutcome,
    exit_code,
    load_rollout_dict,
    load_state,
    split_weights,
)
from tritonab.splitter.spec import load_spec_dict


class FakeRouter:
    """A router whose weights live in memory; every reload is recorded."""

    def __init__(self, weights=None, fail_sets=0):
        weights = weights or {"control": 1.0, "treatment": 0.0}
        self.spec = load_spec_dict(
            {
                "name": "exp",
                "variants": [
                    {"name": n, "model": f"m_{n}", "version": 1, "weight": w} for n, w in weights.items()
                ],
            }
        )
        self.history: list[dict[str, float]] = []
        self.fail_sets = fail_sets

    def experiment(self, name):
        assert name == "exp"
        return self.spec, None

    def set_weights(self, name, weights):
        if self.fail_sets:
            self.fail_sets -= 1
            raise ClientError("loading model `exp` failed: busy")
        self.spec = self.spec.with_weights(weights)
        self.history.append(dict(weights))
        return self.spec

    @property
    def candidate_history(self):
        return [w["treatment"] for w in self.history]


class FakeMetrics:
    """Per (metric, variant) values; a callable value is called; `down` raises."""

    def __init__(self, **values):
        self.values = {
            "rows": {"control": 500.0, "treatment": 100.0},
            "error_rate": {"control": 0.0, "treatment": 0.0},
            "latency": {"control": 1000.0, "treatment": 1100.0},
            "request_rate": {"control": 50.0, "treatment": 10.0},
        }
        for key, per in values.items():
            self.values[key] = {**self.values[key], **per}
        self.down = False

    def _get(self, metric, variant):
        if self.down:
            raise MonitoringError("Prometheus `http://x`: query failed")
        value = self.values[metric].get(variant)
        return value() if callable(value) else value

    def rows(self, experiment, variant, window=None):
        return self._get("rows", variant)

    def request_rate(self, experiment, variant, window=None):
        return self._get("request_rate", variant)

    def error_rate(self, experiment, variant, window=None):
        return self._get("error_rate", variant)

    def latency_quantile(self, experiment, variant, q=0.99, window=None):
        return self._get("latency", variant)


def make_spec(**overrides):
    data = {
        "experiment": "exp",
        "candidate": "treatment",
        "steps": [10, 50, 100],
        "interval_s": 1,
        "window": "10s",
        "failed_checks": 2,
        "progress_deadline": 3,
        "checks": [
            {"metric": "rows", "min": 20},
            {"metric": "error_rate", "max": 0.01},
            {"metric": "latency", "quantile": 0.99, "max": 1.5, "relative": True},
        ],
    }
    data.update(overrides)
    return load_rollout_dict(data)


class Clock:
    """Time that moves `step` seconds each time it is read (a full window by default, so
    every tick judges; set `step` to 0 to freeze it). Clocks share one time line, as the
    processes of a restarted controller do."""

    shared = 1_000_000.0

    def __init__(self, step=60.0):
        self.step = step

    @property
    def now(self):
        return Clock.shared

    @now.setter
    def now(self, value):
        Clock.shared = value

    def __call__(self):
        self.now += self.step
        return self.now


def controller(
    tmp_path, router, metrics=None, *, spec=None, perf_gate=None, stats=None, clock=None, **kwargs
):
    strategy = CanaryStrategy(
        spec or make_spec(), router, metrics=metrics, perf_gate=perf_gate, stats=stats, clock=clock or Clock()
    )
    return Controller(
        strategy, state_path=tmp_path / "state.json", audit_path=tmp_path / "audit.jsonl", **kwargs
    )


def outcomes(ctl, n):
    return [ctl.tick().outcome for _ in range(n)]


def test_healthy_candidate_is_promoted_step_by_step(tmp_path):
    router = FakeRouter()
    ctl = controller(tmp_path, router, FakeMetrics())
    assert outcomes(ctl, 3) == [TickOutcome.ADVANCE, TickOutcome.ADVANCE, TickOutcome.PROMOTE]
    assert router.candidate_history == [0.1, 0.5, 1.0]
    assert router.history[-1] == {"control": 0.0, "treatment": 1.0}
    state = load_state(tmp_path / "state.json")
    assert state.status == "promoted" and exit_code(state) == 0
    assert ctl.tick().outcome is TickOutcome.DONE
    assert len(router.history) == 3


def test_failing_candidate_rolls_back_at_the_threshold(tmp_path):
    router = FakeRouter()
    ctl = controller(tmp_path, router, FakeMetrics(error_rate={"treatment": 0.2}))
    events = [ctl.tick() for _ in range(3)]
    assert [e.outcome for e in events] == [
        TickOutcome.ADVANCE,
        TickOutcome.FAILED_CHECK,
        TickOutcome.ROLLBACK,
    ]
    assert "failed error rate (1/2)" in events[1].reason
    assert "candidate back to 0%" in events[2].reason
    assert router.candidate_history == [0.1, 0.0]
    state = load_state(tmp_path / "state.json")
    assert (state.status, state.failed_checks, exit_code(state)) == ("rolled_back", 2, 1)


def test_no_data_holds_and_never_advances_then_deadline_rolls_back(tmp_path):
    router = FakeRouter()
    metrics = FakeMetrics(rows={"treatment": None})
    ctl = controller(tmp_path, router, metrics)
    assert ctl.tick().outcome is TickOutcome.ADVANCE
    metrics.down = True  # unreachable Prometheus is a hold too
    assert outcomes(ctl, 2) == [TickOutcome.HOLD, TickOutcome.HOLD]
    assert router.candidate_history == [0.1]
    event = ctl.tick()
    assert event.outcome is TickOutcome.ROLLBACK and "progress deadline" in event.reason
    assert router.candidate_history == [0.1, 0.0]


def test_too_few_rows_holds(tmp_path):
    ctl = controller(tmp_path, FakeRouter(), FakeMetrics(rows={"treatment": 5.0}))
    ctl.tick()
    event = ctl.tick()
    assert event.outcome is TickOutcome.HOLD
    assert event.checks[0].status == "hold" and "rows=5" in event.line()


def test_relative_latency_check(tmp_path):
    metrics = FakeMetrics(latency={"control": 1000.0, "treatment": 1600.0})
    ctl = controller(tmp_path, FakeRouter(), metrics)
    ctl.tick()
    event = ctl.tick()
    latency = event.checks[2]
    assert (latency.value, latency.high, latency.baseline, latency.status) == (1600.0, 1500.0, 1000.0, "fail")
    metrics.values["latency"]["control"] = None
    assert ctl.tick().checks[2].status == "nodata"


def test_restarted_controller_resumes_from_the_saved_state(tmp_path):
    router = FakeRouter()
    first = controller(tmp_path, router, FakeMetrics(), sleep=lambda s: None)
    state = first.run(max_ticks=2)
    assert (state.status, state.step) == ("progressing", 1)
    second = controller(tmp_path, router, FakeMetrics())  # a new process, same state file
    assert second.tick().outcome is TickOutcome.PROMOTE
    assert router.candidate_history == [0.1, 0.5, 1.0]


def test_router_drift_is_reconciled(tmp_path):
    router = FakeRouter()
    ctl = controller(tmp_path, router, FakeMetrics())
    ctl.tick()
    router.spec = router.spec.with_weights({"control": 1.0, "treatment": 0.0})  # server restarted
    event = ctl.tick()
    assert "weights re-applied" in event.reason
    assert router.candidate_history == [0.1, 0.1, 0.5]


def test_a_failed_reload_holds_and_the_next_tick_retries(tmp_path):
    router = FakeRouter()
    ctl = controller(tmp_path, router, FakeMetrics())
    router.fail_sets = 1
    event = ctl.tick()
    assert event.outcome is TickOutcome.HOLD and "busy" in event.reason
    assert ctl.tick().outcome is TickOutcome.ADVANCE
    assert router.candidate_history == [0.1]


def test_only_baseline_and_candidate_move_with_three_variants(tmp_path):
    router = FakeRouter({"control": 0.6, "other": 0.4, "treatment": 0.0})
    ctl = controller(tmp_path, router, FakeMetrics(), spec=make_spec(checks=[]))
    outcomes(ctl, 3)
    assert [w["other"] for w in router.history] == [0.4, 0.4, 0.4]
    assert router.history[0] == pytest.approx({"control": 0.54, "other": 0.4, "treatment": 0.06})
    assert router.history[-1] == pytest.approx({"control": 0.0, "other": 0.4, "treatment": 0.6})


def test_perf_gate_failure_rolls_back_before_any_traffic_moves(tmp_path):
    router = FakeRouter()
    calls = []

    def gate(baseline, candidate):
        calls.append((baseline, candidate))
        return GateVerdict(False, [{"name": "p99 ratio", "value": 9.0, "limit": 2.0, "status": "FAIL"}])

    ctl = controller(tmp_path, router, FakeMetrics(), perf_gate=gate)
    event = ctl.tick()
    assert event.outcome is TickOutcome.ROLLBACK and event.reason.startswith("perf gate failed")
    assert calls == [("m_control:1", "m_treatment:1")]
    assert router.history == []
    assert load_state(tmp_path / "state.json").gate == "failed"


def test_perf_gate_pass_takes_the_first_step(tmp_path):
    router = FakeRouter()
    ctl = controller(tmp_path, router, FakeMetrics(), perf_gate=lambda b, c: GateVerdict(True))
    event = ctl.tick()
    assert event.outcome is TickOutcome.ADVANCE and "perf gate passed" in event.reason
    assert router.candidate_history == [0.1]


def test_statistics_degradation_rolls_back_and_srm_halts(tmp_path):
    router = FakeRouter()
    verdicts = iter([StatsVerdict("rollback", ("primary worse",), {"p_value": 0.001})])
    ctl = controller(tmp_path, router, FakeMetrics(), stats=lambda e, b, c: next(verdicts))
    ctl.tick()
    assert ctl.tick().outcome is TickOutcome.ROLLBACK
    other = tmp_path / "b"
    router = FakeRouter()
    ctl = controller(other, router, FakeMetrics(), stats=lambda e, b, c: StatsVerdict("invalid"))
    ctl.tick()
    assert ctl.tick().outcome is TickOutcome.HALT
    assert ctl.tick().outcome is TickOutcome.DONE
    assert router.candidate_history == [0.1]
    event = ctl.abort()
    assert event.outcome is TickOutcome.ABORT and event.status == "aborted"
    assert router.candidate_history == [0.1, 0.0]


def test_audit_log_records_every_decision_and_verifies(tmp_path):
    router = FakeRouter()
    ctl = controller(tmp_path, router, FakeMetrics(error_rate={"treatment": 0.5}), sleep=lambda s: None)
    ctl.run(max_ticks=10)
    records = audit.read(tmp_path / "audit.jsonl")
    events = [r["event"] for r in records]
    assert events == [
        "rollout.start",
        "rollout.weights",
        "rollout.advance",
        "rollout.failed_check",
        "rollout.weights",
        "rollout.rollback",
    ]
    failed = records[3]
    check = {c["name"]: c for c in failed["checks"]}["error rate"]
    assert (check["value"], check["high"], check["status"]) == (0.5, 0.01, "fail")
    assert failed["actor"] == "tritonab-rollout" and failed["thresholds"]["failed_checks"] == 2
    assert records[4]["before"]["treatment"] == 0.1 and records[4]["after"]["treatment"] == 0.0
    assert audit.verify(tmp_path / "audit.jsonl").ok


def test_run_sleeps_the_interval_between_ticks(tmp_path):
    slept = []
    ctl = controller(tmp_path, FakeRouter(), FakeMetrics(), sleep=slept.append)
    assert ctl.run().status == "promoted"
    assert len(slept) == 2 and all(0.5 < s <= 1.0 for s in slept)


def test_candidate_must_exist_and_not_be_the_baseline(tmp_path):
    with pytest.raises(RolloutError, match="has no variant `nope`"):
        controller(tmp_path, FakeRouter(), spec=make_spec(candidate="nope")).tick()
    with pytest.raises(RolloutError, match="`control` is the baseline"):
        controller(tmp_path, FakeRouter(), spec=make_spec(candidate="control")).tick()


def test_abort_without_state_is_an_error(tmp_path):
    with pytest.raises(RolloutError, match="no rollout state"):
        controller(tmp_path, FakeRouter()).abort()


def test_state_file_is_json_with_the_spec(tmp_path):
    ctl = controller(tmp_path, FakeRouter(), FakeMetrics())
    ctl.tick()
    data = json.loads((tmp_path / "state.json").read_text())
    assert data["spec"]["steps"] == [10.0, 50.0, 100.0]
    assert (data["step"], data["baseline"], data["candidate"]) == (0, "control", "treatment")


def test_split_weights():
    assert split_weights({"a": 0.5, "b": 0.5}, "a", "b", 25) == {"a": 0.75, "b": 0.25}
    assert split_weights({"a": 0.3, "c": 0.5, "b": 0.2}, "a", "b", 100) == {"a": 0.0, "c": 0.5, "b": 0.5}


def test_analysis_stats_turns_decisions_into_verdicts(monkeypatch):
    from types import SimpleNamespace

    from tritonab.monitoring import analysis
    from tritonab.rollout import StatsSpec, analysis_stats
    from tritonab.splitter import stats

    criteria = {"primary": {"name": "conv", "direction": "increase"}}
    worse = stats.decide(criteria, {"conv": (stats.Proportion(2000, 1000), stats.Proportion(2000, 700))})
    skewed = stats.decide(
        criteria,
        {"conv": (stats.Proportion(2000, 1000), stats.Proportion(500, 250))},
        counts=[2000, 500],
        weights=[0.5, 0.5],
    )
    found = {}
    monkeypatch.setattr(
        analysis,
        "analyze",
        lambda experiment, log_dir, outcomes=(): SimpleNamespace(control="control", decisions=found),
    )
    provide = analysis_stats(StatsSpec(log_dir="logs"))
    assert provide("exp", "control", "treatment") is None  # no decision yet
    found["treatment"] = worse
    verdict = provide("exp", "control", "treatment")
    assert verdict.outcome == "rollback"
    assert verdict.details["primary"]["conv"]["p_value"] < 0.001
    found["treatment"] = skewed
    verdict = provide("exp", "control", "treatment")
    assert verdict.outcome == "invalid" and verdict.details["srm_p_value"] < 0.001

    def missing(*args, **kwargs):
        raise MonitoringError("no exposure segments")

    monkeypatch.setattr(analysis, "analyze", missing)
    assert provide("exp", "control", "treatment") is None
    assert analysis_stats(StatsSpec())("exp", "control", "treatment") is None


def test_one_controller_at_a_time(tmp_path):
    from tritonab.rollout.state import state_lock

    ctl = controller(tmp_path, FakeRouter(), FakeMetrics())
    with state_lock(tmp_path / "state.json"), pytest.raises(RolloutError, match="another controller"):
        ctl.tick()
    assert ctl.tick().outcome is TickOutcome.ADVANCE


def test_unreachable_prometheus_is_a_hold_asked_once_per_tick(tmp_path):
    router = FakeRouter()
    metrics = FakeMetrics()
    asked = []
    original = metrics._get

    def counted(metric, variant):
        asked.append(metric)
        return original(metric, variant)

    metrics._get = counted
    ctl = controller(tmp_path, router, metrics)
    ctl.tick()
    metrics.down = True
    event = ctl.tick()
    assert event.outcome is TickOutcome.HOLD and asked == ["rows"]
    assert all(c.status == "nodata" and c.detail.startswith("unreachable: ") for c in event.checks)
    assert router.candidate_history == [0.1]


def test_a_state_continues_only_under_the_same_rollout(tmp_path):
    controller(tmp_path, FakeRouter(), FakeMetrics()).tick()
    other = controller(tmp_path, FakeRouter(), FakeMetrics(), spec=make_spec(steps=[20, 100]))
    with pytest.raises(RolloutError, match=r"was started with steps \[10.0, 50.0, 100.0\]"):
        other.tick()
    looser = controller(tmp_path, FakeRouter(), FakeMetrics(), spec=make_spec(failed_checks=5))
    assert looser.tick().outcome is TickOutcome.ADVANCE


class WindowMetrics(FakeMetrics):
    """Good numbers over any range that reaches back before `step_at`, none after it:
    the candidate served well at the old weight and nothing at the new one."""

    def __init__(self, clock):
        super().__init__()
        self.clock, self.step_at, self.ranges = clock, None, []

    def _get(self, metric, variant):
        return None

    def rows(self, experiment, variant, window=None):
        self.ranges.append(window)
        seconds = int(window[:-1]) if window.endswith("s") and not window.endswith("ms") else 10**6
        reaches_back = self.step_at is not None and self.clock.now - seconds < self.step_at
        return 500.0 if reaches_back else None


def test_a_step_is_judged_only_on_traffic_it_served(tmp_path):
    """Good data only from before the step (rows over any range reaching back) holds the
    candidate: the step waits out a full window, then reads a range that starts after it."""
    clock = Clock(step=0.0)
    metrics = WindowMetrics(clock)
    spec = make_spec(checks=[{"metric": "rows", "min": 20, "window": "1h"}])
    ctl = controller(tmp_path, FakeRouter(), metrics, spec=spec, clock=clock)
    assert ctl.tick().outcome is TickOutcome.ADVANCE  # to 10%
    metrics.step_at = clock.now
    clock.now += 4.0
    event = ctl.tick()
    assert event.outcome is TickOutcome.HOLD and "served 4.0 of the 10 s window" in event.reason
    assert metrics.ranges == []  # nothing read before a full window
    clock.now += 8.0
    event = ctl.tick()
    assert metrics.ranges == ["12s"]  # the check's 1h range, cut at the step
    assert event.outcome is TickOutcome.HOLD and event.checks[0].status == "nodata"
    assert ctl.state().step == 0 and ctl.state().holds == 1
