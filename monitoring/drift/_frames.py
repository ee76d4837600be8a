"""Tabular data for drift: files, arrays and the router's payload logs as one feature table.

Every source becomes a pandas DataFrame with one column per feature. A tensor input
`NAME` of shape `[rows]` or `[rows, 1]` is the feature `NAME`; of shape `[rows, k]` the
features `NAME[0]` ... `NAME[k-1]` (trailing dims flattened in C order). So a reference
made from the model's sample inputs (`.npz`, as for `tritonab convert --sample-input`)
and the payloads the router logs for the same model name their features alike. Byte
strings become text (categorical features).

Payload logs are read here and nowhere else in the drift code (`read_payloads`), through
the segment reader `monitoring.segments.iter_records`.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from tritonab.errors import DriftError
from tritonab.monitoring.router_log import PAYLOADS
from tritonab.monitoring.segments import iter_records

TIME = "__time__"
VARIANT = "__variant__"
MAX_TENSOR_FEATURES = 256
TableLike: TypeAlias = str | os.PathLike[str] | pd.DataFrame | NDArray[Any] | Mapping[str, Any]


def feature_names(name: str, shape: Sequence[int]) -> list[str]:
    """Feature names of a tensor input of shape `[rows, ...]`."""
    width = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    if width == 1:
        return [name]
    return [f"{name}[{j}]" for j in range(width)]


def _as_column(values: NDArray[Any]) -> NDArray[Any]:
    """Numbers stay numbers; bytes and other objects become text."""
    if values.dtype.kind in "biuf":
        return values
    return np.asarray(
        [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values], dtype=object
    )


def flatten_tensors(tensors: Mapping[str, Any], *, what: str = "data") -> pd.DataFrame:
    """One column per feature of each `[rows, ...]` tensor (see the module docstring).

    Raises:
        DriftError: tensors with different row counts, or too many features in one tensor.
    """
    columns: dict[str, NDArray[Any]] = {}
    rows: int | None = None
    for name, value in tensors.items():
        array = np.asarray(value)
        if array.ndim == 0:
            array = array.reshape(1)
        if rows is not None and array.shape[0] != rows:
            raise DriftError(f"{what}: tensor `{name}` has {array.shape[0]} rows, expected {rows}")
        rows = array.shape[0]
        names = feature_names(name, array.shape)
        if len(names) > MAX_TENSOR_FEATURES:
            raise DriftError(
                f"{what}: tensor `{name}` has {len(names)} features per row (more than "
                f"{MAX_TENSOR_FEATURES}): drift is measured on tabular inputs"
            )
        flat = array.reshape(array.shape[0], len(names))
        for j, feature in enumerate(names):
            columns[feature] = _as_column(flat[:, j])
    return pd.DataFrame(columns)


def _read_arrays(path: Path) -> dict[str, NDArray[Any]]:
    try:
        if path.suffix.lower() == ".npy":
            return {"arr_0": np.load(path, allow_pickle=False)}
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise DriftError(f"`{path}`: cannot read arrays: {exc}") from None


def _named(arrays: Mapping[str, Any], inputs: Sequence[str] | None) -> dict[str, Any]:
    """Unnamed arrays (`arr_0`, ...) take the model's input names by position."""
    keys = list(arrays)
    if inputs and len(keys) == len(inputs) and all(k.startswith("arr_") for k in keys):
        return dict(zip(inputs, arrays.values()))
    return dict(arrays)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """A CSV, Parquet or JSON Lines file as a DataFrame.

    Raises:
        DriftError: missing, unreadable or unsupported file.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    if not source.is_file():
        raise DriftError(f"data file `{source}` does not exist")
    try:
        if suffix == ".csv":
            return pd.read_csv(source)
        if suffix == ".parquet":
            return _tensor_columns(pd.read_parquet(source), f"`{source}`")
        if suffix in (".jsonl", ".ndjson", ".json"):
            return _tensor_columns(pd.read_json(source, lines=True), f"`{source}`")
    except (OSError, ValueError) as exc:
        raise DriftError(f"`{source}`: cannot read it as {suffix[1:]}: {exc}") from None
    raise DriftError(f"data file `{source}`: expected .csv, .parquet, .jsonl, .npz or .npy")


def _tensor_columns(frame: pd.DataFrame, what: str) -> pd.DataFrame:
    """A table whose cells hold lists or arrays (a tensor per row, as bulk scoring and the
    payload log keep them) as one column per feature, named like the payload log's."""
    listed = [
        name
        for name in frame.columns
        if frame[name].dtype == object and len(frame) and isinstance(frame[name].iloc[0], (list, np.ndarray))
    ]
    if not listed:
        return frame
    tensors: dict[str, Any] = {}
    for name in frame.columns:
        column = frame[name]
        tensors[str(name)] = (
            np.stack([np.asarray(v) for v in column]) if name in listed else column.to_numpy()
        )
    return flatten_tensors(tensors, what=what)


def load_frame(data: TableLike, *, inputs: Sequence[str] | None = None) -> pd.DataFrame:
    """Any supported source as a feature table.

    Args:
        data: a file (CSV, Parquet, JSON Lines, `.npz`, `.npy`), a DataFrame, an array
            or a mapping of input name -> array.
        inputs: the model's input names: unnamed arrays (`arr_0`, a bare array) take them
            by position.

    Raises:
        DriftError: unreadable or empty data.
    """
    if isinstance(data, pd.DataFrame):
        frame = data.reset_index(drop=True)
    elif isinstance(data, np.ndarray):
        frame = flatten_tensors(_named({"arr_0": data}, inputs))
    elif isinstance(data, Mapping):
        frame = flatten_tensors(_named(data, inputs))
    else:
        path = Path(data)
        if path.suffix.lower() in (".npz", ".npy"):
            frame = flatten_tensors(_named(_read_arrays(path), inputs), what=f"`{path}`")
        else:
            frame = read_table(path)
    if frame.empty or not len(frame.columns):
        raise DriftError("the data holds no rows or no columns")
    return frame


# -- payload logs ------------------------------------------------------------------------


@dataclass
class PayloadRead:
    """Rows of the payload log (features plus `__time__`, `__variant__`) and what was skipped."""

    frame: pd.DataFrame
    records: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass
class _Collector:
    widths: dict[str, int] = field(default_factory=dict)
    parts: dict[str, list[NDArray[Any]]] = field(default_factory=dict)
    times: list[NDArray[np.float64]] = field(default_factory=list)
    variants: list[NDArray[Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def _record_rows(record: dict[str, Any], keep: set[str] | None, col: _Collector) -> None:
    """Add one payload record's rows (those of the kept variants) to the collector."""
    inputs = record.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        col.skip("no inputs")
        return
    arrays: dict[str, NDArray[Any]] = {}
    for name, value in inputs.items():
        if isinstance(value, str):  # `[REDACTED]`
            col.skip(f"input `{name}` redacted")
            continue
        arrays[name] = np.asarray(value)
    if not arrays:
        return
    rows = next(iter(arrays.values())).shape[0] if next(iter(arrays.values())).ndim else 1
    variants = record.get("variants") or [None] * rows
    if len(variants) != rows or any(a.ndim == 0 or a.shape[0] != rows for a in arrays.values()):
        col.skip("tensors with different row counts")
        return
    chosen = np.asarray(variants, dtype=object)
    mask = np.ones(rows, dtype=bool) if keep is None else np.isin(chosen, list(keep))
    if not mask.any():
        return
    for name, array in arrays.items():
        width = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
        if col.widths.setdefault(name, width) != width:
            col.skip(f"input `{name}` changed shape")
            return
    for name, array in arrays.items():
        col.parts.setdefault(name, []).append(array.reshape(rows, -1)[mask])
    col.times.append(np.full(int(mask.sum()), float(record.get("time") or np.nan)))
    col.variants.append(chosen[mask])


def read_payloads(
    log_dir: str | os.PathLike[str],
    experiment: str,
    *,
    variants: Sequence[str] | None = None,
    since: float | None = None,
) -> PayloadRead:
    """The experiment's logged payload rows as a feature table.

    Args:
        log_dir: the log folder (`<log_dir>/<experiment>/payloads/`).
        experiment: the experiment (router) name.
        variants: keep only rows routed to these variants.
        since: keep only records at or after this time (epoch seconds).

    Raises:
        DriftError: the experiment has no payload log.
    """
    folder = Path(log_dir) / experiment / PAYLOADS
    if not folder.is_dir():
        raise DriftError(
            f"no payload log for experiment `{experiment}` under `{log_dir}`: the router logs "
            "payloads when its spec's `logging.sample_rate` is above 0"
        )
    col, records = _Collector(), 0
    keep = set(variants) if variants is not None else None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for record in iter_records(folder):
            if since is not None and float(record.get("time") or 0.0) < since:
                continue
            records += 1
            _record_rows(record, keep, col)
    notes = [str(w.message) for w in caught]
    notes += [f"{n} payload record(s) skipped: {why}" for why, n in sorted(col.skipped.items())]
    columns: dict[str, Any] = {}
    for name, parts in col.parts.items():
        block = np.concatenate(parts)
        shape = (block.shape[0], col.widths[name])
        for j, feature in enumerate(feature_names(name, shape)):
            columns[feature] = _as_column(block[:, j])
    columns[TIME] = np.concatenate(col.times) if col.times else np.zeros(0)
    columns[VARIANT] = np.concatenate(col.variants) if col.variants else np.zeros(0, dtype=object)
    return PayloadRead(pd.DataFrame(columns), records, notes)
