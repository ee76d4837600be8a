"""A runtime-config variant on the real Triton: `variant derive demo_gbt --name demo_gbt_x2
--instances 2 --max-queue-delay-us 200` loads, serves the same predictions as its source,
sits behind a router like any model, and `perf compare` names the config difference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab._transport import Connection, Endpoint
from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.converters import read_manifest

pytestmark = pytest.mark.integration
EXPERIMENT = "ab_runtime"


@pytest.fixture(scope="module")
def variant(server, repository, router, loaded):
    """`demo_gbt_x2` derived into the session repository, and a router `demo_gbt` vs it."""
    argv = ["variant", "derive", "demo_gbt", "--name", "demo_gbt_x2", "--instances", "2"]
    assert main([*argv, "--max-queue-delay-us", "200", "--repository", str(repository)]) == 0
    router(
        name=EXPERIMENT,
        variants=[
            {"name": "one_instance", "model": "demo_gbt", "version": 1, "weight": 0.5},
            {"name": "two_instances", "model": "demo_gbt_x2", "version": 1, "weight": 0.5},
        ],
    )
    with loaded("demo_gbt_x2", EXPERIMENT) as control:
        yield control


def test_the_variant_serves_its_config_and_the_same_predictions(variant, server, repository, features):
    served = variant.config("demo_gbt_x2")
    assert served.instance_group[0].count == 2
    assert served.dynamic_batching.max_queue_delay_microseconds == 200
    assert (
        read_manifest(repository / "demo_gbt_x2" / "1")["artifact"]
        == read_manifest(repository / "demo_gbt" / "1")["artifact"]
    )
    x = features[:40]
    connection = Connection(Endpoint(server.urls.grpc))
    try:
        a = connection.infer("demo_gbt", {"input": x})
        b = connection.infer("demo_gbt_x2", {"input": x})
    finally:
        connection.close()
    assert np.array_equal(a["label"], b["label"])
    assert np.array_equal(a["probabilities"], b["probabilities"])


def test_an_ab_test_on_runtime_config_through_the_router(variant, server, features):
    x = features[:1]
    seen: dict[str, list[np.ndarray]] = {}
    with ExperimentClient(server.urls.grpc) as client:
        for i in range(60):
            result = client.infer(EXPERIMENT, {"input": x}, unit_id=f"runtime-{i}")
            seen.setdefault(result.variant, []).append(result.outputs["probabilities"])
    assert set(seen) == {"one_instance", "two_instances"}
    # Either arm answers the same: only how Triton runs the model differs.
    first = seen["one_instance"][0]
    assert all(np.array_equal(p, first) for outputs in seen.values() for p in outputs)


def test_perf_compare_names_the_runtime_difference(variant, server, tmp_path, capsys):
    out = tmp_path / "cmp.json"
    argv = ["perf", "compare", "--baseline", "demo_gbt", "--candidate", "demo_gbt_x2"]
    argv += ["--url", server.urls.grpc, "--concurrency", "2", "--rounds", "2", "-p", "200"]
    assert main([*argv, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "instance_group[0].count: 1 -> 2" in printed
    result = json.loads(out.read_text())
    assert result["config_changes"] == [
        "dynamic_batching.max_queue_delay_microseconds: (unset) -> 200",
        "instance_group[0].count: 1 -> 2",
    ]
    level = result["levels"][0]
    assert level["baseline"]["count"] > 0 and level["candidate"]["count"] > 0
    assert set(level["ratios"]) == {"throughput", "p50", "p99"}
