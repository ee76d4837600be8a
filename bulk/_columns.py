"""From table columns to model input tensors, checked against the schema before any work.

A model input of dims `[k]` (or `[a, b]`) is filled from a list column of the same
name (nested lists for more dims; fixed-size or variable lists, each row of the right
length), or from `k` scalar columns named by `features`, in order. An input of dims
`[1]` also takes a scalar column of its name. Values are cast to the input's config
dtype as a client would before sending them; a null in a floating-point input is NaN
(a missing value, which transforms impute), a null anywhere else is refused with its
rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.ensembles.config import TensorSpec, to_numpy_dtype, type_name
from tritonab.errors import BulkError

_SHOWN = 5  # rows named in an error


@dataclass(frozen=True)
class InputBinding:
    """Where one model input comes from.

    Attributes:
        tensor: the model input (config name, dtype, dims).
        columns: one column holding the whole row tensor, or the scalar feature columns.
        packed: True for one list (or scalar) column, False for feature columns.
    """

    tensor: TensorSpec
    columns: tuple[str, ...]
    packed: bool

    def describe(self) -> dict[str, Any]:
        return {"input": self.tensor.name, "columns": list(self.columns), "packed": self.packed}


def bind_inputs(
    inputs: Sequence[TensorSpec], schema: pa.Schema, features: Mapping[str, Sequence[str]]
) -> tuple[InputBinding, ...]:
    """Bind every model input to columns of `schema`.

    Args:
        inputs: the model's inputs.
        schema: the input table's schema.
        features: input name -> scalar feature columns, for the inputs not read from a
            column of their own name.

    Raises:
        BulkError: an unknown input in `features`, a missing or ill-typed column, or a
            column count that does not fit the input's dims.
    """
    names = {t.name for t in inputs}
    unknown = sorted(set(features) - names)
    if unknown:
        raise BulkError(f"`features` names inputs {unknown}; the model's inputs are {sorted(names)}")
    bindings = []
    for tensor in inputs:
        if tensor.name in features:
            bindings.append(_bind_features(tensor, tuple(features[tensor.name]), schema))
        else:
            bindings.append(_bind_column(tensor, schema))
    return tuple(bindings)


def _bind_features(tensor: TensorSpec, columns: tuple[str, ...], schema: pa.Schema) -> InputBinding:
    width = math.prod(tensor.dims) if all(d > 0 for d in tensor.dims) else None
    if width is not None and len(columns) != width:
        raise BulkError(
            f"input `{tensor.name}` takes {width} values per row ({tensor.describe()}); "
            f"`features` names {len(columns)} columns"
        )
    if len(set(columns)) != len(columns):
        raise BulkError(f"`features` for input `{tensor.name}` repeats columns")
    for column in columns:
        _check_leaf(tensor, column, _field(schema, column, f"a feature of input `{tensor.name}`").type)
    return InputBinding(tensor, columns, packed=False)


def _bind_column(tensor: TensorSpec, schema: pa.Schema) -> InputBinding:
    if tensor.name not in schema.names:
        raise BulkError(
            f"input `{tensor.name}` ({tensor.describe()}) needs a list column `{tensor.name}` or "
            f"`features` naming its columns; the input has columns {schema.names}"
        )
    kind = schema.field(tensor.name).type
    depth = 0
    while _is_list(kind):
        kind = kind.value_type
        depth += 1
    scalar_ok = depth == 0 and tensor.dims in ((), (1,))
    if depth != len(tensor.dims) and not scalar_ok:
        raise BulkError(
            f"column `{tensor.name}` is {schema.field(tensor.name).type}, but input "
            f"`{tensor.name}` ({tensor.describe()}) needs {len(tensor.dims)} level(s) of lists"
        )
    _check_leaf(tensor, tensor.name, kind)
    return InputBinding(tensor, (tensor.name,), packed=True)


def _field(schema: pa.Schema, name: str, what: str) -> pa.Field:
    if name not in schema.names:
        raise BulkError(f"column `{name}` ({what}) is not in the input; it has {schema.names}")
    return schema.field(name)


def _is_list(kind: pa.DataType) -> bool:
    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind))


def _check_leaf(tensor: TensorSpec, column: str, kind: pa.DataType) -> None:
    if tensor.data_type == mc.TYPE_STRING:
        ok = pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
    else:
        ok = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)
    if not ok:
        raise BulkError(
            f"column `{column}` holds {kind}, which cannot feed input `{tensor.name}` "
            f"({type_name(tensor.data_type)})"
        )


def tensors(batch: pa.RecordBatch, bindings: Sequence[InputBinding]) -> dict[str, NDArray[Any]]:
    """The model inputs of one batch (its first column is `_row`, for messages).

    Raises:
        BulkError: nulls where none may be, or rows of the wrong length, naming the rows.
    """
    rows = batch.column(0)
    out = {}
    for binding in bindings:
        tensor = binding.tensor
        dtype = to_numpy_dtype(tensor.data_type)
        if binding.packed:
            out[tensor.name] = _unpack(batch.column(binding.columns[0]), tensor, dtype, rows)
        else:
            parts = [_leaf(batch.column(c), dtype, c, rows) for c in binding.columns]
            stacked = np.stack(parts, axis=1) if parts else np.zeros((batch.num_rows, 0), dtype)
            dims = tuple(d if d > 0 else -1 for d in tensor.dims)
            out[tensor.name] = stacked.reshape((batch.num_rows, *dims))
    return out


def _unpack(column: pa.Array, tensor: TensorSpec, dtype: np.dtype[Any], rows: pa.Array) -> NDArray[Any]:
    """A (nested) list column as an array `[rows, *dims]`."""
    name = tensor.name
    values = column
    lengths: list[int] = []
    for level, want in enumerate(tensor.dims if _is_list(column.type) else ()):
        if values.null_count:
            bad = rows if level == 0 else None
            raise BulkError(f"column `{name}` has null lists{_at(values, bad)}")
        size = pc.list_value_length(values).to_numpy(zero_copy_only=False)
        expected = want if want > 0 else (int(size[0]) if len(size) else 0)
        wrong = np.flatnonzero(size != expected)
        if len(wrong):
            where = _rows(rows, wrong) if level == 0 else ""
            raise BulkError(
                f"column `{name}` has rows of {sorted({int(size[i]) for i in wrong[:_SHOWN]})} "
                f"values{where}; input `{name}` ({tensor.describe()}) takes {expected} per row"
            )
        lengths.append(expected)
        values = values.flatten()
    flat = _leaf(values, dtype, name, rows if not lengths else None)
    return flat.reshape((len(column), *(lengths if lengths else tensor.dims)))


def _leaf(values: pa.Array, dtype: np.dtype[Any], name: str, rows: pa.Array | None) -> NDArray[Any]:
    """Scalar values as `dtype`: floats keep nulls as NaN, other types refuse them."""
    if dtype == np.dtype(np.object_):
        if values.null_count:
            raise BulkError(f"column `{name}` has nulls{_at(values, rows)}")
        return np.array([v if isinstance(v, bytes) else str(v).encode() for v in values.to_pylist()], object)
    if values.null_count and dtype.kind != "f":
        raise BulkError(f"column `{name}` has nulls{_at(values, rows)}; input dtype {dtype} has no NaN")
    array = values.to_numpy(zero_copy_only=False)
    return np.asarray(array, dtype=dtype)


def _at(values: pa.Array, rows: pa.Array | None) -> str:
    if rows is None:
        return ""
    nulls = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))
    return _rows(rows, nulls)


def _rows(rows: pa.Array, positions: NDArray[np.intp]) -> str:
    """` (rows 10, 12, ... of N)`: the global row indexes of the first bad positions."""
    shown = [int(rows[int(i)].as_py()) for i in positions[:_SHOWN]]
    more = f", ... ({len(positions)} rows)" if len(positions) > _SHOWN else ""
    return f" (rows {', '.join(map(str, shown))}{more})"


def check_columns(schema: pa.Schema, names: Sequence[str], what: str) -> tuple[str, ...]:
    """`names` as a tuple, each a column of `schema`.

    Raises:
        BulkError: a missing or repeated column.
    """
    for name in names:
        _field(schema, name, what)
    if len(set(names)) != len(names):
        raise BulkError(f"columns ({what}) repeat: {list(names)}")
    return tuple(names)


def unit_ids(column: pa.Array, name: str, rows: pa.Array) -> list[Any]:
    """Unit ids of a string, binary or integer column, as the router reads them (an
    integer is its decimal text).

    Raises:
        BulkError: null or empty ids, naming their rows.
    """
    values = column.to_pylist()
    bad = np.asarray([i for i, v in enumerate(values) if v is None or v == "" or v == b""], dtype=np.intp)
    if len(bad):
        raise BulkError(f"unit column `{name}` is empty or null{_rows(rows, bad)}: every row needs a unit id")
    return list(values)


def check_unit_column(schema: pa.Schema, name: str) -> None:
    """A unit column must hold strings, bytes or integers.

    Raises:
        BulkError: missing, or another type.
    """
    kind = _field(schema, name, "unit ids").type
    if not (
        pa.types.is_string(kind)
        or pa.types.is_large_string(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_integer(kind)
    ):
        raise BulkError(f"unit column `{name}` holds {kind}; unit ids are strings, bytes or integers")
