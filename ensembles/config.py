"""`config.pbtxt` read and write through `model_config_pb2` and protobuf `text_format`.

Configs are never built from string templates: they are `ModelConfig` messages,
parsed and printed by protobuf, so a typo is a parse error with a line number.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import numpy as np
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from tritonab._io import atomic_write_text
from tritonab.errors import RepositoryError

ModelConfig: TypeAlias = mc.ModelConfig  # noqa: UP040 - an alias of an untyped protobuf class

# Triton data types <-> numpy; TYPE_STRING travels as numpy object arrays of bytes.
_TRITON_TO_NUMPY: dict[int, np.dtype] = {
    mc.TYPE_BOOL: np.dtype(np.bool_),
    mc.TYPE_UINT8: np.dtype(np.uint8),
    mc.TYPE_UINT16: np.dtype(np.uint16),
    mc.TYPE_UINT32: np.dtype(np.uint32),
    mc.TYPE_UINT64: np.dtype(np.uint64),
    mc.TYPE_INT8: np.dtype(np.int8),
    mc.TYPE_INT16: np.dtype(np.int16),
    mc.TYPE_INT32: np.dtype(np.int32),
    mc.TYPE_INT64: np.dtype(np.int64),
    mc.TYPE_FP16: np.dtype(np.float16),
    mc.TYPE_FP32: np.dtype(np.float32),
    mc.TYPE_FP64: np.dtype(np.float64),
    mc.TYPE_STRING: np.dtype(np.object_),
}
_NUMPY_TO_TRITON = {v: k for k, v in _TRITON_TO_NUMPY.items()}


def type_name(data_type: int) -> str:
    """`TYPE_FP32` for the enum value of FP32."""
    return mc.DataType.Name(data_type)


def wire_name(data_type: int) -> str:
    """The protocol name (`FP32`, `BYTES`) that clients use for a config data type."""
    name = type_name(data_type).removeprefix("TYPE_")
    return "BYTES" if name == "STRING" else name


def from_wire_name(name: str) -> int:
    """The config data type of a protocol name (`FP32` -> TYPE_FP32, `BYTES` -> TYPE_STRING).

    Raises:
        RepositoryError: not a Triton data type.
    """
    try:
        return mc.DataType.Value("TYPE_STRING" if name == "BYTES" else f"TYPE_{name}")
    except ValueError:
        raise RepositoryError(f"data type `{name}` is not a Triton data type") from None


def to_numpy_dtype(data_type: int) -> np.dtype:
    """The numpy dtype for a Triton config data type."""
    try:
        return _TRITON_TO_NUMPY[data_type]
    except KeyError:
        raise RepositoryError(f"data type `{type_name(data_type)}` has no numpy equivalent") from None


def from_numpy_dtype(dtype: np.dtype | type | str) -> int:
    """The Triton config data type for a numpy dtype (bytes/str/object -> TYPE_STRING)."""
    dt = np.dtype(dtype)
    if dt.kind in "OSU":
        return mc.TYPE_STRING
    try:
        return _NUMPY_TO_TRITON[dt]
    except KeyError:
        raise RepositoryError(f"numpy dtype `{dt}` has no Triton data type") from None


@dataclass(frozen=True)
class TensorSpec:
    """One input or output as a model exposes it: name, data type, dims (no batch dim)."""

    name: str
    data_type: int
    dims: tuple[int, ...]

    def describe(self) -> str:
        """`name: TYPE_FP32[30]`."""
        return f"{self.name}: {type_name(self.data_type)}{list(self.dims)}"


def io_specs(tensors) -> tuple[TensorSpec, ...]:
    """The `TensorSpec`s of a repeated ModelInput/ModelOutput field, in config order."""
    return tuple(TensorSpec(t.name, t.data_type, tuple(int(d) for d in t.dims)) for t in tensors)


def parse_config(text: str, *, source: str = "config.pbtxt") -> ModelConfig:
    """Parse `config.pbtxt` text into a ModelConfig.

    Raises:
        RepositoryError: the text is not a valid ModelConfig; the message has the line.
    """
    config = ModelConfig()
    try:
        text_format.Parse(text, config)
    except text_format.ParseError as exc:
        raise RepositoryError(f"`{source}`: {exc}") from None
    return config


def read_config(path: str | os.PathLike[str]) -> ModelConfig:
    """Read and parse a `config.pbtxt` file.

    Raises:
        RepositoryError: missing or unparsable file.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RepositoryError(f"`{path}`: cannot read: {exc.strerror}") from None
    return parse_config(text, source=str(path))


def format_config(config: ModelConfig) -> str:
    """The canonical `config.pbtxt` text of a ModelConfig."""
    return text_format.MessageToString(config)


def write_config(path: str | os.PathLike[str], config: ModelConfig) -> None:
    """Write a ModelConfig as `config.pbtxt`, atomically."""
    atomic_write_text(path, format_config(config))


def add_tensor(repeated, spec: TensorSpec, *, reshape: tuple[int, ...] | None = None):
    """Append a ModelInput/ModelOutput for `spec` to a repeated config field."""
    tensor = repeated.add()
    tensor.name = spec.name
    tensor.data_type = spec.data_type
    tensor.dims.extend(spec.dims)
    if reshape is not None:
        tensor.reshape.shape.extend(reshape)
    return tensor


def get_parameter(config: ModelConfig, key: str, default: str | None = None) -> str | None:
    """A config parameter's `string_value`, or `default` when absent."""
    if key in config.parameters:
        return config.parameters[key].string_value
    return default


def set_parameter(config: ModelConfig, key: str, value: str) -> None:
    """Set a config parameter's `string_value`."""
    config.parameters[key].string_value = value


@dataclass(frozen=True)
class ConfigChange:
    """One field that differs between two configs: its dotted path and both values (as
    `config.pbtxt` would print them; None where the field is absent)."""

    path: str
    before: str | None
    after: str | None

    def describe(self) -> str:
        """`instance_group[0].count: 1 -> 2`."""
        return f"{self.path}: {_shown(self.before)} -> {_shown(self.after)}"


def _shown(value: str | None) -> str:
    return "(unset)" if value is None else value


def _flatten(value: object, prefix: str, out: dict[str, str]) -> None:
    """Dotted leaf paths of a `MessageToDict` tree (lists indexed, maps by key)."""
    if isinstance(value, dict):
        for key in sorted(value):
            _flatten(value[key], f"{prefix}.{key}" if prefix else key, out)
        if not value and prefix:
            out[prefix] = "{}"
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _flatten(item, f"{prefix}[{i}]", out)
    else:
        out[prefix] = str(value)


def config_diff(
    before: ModelConfig, after: ModelConfig, *, ignore: tuple[str, ...] = ("name",)
) -> list[ConfigChange]:
    """Every field that differs between two configs, in path order.

    Args:
        before, after: the two configs.
        ignore: top-level fields left out (the model's name by default).

    Returns:
        One `ConfigChange` per differing leaf field (an empty message such as
        `dynamic_batching {}` counts as a leaf).
    """
    from google.protobuf import json_format

    flat: list[dict[str, str]] = []
    for config in (before, after):
        tree = json_format.MessageToDict(config, preserving_proto_field_name=True)
        for key in ignore:
            tree.pop(key, None)
        leaves: dict[str, str] = {}
        _flatten(tree, "", leaves)
        flat.append(leaves)
    a, b = flat

    def filled(path: str, leaves: dict[str, str]) -> bool:
        """Whether a message that is empty on one side has fields on the other."""
        return any(k.startswith((f"{path}.", f"{path}[")) for k in leaves)

    changes = []
    for path in sorted(a.keys() | b.keys()):
        old, new = a.get(path), b.get(path)
        if old == new or (old == "{}" and filled(path, b)) or (new == "{}" and filled(path, a)):
            continue
        changes.append(ConfigChange(path, old, new))
    return changes
