"""Feature transforms: declarative steps, widths, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.preprocessing import StandardScaler

from tritonab.backends import TransformSpec, load_transform
from tritonab.errors import SpecError


def test_steps_apply_in_order():
    spec = TransformSpec.model_validate(
        {
            "input_width": 3,
            "steps": [
                {"op": "impute", "values": [0, 0, 1]},
                {"op": "clip", "low": [0, -5, 0], "high": [10, 5, 1]},
                {"op": "standardize", "mean": [1, 0, 0.5], "scale": [2, 1, 0.5]},
                {"op": "log1p", "columns": [0]},
                {"op": "one_hot", "column": 2, "categories": [-1, 1]},
            ],
        }
    )
    x = np.array([[np.nan, 7, np.nan], [20, -1, 0]], dtype=np.float32)
    # impute -> [[0,7,1],[20,-1,0]]; clip -> [[0,5,1],[10,-1,0]]
    # standardize -> [[-0.5,5,1],[4.5,-1,-1]]; log1p(max(.,0)) col 0 -> [[0,..],[log(5.5),..]]
    out = spec.apply(x)
    expected = np.array([[0, 5, 0, 1], [np.log1p(4.5), -1, 1, 0]], dtype=np.float32)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert spec.output_width == 4
    assert out.dtype == np.float32


def test_matches_a_fitted_sklearn_scaler():
    rng = np.random.default_rng(0)
    x = rng.normal(3, 2, size=(100, 5)).astype(np.float32)
    scaler = StandardScaler().fit(x)
    spec = TransformSpec.from_sklearn_scaler(scaler)
    np.testing.assert_allclose(spec.apply(x), scaler.transform(x), rtol=1e-5, atol=1e-5)
    clipped = TransformSpec.from_sklearn_scaler(scaler, clip_sigma=1.0).apply(x)
    assert clipped.max() <= 1.0 and clipped.min() >= -1.0


def test_select_and_min_max():
    spec = TransformSpec.model_validate(
        {
            "input_width": 3,
            "steps": [
                {"op": "min_max", "min": [0, 0, 0], "max": [10, 0, 2]},
                {"op": "select", "columns": [2, 0]},
            ],
        }
    )
    out = spec.apply(np.array([[5, 3, 1]], dtype=np.float32))
    np.testing.assert_allclose(out, [[0.5, 0.5]])


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"input_width": 2, "steps": [{"op": "standardize", "mean": [0], "scale": [1, 1]}]},
            r"steps\[0\]\.mean: has 1 entries for 2 columns",
        ),
        (
            {"input_width": 2, "steps": [{"op": "log1p", "columns": [5]}]},
            r"steps\[0\]\.columns: columns \[5\] are outside 0..1",
        ),
        (
            {"input_width": 2, "steps": [{"op": "explode"}]},
            r"steps\[0\]: Input tag 'explode' found using 'op' does not match",
        ),
        ({"input_width": 2, "steps": [], "extra": 1}, r"extra: Extra inputs are not permitted"),
    ],
)
def test_invalid_specs_name_the_field(tmp_path, data, message):
    path = tmp_path / "transform.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError, match=message):
        load_transform(path)


def test_wrong_width_is_refused():
    spec = TransformSpec.model_validate({"input_width": 3, "steps": []})
    with pytest.raises(SpecError, match=r"expects \[rows, 3\], got \[2, 2\]"):
        spec.apply(np.zeros((2, 2)))


def test_round_trip_through_json(tmp_path):
    spec = TransformSpec.model_validate({"input_width": 2, "steps": [{"op": "clip", "low": 0}]})
    path = tmp_path / "t.json"
    path.write_text(spec.to_json())
    assert load_transform(path) == spec
