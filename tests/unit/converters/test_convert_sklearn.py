"""Round trips of real estimators through `convert` (in-process onnxruntime checks)."""

from __future__ import annotations

import json

import joblib
import numpy as np
import onnxruntime as ort
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import Ridge

from tritonab.converters import SHIM, convert, verify_manifest
from tritonab.ensembles.config import read_config
from tritonab.errors import ConversionError


def _session(path):
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_classifier_pipeline_from_joblib_file(tmp_path, classifier, cancer):
    X, _ = cancer
    source = tmp_path / "clf.joblib"
    joblib.dump(classifier, source)
    np.savez(tmp_path / "sample.npz", X=X)
    repo = tmp_path / "repo"
    result = convert(source, name="cancer", repository=repo, sample_input=tmp_path / "sample.npz")

    assert result.version == 1 and result.parity.ok
    assert sorted(p.name for p in result.version_dir.iterdir()) == ["manifest.json", "model.onnx", "model.py"]
    assert (result.version_dir / "model.py").read_text() == SHIM
    label, proba = _session(result.artifact).run(None, {"input": X[:50].astype(np.float32)})
    assert label.shape == (50,)
    np.testing.assert_array_equal(label, classifier.predict(X[:50].astype(np.float32)))
    np.testing.assert_allclose(proba, classifier.predict_proba(X[:50]), atol=1e-4)

    manifest = json.loads((result.version_dir / "manifest.json").read_text())
    assert manifest["source"]["path"] == str(source.resolve())
    assert manifest["source"]["kind"] == "sklearn"
    assert manifest["conversion"]["precision"] == "fp32"
    assert manifest["conversion"]["ir_version"] == 10
    assert manifest["tools"]["skl2onnx"]
    assert manifest["parity"]["ok"] is True
    assert verify_manifest(result.version_dir) == []


def test_classifier_config(tmp_path, classifier, cancer):
    result = convert(classifier, name="c", repository=tmp_path, sample_input=cancer[0])
    config = read_config(result.config_path)
    assert config.backend == "python" and config.max_batch_size == 64
    assert [(i.name, list(i.dims)) for i in config.input] == [("input", [30])]
    assert [(o.name, list(o.dims)) for o in config.output] == [("label", [1]), ("probabilities", [2])]
    assert config.HasField("dynamic_batching")
    assert config.version_policy.latest.num_versions == 1
    assert config.model_warmup[0].inputs["input"].random_data
    assert config.parameters["onnx_file"].string_value == "model.onnx"


def test_tree_regressor(tmp_path, regressor, diabetes):
    X, _ = diabetes
    result = convert(regressor, name="gbr", repository=tmp_path, sample_input=X)
    (out,) = _session(result.artifact).run(None, {"input": X[:20].astype(np.float32)})
    np.testing.assert_allclose(out.ravel(), regressor.predict(X[:20].astype(np.float32)), rtol=1e-4)


def test_multiclass_forest_fp16(tmp_path, wine):
    X, y = wine
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    result = convert(forest, name="wine", repository=tmp_path, sample_input=X, precision="fp16")
    assert result.parity.tolerance.atol == pytest.approx(1e-2)
    assert result.manifest["conversion"]["precision"] == "fp16"
    assert [o.name for o in result.parity.outputs] == ["label", "probabilities"]


def test_synthetic_parity_without_sample(tmp_path, diabetes):
    X, y = diabetes
    result = convert(Ridge().fit(X, y), name="ridge", repository=tmp_path)
    assert result.parity.data == "synthetic" and result.parity.ok


def test_versions_are_appended_and_never_overwritten(tmp_path, regressor, diabetes, listing):
    X, _ = diabetes
    first = convert(regressor, name="m", repository=tmp_path, sample_input=X)
    second = convert(regressor, name="m", repository=tmp_path, sample_input=X)
    assert (first.version, second.version) == (1, 2)
    before = listing(tmp_path)
    with pytest.raises(ConversionError, match=r"already exists: use --force"):
        convert(regressor, name="m", repository=tmp_path, sample_input=X, version=1)
    assert listing(tmp_path) == before
    again = convert(regressor, name="m", repository=tmp_path, sample_input=X, version=1, force=True)
    assert again.version == 1 and verify_manifest(again.version_dir) == []


def test_new_version_keeps_user_settings(tmp_path, regressor, diabetes):
    X, _ = diabetes
    result = convert(regressor, name="m", repository=tmp_path, sample_input=X)
    config = read_config(result.config_path)
    config.instance_group[0].count = 3
    config.version_policy.Clear()
    config.version_policy.all.SetInParent()
    result.config_path.write_text(str(config))
    convert(regressor, name="m", repository=tmp_path, sample_input=X)
    merged = read_config(result.config_path)
    assert merged.instance_group[0].count == 3
    assert merged.version_policy.HasField("all")


def test_inconsistent_new_version_is_refused(tmp_path, regressor, classifier, diabetes, cancer, listing):
    convert(regressor, name="m", repository=tmp_path, sample_input=diabetes[0])
    before = listing(tmp_path)
    config_text = (tmp_path / "m" / "config.pbtxt").read_text()
    with pytest.raises(ConversionError, match=r"model `m`: the existing config serves python"):
        convert(classifier, name="m", repository=tmp_path, sample_input=cancer[0])
    assert listing(tmp_path) == before
    assert (tmp_path / "m" / "config.pbtxt").read_text() == config_text
    forced = convert(classifier, name="m", repository=tmp_path, sample_input=cancer[0], force=True)
    assert [o.name for o in read_config(forced.config_path).output] == ["label", "probabilities"]


def test_native_runtime_with_tensorrt_accelerator(tmp_path, classifier, cancer):
    result = convert(
        classifier,
        name="n",
        repository=tmp_path,
        sample_input=cancer[0],
        runtime="native",
        accelerator="tensorrt",
        precision="fp16",
    )
    config = read_config(result.config_path)
    assert config.backend == "onnxruntime"
    assert not (result.version_dir / "model.py").exists()
    label = config.output[0]
    assert list(label.dims) == [1] and label.HasField("reshape") and list(label.reshape.shape) == []
    accel = config.optimization.execution_accelerators.gpu_execution_accelerator[0]
    assert accel.name == "tensorrt"
    assert accel.parameters["precision_mode"] == "FP16"


def test_int8_quantised_graph(tmp_path, classifier, cancer):
    result = convert(classifier, name="q", repository=tmp_path, sample_input=cancer[0], precision="int8")
    assert result.parity.ok and result.manifest["conversion"]["precision"] == "int8"


def test_fp16_without_onnxconverter_common(tmp_path, regressor, monkeypatch, listing):
    import sys

    monkeypatch.setitem(sys.modules, "onnxconverter_common", None)
    with pytest.raises(ConversionError, match=r"FP16 conversion needs onnxconverter-common"):
        convert(regressor, name="m", repository=tmp_path, precision="fp16")
    assert listing(tmp_path) == []
