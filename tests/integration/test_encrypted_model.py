"""An encrypted conversion served by the real Triton: the runner decrypts the graph in
memory with the key named by `TRITONAB_MODEL_KEY_FILE` in the server's environment.

Its own small server (the session server's environment has no model key): explicit
mode, one encrypted model, stopped at the end of the module.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import tritonclient.grpc as grpcclient
from google.protobuf.message import DecodeError

from tritonab.cli import main
from tritonab.deploy.control import ModelControl
from tritonab.deploy.server import TritonServer
from tritonab.errors import ClientError
from tritonab.security import MODEL_KEY_ENV

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def encrypted(tmp_path_factory, encrypted_conversion):
    made = encrypted_conversion(tmp_path_factory.mktemp("encrypted"), "cancer_enc", max_batch_size=32)
    with TritonServer(
        made.repo,
        model_control_mode="explicit",
        load_models=("cancer_enc",),
        env={MODEL_KEY_ENV: str(made.key_file)},
        startup_timeout=120,
    ) as server:
        yield server, made.result, made.estimator, made.x, made.key


def _parses_as_onnx(data: bytes) -> bool:
    try:
        model = onnx.load_model_from_string(data)
    except (DecodeError, ValueError, RuntimeError):
        return False
    return len(model.graph.node) > 0


def test_no_plaintext_graph_on_disk(encrypted):
    _server, result, _estimator, _x, key = encrypted
    files = sorted(p for p in result.version_dir.iterdir() if p.is_file())
    assert [p.name for p in files] == ["manifest.json", "model.onnx.enc", "model.py"]
    assert not any(_parses_as_onnx(p.read_bytes()) for p in files)
    assert result.manifest["artifact"]["encrypted"] == "aes-256-gcm"
    assert result.manifest["artifact"]["key_id"] == key.id


def test_served_predictions_equal_the_estimator(encrypted):
    server, _result, estimator, x, _key = encrypted
    client = grpcclient.InferenceServerClient(server.urls.grpc)
    try:
        tensor = grpcclient.InferInput("input", [20, x.shape[1]], "FP32")
        tensor.set_data_from_numpy(x[:20])
        out = client.infer("cancer_enc", [tensor]).as_numpy("probabilities")
    finally:
        client.close()
    np.testing.assert_allclose(out, estimator.predict_proba(x[:20]), atol=1e-5)


def test_one_changed_byte_is_tampering_and_the_load_fails(encrypted, capsys):
    server, result, _estimator, _x, _key = encrypted
    artifact = result.version_dir / "model.onnx.enc"
    data = bytearray(artifact.read_bytes())
    data[len(data) // 2] ^= 0x01
    artifact.write_bytes(bytes(data))
    repo = str(result.version_dir.parents[1])
    assert main(["validate", repo, "--key-file", str(result.version_dir.parents[2] / "model.key")]) == 1
    assert "tampering" in capsys.readouterr().err
    with (
        ModelControl(server.urls.grpc) as control,
        pytest.raises(ClientError, match=r"model\.onnx\.enc` fails AES-GCM authentication"),
    ):
        control.load("cancer_enc")
