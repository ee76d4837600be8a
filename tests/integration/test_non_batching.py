"""A router over variants that do not batch (`max_batch_size: 0`), on the session server.

Two tiny Python models without a batch dimension (`flat_plus`: x + 1, `flat_times`:
x * 2, on a [-1, 3] matrix) sit behind `flat_ab`, built by `build_router`. Plain
tritonclient calls over HTTP, gRPC and gRPC streaming must get the variant's answer
for the whole matrix and one `AB_VARIANT` naming the unit's variant. The same module
checks metric freshness: right after a burst, the metrics endpoint shows every request.
"""

from __future__ import annotations

import queue
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.utils import InferenceServerException

from tritonab.ensembles import build_router, load_model
from tritonab.ensembles.config import ModelConfig, TensorSpec, add_tensor, set_parameter, write_config
from tritonab.monitoring.metrics import wait_for_rows
from tritonab.monitoring.segments import read_records
from tritonab.splitter import Allocation, load_spec_dict

pytestmark = pytest.mark.integration

EXPERIMENT = "flat_ab"
SHADOWED = "flat_ab_shadow"
WEIGHTS = {"plus": 0.5, "times": 0.5}

# Triton's python_backend examples look like this: no max_batch_size, whole tensors.
FLAT_MODEL = textwrap.dedent("""
    import json

    import numpy as np
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def initialize(self, args):
            params = json.loads(args["model_config"])["parameters"]
            self.op = params["op"]["string_value"]

        def execute(self, requests):
            responses = []
            for request in requests:
                x = pb_utils.get_input_tensor_by_name(request, "X").as_numpy()
                y = x + 1 if self.op == "plus" else x * 2
                out = pb_utils.Tensor("Y", y.astype(np.float32))
                responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            return responses
""")


def _flat_model(repo: Path, name: str, op: str) -> None:
    config = ModelConfig(name=name, backend="python")  # max_batch_size 0: no batch dimension
    add_tensor(config.input, TensorSpec("X", mc.TYPE_FP32, (-1, 3)))
    add_tensor(config.output, TensorSpec("Y", mc.TYPE_FP32, (-1, 3)))
    config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
    set_parameter(config, "op", op)
    (repo / name / "1").mkdir(parents=True, exist_ok=True)
    (repo / name / "1" / "model.py").write_text(FLAT_MODEL, encoding="utf-8")
    write_config(repo / name / "config.pbtxt", config)


def _expected(variant: str, x: np.ndarray) -> np.ndarray:
    return x + 1 if variant == "plus" else x * 2


def _variant_of(unit: str) -> str:
    return Allocation(tuple(WEIGHTS), tuple(WEIGHTS.values())).assign_names(EXPERIMENT, [unit])[0]


@pytest.fixture(scope="module")
def flat(server, repository, loaded):
    _flat_model(repository, "flat_plus", "plus")
    _flat_model(repository, "flat_times", "times")
    spec = load_spec_dict(
        {
            "name": EXPERIMENT,
            "salt": EXPERIMENT,  # kept by the shadowed copy: both split units alike
            "variants": [
                {"name": "plus", "model": "flat_plus", "version": 1, "weight": 0.5},
                {"name": "times", "model": "flat_times", "version": 1, "weight": 0.5},
            ],
            "unit_input": "user",
        }
    )
    router = load_model(build_router(spec, repository))
    assert router.config.max_batch_size == 0
    # The same split with every request mirrored to `flat_times` (never returned).
    shadowed = spec.model_dump()
    shadowed.update(name=SHADOWED, shadow=[{"model": "flat_times", "version": 1, "sample_rate": 1.0}])
    build_router(load_spec_dict(shadowed), repository)
    with loaded("flat_plus", "flat_times", EXPERIMENT, SHADOWED):
        yield server


@pytest.fixture(scope="module")
def routed() -> Counter:
    """Requests answered per variant by every test of the module (the router is fresh here)."""
    return Counter()


def _matrix(i: int) -> np.ndarray:
    return (np.arange(12, dtype=np.float32).reshape(4, 3) + i) / 4


def _units(n: int, prefix: str) -> list[str]:
    """`n` units, both variants among them (checked, so the test covers each)."""
    units = [f"{prefix}-{i}" for i in range(n)]
    assert {_variant_of(u) for u in units} == set(WEIGHTS)
    return units


def test_http_calls_get_the_units_variant_for_the_whole_request(flat, routed):
    client = httpclient.InferenceServerClient(flat.urls.http)
    try:
        for i, unit in enumerate(_units(8, "http")):
            x = _matrix(i)
            tensor = httpclient.InferInput("X", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            result = client.infer(EXPERIMENT, [tensor], parameters={"unit_id": unit})
            variant = _variant_of(unit)
            np.testing.assert_array_equal(result.as_numpy("Y"), _expected(variant, x))
            assert result.as_numpy("AB_VARIANT").tolist() == [variant.encode()]
            routed[variant] += 1
    finally:
        client.close()


def test_grpc_calls_route_by_parameter_or_by_the_unit_input(flat, routed):
    client = grpcclient.InferenceServerClient(flat.urls.grpc)
    try:
        for i, unit in enumerate(_units(8, "grpc")):
            x = _matrix(i)
            tensor = grpcclient.InferInput("X", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            by_parameter = client.infer(EXPERIMENT, [tensor], parameters={"unit_id": unit})
            user = grpcclient.InferInput("user", [1], "BYTES")
            user.set_data_from_numpy(np.array([unit.encode()], dtype=object))
            by_input = client.infer(EXPERIMENT, [tensor, user])
            variant = _variant_of(unit)
            for result in (by_parameter, by_input):
                np.testing.assert_array_equal(result.as_numpy("Y"), _expected(variant, x))
                assert result.as_numpy("AB_VARIANT").tolist() == [variant.encode()]
                routed[variant] += 1
        bare = grpcclient.InferInput("X", [4, 3], "FP32")
        bare.set_data_from_numpy(_matrix(0))
        with pytest.raises(InferenceServerException, match="requires a unit id"):
            client.infer(EXPERIMENT, [bare])
    finally:
        client.close()


def test_grpc_streaming_calls_get_one_answer_each(flat, routed):
    answers: queue.Queue = queue.Queue()
    client = grpcclient.InferenceServerClient(flat.urls.grpc)
    units = _units(8, "stream")
    try:
        # tritonclient calls the stream callback with keyword arguments (result=, error=).
        client.start_stream(callback=lambda result, error: answers.put((result, error)))
        for i, unit in enumerate(units):
            tensor = grpcclient.InferInput("X", [4, 3], "FP32")
            tensor.set_data_from_numpy(_matrix(i))
            client.async_stream_infer(EXPERIMENT, [tensor], request_id=str(i), parameters={"unit_id": unit})
        got = [answers.get(timeout=30) for _ in units]
    finally:
        client.stop_stream()
        client.close()
    assert [error for _, error in got] == [None] * len(units)
    for result, _ in got:
        i = int(result.get_response().id)
        variant = _variant_of(units[i])
        np.testing.assert_array_equal(result.as_numpy("Y"), _expected(variant, _matrix(i)))
        assert result.as_numpy("AB_VARIANT").tolist() == [variant.encode()]
        routed[variant] += 1


def test_right_after_a_burst_the_metrics_and_the_exposure_log_show_every_request(flat, log_dir, routed):
    answered: dict[str, str] = {}
    client = grpcclient.InferenceServerClient(flat.urls.grpc)
    try:
        for i in range(40):
            tensor = grpcclient.InferInput("X", [4, 3], "FP32")
            tensor.set_data_from_numpy(_matrix(i))
            result = client.infer(EXPERIMENT, [tensor], parameters={"unit_id": f"burst-{i}"})
            answered[f"burst-{i}"] = result.as_numpy("AB_VARIANT")[0].decode()
            routed[answered[f"burst-{i}"]] += 1
    finally:
        client.close()
    # Bounded wait: the router applies pending metric updates once traffic goes idle.
    sent = {v: routed[v] for v in WEIGHTS}  # this module's requests: the router is fresh
    read = wait_for_rows(flat.urls.metrics, EXPERIMENT, sent, timeout_s=10)
    assert read.settled, read.mismatch()
    # One exposure per request (row 0), naming the variant that answered.
    folder = log_dir / EXPERIMENT / "exposures"
    deadline = time.monotonic() + 30
    while True:
        burst = [r for r in read_records(folder)[0] if str(r["unit_id"]).startswith("burst-")]
        if len(burst) >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert sorted((r["unit_id"], r["variant"], r["row"]) for r in burst) == sorted(
        (u, v, 0) for u, v in answered.items()
    )


def test_a_shadow_mirrors_each_non_batching_request_and_never_changes_the_answer(flat):
    client = grpcclient.InferenceServerClient(flat.urls.grpc)
    try:
        for i, unit in enumerate(_units(10, "shadow")):
            tensor = grpcclient.InferInput("X", [4, 3], "FP32")
            tensor.set_data_from_numpy(_matrix(i))
            result = client.infer(SHADOWED, [tensor], parameters={"unit_id": unit})
            variant = _variant_of(unit)
            np.testing.assert_array_equal(result.as_numpy("Y"), _expected(variant, _matrix(i)))
            assert result.as_numpy("AB_VARIANT").tolist() == [variant.encode()]
    finally:
        client.close()
    read = wait_for_rows(flat.urls.metrics, SHADOWED, {"shadow:flat_times": 10}, timeout_s=10)
    assert read.settled, read.mismatch()
    assert read.metrics[(SHADOWED, "shadow:flat_times")].errors == 0


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_the_clients_fast_path_answers_like_the_non_batching_router(flat, protocol):
    from tritonab.client import ExperimentClient

    url = flat.urls.grpc if protocol == "grpc" else flat.urls.http
    with ExperimentClient(url, protocol) as client:
        for i, unit in enumerate(_units(6, f"fast-{protocol}")):
            routed = client.infer(EXPERIMENT, {"X": _matrix(i)}, unit_id=unit)
            direct = client.infer(EXPERIMENT, {"X": _matrix(i)}, unit_id=unit, fast_path=True)
            assert routed.variants == direct.variants == [_variant_of(unit)]
            np.testing.assert_array_equal(routed.outputs["Y"], direct.outputs["Y"])
            np.testing.assert_array_equal(direct.outputs["Y"], _expected(_variant_of(unit), _matrix(i)))
