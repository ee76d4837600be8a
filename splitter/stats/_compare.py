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
from typing import Any, Literal

import numpy as np
from scipy import special

from tritonab.errors import StatsError
from tritonab.splitter.stats import _sequential
from tritonab.splitter.stats import _validate as v

Alternative = Literal["two-sided", "greater", "less"]
REASONS = ("too_few_units", "zero_baseline", "zero_variance")


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

    effect: Any
    ci_low: Any
    ci_high: Any
    p_value: Any
    se: Any
    control_mean: Any
    treatment_mean: Any
    control_n: Any
    treatment_n: Any
    df: Any
    method: str
    relative: bool
    alpha: float
    alternative: str
    reason: Any

    @property
    def significant(self) -> Any:
        """p_value < alpha; False where degenerate."""
        if self.p_value is None:
            return False
        if np.ndim(self.p_value):
            return np.asarray(self.p_value) < self.alpha
        return bool(self.p_value < self.alpha)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly fields (arrays as lists, NaN/inf as None)."""
        return {k: _jsonable(val) for k, val in dataclasses.asdict(self).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_jsonable(x) for x in value.tolist()]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def compare(
    control: Any,
    treatment: Any,
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


def _check_pair(control: Any, treatment: Any) -> str:
    """Both arms are statistics of the same kind; returns that kind."""
    for name, stat in (("control", control), ("treatment", treatment)):
        if not all(hasattr(stat, attr) for attr in ("kind", "n", "mean", "variance")):
            raise StatsError(
                f"`{name}` must be a SampleMean, Proportion, Ratio or AdjustedMean, got {type(stat).__name__}"
            )
    if control.kind != treatment.kind:
        raise StatsError(f"`control` is a {control.kind} statistic but `treatment` is a {treatment.kind}")
    return str(control.kind)


def _arm(stat: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mean, per-unit variance, n) as float arrays."""
    return (
        np.asarray(stat.mean, dtype=np.float64),
        np.asarray(stat.variance, dtype=np.float64),
        np.asarray(stat.n, dtype=np.float64),
    )


def _effect_and_variance(a: tuple, b: tuple, relative: bool) -> tuple[np.ndarray, np.ndarray]:
    """Point estimate and its variance (delta method when relative)."""
    (ma, va, na), (mb, vb, nb) = a, b
    v.broadcast({"control": ma, "treatment": mb})
    if not relative:
        return mb - ma, vb / nb + va / na
    effect = mb / ma - 1.0
    var = vb / (ma**2 * nb) + va * mb**2 / (ma**4 * na)
    return effect, var


def _reasons(a: tuple, b: tuple, se: np.ndarray, relative: bool) -> np.ndarray:
    """Reason codes ('' when valid), first matching code wins."""
    (ma, _, na), (_, _, nb) = a, b
    shape = se.shape
    reason = np.full(shape, "", dtype="<U13")
    reason[~np.isfinite(se) | (se <= 0)] = "zero_variance"
    if relative:
        reason[np.broadcast_to(ma == 0, shape)] = "zero_baseline"
    reason[np.broadcast_to((na < 2) | (nb < 2), shape)] = "too_few_units"
    return reason


def _welch_df(a: tuple, b: tuple) -> np.ndarray:
    """Welch–Satterthwaite degrees of freedom."""
    (_, va, na), (_, vb, nb) = a, b
    qa, qb = va / na, vb / nb
    return (qa + qb) ** 2 / (qa**2 / (na - 1) + qb**2 / (nb - 1))


def _fixed_bounds(effect, se, df, alpha: float, alternative: str):
    """CI bounds and p-value of the t (finite df) or z (df = inf) test."""
    stat = effect / se
    one = alternative != "two-sided"
    q = special.stdtrit(df, 1.0 - (alpha if one else alpha / 2.0))
    if alternative == "two-sided":
        p = 2.0 * special.stdtr(df, -np.abs(stat))
        return effect - q * se, effect + q * se, p
    if alternative == "greater":
        return effect - q * se, np.full_like(effect, np.inf), special.stdtr(df, -stat)
    return np.full_like(effect, -np.inf), effect + q * se, special.stdtr(df, stat)


def _sequential_bounds(effect, se, n_total, alpha: float, tuning: float):
    """Confidence-sequence bounds and the anytime-valid p-value."""
    width = _sequential.half_width(se, n_total, alpha, tuning)
    p = _sequential.p_value(effect / se, n_total, alpha, tuning)
    return effect - width, effect + width, p


def _result(effect, low, high, p, se, a, b, df, reason, **settings) -> ComparisonResult:
    """Mask degenerate entries and unwrap scalars."""
    bad = reason != ""
    shape = reason.shape
    fields = {
        name: np.where(bad, np.nan, np.broadcast_to(x, shape))
        for name, x in (("ci_low", low), ("ci_high", high), ("p_value", p), ("se", se), ("df", df))
    }
    fields["effect"] = np.broadcast_to(effect, shape)
    out = {k: v.scalar_or_array(np.asarray(x, dtype=np.float64)) for k, x in fields.items()}
    for side, (m, _, n) in (("control", a), ("treatment", b)):
        out[f"{side}_mean"] = v.scalar_or_array(np.broadcast_to(m, shape).astype(np.float64))
        out[f"{side}_n"] = v.scalar_or_array(np.broadcast_to(n, shape).astype(np.float64))
    if shape == ():
        code = str(reason)
        out["p_value"] = None if code else out["p_value"]
        return ComparisonResult(**out, reason=code or None, **settings)
    return ComparisonResult(**out, reason=reason, **settings)
