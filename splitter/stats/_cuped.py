r"""CUPED: variance reduction with a pre-experiment covariate (Deng et al., WSDM 2013).

Per unit, y is the in-experiment metric and x the same unit's pre-experiment covariate.
theta = cov(x, y) / var(x) is pooled over both arms (computed on the concatenated data,
as GrowthBook does, so it is independent of the treatment assignment). Each arm's
adjusted mean and per-unit variance are

    mean_adj = ybar - theta (xbar - xbar_pooled)
    var_adj  = var(y) + theta^2 var(x) - 2 theta cov(x, y)

Centring on the pooled covariate mean keeps each adjusted mean on the metric's scale
(the difference of adjusted means is unchanged by the centring), so relative lifts use the
adjusted control mean as the baseline. For kind="proportion", var(y) is the Bernoulli
p (1 - p), as for `Proportion`; the test is then a z-test instead of Welch's t.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar, Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike

from tritonab.errors import StatsError
from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._sufficient import (
    _group_sums,
    _mean,
    _pair_moments,
    _sample_covariance,
    _sample_variance,
    _Sufficient,
)
from tritonab.splitter.stats._validate import FloatArray, FloatOrArray

CupedKind: TypeAlias = Literal["mean", "proportion"]


@dataclasses.dataclass(frozen=True, eq=False)
class CovariateMean(_Sufficient):
    """Sufficient statistics of a metric y and its pre-experiment covariate x; adds with `+`.

    Attributes:
        n: number of units.
        y_sum, y_sum_squares: sum and sum of squares of y.
        x_sum, x_sum_squares: sum and sum of squares of x.
        xy_sum: sum of the per-unit products x * y.
    """

    n: FloatOrArray
    y_sum: FloatOrArray
    y_sum_squares: FloatOrArray
    x_sum: FloatOrArray
    x_sum_squares: FloatOrArray
    xy_sum: FloatOrArray
    kind: ClassVar[str] = "covariate"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "y_sum_squares", "x_sum_squares")
    if TYPE_CHECKING:
        # The generated __init__ takes anything array-like: __post_init__ validates each
        # field and stores it as a float or a float64 array (the field types above).
        def __init__(
            self,
            n: ArrayLike,
            y_sum: ArrayLike,
            y_sum_squares: ArrayLike,
            x_sum: ArrayLike,
            x_sum_squares: ArrayLike,
            xy_sum: ArrayLike,
        ) -> None: ...

    @classmethod
    def from_values(cls, y: ArrayLike, x: ArrayLike) -> CovariateMean:
        """Statistics of per-unit metric and covariate arrays.

        Args:
            y: per-unit metric values, 1-D.
            x: per-unit pre-experiment covariate, same length.

        Returns:
            A scalar CovariateMean.

        Raises:
            StatsError: mismatched lengths, non-numeric or NaN input.
        """
        ya, xa = _pair(y, x)
        return cls(ya.size, *_pair_moments(ya, xa))

    @classmethod
    def from_groups(
        cls, y: ArrayLike, x: ArrayLike, groups: ArrayLike, n_groups: int | None = None
    ) -> CovariateMean:
        """Per-group statistics of metric and covariate arrays, via np.bincount.

        Args:
            y: per-unit metric values, 1-D.
            x: per-unit covariate, same length.
            groups: per-unit integer group codes.
            n_groups: number of groups; defaults to max(groups) + 1.

        Returns:
            A CovariateMean whose fields are arrays of length k.

        Raises:
            StatsError: mismatched lengths, bad codes, NaN input.
        """
        ya, xa = _pair(y, x, check_nan=False)
        n, sums = _group_sums(groups, ya.size, n_groups, ya, ya * ya, xa, xa * xa, xa * ya)
        v.finite_sums(sums[0], "y")
        v.finite_sums(sums[2], "x")
        return cls(n, *sums)


@dataclasses.dataclass(frozen=True, eq=False)
class AdjustedMean:
    """A CUPED-adjusted arm, accepted by `compare` and `bayes_summary` (not addable:
    add the CovariateMean statistics first, then adjust).

    Attributes:
        n: units.
        mean: adjusted mean.
        variance: adjusted per-unit variance.
        unadjusted_mean: the plain mean of y.
        theta: the pooled regression coefficient used.
        kind: "mean" or "proportion" (decides Welch t vs z in `compare`).
    """

    n: FloatOrArray
    mean: FloatOrArray
    variance: FloatOrArray
    unadjusted_mean: FloatOrArray
    theta: FloatOrArray
    kind: CupedKind


def cuped(
    control: CovariateMean,
    treatment: CovariateMean,
    *,
    kind: CupedKind = "mean",
) -> tuple[AdjustedMean, AdjustedMean]:
    """Adjust both arms with a theta pooled over the arms.

    Args:
        control: covariate statistics of the control arm (fields may be arrays).
        treatment: covariate statistics of the treatment arm.
        kind: "mean" for a continuous y, "proportion" for a 0/1 y.

    Returns:
        (control, treatment) AdjustedMean statistics for `compare`.

    Raises:
        StatsError: arguments are not CovariateMean, unknown kind, shapes do not broadcast.
    """
    for name, stat in (("control", control), ("treatment", treatment)):
        if not isinstance(stat, CovariateMean):
            raise StatsError(f"`{name}` must be a CovariateMean, got {type(stat).__name__}")
    if kind not in ("mean", "proportion"):
        raise StatsError(f"`kind` must be 'mean' or 'proportion', got {kind!r}")
    pooled = control + treatment
    var_x = np.asarray(_sample_variance(pooled.n, pooled.x_sum, pooled.x_sum_squares))
    cov = np.asarray(_sample_covariance(pooled.n, pooled.x_sum, pooled.y_sum, pooled.xy_sum))
    with np.errstate(divide="ignore", invalid="ignore"):
        theta = np.where(var_x > 0, cov / var_x, 0.0)
    x_bar = np.asarray(_mean(pooled.x_sum, pooled.n))
    return _adjust(control, theta, x_bar, kind), _adjust(treatment, theta, x_bar, kind)


def cuped_from_arrays(
    control_y: ArrayLike,
    control_x: ArrayLike,
    treatment_y: ArrayLike,
    treatment_x: ArrayLike,
    *,
    kind: CupedKind = "mean",
) -> tuple[AdjustedMean, AdjustedMean]:
    """`cuped` from raw per-unit arrays.

    Args:
        control_y, control_x: control arm metric and covariate, same length.
        treatment_y, treatment_x: treatment arm metric and covariate, same length.
        kind: "mean" or "proportion".

    Returns:
        (control, treatment) AdjustedMean statistics.

    Raises:
        StatsError: mismatched lengths, NaN input, unknown kind.
    """
    return cuped(
        CovariateMean.from_values(control_y, control_x),
        CovariateMean.from_values(treatment_y, treatment_x),
        kind=kind,
    )


def _adjust(stat: CovariateMean, theta: FloatArray, x_bar: FloatArray, kind: CupedKind) -> AdjustedMean:
    """One arm's adjusted mean and variance."""
    y_mean = np.asarray(_mean(stat.y_sum, stat.n))
    x_mean = np.asarray(_mean(stat.x_sum, stat.n))
    if kind == "proportion":
        var_y = y_mean * (1.0 - y_mean)
    else:
        var_y = np.asarray(_sample_variance(stat.n, stat.y_sum, stat.y_sum_squares))
    var_x = np.asarray(_sample_variance(stat.n, stat.x_sum, stat.x_sum_squares))
    cov = np.asarray(_sample_covariance(stat.n, stat.x_sum, stat.y_sum, stat.xy_sum))
    var = np.maximum(var_y + theta**2 * var_x - 2.0 * theta * cov, 0.0)
    return AdjustedMean(
        n=stat.n,
        mean=v.scalar_or_array(y_mean - theta * (x_mean - x_bar)),
        variance=v.scalar_or_array(np.where(np.isnan(var_y), np.nan, var)),
        unadjusted_mean=v.scalar_or_array(y_mean),
        theta=v.scalar_or_array(theta),
        kind=kind,
    )


def _pair(y: ArrayLike, x: ArrayLike, check_nan: bool = True) -> tuple[FloatArray, FloatArray]:
    ya, xa = v.values_1d(y, "y", check_nan), v.values_1d(x, "x", check_nan)
    if ya.shape != xa.shape:
        raise StatsError(f"mismatched lengths: `y` has {ya.size}, `x` has {xa.size}")
    return ya, xa
