"""One real tritonserver per test session, on a copy of the demo repository plus test models.

Test-only models (a variant that always fails) are written here, not shipped.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.deploy.server import TritonServer
from tritonab.ensembles import build_router, load_model
from tritonab.ensembles.config import write_config
from tritonab.splitter import load_spec, load_spec_dict

ROOT = Path(__file__).resolve().parents[2]

FAILING_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(error=pb_utils.TritonError("model exploded"))
                for _ in requests]
"""


def _add_failing_model(repo: Path) -> None:
    """`always_fails`: the demo signature, an error for every request."""
    config = mc.ModelConfig()
    config.CopyFrom(load_model(repo / "demo_gbt").config)
    config.name = "always_fails"
    del config.parameters["onnx_file"]
    config.ClearField("model_warmup")
    write_config(repo / "always_fails" / "config.pbtxt", config)
    (repo / "always_fails" / "1").mkdir(parents=True)
    (repo / "always_fails" / "1" / "model.py").write_text(FAILING_MODEL)


def _router(repo: Path, **overrides) -> None:
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump()
    data.update(overrides)
    build_router(load_spec_dict(data), repo)


@pytest.fixture(scope="session")
def repository(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("integration") / "model_repository"
    shutil.copytree(ROOT / "model_repository", repo)
    _add_failing_model(repo)
    _router(repo, name="ab_rows", unit_input="unit")
    _router(
        repo,
        name="ab_shadow",
        shadow=[
            {"model": "always_fails", "sample_rate": 1.0},
            {"model": "demo_logreg_pipeline", "version": 1},
        ],
    )
    _router(
        repo,
        name="ab_failing",
        variants=[
            {"name": "control", "model": "demo_gbt", "version": 1, "weight": 0.5},
            {"name": "treatment", "model": "always_fails", "version": 1, "weight": 0.5},
        ],
    )
    return repo


@pytest.fixture(scope="session")
def server(repository):
    with TritonServer(repository) as running:
        yield running


@pytest.fixture(scope="session")
def features() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().data.astype(np.float32)
