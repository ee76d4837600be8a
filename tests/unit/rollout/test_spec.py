"""The rollout spec: parsing and the errors it gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonab.errors import RolloutError
from tritonab.rollout import MetricCheck, load_rollout_dict, load_rollout_spec

ROOT = Path(__file__).resolve().parents[3]


def test_example_spec_loads():
    spec = load_rollout_spec(ROOT / "examples" / "rollout.yaml")
    assert spec.experiment == "demo_ab" and spec.candidate == "treatment"
    assert spec.steps[-1] == 100
    assert spec.perf_gate is not None and not spec.perf_gate.thresholds.is_empty()


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
