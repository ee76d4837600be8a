"""A small repository of configs (no real models needed to build and validate)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.ensembles.build import shim
from tritonab.ensembles.config import ModelConfig, TensorSpec, add_tensor, write_config

FEATURES = TensorSpec("input", mc.TYPE_FP32, (4,))
LABEL = TensorSpec("label", mc.TYPE_INT64, (1,))
PROBS = TensorSpec("probabilities", mc.TYPE_FP32, (2,))


def add_model(
    repo: Path,
    name: str,
    inputs=(FEATURES,),
    outputs=(LABEL, PROBS),
    *,
    versions=(1,),
    max_batch_size=16,
    module="onnx_runner",
    files=("model.onnx",),
):
    config = ModelConfig(name=name, backend="python", max_batch_size=max_batch_size)
    for t in inputs:
        add_tensor(config.input, t)
    for t in outputs:
        add_tensor(config.output, t)
    write_config(repo / name / "config.pbtxt", config)
    for v in versions:
        (repo / name / str(v)).mkdir(parents=True)
        (repo / name / str(v) / "model.py").write_text(shim(module))
        for f in files:  # placeholders; a transform's spec must parse (validate reads it)
            body = b'{"input_width": %d, "steps": []}' % inputs[0].dims[0] if f == "transform.json" else b""
            (repo / name / str(v) / f).write_bytes(body)
    return config


@pytest.fixture
def repo(tmp_path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    add_model(root, "m1")
    add_model(root, "m2", versions=(1, 2))
    return root


@pytest.fixture
def models() -> SimpleNamespace:
    """`models.add(repo, name, ...)` and the shared tensor specs."""
    return SimpleNamespace(add=add_model, FEATURES=FEATURES, LABEL=LABEL, PROBS=PROBS)
