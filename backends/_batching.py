"""Concatenate the rows of many requests into one batch and split the results back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def concat_rows(per_request: Sequence[dict[str, np.ndarray]]) -> tuple[dict[str, np.ndarray], list[int]]:
    """Stack each named input along the batch axis; returns the batch and row offsets."""
    names = per_request[0].keys()
    batch = {name: np.concatenate([r[name] for r in per_request], axis=0) for name in names}
    offsets = [0]
    for request in per_request:
        offsets.append(offsets[-1] + len(next(iter(request.values()))))
    return batch, offsets


def split_rows(outputs: dict[str, np.ndarray], offsets: Sequence[int]) -> list[dict[str, np.ndarray]]:
    """Cut batched outputs back into one dict per request, by the offsets of `concat_rows`."""
    return [
        {name: value[offsets[i] : offsets[i + 1]] for name, value in outputs.items()}
        for i in range(len(offsets) - 1)
    ]


def as_config_dtypes(outputs: dict[str, np.ndarray], dtypes: dict[str, np.dtype]) -> dict[str, np.ndarray]:
    """Each output as a contiguous array of its configured dtype (what a Python-backend
    response carries: Triton's wire type is the config's, whatever the model computed)."""
    return {
        name: np.ascontiguousarray(value, dtype=dtypes.get(name, value.dtype))
        for name, value in outputs.items()
    }
