"""TensorRT plan builds: need an NVIDIA GPU and the `tensorrt` package (skipped otherwise)."""

from __future__ import annotations

import pytest

from tritonab.backends._onnx import gpu_available
from tritonab.converters import convert, verify_manifest
from tritonab.ensembles.config import read_config

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not gpu_available(), reason="no NVIDIA GPU visible"),
]


@pytest.fixture(scope="module")
def trt():
    return pytest.importorskip("tensorrt")


def _mlp_onnx():
    """A pure ai.onnx graph (TensorRT has no importers for the ai.onnx.ml operators)."""
    import numpy as np
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [8, 3], rng.standard_normal(24).tolist())
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Relu", ["h"], ["y"])]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        initializer=[w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_plan_for_onnx_graph(trt, tmp_path, precision):
    cache = tmp_path / "timing.cache"
    result = convert(
        _mlp_onnx(),
        name="c",
        repository=tmp_path / "repo",
        to="tensorrt",
        precision=precision,
        max_batch_size=16,
        timing_cache=cache,
    )
    assert result.artifact.name == "model.plan" and cache.is_file()
    config = read_config(result.config_path)
    assert config.platform == "tensorrt_plan"
    assert verify_manifest(result.version_dir) == []


def test_plan_int8_torch(trt, tmp_path):
    import numpy as np
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    x = np.random.default_rng(0).standard_normal((64, 16)).astype(np.float32)
    result = convert(net, name="n", repository=tmp_path, to="tensorrt", precision="int8", sample_input=x)
    assert result.parity.ok
