"""config.pbtxt through protobuf: parse, print, dtype mapping."""

from __future__ import annotations

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.ensembles.config import (
    from_numpy_dtype,
    parse_config,
    read_config,
    to_numpy_dtype,
    wire_name,
    write_config,
)
from tritonab.errors import RepositoryError


def test_round_trip(tmp_path):
    config = parse_config(
        'name: "m" backend: "python" max_batch_size: 8 input { name: "x" data_type: TYPE_FP32 dims: [ 3 ] }'
    )
    write_config(tmp_path / "config.pbtxt", config)
    assert read_config(tmp_path / "config.pbtxt") == config
    assert not list(tmp_path.glob(".*tmp"))


def test_parse_errors_name_the_source_and_line():
    with pytest.raises(RepositoryError, match=r"`m/config.pbtxt`: 1:\d+ : .*nmae"):
        parse_config('nmae: "m"', source="m/config.pbtxt")


def test_missing_file():
    with pytest.raises(RepositoryError, match="cannot read"):
        read_config("/nonexistent/config.pbtxt")


@pytest.mark.parametrize(
    ("dtype", "triton"),
    [
        (np.float32, mc.TYPE_FP32),
        (np.int64, mc.TYPE_INT64),
        (np.bool_, mc.TYPE_BOOL),
        (np.object_, mc.TYPE_STRING),
        (np.bytes_, mc.TYPE_STRING),
        (np.float16, mc.TYPE_FP16),
    ],
)
def test_dtype_mapping(dtype, triton):
    assert from_numpy_dtype(dtype) == triton
    if triton != mc.TYPE_STRING:
        assert to_numpy_dtype(triton) == np.dtype(dtype)


def test_wire_names():
    assert wire_name(mc.TYPE_STRING) == "BYTES"
    assert wire_name(mc.TYPE_FP32) == "FP32"


def test_unmapped_dtypes_raise():
    with pytest.raises(RepositoryError, match="complex128"):
        from_numpy_dtype(np.complex128)
    with pytest.raises(RepositoryError, match="TYPE_BF16"):
        to_numpy_dtype(mc.TYPE_BF16)
