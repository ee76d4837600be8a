"""Corrupt or unsupported sources, parity failures and misuse: a ConversionError naming
the file and the reason, and nothing written."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import LinearRegression

from tritonab.converters import convert
from tritonab.errors import ConversionError


@pytest.fixture
def repo(tmp_path, listing):
    """An empty repository; on teardown, the test must have left it empty."""
    path = tmp_path / "repo"
    path.mkdir()
    yield path
    assert listing(path) == []


def _identity_onnx(opset: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_truncated_pickle(tmp_path, repo, regressor):
    path = tmp_path / "model.joblib"
    joblib.dump(regressor, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ConversionError, match=r"`.*model\.joblib`: cannot unpickle the model: "):
        convert(path, name="m", repository=repo)


def test_truncated_plain_pickle(tmp_path, repo, regressor):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(regressor)[:-40])
    with pytest.raises(ConversionError, match=r"model\.pkl`: cannot unpickle the model"):
        convert(path, name="m", repository=repo)


def test_pickle_of_something_else(tmp_path, repo):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"not": "a model"}))
    with pytest.raises(
        ConversionError,
        match=r"model\.pkl`: unsupported source type `builtins"
        r"\.dict`: expected a scikit-learn estimator",
    ):
        convert(path, name="m", repository=repo)


def test_estimator_skl2onnx_cannot_convert(tmp_path, repo, diabetes):
    X, y = diabetes
    path = tmp_path / "kr.joblib"
    joblib.dump(KernelRidge().fit(X[:50], y[:50]), path)
    with pytest.raises(
        ConversionError,
        match=r"kr\.joblib`: skl2onnx cannot convert "
        r"`sklearn\.kernel_ridge\.KernelRidge`",
    ):
        convert(path, name="m", repository=repo)


def test_unfitted_estimator(repo):
    with pytest.raises(
        ConversionError,
        match=r"`<LinearRegression object>`: the estimator is not "
        r"fitted",
    ):
        convert(LinearRegression(), name="m", repository=repo)


def test_onnx_with_unsupported_opset(tmp_path, repo):
    path = tmp_path / "future.onnx"
    model = _identity_onnx(7)
    model.opset_import[0].version = 99
    path.write_bytes(model.SerializeToString())
    with pytest.raises(
        ConversionError,
        match=r"future\.onnx`: unsupported opset 99: expected an "
        r"ai\.onnx opset between 7 and \d+",
    ):
        convert(path, name="m", repository=repo)


def test_onnx_with_too_old_opset(tmp_path, repo):
    path = tmp_path / "old.onnx"
    model = _identity_onnx(7)
    model.opset_import[0].version = 1
    path.write_bytes(model.SerializeToString())
    with pytest.raises(ConversionError, match=r"old\.onnx`: unsupported opset 1"):
        convert(path, name="m", repository=repo)


def test_corrupt_onnx(tmp_path, repo):
    path = tmp_path / "bad.onnx"
    path.write_bytes(b"\x08\x07garbage that is not protobuf\xff\xff")
    with pytest.raises(ConversionError, match=r"bad\.onnx`: not a readable ONNX model"):
        convert(path, name="m", repository=repo)


def test_missing_file(tmp_path, repo):
    with pytest.raises(ConversionError, match=r"source `.*nope\.onnx` does not exist"):
        convert(tmp_path / "nope.onnx", name="m", repository=repo)


def test_unknown_suffix(tmp_path, repo):
    path = tmp_path / "model.bin"
    path.write_bytes(b"x")
    with pytest.raises(ConversionError, match=r"model\.bin`: unknown source format `\.bin`"):
        convert(path, name="m", repository=repo)


def test_parity_failure_prints_table(repo, regressor, diabetes):
    with pytest.raises(ConversionError) as info:
        convert(regressor, name="m", repository=repo, sample_input=diabetes[0], atol=0.0, rtol=0.0)
    message = str(info.value)
    assert (
        "model `m`: parity check against `<GradientBoostingRegressor object>` failed; "
        "nothing written" in message
    )
    assert "variable" in message and "FAIL" in message and "atol=0 rtol=0" in message


def test_label_mismatch_fails(repo, classifier, cancer):
    X = cancer[0].copy()
    with pytest.raises(ConversionError, match=r"(?s)parity check.*probabilities"):
        convert(classifier, name="m", repository=repo, sample_input=X, atol=0.0, rtol=0.0)


def test_tensorrt_without_gpu(repo, regressor, monkeypatch):
    monkeypatch.setattr("tritonab.converters._tensorrt.gpu_available", lambda: False)
    with pytest.raises(ConversionError, match=r"the TensorRT target needs an NVIDIA GPU"):
        convert(regressor, name="m", repository=repo, to="tensorrt")


def test_accelerator_needs_native_runtime(repo, regressor):
    with pytest.raises(ConversionError, match=r"accelerator `tensorrt` configures the native"):
        convert(regressor, name="m", repository=repo, accelerator="tensorrt")


def test_bad_name(repo, regressor):
    with pytest.raises(ConversionError, match=r"model name `\.\./x`: expected letters"):
        convert(regressor, name="../x", repository=repo)


def test_sample_with_wrong_width(repo, regressor):
    with pytest.raises(
        ConversionError,
        match=r"sample for input `input` has shape \[5, 3\]: "
        r"expected \[\?, 10\]",
    ):
        convert(regressor, name="m", repository=repo, sample_input=np.zeros((5, 3)))


def test_unreadable_sample_file(tmp_path, repo, regressor):
    path = tmp_path / "sample.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ConversionError, match=r"sample input `.*sample\.npz`: cannot read"):
        convert(regressor, name="m", repository=repo, sample_input=path)


def test_fixed_batch_graph_hint(tmp_path, repo):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 2, 2])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g", [x], [y], initializer=[shape]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ConversionError, match=r"fails on the sample: .*--max-batch-size 0"):
        convert(model, name="m", repository=repo)


def test_fixed_batch_graph_with_max_batch_size_zero(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2])
    shape = helper.make_tensor("shape", TensorProto.INT64, [3], [1, 2, 2])
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])], "g", [x], [y], initializer=[shape]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    result = convert(model, name="m", repository=tmp_path, max_batch_size=0)
    assert result.parity.ok and result.manifest["conversion"]["max_batch_size"] == 0
    text = result.config_path.read_text()
    assert "max_batch_size" not in text and "dynamic_batching" not in text
    assert "dims: 1\n  dims: 4" in text
