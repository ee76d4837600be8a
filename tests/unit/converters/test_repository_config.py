"""Config building for each target and runtime, and version numbering."""

from __future__ import annotations

import numpy as np
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.converters._graph import GraphTensor
from tritonab.converters._repository import EntrySpec, build_config, pick_version
from tritonab.converters._tensorrt import accelerator_parameters

INPUTS = (GraphTensor("input", np.dtype(np.float32), (None, 8)),)
OUTPUTS = (
    GraphTensor("label", np.dtype(np.int64), (None,)),
    GraphTensor("probabilities", np.dtype(np.float32), (None, 3)),
)


def _spec(**kw) -> EntrySpec:
    base = dict(name="m", target="onnx", runtime="python", max_batch_size=32, inputs=INPUTS, outputs=OUTPUTS)
    return EntrySpec(**{**base, **kw})


def test_tensorrt_plan_config():
    config = build_config(_spec(target="tensorrt"))
    assert config.platform == "tensorrt_plan" and not config.backend
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    label = config.output[0]
    assert list(label.dims) == [1] and label.HasField("reshape")
    assert _spec(target="tensorrt").artifact == "model.plan"


def test_python_runtime_has_no_reshape():
    config = build_config(_spec())
    assert not config.output[0].HasField("reshape")
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU


def test_native_accelerator_parameters():
    params = accelerator_parameters("fp32", workspace_mb=256)
    config = build_config(_spec(runtime="native", accelerator=params))
    accel = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accel.name == "tensorrt"
    assert accel.parameters["precision_mode"] == "FP32"
    assert accel.parameters["max_workspace_size_bytes"] == str(256 << 20)


def test_warmup_and_dynamic_dims():
    spec = _spec(inputs=(GraphTensor("ids", np.dtype(np.int64), (None, None)),))
    config = build_config(spec)
    assert list(config.input[0].dims) == [-1]
    warm = config.model_warmup[0].inputs["ids"]
    assert warm.zero_data and list(warm.dims) == [1]


def test_pick_version(tmp_path):
    assert pick_version(tmp_path / "m", None, force=False) == 1
    (tmp_path / "m" / "1").mkdir(parents=True)
    (tmp_path / "m" / "7").mkdir()
    (tmp_path / "m" / "notes").mkdir()
    assert pick_version(tmp_path / "m", None, force=False) == 8
    assert pick_version(tmp_path / "m", 7, force=True) == 7
