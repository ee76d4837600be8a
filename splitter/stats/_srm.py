"""Sample ratio mismatch and multiple-testing adjustment.

SRM: Pearson chi-square goodness of fit of the observed unit counts per variant against
the configured weights (not a 50/50 assumption), df = variants - 1; flagged when
p < 0.001 (the conventional, deliberately strict threshold: SRM is checked often).
Multiple testing: statsmodels `multipletests` (Holm step-down FWER, Benjamini–Hochberg FDR).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from tritonab.errors import StatsError
from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._validate import FloatArray, FloatOrArray, Reason

SRM_THRESHOLD = 0.001


@dataclasses.dataclass(frozen=True, eq=False)
class SRMResult:
    """Chi-square SRM check. Scalars for one experiment, arrays for many (e.g. per day).

    Attributes:
        chi2: the Pearson statistic.
        p_value: its p-value; None (scalar) / NaN (array) when no unit was counted.
        srm_detected: p_value < threshold.
        expected: expected counts (total x weights), shape of `counts`.
        threshold: the flagging threshold.
        reason: None, or "no_units" when the total count is 0 ("" = valid in arrays).
    """

    chi2: FloatOrArray
    p_value: FloatOrArray | None
    srm_detected: bool | NDArray[np.bool_]
    expected: FloatArray
    threshold: float
    reason: Reason

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields."""
        out = dataclasses.asdict(self)
        for k, val in out.items():
            if isinstance(val, np.ndarray):
                out[k] = val.tolist()
        return out


def srm(counts: ArrayLike, weights: ArrayLike, *, threshold: float = SRM_THRESHOLD) -> SRMResult:
    """Check observed unit counts per variant against the configured traffic weights.

    Args:
        counts: units per variant; shape (k,), or (..., k) for many checks at once.
        weights: configured weight per variant, shape (k,) (or broadcastable), each > 0,
            summing to 1 along the last axis (tolerance 1e-6).
        threshold: flag SRM when p < threshold (default 0.001).

    Returns:
        An SRMResult.

    Raises:
        StatsError: negative counts, fewer than 2 variants, weights not positive or not
            summing to 1, mismatched lengths, threshold outside (0, 1).
    """
    obs = v.non_negative(counts, "counts")
    w = v.as_float(weights, "weights")
    v.check_alpha(threshold, "threshold")
    if obs.ndim == 0 or obs.shape[-1] < 2:
        raise StatsError(f"`counts` needs at least 2 variants, got shape {obs.shape}")
    if w.ndim == 0 or w.shape[-1] != obs.shape[-1]:
        raise StatsError(
            f"mismatched lengths: `counts` has {obs.shape[-1]} variants, "
            f"`weights` has {w.shape[-1] if w.ndim else 0}"
        )
    if (w <= 0).any():
        raise StatsError("`weights` must all be > 0")
    if not np.allclose(w.sum(axis=-1), 1.0, atol=1e-6, rtol=0.0):
        raise StatsError(f"`weights` must sum to 1, got {np.round(w.sum(axis=-1), 8).tolist()}")
    shape = v.broadcast({"counts": obs, "weights": w})
    obs = np.broadcast_to(obs, shape)
    total = obs.sum(axis=-1, keepdims=True)
    expected = total * np.broadcast_to(w, shape)
    empty = total[..., 0] == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = np.where(empty, 0.0, (np.square(obs - expected) / expected).sum(axis=-1))
    p = np.where(empty, np.nan, sps.chi2.sf(chi2, shape[-1] - 1))
    reason = np.where(empty, "no_units", "")
    if p.ndim == 0:
        code = str(reason) or None
        return SRMResult(
            float(chi2), None if code else float(p), bool(p < threshold), expected, threshold, code
        )
    return SRMResult(chi2, p, p < threshold, expected, threshold, reason)


def adjust(
    p_values: Sequence[float | None] | FloatArray, method: Literal["holm", "bh"] = "holm"
) -> FloatArray:
    """Adjust p-values for multiple testing, returned in input order.

    NaN or None entries (degenerate comparisons) stay NaN and are left out of the family.

    Args:
        p_values: 1-D sequence of p-values in [0, 1].
        method: "holm" (family-wise error, Holm step-down) or "bh" (false discovery rate,
            Benjamini–Hochberg).

    Returns:
        Adjusted p-values, float array in input order.

    Raises:
        StatsError: unknown method, not 1-D, or entries outside [0, 1].
    """
    methods = {"holm": "holm", "bh": "fdr_bh"}
    if method not in methods:
        raise StatsError(f"`method` must be 'holm' or 'bh', got {method!r}")
    # numpy's ArrayLike has no None, but np.shape takes any sequence (None -> an object entry).
    shape = np.shape(p_values)  # type: ignore[arg-type]
    if len(shape) != 1:
        raise StatsError(f"`p_values` must be 1-D, got shape {shape}")
    try:
        arr = np.asarray([np.nan if p is None else p for p in p_values], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StatsError("`p_values` must be numbers (or None)") from exc
    ok = ~np.isnan(arr)
    if ((arr[ok] < 0) | (arr[ok] > 1)).any():
        raise StatsError("`p_values` must be in [0, 1]")
    out = np.full(arr.shape, np.nan)
    if ok.any():
        out[ok] = multipletests(arr[ok], method=methods[method])[1]
    return out
