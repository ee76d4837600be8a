"""Columns to model inputs: list columns or feature columns, checked against the schema
first, with bad rows named by their global row index."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.bulk._columns import bind_inputs, check_unit_column, tensors, unit_ids
from tritonab.ensembles.config import TensorSpec
from tritonab.errors import BulkError

X3 = TensorSpec("x", mc.TYPE_FP32, (3,))


def batch(first: int = 100, **columns: pa.Array) -> pa.RecordBatch:
    rows = len(next(iter(columns.values())))
    return pa.RecordBatch.from_pydict({"_row": pa.array(np.arange(first, first + rows)), **columns})


def test_a_fixed_list_a_variable_list_and_feature_columns_give_one_tensor():
    values = np.arange(12, dtype=np.float64).reshape(4, 3)
    fixed = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), 3)
    variable = pa.array(values.tolist(), pa.list_(pa.float64()))
    scalars = {f"c{i}": pa.array(values[:, i]) for i in range(3)}
    for data, features in (({"x": fixed}, {}), ({"x": variable}, {}), (scalars, {"x": ["c0", "c1", "c2"]})):
        b = batch(**data)
        bindings = bind_inputs([X3], b.schema, features)
        out = tensors(b, bindings)["x"]
        assert out.dtype == np.float32 and out.shape == (4, 3)
        np.testing.assert_array_equal(out, values.astype(np.float32))


def test_a_scalar_column_feeds_an_input_of_one_value_and_nested_lists_feed_two_dims():
    one = TensorSpec("x", mc.TYPE_INT64, (1,))
    b = batch(x=pa.array([1, 2, 3], pa.int32()))
    out = tensors(b, bind_inputs([one], b.schema, {}))["x"]
    assert out.dtype == np.int64 and out.tolist() == [[1], [2], [3]]
    grid = TensorSpec("g", mc.TYPE_FP32, (2, 2))
    b = batch(g=pa.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]]], pa.list_(pa.list_(pa.float32()))))
    out = tensors(b, bind_inputs([grid], b.schema, {}))["g"]
    np.testing.assert_array_equal(out, np.arange(1, 9, dtype=np.float32).reshape(2, 2, 2))


def test_float_nulls_are_nan_and_other_nulls_are_refused_with_their_rows():
    b = batch(x=pa.array([[1.0, None, 3.0], [4.0, 5.0, 6.0]], pa.list_(pa.float32())))
    out = tensors(b, bind_inputs([X3], b.schema, {}))["x"]
    assert np.isnan(out[0, 1]) and out[1, 2] == 6
    b = batch(x=pa.array([[1.0, 2.0, 3.0], None, [1.0, 2.0, 3.0], None], pa.list_(pa.float32())))
    with pytest.raises(BulkError, match=r"column `x` has null lists \(rows 101, 103\)"):
        tensors(b, bind_inputs([X3], b.schema, {}))
    ints = TensorSpec("n", mc.TYPE_INT64, (1,))
    b = batch(n=pa.array([1, None, 3]))
    with pytest.raises(BulkError, match=r"column `n` has nulls \(rows 101\); input dtype int64 has no NaN"):
        tensors(b, bind_inputs([ints], b.schema, {}))


def test_rows_of_the_wrong_length_are_named():
    b = batch(x=pa.array([[1.0, 2.0, 3.0], [1.0], [1.0, 2.0, 3.0, 4.0]], pa.list_(pa.float32())))
    with pytest.raises(
        BulkError, match=r"rows of \[1, 4\] values \(rows 101, 102\); input `x`.* takes 3 per row"
    ):
        tensors(b, bind_inputs([X3], b.schema, {}))


def test_columns_that_cannot_fit_are_refused_before_reading():
    schema = pa.schema([("x", pa.list_(pa.string())), ("a", pa.float32()), ("s", pa.string())])
    with pytest.raises(
        BulkError, match=r"column `x` holds string, which cannot feed input `x` \(TYPE_FP32\)"
    ):
        bind_inputs([X3], schema, {})
    with pytest.raises(BulkError, match=r"takes 3 values per row .*; `features` names 1 columns"):
        bind_inputs([X3], schema, {"x": ["a"]})
    with pytest.raises(BulkError, match=r"`features` for input `x` repeats columns"):
        bind_inputs([X3], schema, {"x": ["a", "a", "s"]})
    with pytest.raises(
        BulkError, match=r"column `b` \(a feature of input `x`\) is not in the input; it has \['x'"
    ):
        bind_inputs([X3], schema, {"x": ["a", "b", "s"]})
    with pytest.raises(BulkError, match=r"`features` names inputs \['y'\]"):
        bind_inputs([X3], schema, {"y": ["a"]})
    with pytest.raises(BulkError, match=r"input `z` .* needs a list column `z` or `features`"):
        bind_inputs([TensorSpec("z", mc.TYPE_FP32, (3,))], schema, {})
    with pytest.raises(BulkError, match=r"column `a` is float, but input `a` .* needs 1 level"):
        bind_inputs([TensorSpec("a", mc.TYPE_FP32, (3,))], schema, {})
    with pytest.raises(BulkError, match=r"unit column `a` holds float"):
        check_unit_column(schema, "a")


def test_unit_ids_refuse_empty_and_null_ids_with_their_rows():
    rows = pa.array(np.arange(10, 14))
    assert unit_ids(pa.array(["a", "b", "c", "d"]), "u", rows) == ["a", "b", "c", "d"]
    with pytest.raises(BulkError, match=r"unit column `u` is empty or null \(rows 11, 13\)"):
        unit_ids(pa.array(["a", "", "c", None]), "u", rows)


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(
        st.lists(st.floats(-1e6, 1e6, width=32), min_size=3, max_size=3), min_size=1, max_size=40
    ),
    first=st.integers(0, 10**9),
)
def test_any_packed_list_column_and_its_feature_columns_agree(values, first):
    """The same numbers as one list column or as three scalar columns give the same tensor."""
    array = np.asarray(values, dtype=np.float32)
    packed = batch(first, x=pa.array(values, pa.list_(pa.float32())))
    split = batch(first, **{f"c{i}": pa.array(array[:, i]) for i in range(3)})
    a = tensors(packed, bind_inputs([X3], packed.schema, {}))["x"]
    b = tensors(split, bind_inputs([X3], split.schema, {"x": ["c0", "c1", "c2"]}))["x"]
    np.testing.assert_array_equal(a, array)
    np.testing.assert_array_equal(b, array)
