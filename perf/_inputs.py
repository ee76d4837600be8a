"""Model input description and request data: zero, random, or perf_analyzer's JSON format.

The model's inputs (names, data types, dims, `max_batch_size`) come from the
server's model config; request data is validated against them before any load
is sent, so a mismatching file fails with a clear `PerfError` (exit 2).

perf_analyzer's `--input-data` JSON: `{"data": [{"NAME": [flat values]}, ...]}` or
`{"NAME": {"content": [...], "shape": [...]}}` per input; each entry is one sample
(no batch dimension). With `-b N`, N consecutive entries (cyclically) form a batch.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tritonab.ensembles.config import from_wire_name, to_numpy_dtype
from tritonab.errors import PerfError, RepositoryError

# Wire data types (as in model metadata / InferInput) -> numpy.


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output: name, wire data type (`FP32`, `BYTES`), dims without batch."""

    name: str
    datatype: str
    dims: tuple[int, ...]

    @property
    def numpy_dtype(self) -> np.dtype:
        """The numpy dtype requests use for this tensor."""
        try:
            return to_numpy_dtype(from_wire_name(self.datatype))
        except RepositoryError:
            raise PerfError(f"input `{self.name}`: data type `{self.datatype}` is not supported") from None


@dataclass(frozen=True)
class ModelInfo:
    """What the load generator needs to know about a served model (read from its config)."""

    name: str
    version: str
    max_batch_size: int
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    platform: str = ""
    composing: tuple[str, ...] = ()

    def input(self, name: str) -> TensorInfo:
        """The input called `name`.

        Raises:
            PerfError: the model has no such input.
        """
        for tensor in self.inputs:
            if tensor.name == name:
                return tensor
        known = ", ".join(f"`{t.name}`" for t in self.inputs)
        raise PerfError(f"model `{self.name}` has no input `{name}` (inputs: {known})")


def parse_shape_overrides(items: Sequence[str]) -> dict[str, tuple[int, ...]]:
    """`["input:1,30"]` -> `{"input": (1, 30)}` (perf_analyzer's `--shape NAME:DIMS`).

    Raises:
        PerfError: an item is not `NAME:D1,D2,...` with positive integers.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    for item in items:
        name, sep, dims = item.rpartition(":")
        try:
            parsed = tuple(int(d) for d in dims.split(","))
        except ValueError:
            parsed = ()
        if not sep or not name or not parsed or min(parsed) <= 0:
            raise PerfError(f"--shape `{item}`: expected NAME:DIMS such as `input:1,30`")
        shapes[name] = parsed
    return shapes


def _resolved_dims(tensor: TensorInfo, shapes: Mapping[str, tuple[int, ...]]) -> tuple[int, ...]:
    """The sample dims of `tensor`: `--shape` when given, else the config dims (no -1 allowed)."""
    dims = shapes.get(tensor.name, tensor.dims)
    _check_dims(tensor, dims, "--shape")
    if any(d < 0 for d in dims):
        raise PerfError(
            f"input `{tensor.name}` has variable dims {list(tensor.dims)}: "
            f"give them with --shape {tensor.name}:DIMS"
        )
    return tuple(dims)


def _check_dims(tensor: TensorInfo, dims: Sequence[int], source: str) -> None:
    """Raise unless `dims` agree with the config dims (where those are fixed)."""
    ok = len(dims) == len(tensor.dims) and all(
        want < 0 or want == got for want, got in zip(tensor.dims, dims)
    )
    if not ok:
        raise PerfError(
            f"{source}: input `{tensor.name}` has shape {list(dims)}, "
            f"but the model expects {list(tensor.dims)}"
        )


def synthetic_samples(
    model: ModelInfo, kind: str, shapes: Mapping[str, tuple[int, ...]], *, count: int = 16, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """`count` samples (no batch dim) of zeros or random values for every input.

    Raises:
        PerfError: `kind` is not `zero`/`random`, or a variable dim has no `--shape`.
    """
    if kind not in ("zero", "random"):
        raise PerfError(f"--input-data `{kind}`: expected zero, random or a JSON file")
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count if kind == "random" else 1):
        sample = {}
        for tensor in model.inputs:
            dims, dtype = _resolved_dims(tensor, shapes), tensor.numpy_dtype
            sample[tensor.name] = _fill(rng, dims, dtype, random=kind == "random")
        samples.append(sample)
    return samples


def _fill(rng: np.random.Generator, dims: tuple[int, ...], dtype: np.dtype, *, random: bool) -> np.ndarray:
    """Zeros, or random values suited to `dtype` (perf_analyzer-like ranges)."""
    if dtype.kind == "O":
        text = rng.integers(0, 10**6, size=dims) if random else np.zeros(dims, dtype=np.int64)
        return np.vectorize(lambda v: str(v).encode(), otypes=[object])(text).reshape(dims)
    if not random:
        return np.zeros(dims, dtype=dtype)
    if dtype.kind == "f":
        return rng.uniform(0.0, 1.0, size=dims).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, size=dims).astype(dtype)
    return rng.integers(0, 100, size=dims).astype(dtype)


def load_input_data(
    path: str | os.PathLike[str], model: ModelInfo, shapes: Mapping[str, tuple[int, ...]] | None = None
) -> list[dict[str, np.ndarray]]:
    """Read perf_analyzer's JSON input-data file and validate it against `model`.

    Args:
        path: the JSON file.
        model: the model's inputs (from the server's config).
        shapes: `--shape` overrides used when an entry gives a flat list.

    Returns:
        One dict per entry: input name -> numpy array without the batch dimension.

    Raises:
        PerfError: unreadable file, bad JSON, or tensors that do not match the model.
    """
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise PerfError(f"input data `{path}`: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise PerfError(f"input data `{path}`: not valid JSON: {exc}") from None
    return parse_input_data(document, model, shapes or {}, source=str(path))


def parse_input_data(
    document: object, model: ModelInfo, shapes: Mapping[str, tuple[int, ...]], *, source: str = "input data"
) -> list[dict[str, np.ndarray]]:
    """Validate a parsed perf_analyzer input-data document (see `load_input_data`).

    Raises:
        PerfError: the document's structure or tensors do not match the model.
    """
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise PerfError(f"`{source}`: expected an object with a `data` list")
    entries = document["data"]
    if not entries:
        raise PerfError(f"`{source}`: `data` is empty")
    samples = []
    for index, entry in enumerate(entries):
        where = f"`{source}` data[{index}]"
        if not isinstance(entry, dict):
            raise PerfError(f"{where}: expected an object of input tensors (sequences are not supported)")
        unknown = sorted(set(entry) - {t.name for t in model.inputs})
        if unknown:
            raise PerfError(f"{where}: model `{model.name}` has no input `{unknown[0]}`")
        sample = {}
        for tensor in model.inputs:
            if tensor.name not in entry:
                raise PerfError(f"{where}: input `{tensor.name}` is missing")
            sample[tensor.name] = _tensor_from_json(entry[tensor.name], tensor, shapes, where)
        samples.append(sample)
    return samples


def _tensor_from_json(
    value: object, tensor: TensorInfo, shapes: Mapping[str, tuple[int, ...]], where: str
) -> np.ndarray:
    """One input's array from `[...]` or `{"content": [...], "shape": [...]}`."""
    if isinstance(value, dict):
        if "b64" in value:
            raise PerfError(f"{where}: input `{tensor.name}`: `b64` content is not supported")
        content, shape = value.get("content"), value.get("shape")
        if not isinstance(content, list):
            raise PerfError(f"{where}: input `{tensor.name}` needs a `content` list")
        if shape is not None:
            if not (isinstance(shape, list) and all(isinstance(d, int) for d in shape)):
                raise PerfError(f"{where}: input `{tensor.name}`: `shape` must be a list of integers")
            _check_dims(tensor, shape, where)
            dims = tuple(shape)
        else:
            dims = _resolved_dims(tensor, shapes)
    elif isinstance(value, list):
        content, dims = value, _resolved_dims(tensor, shapes)
    else:
        raise PerfError(f"{where}: input `{tensor.name}` must be a list or {{content, shape}}")
    flat = np.asarray(content, dtype=object).ravel() if tensor.datatype == "BYTES" else None
    if flat is None:
        try:
            flat = np.asarray(content, dtype=tensor.numpy_dtype).ravel()
        except (TypeError, ValueError):
            raise PerfError(
                f"{where}: input `{tensor.name}` has values that are not {tensor.datatype}"
            ) from None
    expected = math.prod(dims)
    if flat.size != expected:
        raise PerfError(
            f"{where}: input `{tensor.name}` has {flat.size} values, but shape {list(dims)} needs {expected}"
        )
    if tensor.datatype == "BYTES":
        flat = np.array([v if isinstance(v, bytes) else str(v).encode() for v in flat], dtype=object)
    return flat.reshape(dims)


def batches(
    samples: Sequence[Mapping[str, np.ndarray]], model: ModelInfo, batch_size: int
) -> list[dict[str, np.ndarray]]:
    """Request tensors: `batch_size` consecutive samples stacked (batch dim first when batching).

    Raises:
        PerfError: `batch_size` exceeds the model's `max_batch_size` (or > 1 without batching),
            or samples in one batch disagree in shape.
    """
    if batch_size < 1:
        raise PerfError(f"-b {batch_size}: the batch size must be at least 1")
    if model.max_batch_size == 0:
        if batch_size != 1:
            raise PerfError(f"model `{model.name}` does not batch (max_batch_size 0); use -b 1")
        return [dict(sample) for sample in samples]
    if batch_size > model.max_batch_size:
        raise PerfError(
            f"-b {batch_size} exceeds model `{model.name}`'s max_batch_size {model.max_batch_size}"
        )
    requests = []
    for start in range(len(samples)):
        group = [samples[(start + k) % len(samples)] for k in range(batch_size)]
        try:
            requests.append({name: np.stack([s[name] for s in group]) for name in group[0]})
        except ValueError:
            raise PerfError(
                f"samples {start}..{start + batch_size - 1} differ in shape: they cannot form one batch"
            ) from None
    return requests
