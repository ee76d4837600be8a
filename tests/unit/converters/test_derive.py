"""Runtime-config variants: same artifact (same inode, same sha256), a config differing only
in the asked fields, the same predictions; precision through the converter with parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper

from tritonab.cli import main
from tritonab.converters import RuntimeChanges, convert, derive_variant, read_manifest, verify_manifest
from tritonab.converters._graph import run, session
from tritonab.ensembles import validate_repository
from tritonab.ensembles.config import ModelConfig, read_config
from tritonab.errors import ConversionError, VariantError

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def repo(tmp_path) -> Path:
    """A copy of the shipped demo repository."""
    target = tmp_path / "repo"
    shutil.copytree(ROOT / "model_repository", target)
    return target


def _predict(version_dir: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    return run(session((version_dir / "model.onnx").read_bytes(), "test"), {"input": x})


def test_the_done_when_command(repo, capsys, cancer):
    """`variant derive demo_gbt --name demo_gbt_x2 --instances 2 --max-queue-delay-us 200`."""
    argv = ["variant", "derive", "demo_gbt", "--name", "demo_gbt_x2", "--instances", "2"]
    argv += ["--max-queue-delay-us", "200", "--repository", str(repo), "--json", str(repo / "d.json")]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "instance_group[0].count: 1 -> 2" in out
    assert "dynamic_batching.max_queue_delay_microseconds: (unset) -> 200" in out
    source, variant = repo / "demo_gbt" / "1", repo / "demo_gbt_x2" / "1"
    # The same artifact: one inode, and the manifests agree on its sha256.
    assert (variant / "model.onnx").stat().st_ino == (source / "model.onnx").stat().st_ino
    assert read_manifest(variant)["artifact"] == read_manifest(source)["artifact"]
    assert verify_manifest(variant) == []
    assert read_manifest(variant)["derived_from"]["model"] == "demo_gbt"
    # The config differs only in the name, the instance count and the queue delay.
    before, after = (
        read_config(repo / "demo_gbt" / "config.pbtxt"),
        read_config(repo / "demo_gbt_x2" / "config.pbtxt"),
    )
    assert after.name == "demo_gbt_x2" and after.instance_group[0].count == 2
    assert after.dynamic_batching.max_queue_delay_microseconds == 200
    expected = ModelConfig()
    expected.CopyFrom(before)
    expected.name = "demo_gbt_x2"
    expected.instance_group[0].count = 2
    expected.dynamic_batching.max_queue_delay_microseconds = 200
    assert after == expected
    # Same predictions, bit for bit (same bytes, same runner).
    x = cancer[0][:50].astype(np.float32)
    a, b = _predict(source, x), _predict(variant, x)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert validate_repository(repo) == []
    summary = json.loads((repo / "d.json").read_text())
    assert (
        summary["sha256"] == read_manifest(source)["artifact"]["sha256"] and summary["shared"] == "hardlink"
    )


def test_a_copy_where_no_link_can_be_made(repo, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr("tritonab.converters._repository.os.link", refuse)
    result = derive_variant("demo_gbt", name="g2", repository=repo, changes=RuntimeChanges(instances=3))
    assert result.shared == "copy"
    artifact = result.version_dir / "model.onnx"
    assert artifact.stat().st_ino != (repo / "demo_gbt" / "1" / "model.onnx").stat().st_ino
    assert (
        verify_manifest(result.version_dir) == []
        and result.sha256 == read_manifest(repo / "demo_gbt" / "1")["artifact"]["sha256"]
    )


def test_batching_fields_and_native_runtime(repo):
    result = derive_variant(
        "demo_gbt",
        name="g_native",
        repository=repo,
        changes=RuntimeChanges(runtime="native", max_batch_size=32, preferred_batch_sizes=(8, 4)),
    )
    config = read_config(result.config_path)
    assert config.backend == "onnxruntime" and "onnx_file" not in config.parameters
    assert config.max_batch_size == 32 and list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    # The converter's native layout: the `[batch]` label is reshaped; no Python shim.
    assert config.output[0].HasField("reshape")
    assert sorted(p.name for p in result.version_dir.iterdir()) == ["manifest.json", "model.onnx"]
    assert read_manifest(result.version_dir)["conversion"]["runtime"] == "native"
    paths = {c.path for c in result.changes}
    assert {"backend", "max_batch_size", "parameters.onnx_file.string_value"} <= paths
    # The embedded server has no native backend: validate says so for that target.
    assert any("g_native" in str(p) for p in validate_repository(repo, target="embedded"))


def _linear_onnx(width: int = 30) -> onnx.ModelProto:
    """`probabilities = softmax(input @ W + b)` in standard ONNX ops, which FP16 really
    changes (the ai.onnx.ml ops of scikit-learn exports stay in FP32 behind casts)."""
    rng = np.random.default_rng(0)
    weights = helper.make_tensor(
        "W", onnx.TensorProto.FLOAT, [width, 2], rng.normal(size=(width, 2)).ravel() / 300
    )
    bias = helper.make_tensor("b", onnx.TensorProto.FLOAT, [2], [0.1, -0.1])
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["input", "W"], ["z0"]),
            helper.make_node("Add", ["z0", "b"], ["z"]),
            helper.make_node("Softmax", ["z"], ["probabilities"], axis=1),
        ],
        "linear",
        [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [None, width])],
        [helper.make_tensor_value_info("probabilities", onnx.TensorProto.FLOAT, [None, 2])],
        initializer=[weights, bias],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=10)


def test_fp16_goes_through_the_converter_with_parity(repo, cancer):
    x = cancer[0][:64].astype(np.float32)
    convert(_linear_onnx(), name="linear", repository=repo, sample_input=x)
    result = derive_variant(
        "linear", name="linear16", repository=repo, changes=RuntimeChanges(precision="fp16"), sample_input=x
    )
    assert result.parity is not None and result.parity.ok and result.parity.data == "sample"
    manifest = read_manifest(result.version_dir)
    assert manifest["conversion"]["precision"] == "fp16" and result.shared is None
    assert manifest["source"]["sha256"] == read_manifest(repo / "linear" / "1")["artifact"]["sha256"]
    assert result.sha256 != manifest["source"]["sha256"] and verify_manifest(result.version_dir) == []
    a, b = _predict(repo / "linear" / "1", x), _predict(result.version_dir, x)
    assert 0 < np.abs(a["probabilities"] - b["probabilities"]).max() < 1e-2  # FP16 rounding, within tolerance
    assert result.changes == ()  # the config is the source's: only the artifact's precision changed


def test_a_failed_parity_writes_nothing(repo, cancer):
    x = cancer[0][:64].astype(np.float32)
    convert(_linear_onnx(), name="linear", repository=repo, sample_input=x)
    with pytest.raises(ConversionError, match=r"parity check .* failed; nothing written") as caught:
        derive_variant(
            "linear",
            name="linear16",
            repository=repo,
            changes=RuntimeChanges(precision="fp16"),
            sample_input=x,
            atol=1e-7,
            rtol=0.0,
        )
    assert caught.value.exit_code == 1  # a failed check, not a bad request
    assert not (repo / "linear16").exists()


@pytest.mark.parametrize(
    ("source", "changes", "message"),
    [
        ("demo_gbt", RuntimeChanges(), r"nothing to change"),
        ("nope", RuntimeChanges(instances=2), r"source model `nope`: .*config.pbtxt` is missing"),
        ("demo_scaler", RuntimeChanges(instances=2), r"missing manifest; only a converted model"),
        (
            "demo_gbt",
            RuntimeChanges(max_batch_size=4, preferred_batch_sizes=(8,)),
            r"\[8\]: above max_batch_size 4",
        ),
        ("demo_gbt", RuntimeChanges(preferred_batch_sizes=(4, 4)), r"expected distinct positive integers"),
        ("demo_gbt", RuntimeChanges(instances=0), r"instances `0`: expected a positive integer"),
    ],
)
def test_bad_requests_are_refused_and_write_nothing(repo, source, changes, message):
    before = sorted(p.name for p in repo.iterdir())
    with pytest.raises(VariantError, match=message) as caught:
        derive_variant(source, name="new", repository=repo, changes=changes)
    assert caught.value.exit_code == 2
    assert sorted(p.name for p in repo.iterdir()) == before


def test_a_tampered_source_and_a_taken_name(repo):
    with pytest.raises(VariantError, match=r"already exists .*use another name or --force"):
        derive_variant("demo_gbt", name="demo_logreg", repository=repo, changes=RuntimeChanges(instances=2))
    (repo / "demo_gbt" / "1" / "model.onnx").write_bytes(b"not the converted model")
    with pytest.raises(VariantError, match=r"differs from the manifest's .*tampering"):
        derive_variant("demo_gbt", name="g", repository=repo, changes=RuntimeChanges(instances=2))


def test_force_replaces_and_raising_precision_is_refused(tmp_path, repo, classifier, cancer):
    derive_variant("demo_gbt", name="g", repository=repo, changes=RuntimeChanges(instances=2))
    again = derive_variant(
        "demo_gbt", name="g", repository=repo, changes=RuntimeChanges(instances=4), force=True
    )
    assert read_config(again.config_path).instance_group[0].count == 4
    convert(classifier, name="half", repository=repo, precision="fp16", sample_input=cancer[0][:64])
    with pytest.raises(VariantError, match=r"precision fp32: the artifact of `half` is fp16"):
        derive_variant("half", name="full", repository=repo, changes=RuntimeChanges(precision="fp32"))
