"""Argument checks shared by the statistics modules; each failure names the argument."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tritonab.errors import StatsError

FloatArray: TypeAlias = NDArray[np.float64]
FloatOrArray: TypeAlias = float | FloatArray
"""One statistic as a Python float, or many at once as a float64 array."""
Codes: TypeAlias = NDArray[np.integer[Any] | np.bool_]
"""Per-unit integer (or boolean) group codes."""
Alternative: TypeAlias = Literal["two-sided", "greater", "less"]
Reason: TypeAlias = str | NDArray[np.str_] | None
"""None (valid) or a code for a scalar result; an array of codes ("" = valid) otherwise."""

ALTERNATIVES: tuple[Alternative, ...] = ("two-sided", "greater", "less")


def as_float(value: ArrayLike, name: str) -> FloatArray:
    """`value` as a float64 array, rejecting non-numeric input and NaN."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"`{name}` must be numeric, got {value!r}") from exc
    if np.isnan(arr).any():
        raise StatsError(f"`{name}` must not contain NaN")
    return arr


def non_negative(value: ArrayLike, name: str) -> FloatArray:
    """`value` as a float64 array whose entries are all >= 0."""
    arr = as_float(value, name)
    if (arr < 0).any():
        raise StatsError(f"`{name}` must be >= 0, got {_show(arr)}")
    return arr


def broadcast(arrays: Mapping[str, NDArray[Any]]) -> tuple[int, ...]:
    """The common shape of named arrays, or a StatsError naming them."""
    try:
        return np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError as exc:
        shapes = ", ".join(f"`{k}` {a.shape}" for k, a in arrays.items())
        raise StatsError(f"mismatched lengths: {shapes} do not broadcast") from exc


def check_alpha(alpha: float, name: str = "alpha") -> float:
    """A significance level strictly between 0 and 1."""
    if not isinstance(alpha, (int, float)) or not 0.0 < float(alpha) < 1.0:
        raise StatsError(f"`{name}` must be in (0, 1), got {alpha!r}")
    return float(alpha)


def check_alternative(alternative: str) -> str:
    """One of 'two-sided', 'greater', 'less'."""
    if alternative not in ALTERNATIVES:
        raise StatsError(f"`alternative` must be one of {ALTERNATIVES}, got {alternative!r}")
    return alternative


def check_groups(groups: ArrayLike, length: int) -> Codes:
    """Group codes as a 1-D integer array of `length` (signs are checked by `group_counts`)."""
    codes = np.asarray(groups)
    if codes.ndim != 1 or codes.shape[0] != length:
        raise StatsError(f"`groups` must be 1-D with {length} entries, got shape {codes.shape}")
    if codes.dtype.kind not in "iub":
        raise StatsError(f"`groups` must hold integer codes, got dtype {codes.dtype}")
    return codes


def bincount(codes: Codes, n_groups: int | None, weights: ArrayLike | None = None) -> NDArray[Any]:
    """np.bincount with StatsErrors for negative codes and codes beyond `n_groups`.

    The counts are integers without `weights`, float64 sums with them.
    """
    try:
        out = np.bincount(codes, weights=weights, minlength=n_groups or 0)
    except ValueError as exc:
        raise StatsError("`groups` must be >= 0") from exc
    if n_groups is not None and out.size > n_groups:
        raise StatsError(f"`n_groups` is {n_groups} but `groups` holds code {out.size - 1}")
    return out


def finite_sums(sums: FloatArray, name: str) -> None:
    """NaN in the raw values propagates into their sums; checking sums avoids a pass."""
    if np.isnan(sums).any():
        raise StatsError(f"`{name}` must not contain NaN")


def values_1d(values: ArrayLike, name: str, check_nan: bool = True) -> FloatArray:
    """A 1-D float64 array of raw per-unit values (NaN checked here unless told not to)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsError(f"`{name}` must be numeric") from exc
    if arr.ndim != 1:
        raise StatsError(f"`{name}` must be 1-D, got shape {arr.shape}")
    if check_nan and np.isnan(arr).any():
        raise StatsError(f"`{name}` must not contain NaN")
    return arr


def scalar_or_array(arr: FloatArray) -> FloatOrArray:
    """A Python float for a 0-d array, the array itself otherwise."""
    return float(arr) if arr.ndim == 0 else arr


def _show(arr: FloatArray) -> str:
    """A short rendering of the offending value(s)."""
    if arr.ndim == 0:
        return repr(float(arr))
    return f"{arr[arr < 0][:3].tolist()} (among {arr.size} entries)"
