"""The bandit strategy on the real analysis by period: between ticks, simulated traffic is
routed by the router's live weights through the real bucket layout and written as
exposure segments and outcomes, which the bandit reads back through `log_periods`."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.errors import RolloutError
from tritonab.monitoring import audit
from tritonab.monitoring.outcomes import OUTCOMES_DIR
from tritonab.monitoring.segments import SEGMENT_SUFFIX
from tritonab.rollout import (
    BanditState,
    BanditStrategy,
    Controller,
    TickOutcome,
    exit_code,
    load_rollout_dict,
    load_state,
    log_periods,
    status_table,
)
from tritonab.splitter.spec import load_spec_dict

ARMS = ("control", "fast", "cheap")


class FakeRouter:
    """A router whose weights live in memory; every reload is recorded."""

    def __init__(self, arms=ARMS):
        share = 1.0 / len(arms)
        self.spec = load_spec_dict(
            {
                "name": "exp",
                "variants": [{"name": a, "model": f"m_{a}", "version": 1, "weight": share} for a in arms],
            }
        )
        self.history: list[dict[str, float]] = []

    def experiment(self, name):
        return self.spec, None

    def set_weights(self, name, weights):
        self.spec = self.spec.with_weights(weights)
        self.history.append(dict(weights))
        return self.spec


class Traffic:
    """Units routed by the router's current weights (real hashing), with outcomes drawn at
    each arm's true rate, written where the router's log writers and `outcomes add` would."""

    def __init__(self, log_dir, router, rates, seed=0):
        self.log_dir, self.router, self.rates = log_dir, router, rates
        self.rng = np.random.default_rng(seed)
        self.batches = 0
        self.next_unit = 0

    def serve(self, start: float, units: int, *, drop: str | None = None, repeat: int = 0) -> None:
        spec = self.router.spec
        ids = [f"u{self.next_unit + i}" for i in range(units - repeat)] + [f"u{i}" for i in range(repeat)]
        self.next_unit += units - repeat
        exposures, outcomes = [], []
        for unit, arm in zip(ids, spec.allocation().assign_names(spec.effective_salt, ids)):
            if arm == drop and self.rng.random() < 0.5:
                continue
            t = start + float(self.rng.uniform(0.1, 9.0))
            exposures.append(
                {"time": t, "experiment": "exp", "variant": arm, "unit_id": unit, "request_id": unit}
            )
            value = (
                self.rates[arm](self.rng)
                if callable(self.rates[arm])
                else float(self.rng.random() < self.rates[arm])
            )
            outcomes.append({"unit_id": unit, "metric": "reward", "value": value, "time": t + 0.5})
        folder = self.log_dir / "exp" / "exposures"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"exposures-{self.batches:04d}{SEGMENT_SUFFIX}").write_text(
            "".join(json.dumps(e) + "\n" for e in exposures)
        )
        (self.log_dir / OUTCOMES_DIR).mkdir(exist_ok=True)
        (self.log_dir / OUTCOMES_DIR / f"o-{self.batches:04d}.jsonl").write_text(
            "".join(json.dumps(o) + "\n" for o in outcomes)
        )
        self.batches += 1


class Clock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


def make_spec(log_dir, **overrides):
    data = {
        "strategy": "bandit",
        "experiment": "exp",
        "reward": {"metric": "reward"},
        "stats": {"log_dir": str(log_dir)},
        "floor": 0.05,
        "max_change": 0.2,
        "min_units": 100,
        "draws": 4000,
        "seed": 3,
        "interval_s": 1,
    }
    data.update(overrides)
    return load_rollout_dict(data)


def controller(tmp_path, router, spec, clock, metrics=None):
    strategy = BanditStrategy(spec, router, log_periods(spec), metrics=metrics, clock=clock)
    return Controller(strategy, state_path=tmp_path / "state.json", audit_path=tmp_path / "audit.jsonl")


def drive(ctl, traffic, clock, ticks, units=600, **serve):
    """Tick; after each tick, a period's traffic by the weights just set, then time passes."""
    events = []
    for _ in range(ticks):
        events.append(ctl.tick())
        if events[-1].status != "progressing":
            break
        traffic.serve(clock.now, units, **serve)
        clock.now += 10.0
    return events


def test_the_best_arm_wins_within_the_floor_and_the_step_bounds(tmp_path):
    router, clock = FakeRouter(), Clock()
    spec = make_spec(tmp_path / "logs")
    traffic = Traffic(tmp_path / "logs", router, {"control": 0.10, "fast": 0.14, "cheap": 0.08})
    ctl = controller(tmp_path, router, spec, clock)
    events = drive(ctl, traffic, clock, 60, units=400)
    assert events[0].outcome is TickOutcome.ADVANCE and "burn-in" in events[0].reason
    assert events[-1].outcome is TickOutcome.PROMOTE and "`fast` is best" in events[-1].reason
    assert router.history[-1] == {"control": 0.0, "fast": 1.0, "cheap": 0.0}
    adaptive = router.history[:-1]  # the burn-in split equals the router's: it was not set again
    assert adaptive, "the weights moved before the end"
    previous = {a: 1 / 3 for a in ARMS}
    for weights in adaptive:
        assert all(w >= 0.05 - 1e-9 for w in weights.values())
        assert all(abs(weights[a] - previous[a]) <= 0.2 + 1e-9 for a in ARMS)
        assert sum(weights.values()) == pytest.approx(1.0, abs=1e-9)
        previous = weights
    state = load_state(tmp_path / "state.json")
    assert isinstance(state, BanditState) and state.winner == "fast" and exit_code(state) == 0
    assert len(state.periods) == len(adaptive) + 1
    assert state.probabilities["fast"] >= 0.95
    records = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    names = [r["event"] for r in records]
    assert names.count("bandit.weights") == len(router.history) and "bandit.promote" in names
    last = [r for r in records if r["event"] == "bandit.promote"][0]
    assert last["analysis"]["comparisons"]["fast"]["test"] == "fixed: z, stratified"
    assert last["analysis"]["comparisons"]["fast"]["p_value"] < 0.05
    assert audit.verify(tmp_path / "audit.jsonl").ok


def test_the_baseline_being_best_rolls_the_candidates_back(tmp_path):
    router, clock = FakeRouter(("control", "treatment")), Clock()
    spec = make_spec(tmp_path / "logs")
    traffic = Traffic(tmp_path / "logs", router, {"control": 0.25, "treatment": 0.1})
    events = drive(controller(tmp_path, router, spec, clock), traffic, clock, 30)
    assert events[-1].outcome is TickOutcome.ROLLBACK and "the baseline is best" in events[-1].reason
    assert router.history[-1] == {"control": 1.0, "treatment": 0.0}
    assert exit_code(load_state(tmp_path / "state.json")) == 1


def test_a_period_whose_split_is_off_halts(tmp_path):
    router, clock = FakeRouter(("control", "treatment")), Clock()
    spec = make_spec(tmp_path / "logs")
    traffic = Traffic(tmp_path / "logs", router, {"control": 0.1, "treatment": 0.1})
    ctl = controller(tmp_path, router, spec, clock)
    events = drive(ctl, traffic, clock, 2, units=2000, drop="treatment")
    assert (
        events[-1].outcome is TickOutcome.HALT and "sample ratio mismatch in period(s) 1" in events[-1].reason
    )
    assert load_state(tmp_path / "state.json").status == "halted"


def test_holds_without_exposures_or_units_and_resumes_after_a_restart(tmp_path):
    router, clock = FakeRouter(("control", "treatment")), Clock()
    spec = make_spec(tmp_path / "logs", min_units=300)
    traffic = Traffic(tmp_path / "logs", router, {"control": 0.1, "treatment": 0.13})
    first = controller(tmp_path, router, spec, clock)
    assert first.tick().outcome is TickOutcome.ADVANCE
    event = first.tick()
    assert (event.outcome, event.reason) == (TickOutcome.HOLD, "no exposures yet")
    traffic.serve(clock.now, 200)
    event = first.tick()
    assert event.outcome is TickOutcome.HOLD and "waiting for 300 units per arm" in event.reason
    traffic.serve(clock.now + 10, 1000)
    clock.now += 20
    second = controller(tmp_path, router, spec, clock)  # a new process, the same state file
    event = second.tick()
    assert event.outcome is TickOutcome.ADVANCE and "period 2 begins" in event.reason
    state = load_state(tmp_path / "state.json")
    assert [p.start for p in state.periods] == [1000.0, 1020.0]
    assert state.weights["treatment"] == pytest.approx(0.7) and router.history[-1] == state.weights


def test_continuous_rewards_to_minimise(tmp_path):
    router, clock = FakeRouter(("control", "treatment")), Clock()
    spec = make_spec(
        tmp_path / "logs", reward={"metric": "reward", "kind": "continuous", "direction": "decrease"}
    )
    costs = {"control": lambda rng: rng.normal(10.0, 2.0), "treatment": lambda rng: rng.normal(9.0, 2.0)}
    traffic = Traffic(tmp_path / "logs", router, costs)
    events = drive(controller(tmp_path, router, spec, clock), traffic, clock, 20)
    assert events[-1].outcome is TickOutcome.PROMOTE
    assert router.history[-1] == {"control": 0.0, "treatment": 1.0}


class FailingMetrics:
    def __init__(self):
        self.windows = []

    def rows(self, experiment, variant, window=None):
        return 1000.0

    def request_rate(self, experiment, variant, window=None):
        return 10.0

    def error_rate(self, experiment, variant, window=None):
        self.windows.append(window)
        return 0.3 if variant == "treatment" else 0.0

    def latency_quantile(self, experiment, variant, q=0.99, window=None):
        return 1000.0


def test_failed_checks_on_any_arm_roll_back_and_abort_sends_all_to_the_baseline(tmp_path):
    router, clock = FakeRouter(("control", "treatment")), Clock()
    spec = make_spec(tmp_path / "logs", checks=[{"metric": "error_rate", "max": 0.01}], failed_checks=2)
    traffic = Traffic(tmp_path / "logs", router, {"control": 0.1, "treatment": 0.1})
    metrics = FailingMetrics()
    events = drive(controller(tmp_path, router, spec, clock, metrics), traffic, clock, 5)
    # Each reading covers only the current period (cut from the 1m window), never traffic at
    # earlier weights; a failed check keeps the weights, so the period and its range grow.
    assert metrics.windows == ["10s", "20s"]
    assert [e.outcome for e in events] == [
        TickOutcome.ADVANCE,
        TickOutcome.FAILED_CHECK,
        TickOutcome.ROLLBACK,
    ]
    assert "failed treatment: error rate (2/2)" in events[-1].reason
    assert router.history[-1] == {"control": 1.0, "treatment": 0.0}
    assert load_state(tmp_path / "state.json").winner is None

    other = tmp_path / "other"
    other.mkdir()
    router = FakeRouter(("control", "treatment"))
    ctl = controller(other, router, make_spec(tmp_path / "logs2"), clock)
    ctl.tick()
    event = ctl.abort("stop")
    assert event.outcome is TickOutcome.ABORT and "all traffic to the baseline `control`" in event.reason
    assert router.history[-1] == {"control": 1.0, "treatment": 0.0}
    assert "probabilities" in dict(status_table(json.loads((other / "state.json").read_text())).rows)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"stats": {}}, r"stats.log_dir: a bandit reads exposures and outcomes"),
        ({"floor": 0.6}, r"floor: Input should be less than 0.5"),
        ({"prior": [0, 1]}, r"prior: the Beta prior needs two positive numbers"),
        (
            {"reward": {"metric": "x", "kind": "ratio"}},
            r"reward.kind: Input should be 'conversion' or 'continuous'",
        ),
    ],
)
def test_spec_errors_name_their_field(tmp_path, overrides, message):
    with pytest.raises(RolloutError, match=message):
        make_spec(tmp_path, **overrides)


def test_a_floor_too_high_for_the_arms_is_refused_at_start(tmp_path):
    router = FakeRouter(("a", "b", "c"))
    ctl = controller(tmp_path, router, make_spec(tmp_path, floor=0.4), Clock())
    with pytest.raises(
        RolloutError, match=r"floor 0.4 for 3 arms is more than all the traffic: at most 0.3333"
    ):
        ctl.tick()
