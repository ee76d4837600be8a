"""Sample inputs for export and parity: read from `.npz`/`.npy`, bound to graph inputs,
subsampled, or synthesised from the graph's shapes when the user gives none."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from tritonab.converters._graph import GraphTensor
from tritonab.errors import ConversionError

SampleLike = np.ndarray | Mapping[str, np.ndarray]
DEFAULT_ROWS = 256
SYNTHETIC_ROWS = 16


def load_sample(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Arrays from an `.npz` (key order kept) or a single `.npy` (key `arr_0`).

    Raises:
        ConversionError: missing, unreadable or empty file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return {"arr_0": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ConversionError(f"sample input `{path}`: cannot read: {exc}") from None
    if not arrays:
        raise ConversionError(f"sample input `{path}`: the file holds no arrays")
    return arrays


def as_mapping(sample: SampleLike | None) -> dict[str, np.ndarray] | None:
    """A bare array becomes `{"arr_0": array}`; mappings are copied."""
    if sample is None:
        return None
    if isinstance(sample, np.ndarray):
        return {"arr_0": sample}
    return {str(k): np.asarray(v) for k, v in sample.items()}


def first_array(sample: Mapping[str, np.ndarray] | None) -> np.ndarray | None:
    """The sample's only (or first) array, for single-input sources."""
    if not sample:
        return None
    return next(iter(sample.values()))


def _check_shape(array: np.ndarray, spec: GraphTensor, batched: bool) -> None:
    """The array's rank and fixed dims agree with the graph input."""
    expected = spec.shape
    if len(array.shape) != len(expected):
        raise ConversionError(
            f"sample for input `{spec.name}` has shape {list(array.shape)}: expected rank "
            f"{len(expected)} ({_shape_text(expected)})"
        )
    start = 1 if batched else 0
    for got, want in zip(array.shape[start:], expected[start:]):
        if want is not None and got != want:
            raise ConversionError(
                f"sample for input `{spec.name}` has shape {list(array.shape)}: "
                f"expected {_shape_text(expected)}"
            )


def _shape_text(shape: tuple[int | None, ...]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def bind(
    sample: Mapping[str, np.ndarray], inputs: list[GraphTensor], *, batched: bool = True
) -> dict[str, np.ndarray]:
    """Match sample arrays to graph inputs (by name, else by position) and cast dtypes.

    Raises:
        ConversionError: counts, names or shapes do not match.
    """
    names = [i.name for i in inputs]
    if set(names) <= set(sample):
        arrays = [sample[n] for n in names]
    elif len(sample) == len(inputs):
        arrays = list(sample.values())
    else:
        raise ConversionError(
            f"the sample has arrays {sorted(sample)}: expected {len(inputs)} "
            f"(inputs {', '.join(f'`{n}`' for n in names)})"
        )
    feeds: dict[str, np.ndarray] = {}
    for spec, array in zip(inputs, arrays):
        array = np.asarray(array)
        _check_shape(array, spec, batched)
        feeds[spec.name] = np.ascontiguousarray(array.astype(spec.dtype, copy=False))
    lengths = {len(a) for a in feeds.values()} if batched else set()
    if len(lengths) > 1:
        raise ConversionError(f"the sample's arrays have different row counts: {sorted(lengths)}")
    return feeds


def draw_rows(feeds: dict[str, np.ndarray], rows: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """At most `rows` rows, drawn at random (same rows for every input, order kept)."""
    total = len(next(iter(feeds.values())))
    if total <= rows:
        return feeds
    picked = np.sort(np.random.default_rng(seed).choice(total, size=rows, replace=False))
    return {name: array[picked] for name, array in feeds.items()}


def _random_array(spec: GraphTensor, shape: tuple[int, ...], rng: np.random.Generator):
    if spec.dtype.kind == "f":
        return rng.standard_normal(shape).astype(spec.dtype)
    if spec.dtype.kind in "iu":
        return rng.integers(0, 8, size=shape).astype(spec.dtype)
    if spec.dtype.kind == "b":
        return rng.integers(0, 2, size=shape).astype(bool)
    raise ConversionError(
        f"cannot synthesise data for input `{spec.name}` of type {spec.dtype}: "
        "give a sample input (--sample-input FILE.npz)"
    )


def synthesize(
    inputs: list[GraphTensor], *, rows: int = SYNTHETIC_ROWS, batched: bool = True, seed: int = 0
) -> dict[str, np.ndarray]:
    """Standard-normal floats / small integers in the graph's shapes (dynamic dims: 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in inputs:
        shape = [d if d is not None else 1 for d in spec.shape]
        if batched and shape:
            shape[0] = rows
        feeds[spec.name] = _random_array(spec, tuple(shape), rng)
    return feeds
