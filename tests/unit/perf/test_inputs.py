"""Input data: perf_analyzer's JSON format, synthetic data, shapes, batching, and their errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.errors import PerfError
from tritonab.perf import ModelInfo, TensorInfo, load_input_data, parse_input_data, parse_shape_overrides
from tritonab.perf._inputs import batches, synthetic_samples

MODEL = ModelInfo("m", "", 8, (TensorInfo("INPUT0", "FP32", (4,)), TensorInfo("TEXT", "BYTES", (1,))), ())
VARIABLE = ModelInfo("v", "", 0, (TensorInfo("X", "INT32", (-1, 2)),), ())


def test_flat_and_content_forms():
    doc = {
        "data": [
            {"INPUT0": [1, 2, 3, 4], "TEXT": ["a"]},
            {"INPUT0": {"content": [5, 6, 7, 8], "shape": [4]}, "TEXT": {"content": ["b"]}},
        ]
    }
    samples = parse_input_data(doc, MODEL, {})
    assert samples[1]["INPUT0"].dtype == np.float32
    np.testing.assert_array_equal(samples[1]["INPUT0"], [5, 6, 7, 8])
    assert samples[0]["TEXT"].tolist() == [b"a"]


def test_variable_dims_from_shape_field_or_override():
    doc = {"data": [{"X": {"content": [1, 2, 3, 4, 5, 6], "shape": [3, 2]}}, {"X": [1, 2]}]}
    samples = parse_input_data(doc, VARIABLE, {"X": (1, 2)})
    assert samples[0]["X"].shape == (3, 2) and samples[1]["X"].shape == (1, 2)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([1, 2], "expected an object with a `data` list"),
        ({"data": []}, "`data` is empty"),
        ({"data": [{"INPUT0": [1, 2, 3, 4]}]}, r"data\[0\]: input `TEXT` is missing"),
        ({"data": [{"INPUT0": [1, 2, 3], "TEXT": ["a"]}]}, r"has 3 values, but shape \[4\] needs 4"),
        ({"data": [{"INPUT0": [1, 2, 3, 4], "TEXT": ["a"], "EXTRA": [1]}]}, "has no input `EXTRA`"),
        (
            {"data": [{"INPUT0": {"content": [1] * 8, "shape": [8]}, "TEXT": ["a"]}]},
            r"input `INPUT0` has shape \[8\], but the model expects \[4\]",
        ),
        ({"data": [{"INPUT0": ["x", 2, 3, 4], "TEXT": ["a"]}]}, "values that are not FP32"),
        ({"data": [[{"INPUT0": [1, 2, 3, 4]}]]}, "sequences are not supported"),
    ],
)
def test_mismatches_are_perf_errors(doc, message):
    with pytest.raises(PerfError, match=message):
        parse_input_data(doc, MODEL, {})


def test_load_input_data_file_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(PerfError, match="not valid JSON"):
        load_input_data(bad, MODEL)
    with pytest.raises(PerfError, match="cannot read"):
        load_input_data(tmp_path / "missing.json", MODEL)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"data": [{"INPUT0": [0, 0, 0, 1], "TEXT": ["z"]}]}), encoding="utf-8")
    assert load_input_data(good, MODEL)[0]["INPUT0"][3] == 1


def test_synthetic_needs_shape_for_variable_dims():
    with pytest.raises(PerfError, match=r"variable dims \[-1, 2\]: give them with --shape X:DIMS"):
        synthetic_samples(VARIABLE, "random", {})
    (sample,) = synthetic_samples(VARIABLE, "zero", {"X": (5, 2)})
    assert sample["X"].shape == (5, 2) and not sample["X"].any()
    with pytest.raises(PerfError, match="expected zero, random or a JSON file"):
        synthetic_samples(VARIABLE, "ones", {})


def test_batches():
    samples = synthetic_samples(MODEL, "random", {}, count=3)
    requests = batches(samples, MODEL, 4)
    assert len(requests) == 3 and requests[0]["INPUT0"].shape == (4, 4)
    with pytest.raises(PerfError, match="exceeds model `m`'s max_batch_size 8"):
        batches(samples, MODEL, 9)
    with pytest.raises(PerfError, match="does not batch"):
        batches(synthetic_samples(VARIABLE, "zero", {"X": (1, 2)}), VARIABLE, 2)


def test_shape_overrides():
    assert parse_shape_overrides(["input:1,30", "b:2"]) == {"input": (1, 30), "b": (2,)}
    with pytest.raises(PerfError, match="expected NAME:DIMS"):
        parse_shape_overrides(["input"])
