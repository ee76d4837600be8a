"""Feature transforms: a fitted, declarative list of column operations (no Triton here).

A transform spec is JSON, so it can be reviewed in a repository commit and served
by `backends.transform` inside an ensemble (`transform -> model`):

    {"input_width": 3, "steps": [
        {"op": "impute", "values": [0, 0, 1]},
        {"op": "clip", "low": [0, -5, 0], "high": [10, 5, 1]},
        {"op": "standardize", "mean": [1, 0, 0.5], "scale": [2, 1, 0.5]},
        {"op": "log1p", "columns": [0]},
        {"op": "one_hot", "column": 2, "categories": [0, 1]}]}

Operations apply in order to a float matrix `[rows, columns]`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tritonab.errors import SpecError

Number = float
Vector = Union[list[Number], Number]


class _Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def width(self, width: int) -> int:
        return width

    def check(self, width: int, where: str) -> None:
        for name in ("values", "low", "high", "mean", "scale", "min", "max"):
            value = getattr(self, name, None)
            if isinstance(value, list) and len(value) != width:
                raise ValueError(f"{where}.{name}: has {len(value)} entries for {width} columns")


class Impute(_Step):
    op: Literal["impute"]
    values: Vector

    def apply(self, x: np.ndarray) -> np.ndarray:
        fill = np.broadcast_to(np.asarray(self.values, dtype=x.dtype), x.shape)
        return np.where(np.isnan(x), fill, x)


class Clip(_Step):
    op: Literal["clip"]
    low: Vector | None = None
    high: Vector | None = None

    def apply(self, x: np.ndarray) -> np.ndarray:
        low = None if self.low is None else np.asarray(self.low, dtype=x.dtype)
        high = None if self.high is None else np.asarray(self.high, dtype=x.dtype)
        return np.clip(x, low, high)


class Standardize(_Step):
    op: Literal["standardize"]
    mean: Vector
    scale: Vector

    def apply(self, x: np.ndarray) -> np.ndarray:
        scale = np.asarray(self.scale, dtype=x.dtype)
        return (x - np.asarray(self.mean, dtype=x.dtype)) / np.where(scale == 0, 1, scale)


class MinMax(_Step):
    op: Literal["min_max"]
    min: Vector
    max: Vector

    def apply(self, x: np.ndarray) -> np.ndarray:
        lo, hi = np.asarray(self.min, dtype=x.dtype), np.asarray(self.max, dtype=x.dtype)
        span = hi - lo
        return (x - lo) / np.where(span == 0, 1, span)


class Log1p(_Step):
    op: Literal["log1p"]
    columns: list[int]

    def apply(self, x: np.ndarray) -> np.ndarray:
        out = x.copy()
        out[:, self.columns] = np.log1p(np.maximum(out[:, self.columns], 0))
        return out

    def check(self, width: int, where: str) -> None:
        _check_columns(self.columns, width, f"{where}.columns")


class OneHot(_Step):
    """Replace one column by indicator columns, appended at the end (unknown -> all zeros)."""

    op: Literal["one_hot"]
    column: int
    categories: list[Number] = Field(min_length=1)

    def apply(self, x: np.ndarray) -> np.ndarray:
        values = x[:, self.column : self.column + 1]
        indicators = (values == np.asarray(self.categories, dtype=x.dtype)).astype(x.dtype)
        kept = np.delete(x, self.column, axis=1)
        return np.concatenate([kept, indicators], axis=1)

    def width(self, width: int) -> int:
        return width - 1 + len(self.categories)

    def check(self, width: int, where: str) -> None:
        _check_columns([self.column], width, f"{where}.column")


class Select(_Step):
    op: Literal["select"]
    columns: list[int] = Field(min_length=1)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return x[:, self.columns]

    def width(self, width: int) -> int:
        return len(self.columns)

    def check(self, width: int, where: str) -> None:
        _check_columns(self.columns, width, f"{where}.columns")


def _check_columns(columns: list[int], width: int, where: str) -> None:
    bad = [c for c in columns if not 0 <= c < width]
    if bad:
        raise ValueError(f"{where}: columns {bad} are outside 0..{width - 1}")


Step = Annotated[Union[Impute, Clip, Standardize, MinMax, Log1p, OneHot, Select], Field(discriminator="op")]


class TransformSpec(BaseModel):
    """A fitted feature transform: input width and ordered steps."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_width: int = Field(ge=1)
    steps: list[Step]

    @model_validator(mode="after")
    def _widths(self) -> TransformSpec:
        width = self.input_width
        for i, step in enumerate(self.steps):
            step.check(width, f"steps[{i}]")
            width = step.width(width)
        return self

    @property
    def output_width(self) -> int:
        width = self.input_width
        for step in self.steps:
            width = step.width(width)
        return width

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Transform a `[rows, input_width]` matrix.

        Raises:
            SpecError: the matrix has the wrong number of columns.
        """
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.input_width:
            raise SpecError(f"transform expects [rows, {self.input_width}], got {list(x.shape)}")
        out = x.astype(np.float32 if x.dtype != np.float64 else np.float64, copy=True)
        for step in self.steps:
            out = step.apply(out)
        return out

    @classmethod
    def from_sklearn_scaler(cls, scaler, *, clip_sigma: float | None = None) -> TransformSpec:
        """The spec of a fitted scikit-learn `StandardScaler` (optionally clipped at ±k sigma)."""
        mean = [float(v) for v in scaler.mean_]
        scale = [float(v) for v in scaler.scale_]
        steps: list[dict] = [{"op": "standardize", "mean": mean, "scale": scale}]
        if clip_sigma is not None:
            steps.append({"op": "clip", "low": -clip_sigma, "high": clip_sigma})
        return cls.model_validate({"input_width": len(mean), "steps": steps})

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=1, sort_keys=True) + "\n"


def load_transform(path: str | os.PathLike[str]) -> TransformSpec:
    """Read a transform spec from JSON or YAML.

    Raises:
        SpecError: unreadable, not JSON/YAML, or invalid (with field paths).
    """
    from tritonab._specfile import read_yaml, validate_mapping

    return validate_mapping(TransformSpec, read_yaml(path), source=f"`{Path(path)}`")
