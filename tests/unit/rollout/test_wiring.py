"""The shared skeleton and the wiring: the registry, states of either kind, exit codes,
status tables, building and aborting from files (no server needed)."""

from __future__ import annotations

import json
import typing

import pytest

from tritonab.errors import RolloutError
from tritonab.rollout import (
    STRATEGIES,
    BlueGreenState,
    BlueGreenStrategy,
    CanaryState,
    CanaryStrategy,
    CheckResult,
    Controller,
    RolloutSpec,
    RolloutState,
    TickEvent,
    TickOutcome,
    abort_rollout,
    build_controller,
    exit_code,
    judge_checks,
    load_rollout_dict,
    load_state,
    save_state,
    status_table,
)
from tritonab.splitter.spec import load_spec_dict

CANARY = {"experiment": "exp", "candidate": "treatment", "steps": [50, 100]}
BLUEGREEN = {"strategy": "bluegreen", "experiment": "exp", "variant": "treatment", "version": 2}


class FakeServer:
    """A router `exp` (control v1, treatment v1) that never changes."""

    def __init__(self):
        self.spec = load_spec_dict(
            {
                "name": "exp",
                "variants": [
                    {"name": "control", "model": "m_control", "version": 1, "weight": 1.0},
                    {"name": "treatment", "model": "m_treatment", "version": 1, "weight": 0.0},
                ],
            }
        )

    def experiment(self, name):
        return self.spec, None

    def set_weights(self, name, weights):
        self.spec = self.spec.with_weights(weights)
        return self.spec


def _members(alias) -> set[type]:
    return set(typing.get_args(typing.get_args(alias)[0]))


def test_the_registry_covers_every_spec_and_state_kind():
    assert {e.spec_type for e in STRATEGIES.values()} == _members(RolloutSpec)
    assert {e.state_type for e in STRATEGIES.values()} == _members(RolloutState)
    for name, entry in STRATEGIES.items():
        assert entry.spec_type.model_fields["strategy"].default == name
        assert entry.state_type.model_fields["kind"].default == name


def test_build_controller_picks_the_strategy(tmp_path):
    server = FakeServer()
    canary = build_controller(
        load_rollout_dict(CANARY), server, triton_url="127.0.0.1:9", state_path=tmp_path / "c.json"
    )
    assert isinstance(canary.strategy, CanaryStrategy) and canary.strategy.metrics is None
    bluegreen = build_controller(
        load_rollout_dict({**BLUEGREEN, "checks": [{"metric": "error_rate", "max": 0}]}),
        server,
        triton_url="127.0.0.1:9",
        prometheus="http://127.0.0.1:9",
        state_path=tmp_path / "b.json",
    )
    assert isinstance(bluegreen.strategy, BlueGreenStrategy) and bluegreen.strategy.metrics is not None
    with pytest.raises(RolloutError, match=r"has checks: give the Prometheus URL \(--prometheus\)"):
        build_controller(
            load_rollout_dict({**CANARY, "checks": [{"metric": "rows", "min": 1}]}),
            server,
            triton_url="127.0.0.1:9",
            state_path=tmp_path / "c.json",
        )


def test_load_state_reads_either_kind_and_a_controller_only_its_own(tmp_path):
    server = FakeServer()
    canary = Controller(CanaryStrategy(load_rollout_dict(CANARY), server), state_path=tmp_path / "s.json")
    assert canary.tick().outcome is TickOutcome.ADVANCE
    assert isinstance(load_state(tmp_path / "s.json"), CanaryState)
    bluegreen = Controller(
        BlueGreenStrategy(load_rollout_dict(BLUEGREEN), server, lambda m, v, i: None),
        state_path=tmp_path / "s.json",
    )
    with pytest.raises(RolloutError, match=r"is a `canary` rollout, not `bluegreen`: use another --state"):
        bluegreen.tick()
    state = BlueGreenState(
        experiment="exp", variant="v", model="m", old_version=1, new_version=2, spec=BLUEGREEN
    )
    save_state(tmp_path / "b.json", state)
    assert load_state(tmp_path / "b.json") == load_state(tmp_path / "b.json", BlueGreenState)
    assert isinstance(load_state(tmp_path / "b.json"), BlueGreenState)


def test_judge_checks_is_shared():
    def check(status):
        return CheckResult("x", 1.0, None, 2.0, status)

    assert judge_checks([check("pass")], failed_checks=0, threshold=2) == (
        TickOutcome.ADVANCE,
        "all checks passed",
        0,
    )
    assert judge_checks([], failed_checks=1, threshold=2) == (TickOutcome.ADVANCE, "no checks configured", 1)
    assert judge_checks([check("fail")], failed_checks=0, threshold=2).outcome is TickOutcome.FAILED_CHECK
    assert judge_checks([check("fail")], failed_checks=1, threshold=2) == (
        TickOutcome.ROLLBACK,
        "failed x (2/2)",
        2,
    )
    assert judge_checks([check("nodata"), check("pass")], failed_checks=1, threshold=2) == (
        TickOutcome.HOLD,
        "waiting for x",
        1,
    )


def test_event_line_for_each_strategy():
    canary = TickEvent(
        3, TickOutcome.ADVANCE, "progressing", "ok", "step 2/3 50%", weights={"a": 0.5, "b": 0.5}
    )
    assert canary.line() == "tick 3  step 2/3 50%  a=0.5 b=0.5  -> advance: ok"
    bluegreen = TickEvent(1, TickOutcome.HOLD, "progressing", "wait", "phase verify  m v1 -> v2")
    assert bluegreen.line() == "tick 1  phase verify  m v1 -> v2  -> hold: wait"


@pytest.mark.parametrize(
    ("status", "code"),
    [("promoted", 0), ("rolled_back", 1), ("aborted", 1), ("halted", 2), ("progressing", 2)],
)
def test_exit_code(status, code):
    state = CanaryState(
        experiment="e", baseline="a", candidate="b", spec={}, weights={}, initial_weights={}, status=status
    )
    assert exit_code(state) == code


def test_status_table_of_a_blue_green_state():
    data = BlueGreenState(
        experiment="exp", variant="v", model="m", old_version=1, new_version=2, spec=BLUEGREEN, phase="bake"
    ).model_dump(mode="json")
    table = status_table(data)
    assert table.title == "rollout of `exp` (bluegreen)"
    assert ("phase", "bake") in table.rows and ("old_version", "1") in table.rows
    assert [key for key, _ in table.rows][0] == "status"


def test_abort_from_a_state_file_checks_it_first(tmp_path):
    path = tmp_path / "s.json"
    with pytest.raises(RolloutError, match="no rollout state at"):
        abort_rollout(path, triton_url="127.0.0.1:9")
    path.write_text(json.dumps({"kind": "linear", "spec": {}}))
    with pytest.raises(RolloutError, match="unknown kind `linear`"):
        abort_rollout(path, triton_url="127.0.0.1:9")
    path.write_text(json.dumps({"kind": "bluegreen", "spec": {"experiment": "e", "candidate": "t"}}))
    with pytest.raises(RolloutError, match="is a `bluegreen` rollout with a `canary` spec"):
        abort_rollout(path, triton_url="127.0.0.1:9")
