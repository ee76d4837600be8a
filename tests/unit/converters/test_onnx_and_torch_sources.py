"""ONNX files (IR pinning, opset conversion, optimisation) and PyTorch modules."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from tritonab.converters import convert, verify_manifest
from tritonab.ensembles.config import read_config


def _mlp_onnx(opset: int = 17) -> onnx.ModelProto:
    """x[?,4] @ W + b -> Relu -> Identity: written by onnx 1.23 (IR 14 by default)."""
    rng = np.random.default_rng(0)
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], rng.standard_normal(12).tolist())
    b = helper.make_tensor("b", TensorProto.FLOAT, [3], rng.standard_normal(3).tolist())
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"]),
        helper.make_node("Add", ["h", "b"], ["a"]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Identity", ["r"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
        initializer=[w, b],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_onnx_file_ir_pinned_and_optimised(tmp_path):
    model = _mlp_onnx()
    assert model.ir_version == 14
    path = tmp_path / "mlp.onnx"
    onnx.save_model(model, str(path))
    result = convert(path, name="mlp", repository=tmp_path / "repo")
    saved = onnx.load_model(str(result.artifact))
    assert saved.ir_version == 10
    assert saved.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert len(saved.graph.node) < len(model.graph.node)  # Identity removed
    assert result.manifest["source"]["sha256"] and verify_manifest(result.version_dir) == []
    assert result.parity.data == "synthetic" and result.parity.ok


def test_onnx_opset_conversion(tmp_path):
    result = convert(_mlp_onnx(13), name="mlp", repository=tmp_path, opset=17, optimize=False)
    assert result.manifest["conversion"]["opset"] == 17
    assert result.manifest["conversion"]["optimized"] is False


def test_onnx_with_named_sample(tmp_path):
    x = np.random.default_rng(1).standard_normal((40, 4)).astype(np.float32)
    result = convert(_mlp_onnx(), name="mlp", repository=tmp_path, sample_input={"x": x}, parity_rows=10)
    assert result.parity.rows == 10 and result.parity.data == "sample"


def test_torch_module(tmp_path):
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = np.random.default_rng(0).standard_normal((12, 6)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x)
    result = convert(net, name="net", repository=tmp_path / "repo", sample_input=tmp_path / "x.npz")
    assert result.parity.ok and result.manifest["source"]["kind"] == "torch"
    config = read_config(result.config_path)
    assert [(t.name, list(t.dims)) for t in config.input] == [("input", [6])]
    assert [(t.name, list(t.dims)) for t in config.output] == [("output", [2])]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_torchscript_file_two_outputs(tmp_path):
    import torch

    class TwoHeads(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(5, 4)

        def forward(self, x):
            h = self.body(x)
            return torch.softmax(h, dim=-1), h.sum(dim=-1, keepdim=True)

    x = np.random.default_rng(0).standard_normal((8, 5)).astype(np.float32)
    path = tmp_path / "heads.pt"
    torch.jit.save(torch.jit.trace(TwoHeads().eval(), torch.from_numpy(x)), str(path))
    result = convert(path, name="heads", repository=tmp_path / "repo", sample_input=x)
    assert [o.name for o in result.parity.outputs] == ["output_0", "output_1"]
    assert result.manifest["source"]["path"] == str(path.resolve())


def test_torch_needs_sample(tmp_path):
    import torch

    from tritonab.errors import ConversionError

    with pytest.raises(ConversionError, match=r"PyTorch sources need a sample input"):
        convert(torch.nn.Linear(3, 1), name="m", repository=tmp_path)
    assert list(tmp_path.iterdir()) == []
