"""Two-arm comparisons: fixed-horizon Welch t / z tests and sequential confidence sequences.

Fixed horizon:
- means (`SampleMean`, CUPED-adjusted means): Welch t-test with Welch–Satterthwaite df;
- proportions and ratios: Wald z-test (unpooled variance, so the test inverts to its CI);
- relative lift (treatment / control - 1): delta method,
  Var = s_t^2 / (m_c^2 n_t) + s_c^2 m_t^2 / (m_c^4 n_c), tested with the same df.
Sequential (`sequential_tuning` given): the asymptotic confidence sequence of
`tritonab.splitter.stats._sequential`, two-sided only.

All inputs may hold arrays; everything broadcasts and the result's fields are arrays.
Degenerate entries (n < 2, zero variance, zero control mean for a relative lift) carry a
`reason` code and no p-value: `None` for a scalar result, NaN inside an array result.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, TypeAlias

import numpy as np
from numpy.typing import NDArray
from scipy import special

from tritonab.errors import StatsError
from tritonab.splitter.stats import _sequential
from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._validate import Alternative as Alternative  # re-export: it used to live here
from tritonab.splitter.stats._validate import FloatArray, FloatOrArray, Reason

REASONS = ("too_few_units", "zero_baseline", "zero_variance")

Arm: TypeAlias = tuple[FloatArray, FloatArray, FloatArray]
"""(mean, per-unit variance, n) of one arm."""


class Statistic(Protocol):
    """What `compare` reads from an arm: a SampleMean, Proportion, Ratio or AdjustedMean."""

    @property
    def kind(self) -> str: ...
    @property
    def n(self) -> FloatOrArray: ...
    @property
    def mean(self) -> FloatOrArray: ...
    @property
    def variance(self) -> FloatOrArray: ...


@dataclasses.dataclass(frozen=True, eq=False)
class ComparisonResult:
    """Treatment vs control. Scalars for one comparison, arrays for many.

    Attributes:
        effect: treatment - control, or treatment / control - 1 when `relative` (kept even
            when degenerate, NaN only if a mean is undefined).
        ci_low, ci_high: confidence interval (or sequence) bounds; +/-inf on the open side
            of a one-sided test.
        p_value: None (scalar) or NaN (array entry) when degenerate.
        se: standard error of `effect`.
        control_mean, treatment_mean, control_n, treatment_n: the inputs' summaries.
        df: degrees of freedom of the t distribution; inf for z and sequential.
        method: "welch-t", "z" or "sequential-cs", with "-delta" for a relative lift.
        relative, alpha, alternative: the settings used.
        reason: None when valid; else one of "too_few_units", "zero_baseline",
            "zero_variance" (an array of codes, "" meaning valid, for array results).
    """

    effect: FloatOrArray
    ci_low: FloatOrArray
    ci_high: FloatOrArray
    p_value: FloatOrArray | None
    se: FloatOrArray
    control_mean: FloatOrArray
    treatment_mean: FloatOrArray
    control_n: FloatOrArray
    treatment_n: FloatOrArray
    df: FloatOrArray
    method: str
    relative: bool
    alpha: float
    alternative: Alternative
    reason: Reason

    @property
    def test(self) -> str:
        """The test behind the interval and p-value, in words (`fixed: Welch t`,
        `sequential: confidence sequence`), so two p-values for one metric never meet
        without saying why they differ."""
        base = self.method.removesuffix("-delta")
        words = {
            "welch-t": "fixed: Welch t",
            "z": "fixed: z",
            "sequential-cs": "sequential: confidence sequence",
            "stratified-z": "fixed: z, stratified",
        }
        text = words.get(base, base)
        return f"{text}, delta method" if self.method.endswith("-delta") else text

    @property
    def significant(self) -> bool | NDArray[np.bool_]:
        """p_value < alpha; False where degenerate."""
        if self.p_value is None:
            return False
        if np.ndim(self.p_value):
            return np.asarray(self.p_value) < self.alpha
        return bool(self.p_value < self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (arrays as lists, NaN/inf as None)."""
        fields = {k: _jsonable(val) for k, val in dataclasses.asdict(self).items()}
        return {**fields, "test": self.test}


def _jsonable(value: object) -> object:
    if isinstance(value, np.ndarray):
        return [_jsonable(x) for x in value.tolist()]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def compare(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
    sequential_tuning: float | None = None,
) -> ComparisonResult:
    """Compare a treatment arm against control.

    Args:
        control: a SampleMean, Proportion, Ratio or CUPED AdjustedMean (fields may be arrays).
        treatment: a statistic of the same kind, broadcastable against `control`.
        relative: test the lift treatment / control - 1 (delta method) instead of the
            difference.
        alpha: significance level; the interval has coverage 1 - alpha.
        alternative: "two-sided", "greater" (treatment > control) or "less".
        sequential_tuning: N*, the total sample size (both arms) at which a decision is
            expected; when given, returns the always-valid asymptotic confidence sequence
            (Waudby-Smith et al., arXiv:2103.06476) and its p-value min(1, 1/E).

    Returns:
        A ComparisonResult; scalars for scalar inputs, arrays otherwise.

    Raises:
        StatsError: mismatched statistic kinds or shapes, alpha outside (0, 1), unknown
            alternative, a non-positive `sequential_tuning`, or a one-sided sequential test.
    """
    kind = _check_pair(control, treatment)
    alpha = v.check_alpha(alpha)
    v.check_alternative(alternative)
    if sequential_tuning is not None:
        sequential_tuning = _sequential.check_tuning(sequential_tuning)
        if alternative != "two-sided":
            raise StatsError(
                "`alternative` must be 'two-sided' with `sequential_tuning`: the confidence "
                "sequence is two-sided only"
            )
    a = _arm(control, "control")
    b = _arm(treatment, "treatment")
    with np.errstate(all="ignore"):
        effect, var = _effect_and_variance(a, b, relative)
        se = np.sqrt(var)
        reason = _reasons(a, b, se, relative)
        if sequential_tuning is not None:
            df = np.full_like(se, np.inf)
            low, high, p = _sequential_bounds(effect, se, a[2] + b[2], alpha, sequential_tuning)
            method = "sequential-cs"
        else:
            df = _welch_df(a, b) if kind == "mean" else np.full_like(se, np.inf)
            low, high, p = _fixed_bounds(effect, se, df, alpha, alternative)
            method = "welch-t" if kind == "mean" else "z"
    method += "-delta" if relative else ""
    return _result(
        effect,
        low,
        high,
        p,
        se,
        a,
        b,
        df,
        reason,
        method=method,
        relative=relative,
        alpha=alpha,
        alternative=alternative,
    )


def _check_pair(control: Statistic, treatment: Statistic) -> str:
    """Both arms are statistics of the same kind; returns that kind."""
    for name, stat in (("control", control), ("treatment", treatment)):
        if not all(hasattr(stat, attr) for attr in ("kind", "n", "mean", "variance")):
            raise StatsError(
                f"`{name}` must be a SampleMean, Proportion, Ratio or AdjustedMean, got {type(stat).__name__}"
            )
    if control.kind != treatment.kind:
        raise StatsError(f"`control` is a {control.kind} statistic but `treatment` is a {treatment.kind}")
    return str(control.kind)


def _arm(stat: Statistic, name: str) -> Arm:
    """(mean, per-unit variance, n) as float arrays."""
    return (
        np.asarray(stat.mean, dtype=np.float64),
        np.asarray(stat.variance, dtype=np.float64),
        np.asarray(stat.n, dtype=np.float64),
    )


def _effect_and_variance(a: Arm, b: Arm, relative: bool) -> tuple[FloatArray, FloatArray]:
    """Point estimate and its variance (delta method when relative)."""
    (ma, va, na), (mb, vb, nb) = a, b
    v.broadcast({"control": ma, "treatment": mb})
    if not relative:
        return mb - ma, vb / nb + va / na
    effect = mb / ma - 1.0
    var = vb / (ma**2 * nb) + va * mb**2 / (ma**4 * na)
    return effect, var


def _reasons(a: Arm, b: Arm, se: FloatArray, relative: bool) -> NDArray[np.str_]:
    """Reason codes ('' when valid), first matching code wins."""
    (ma, _, na), (_, _, nb) = a, b
    shape = se.shape
    reason = np.full(shape, "", dtype="<U13")
    reason[~np.isfinite(se) | (se <= 0)] = "zero_variance"
    if relative:
        reason[np.broadcast_to(ma == 0, shape)] = "zero_baseline"
    reason[np.broadcast_to((na < 2) | (nb < 2), shape)] = "too_few_units"
    return reason


def _welch_df(a: Arm, b: Arm) -> FloatArray:
    """Welch–Satterthwaite degrees of freedom."""
    (_, va, na), (_, vb, nb) = a, b
    qa, qb = va / na, vb / nb
    return (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))


def _fixed_bounds(
    effect: FloatArray, se: FloatArray, df: FloatArray, alpha: float, alternative: str
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """CI bounds and p-value of the t (finite df) or z (df = inf) test."""
    stat = effect / se
    one = alternative != "two-sided"
    # scipy is untyped here: its results enter as float64 arrays.
    q = np.asarray(special.stdtrit(df, 1.0 - (alpha if one else alpha / 2.0)), dtype=np.float64)
    if alternative == "two-sided":
        p = 2.0 * np.asarray(special.stdtr(df, -np.abs(stat)), dtype=np.float64)
        return effect - q * se, effect + q * se, p
    if alternative == "greater":
        upper = np.asarray(special.stdtr(df, -stat), dtype=np.float64)
        return effect - q * se, np.full_like(effect, np.inf), upper
    lower = np.asarray(special.stdtr(df, stat), dtype=np.float64)
    return np.full_like(effect, -np.inf), effect + q * se, lower


def _sequential_bounds(
    effect: FloatArray, se: FloatArray, n_total: FloatArray, alpha: float, tuning: float
) -> tuple[FloatArray, FloatArray, FloatOrArray]:
    """Confidence-sequence bounds and the anytime-valid p-value."""
    width = _sequential.half_width(se, n_total, alpha, tuning)
    p = _sequential.p_value(effect / se, n_total, alpha, tuning)
    return effect - width, effect + width, p


def _result(
    effect: FloatArray,
    low: FloatArray,
    high: FloatArray,
    p: FloatOrArray,
    se: FloatArray,
    a: Arm,
    b: Arm,
    df: FloatArray,
    reason: NDArray[np.str_],
    *,
    method: str,
    relative: bool,
    alpha: float,
    alternative: Alternative,
) -> ComparisonResult:
    """Mask degenerate entries and unwrap scalars."""
    bad = reason != ""
    shape = reason.shape

    def masked(x: FloatOrArray) -> FloatOrArray:
        return v.scalar_or_array(
            np.asarray(np.where(bad, np.nan, np.broadcast_to(x, shape)), dtype=np.float64)
        )

    def summary(x: FloatArray) -> FloatOrArray:
        return v.scalar_or_array(np.broadcast_to(x, shape).astype(np.float64))

    p_value: FloatOrArray | None = masked(p)
    code: Reason = reason
    if shape == ():
        code = str(reason) or None
        p_value = None if code else p_value
    return ComparisonResult(
        effect=v.scalar_or_array(np.asarray(np.broadcast_to(effect, shape), dtype=np.float64)),
        ci_low=masked(low),
        ci_high=masked(high),
        p_value=p_value,
        se=masked(se),
        control_mean=summary(a[0]),
        treatment_mean=summary(b[0]),
        control_n=summary(a[2]),
        treatment_n=summary(b[2]),
        df=masked(df),
        method=method,
        relative=relative,
        alpha=alpha,
        alternative=alternative,
        reason=code,
    )
