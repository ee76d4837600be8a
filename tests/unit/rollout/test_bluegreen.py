"""The blue-green state machine with a fake model control and fake inferences."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.ensembles.config import get_parameter, set_parameter
from tritonab.errors import ClientError, RolloutError
from tritonab.monitoring import audit
from tritonab.rollout import (
    BlueGreenStrategy,
    Controller,
    TickOutcome,
    load_rollout_dict,
    load_state,
    smoke_inputs,
)
from tritonab.splitter.spec import load_spec_dict, spec_from_json


class FakeControl:
    """A router `r` with variant `main` on model `m` v1; `m` has versions 1 and 2 on disk."""

    def __init__(self):
        self.router = mc.ModelConfig(name="r")
        spec = load_spec_dict(
            {"name": "r", "variants": [{"name": "main", "model": "m", "version": 1, "weight": 1.0}]}
        )
        set_parameter(self.router, "experiment", spec.to_json())
        self.model = mc.ModelConfig(name="m", max_batch_size=8)
        self.model.input.add(name="input", data_type=mc.TYPE_FP32, dims=[4])
        self.model.version_policy.specific.versions.append(1)
        self.loads: list[tuple[str, object]] = []

    def experiment(self, name):
        return spec_from_json(get_parameter(self.router, "experiment")), self.router

    def config(self, model):
        copy = mc.ModelConfig()
        copy.CopyFrom(self.router if model == "r" else self.model)
        return copy

    def load(self, model, config=None):
        if model == "r":
            self.router = config
            self.loads.append(("r", self.pinned))
        else:
            self.model = config
            self.loads.append(("m", self.versions))

    def is_ready(self, model, version=-1):
        return version in self.versions

    @property
    def versions(self):
        return list(self.model.version_policy.specific.versions)

    @property
    def pinned(self):
        return self.experiment("r")[0].variant("main").version


def make(tmp_path, control, infer=None, **overrides):
    data = {
        "strategy": "bluegreen",
        "experiment": "r",
        "variant": "main",
        "version": 2,
        "warmup": 2,
        "smoke": {"requests": 4, "max_latency_ratio": None},
        "bake_s": 0,
        "interval_s": 0.01,
    }
    data.update(overrides)
    calls = []

    def default_infer(model, version, inputs):
        calls.append((model, version, inputs["input"].shape))

    ctl = Controller(
        BlueGreenStrategy(load_rollout_dict(data), control, infer or default_infer),
        state_path=tmp_path / "bg.json",
        audit_path=tmp_path / "audit.jsonl",
        sleep=lambda s: None,
    )
    return ctl, calls


def test_switch_keeps_the_old_version_then_unloads_it(tmp_path):
    control = FakeControl()
    ctl, calls = make(tmp_path, control)
    events = [ctl.tick() for _ in range(5)]
    assert [e.outcome for e in events] == [TickOutcome.ADVANCE] * 4 + [TickOutcome.PROMOTE]
    assert control.loads == [("m", [1, 2]), ("r", 2), ("m", [2])]
    assert calls[:2] == [("m", 2, (1, 4))] * 2  # warm-up on the new version
    assert sorted({c[1] for c in calls[2:]}) == [1, 2]  # the smoke set on both
    state = ctl.state()
    assert (state.status, state.phase) == ("promoted", "done")
    events = [r["event"] for r in audit.read(tmp_path / "audit.jsonl")]
    assert events[:3] == ["bluegreen.start", "bluegreen.load", "bluegreen.advance"]
    assert "bluegreen.switch" in events and "bluegreen.unload" in events
    assert audit.verify(tmp_path / "audit.jsonl").ok


def test_failing_smoke_set_unloads_the_new_version(tmp_path):
    control = FakeControl()

    def infer(model, version, inputs):
        if version == 2:
            raise RolloutError("`m` version 2: exploded")

    ctl, _ = make(tmp_path, control, infer)
    state = ctl.run()
    assert state.status == "rolled_back"
    assert control.loads == [("m", [1, 2]), ("m", [1])]
    assert control.pinned == 1
    record = [r for r in audit.read(tmp_path / "audit.jsonl") if r["event"] == "bluegreen.rollback"][0]
    assert record["details"]["new_error_rate"] == 1.0


def test_abort_during_bake_switches_back(tmp_path):
    control = FakeControl()
    ctl, _ = make(tmp_path, control, bake_s=3600)
    outcomes = [ctl.tick().outcome for _ in range(4)]
    assert outcomes[-1] is TickOutcome.HOLD and control.pinned == 2
    event = ctl.abort()
    assert event.outcome is TickOutcome.ABORT
    assert control.pinned == 1 and control.versions == [1]
    assert load_state(tmp_path / "bg.json", type(ctl.state())).status == "aborted"


def test_new_version_never_ready_rolls_back(tmp_path):
    control = FakeControl()
    control.is_ready = lambda model, version=-1: False
    ctl, _ = make(tmp_path, control, load_deadline=2)
    assert [ctl.tick().outcome for _ in range(3)] == [
        TickOutcome.ADVANCE,
        TickOutcome.HOLD,
        TickOutcome.ROLLBACK,
    ]
    assert control.versions == [1]


def test_a_failed_reload_holds(tmp_path):
    control = FakeControl()
    original = control.load

    def refuse(model, config=None):
        raise ClientError("loading model `m` failed: disk full")

    control.load = refuse
    ctl, _ = make(tmp_path, control)
    event = ctl.tick()
    assert event.outcome is TickOutcome.HOLD and "disk full" in event.reason
    control.load = original
    assert ctl.tick().outcome is TickOutcome.ADVANCE


def test_spec_and_start_errors(tmp_path):
    with pytest.raises(RolloutError, match="must be absolute"):
        load_rollout_dict(
            {
                "strategy": "bluegreen",
                "experiment": "r",
                "variant": "main",
                "version": 2,
                "checks": [{"metric": "latency", "max": 2, "relative": True}],
            }
        )
    with pytest.raises(RolloutError, match="already serves version 1"):
        make(tmp_path, FakeControl(), version=1)[0].tick()


def test_smoke_inputs_from_config_and_npz(tmp_path):
    config = FakeControl().model
    samples = smoke_inputs(config, "zero", 3)
    assert len(samples) == 3 and samples[0]["input"].shape == (1, 4) and not samples[0]["input"].any()
    np.savez(tmp_path / "x.npz", input=np.arange(8, dtype=np.float32).reshape(2, 4))
    samples = smoke_inputs(config, str(tmp_path / "x.npz"), 3)
    assert samples[2]["input"].tolist() == [[0.0, 1.0, 2.0, 3.0]]


def test_a_state_continues_only_under_the_same_switch(tmp_path):
    control = FakeControl()
    assert make(tmp_path, control)[0].tick().outcome is TickOutcome.ADVANCE
    other, _ = make(tmp_path, control, version=3)
    with pytest.raises(RolloutError, match=r"was started with version 2, the spec says 3"):
        other.tick()
    assert control.loads == [("m", [1, 2])]
