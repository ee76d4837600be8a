"""Live weights: a model-control reload changes the split without a restart or a failed request."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.deploy.control import ModelControl, parse_weights
from tritonab.ensembles import read_config
from tritonab.errors import ClientError, SpecError
from tritonab.splitter import Allocation
from tritonab.splitter.spec import spec_from_json

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNITS = [f"live-{i}" for i in range(400)]
EXPERIMENT = "live_ab"


@pytest.fixture(scope="module")
def explicit_server(server, router, loaded):
    """The session server (explicit mode) with `live_ab`, a copy of the demo router whose
    weights only this module changes."""
    router(name=EXPERIMENT)
    with loaded(EXPERIMENT):
        yield server


def expected_share(spec, weights) -> float:
    allocation = Allocation(tuple(weights), tuple(weights.values()))
    names = allocation.assign_names(spec.effective_salt, UNITS)
    return names.count("treatment") / len(names)


def test_weights_change_under_load_with_no_failed_request(explicit_server):
    x = np.zeros((1, 30), dtype=np.float32)
    stop = threading.Event()
    failures: list[str] = []
    served = [0]

    def load() -> None:
        with ExperimentClient(explicit_server.urls.grpc) as client:
            i = 0
            while not stop.is_set() and i < 20_000:
                try:
                    client.infer(EXPERIMENT, {"input": x}, unit_id=UNITS[i % len(UNITS)])
                    served[0] += 1
                except ClientError as exc:
                    failures.append(str(exc))
                i += 1

    workers = [threading.Thread(target=load) for _ in range(4)]
    for w in workers:
        w.start()
    try:
        with ModelControl(explicit_server.urls.grpc) as control:
            for share in (0.1, 0.9, 0.5):
                spec = control.set_weights(EXPERIMENT, {"control": 1 - share, "treatment": share})
                assert spec.weights["treatment"] == share
                with ExperimentClient(explicit_server.urls.http, "http") as probe:
                    got = [probe.infer(EXPERIMENT, {"input": x}, unit_id=u).variant for u in UNITS]
                assert got.count("treatment") / len(UNITS) == expected_share(spec, spec.weights)
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=30)
    assert served[0] > 0
    assert failures == []


def test_cli_set_weights_persists_when_asked(explicit_server, repository, capsys, tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(repository / EXPERIMENT, repo / EXPERIMENT)
    code = main(
        [
            "experiment",
            "set-weights",
            EXPERIMENT,
            "control=0.8,treatment=0.2",
            "--url",
            explicit_server.urls.grpc,
            "--repository",
            str(repo),
        ]
    )
    assert code == 0
    assert "reloaded with weights control=0.8, treatment=0.2" in capsys.readouterr().out
    stored = spec_from_json(
        read_config(repo / EXPERIMENT / "config.pbtxt").parameters["experiment"].string_value
    )
    assert stored.weights == {"control": 0.8, "treatment": 0.2}


def test_bad_weights_are_refused_and_the_router_keeps_serving(explicit_server):
    with ModelControl(explicit_server.urls.grpc) as control:
        with pytest.raises(SpecError, match="must sum to 1"):
            control.set_weights(EXPERIMENT, {"control": 0.5, "treatment": 0.6})
        with pytest.raises(SpecError, match=r"has no variants \['other'\]"):
            control.set_weights(EXPERIMENT, {"control": 1.0, "other": 0.0})
        with pytest.raises(ClientError, match="not a tritonab router"):
            control.set_weights("demo_gbt", {"control": 1.0})
    with ExperimentClient(explicit_server.urls.grpc) as client:
        assert client.infer(EXPERIMENT, {"input": np.zeros((1, 30), np.float32)}, unit_id="u").variant


def test_parse_weights_errors():
    assert parse_weights("a=0.25, b=0.75") == {"a": 0.25, "b": 0.75}
    with pytest.raises(SpecError, match="`a:1` is not `variant=number`"):
        parse_weights("a:1")
    with pytest.raises(SpecError, match="got nothing"):
        parse_weights(" , ")
