"""The rollout spec: parsing and the errors it gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonab.errors import RolloutError
from tritonab.rollout import (
    BanditSpec,
    BlueGreenSpec,
    CanarySpec,
    MetricCheck,
    load_rollout_dict,
    load_rollout_spec,
)

ROOT = Path(__file__).resolve().parents[3]


def test_example_spec_loads():
    spec = load_rollout_spec(ROOT / "examples" / "rollout.yaml")
    assert spec.experiment == "demo_ab" and spec.candidate == "treatment"
    assert spec.steps[-1] == 100
    assert spec.perf_gate is not None and not spec.perf_gate.thresholds.is_empty()


def test_bandit_example_spec_loads():
    spec = load_rollout_spec(ROOT / "examples" / "bandit.yaml")
    assert isinstance(spec, BanditSpec) and spec.experiment == "demo_ab"
    assert (spec.reward.metric, spec.reward.kind, spec.stats.log_dir) == ("correct", "conversion", "logs")
    assert (spec.floor, spec.max_change, spec.checks) == (0.05, 0.1, [])


def test_defaults():
    spec = load_rollout_dict({"experiment": "e", "candidate": "t"})
    assert spec.steps == [1, 5, 25, 50, 100]
    assert (spec.failed_checks, spec.window, spec.checks, spec.perf_gate) == (2, "1m", [], None)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"steps": [10, 50]}, r"steps: the last step must be 100"),
        ({"steps": [50, 10, 100]}, r"steps: steps must increase"),
        ({"steps": [0, 100]}, r"steps: every step must be a percentage"),
        ({"window": "ten"}, r"window: window `ten` must look like"),
        ({"failed_checks": 0}, r"failed_checks: Input should be greater than or equal to 1"),
        ({"checks": [{"metric": "error_rate"}]}, r"checks\[0\]: a check needs `min`, `max` or both"),
        ({"checks": [{"metric": "rows", "min": 5, "max": 1}]}, r"checks\[0\]: min 5 is above max 1"),
        ({"checks": [{"metric": "cpu", "max": 1}]}, r"checks\[0\]\.metric: Input should be"),
        ({"perf_gate": {"thresholds": {}}}, r"perf_gate: thresholds: set at least one"),
        ({"colour": "red"}, r"colour: Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_field(data, message):
    with pytest.raises(RolloutError, match=message):
        load_rollout_dict({"experiment": "e", "candidate": "t", **data}, source="rollout.yaml")


def test_unreadable_and_bad_yaml(tmp_path):
    with pytest.raises(RolloutError, match="cannot read"):
        load_rollout_spec(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: [1, 2\n")
    with pytest.raises(RolloutError, match="not valid YAML"):
        load_rollout_spec(bad)


def test_check_labels_and_violation_defaults():
    assert MetricCheck(metric="latency", quantile=0.99, max=1).label == "p99 latency"
    assert MetricCheck(metric="rows", min=1).violation == "hold"
    assert MetricCheck(metric="error_rate", max=0).violation == "fail"
    assert MetricCheck(metric="request_rate", min=1, on_violation="fail", name="rps").label == "rps"


def test_the_strategy_picks_the_spec_type(tmp_path):
    spec = load_rollout_dict({"strategy": "bluegreen", "experiment": "r", "variant": "main", "version": 2})
    assert isinstance(spec, BlueGreenSpec)
    assert (spec.variant, spec.version, spec.interval_s, spec.failed_checks) == ("main", 2, 5.0, 1)
    canary = load_rollout_dict({"experiment": "e", "candidate": "t"})
    assert isinstance(canary, CanarySpec) and canary.strategy == "canary"
    assert isinstance(
        load_rollout_dict({"strategy": "canary", "experiment": "e", "candidate": "t"}), CanarySpec
    )
    path = tmp_path / "bg.yaml"
    path.write_text("strategy: bluegreen\nexperiment: r\nvariant: main\nversion: 3\n")
    assert isinstance(load_rollout_spec(path), BlueGreenSpec)


@pytest.mark.parametrize("strategy", ["linear", 3, None])
def test_an_unknown_strategy_names_the_field(strategy):
    with pytest.raises(
        RolloutError, match=rf"^rollout.yaml: strategy `{strategy}` is not `canary`, `bluegreen` or `bandit`$"
    ):
        load_rollout_dict({"strategy": strategy, "experiment": "e"}, source="rollout.yaml")


def test_errors_name_the_field_as_written_not_the_union_member():
    with pytest.raises(RolloutError) as caught:
        load_rollout_dict(
            {"strategy": "bluegreen", "experiment": "r", "variant": "v", "version": 0, "x": 1},
            source="bg.yaml",
        )
    assert str(caught.value).splitlines() == [
        "bg.yaml: version: Input should be greater than or equal to 1",
        "bg.yaml: x: Extra inputs are not permitted",
    ]
    with pytest.raises(RolloutError, match=r"^bg.yaml: window: window `1 minute` must look like"):
        load_rollout_dict(
            {"strategy": "bluegreen", "experiment": "r", "variant": "v", "version": 1, "window": "1 minute"},
            source="bg.yaml",
        )
    with pytest.raises(RolloutError, match=r"^rollout.yaml: expected a mapping at the top level, got list$"):
        load_rollout_dict([1, 2], source="rollout.yaml")
