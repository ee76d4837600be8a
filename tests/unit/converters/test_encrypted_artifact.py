"""Artifacts encrypted at rest: only ciphertext on disk, the runner decrypts in memory,
a wrong key or one changed byte fails the load naming the file, validate reports
tampering even when the manifest's sha256 was updated too, and keys rotate."""

from __future__ import annotations

import hashlib
import json

import joblib
import numpy as np
import onnx
import pytest
from google.protobuf.message import DecodeError

from tritonab.backends._onnx import OnnxModel
from tritonab.cli import main
from tritonab.converters import convert, decrypt_artifact, rotate_repository, verify_manifest
from tritonab.errors import ConversionError, SecurityError
from tritonab.security import MODEL_KEY_ENV, TamperedError, generate_key, load_key


@pytest.fixture
def encrypted(tmp_path, classifier, cancer):
    key = generate_key(tmp_path / "model.key")
    result = convert(
        classifier,
        name="clf",
        repository=tmp_path / "repo",
        sample_input=cancer[0],
        encrypt_key=tmp_path / "model.key",
    )
    return result, key


def _parses_as_onnx(data: bytes) -> bool:
    try:
        return len(onnx.load_model_from_string(data).graph.node) > 0
    except (DecodeError, ValueError, RuntimeError):
        return False


def test_only_ciphertext_reaches_the_disk(encrypted, tmp_path):
    result, key = encrypted
    assert sorted(p.name for p in result.version_dir.iterdir()) == [
        "manifest.json",
        "model.onnx.enc",
        "model.py",
    ]
    assert not any(_parses_as_onnx(p.read_bytes()) for p in tmp_path.rglob("*") if p.is_file())
    artifact = result.manifest["artifact"]
    blob = result.artifact.read_bytes()
    assert artifact == {
        "file": "model.onnx.enc",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "bytes": len(blob),
        "encrypted": "aes-256-gcm",
        "key_id": key.id,
    }
    assert 'value: "model.onnx.enc"' in result.config_path.read_text()
    assert _parses_as_onnx(decrypt_artifact(result.version_dir, key))


def test_the_runner_decrypts_in_memory_and_matches_the_estimator(encrypted, classifier, cancer, monkeypatch):
    result, _key = encrypted
    monkeypatch.setenv(MODEL_KEY_ENV, str(result.version_dir.parents[2] / "model.key"))
    model = OnnxModel(result.artifact)
    x = cancer[0][:25].astype(np.float32)
    out = model.run({model.input_names[0]: x})
    np.testing.assert_allclose(out["probabilities"], classifier.predict_proba(x), atol=1e-5)


def test_no_key_or_a_wrong_key_fails_the_load_naming_the_file(encrypted, tmp_path, monkeypatch):
    result, _key = encrypted
    monkeypatch.delenv(MODEL_KEY_ENV, raising=False)
    with pytest.raises(SecurityError, match=r"model.onnx.enc` is encrypted: set \$TRITONAB_MODEL_KEY_FILE"):
        OnnxModel(result.artifact)
    other = generate_key(tmp_path / "other.key")
    monkeypatch.setenv(MODEL_KEY_ENV, str(tmp_path / "other.key"))
    with pytest.raises(
        SecurityError, match=f"model.onnx.enc` is encrypted with key .*not with the given key {other.id}"
    ):
        OnnxModel(result.artifact)


def test_a_changed_byte_is_reported_as_tampering(encrypted, monkeypatch, capsys):
    result, key = encrypted
    blob = bytearray(result.artifact.read_bytes())
    blob[-5] ^= 0x80
    result.artifact.write_bytes(bytes(blob))
    repo = str(result.version_dir.parents[1])
    assert main(["validate", repo]) == 1  # the sha256 alone catches it, without the key
    assert "tampering" in capsys.readouterr().err
    # Someone who can write the repository also updates the manifest's sha256:
    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    manifest["artifact"]["sha256"] = hashlib.sha256(blob).hexdigest()
    (result.version_dir / "manifest.json").write_text(json.dumps(manifest))
    assert verify_manifest(result.version_dir) == []  # without the key nothing shows
    assert main(["validate", repo, "--key-file", key.source]) == 1
    assert "fails AES-GCM authentication: it changed after it was encrypted" in capsys.readouterr().err
    monkeypatch.setenv(MODEL_KEY_ENV, key.source)
    with pytest.raises(TamperedError, match="model.onnx.enc` fails AES-GCM authentication"):
        OnnxModel(result.artifact)


def test_encryption_needs_the_python_runner(tmp_path, classifier, cancer):
    key = generate_key(tmp_path / "k")
    with pytest.raises(ConversionError, match="use it with --to onnx --runtime python"):
        convert(classifier, name="n", repository=tmp_path / "r", runtime="native", encrypt_key=key)
    assert not (tmp_path / "r").exists()


def test_cli_convert_and_rotate(tmp_path, classifier, capsys, monkeypatch):
    joblib.dump(classifier, tmp_path / "clf.joblib")
    assert main(["keys", "generate", str(tmp_path / "old.key")]) == 0
    assert main(["keys", "generate", str(tmp_path / "new.key")]) == 0
    repo = tmp_path / "repo"
    for _ in range(2):
        argv = ["convert", str(tmp_path / "clf.joblib"), "--name", "clf", "--repository", str(repo)]
        assert main([*argv, "--encrypt-key-file", str(tmp_path / "old.key")]) == 0
    keys = ["--old-key-file", str(tmp_path / "old.key"), "--new-key-file", str(tmp_path / "new.key")]
    assert main(["keys", "rotate", str(repo), *keys]) == 0
    assert capsys.readouterr().out.count("re-encrypted") == 2
    assert main(["validate", str(repo), "--key-file", str(tmp_path / "new.key")]) == 0
    assert main(["validate", str(repo), "--key-file", str(tmp_path / "old.key")]) == 1
    assert "is encrypted with key" in capsys.readouterr().err
    assert rotate_repository(repo, load_key(tmp_path / "old.key"), load_key(tmp_path / "new.key")) == []
    monkeypatch.setenv(MODEL_KEY_ENV, str(tmp_path / "new.key"))
    assert OnnxModel(repo / "clf" / "2" / "model.onnx.enc").input_names
