"""Drift from the payloads the real Triton router logged: a reference profile of the
demo's training features against served rows where two features moved by one sd."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.errors import DriftError
from tritonab.monitoring.drift import build_profile, read_payloads

pytestmark = pytest.mark.integration

EXPERIMENT = "drift_ab"
SHIFTED = (3, 7)
REQUESTS, ROWS = 60, 4


@pytest.fixture(scope="module")
def served(server, router, loaded, log_dir, features):
    router(name=EXPERIMENT, logging={"sample_rate": 1.0, "sink": {"region": "local"}})
    rng = np.random.default_rng(5)
    with loaded(EXPERIMENT), ExperimentClient(server.urls.grpc) as client:
        for i in range(REQUESTS):
            x = features[rng.integers(0, len(features), ROWS)].copy()
            for j in SHIFTED:
                x[:, j] += features[:, j].std()
            client.infer(EXPERIMENT, {"input": x}, unit_id=f"drift-{i}")
        deadline = time.monotonic() + 60
        while _logged_rows(log_dir) < REQUESTS * ROWS and time.monotonic() < deadline:
            time.sleep(0.3)
    return log_dir


def _logged_rows(log_dir) -> int:
    try:
        return len(read_payloads(log_dir, EXPERIMENT).frame)
    except DriftError:  # no payload segment yet
        return 0


def test_drift_check_on_router_logs_flags_exactly_the_shifted_features(served, features, tmp_path, capsys):
    reference = tmp_path / "reference.json"
    reference.write_text(build_profile({"input": features}).to_json())
    out = tmp_path / "drift.json"
    code = main(
        [
            "drift", "check", "--logs", str(served), "--experiment", EXPERIMENT,
            "--reference", str(reference), "--min-rows", "40", "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 1
    document = json.loads(out.read_text())
    windows = document["windows"]
    assert {w["variant"] for w in windows} == {"control", "treatment"}
    assert sum(w["rows"] for w in windows) == REQUESTS * ROWS
    for window in windows:
        assert window["drifted_features"] == [f"input[{j}]" for j in SHIFTED]
        for j in SHIFTED:
            assert window["features"][f"input[{j}]"]["psi"] > 0.25
