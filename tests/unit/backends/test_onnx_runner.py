"""The ONNX runner's core: batched runs, output reshape, isolation of bad requests."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tritonab.backends import OnnxModel, default_providers, gpu_available
from tritonab.errors import TritonABError


@pytest.fixture(scope="module")
def double_model(tmp_path_factory):
    """y = 2 * x over FP32 [batch, 3], and s = sum(x) over [batch]."""
    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["batch", 3])
    s = helper.make_tensor_value_info("S", TensorProto.FLOAT, ["batch"])
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["X", "two"], ["Y"]),
            helper.make_node("ReduceSum", ["X", "axes"], ["S"], keepdims=0),
        ],
        "double",
        [x],
        [y, s],
        initializer=[two, axes],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 10
    path = tmp_path_factory.mktemp("onnx") / "model.onnx"
    onnx.save(model, path)
    return path


def test_runs_by_config_names_and_reshapes_outputs(double_model):
    model = OnnxModel(double_model, config_inputs=["features"], output_dims={"S": (1,)})
    out = model.run({"features": np.ones((4, 3), np.float32)})
    np.testing.assert_array_equal(out["Y"], np.full((4, 3), 2, np.float32))
    assert out["S"].shape == (4, 1)


def test_many_requests_run_as_one_batch_and_split_back(double_model):
    model = OnnxModel(double_model)
    requests = [{"X": np.full((n, 3), n, np.float32)} for n in (1, 2, 3)]
    results = model.run_requests(requests)
    for n, result in zip((1, 2, 3), results):
        np.testing.assert_array_equal(result["Y"], np.full((n, 3), 2 * n))


def test_a_bad_request_fails_alone(double_model):
    model = OnnxModel(double_model)
    requests = [
        {"X": np.ones((1, 3), np.float32)},
        {"X": np.ones((1, 5), np.float32)},
        {"X": np.ones((2, 3), np.float32)},
    ]
    results = model.run_requests(requests)
    assert isinstance(results[1], Exception)
    np.testing.assert_array_equal(results[2]["Y"], np.full((2, 3), 2))


def test_mismatched_config_inputs_are_refused(double_model):
    with pytest.raises(TritonABError, match=r"config has inputs \['a', 'b'\] but the graph takes \['X'\]"):
        OnnxModel(double_model, config_inputs=["a", "b"])


def test_unloadable_files_name_the_path(tmp_path):
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(TritonABError, match="model.onnx`: onnxruntime cannot load the model"):
        OnnxModel(bad)


def test_cpu_provider_without_a_gpu():
    if gpu_available():
        pytest.skip("a GPU is present")
    assert default_providers() == ["CPUExecutionProvider"]
