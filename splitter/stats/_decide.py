"""Decisions: promote, continue, rollback or invalid, from success criteria and statistics.

Rules, in order (all intervals two-sided at 1 - alpha; confidence sequences when the
criteria say method="sequential"):

1. invalid  - sample ratio mismatch (chi-square p < srm_threshold) when counts are given;
2. rollback - the primary metric is significantly worse (the whole interval on the bad
              side of 0), or a guardrail fails (the whole interval of its degradation
              lies beyond `max_degradation`);
3. promote  - the primary is significantly better, its point estimate is at least
              `minimum_effect` (a significant but smaller gain is not worth shipping on
              its own; the decision stays "continue" and says so), and every guardrail
              is clear (the whole interval of its degradation within `max_degradation`);
4. continue - otherwise; `units_still_needed` is the fixed-horizon sample size for
              `minimum_effect` (power formula) minus what both arms already hold, a lower
              bound when sequential.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, TypeAlias

import numpy as np
import pydantic

from tritonab.errors import StatsError
from tritonab.splitter.stats._compare import ComparisonResult, Statistic, compare
from tritonab.splitter.stats._power import Kind, sample_size
from tritonab.splitter.stats._srm import SRMResult, srm
from tritonab.splitter.stats.criteria import GuardrailMetric, SuccessCriteria

Role: TypeAlias = Literal["primary", "guardrail"]
Status: TypeAlias = Literal[
    "better", "worse", "below_minimum", "inconclusive", "degenerate", "clear", "fail", "pending"
]
Pair: TypeAlias = tuple[Statistic, Statistic]
"""(control, treatment) statistics of one metric."""


class Verdict(str, enum.Enum):
    """What to do with the experiment."""

    PROMOTE = "promote"
    CONTINUE = "continue"
    ROLLBACK = "rollback"
    INVALID = "invalid"


@dataclasses.dataclass(frozen=True)
class MetricVerdict:
    """One metric's comparison and what it says.

    Attributes:
        name: the metric.
        role: "primary" or "guardrail".
        status: primary: "better", "worse", "below_minimum", "inconclusive", "degenerate";
            guardrail: "clear", "fail", "pending", "degenerate".
        result: the comparison (effect = treatment - control, or relative lift).
    """

    name: str
    role: Role
    status: Status
    result: ComparisonResult


@dataclasses.dataclass(frozen=True)
class Decision:
    """The decision and everything it rests on.

    Attributes:
        outcome: promote, continue, rollback or invalid.
        reasons: human-readable sentences, most important first.
        primary: the primary metric's verdict.
        guardrails: one verdict per guardrail, in criteria order.
        srm: the SRM check, or None when no counts were given.
        units_still_needed: more units (both arms) for the planned power; None when not
            computable (no minimum_effect, degenerate data) or not continuing.
    """

    outcome: Verdict
    reasons: tuple[str, ...]
    primary: MetricVerdict
    guardrails: tuple[MetricVerdict, ...]
    srm: SRMResult | None
    units_still_needed: int | None


def decide(
    criteria: SuccessCriteria | Mapping[str, Any],
    metrics: Mapping[str, Pair],
    *,
    counts: Sequence[float] | None = None,
    weights: Sequence[float] | None = None,
) -> Decision:
    """Decide what to do with a two-arm experiment.

    Args:
        criteria: SuccessCriteria (or a mapping that validates into one).
        metrics: {name: (control_stat, treatment_stat)} with scalar statistics; must hold
            the primary metric and every guardrail.
        counts: units per variant (control first) for the SRM check; with `weights`.
        weights: configured traffic weights per variant, summing to 1.

    Returns:
        A Decision.

    Raises:
        StatsError: invalid criteria, a metric missing from `metrics`, array statistics,
            only one of counts/weights, or any misuse `compare`/`srm` reject.
    """
    crit = _criteria(criteria)
    _check_metrics(crit, metrics)
    if (counts is None) != (weights is None):
        raise StatsError("`counts` and `weights` must be given together")
    srm_result = (
        None if counts is None or weights is None else srm(counts, weights, threshold=crit.srm_threshold)
    )
    primary = _primary(crit, metrics)
    guards = tuple(_guardrail(crit, g, metrics) for g in crit.guardrails)
    outcome, reasons = _outcome(crit, primary, guards, srm_result)
    needed = _still_needed(crit, metrics) if outcome is Verdict.CONTINUE else None
    if needed is not None:
        reasons.append(
            f"about {needed} more units needed for power {crit.power:g} at "
            f"minimum effect {crit.primary.minimum_effect:g}"
            + (" (fixed-horizon figure, a lower bound)" if crit.method == "sequential" else "")
        )
    return Decision(outcome, tuple(reasons), primary, guards, srm_result, needed)


def _criteria(criteria: SuccessCriteria | Mapping[str, Any]) -> SuccessCriteria:
    if isinstance(criteria, SuccessCriteria):
        return criteria
    try:
        return SuccessCriteria.model_validate(criteria)
    except pydantic.ValidationError as exc:
        raise StatsError(f"`criteria` is invalid: {exc}") from exc


def _check_metrics(crit: SuccessCriteria, metrics: Mapping[str, object]) -> None:
    for name in [crit.primary.name] + [g.name for g in crit.guardrails]:
        pair = metrics.get(name)
        if pair is None:
            raise StatsError(f"`metrics` has no entry for `{name}`")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise StatsError(f"`metrics[{name!r}]` must be a (control, treatment) pair")
        if any(np.shape(getattr(s, "n", 0)) != () for s in pair):
            raise StatsError(f"`metrics[{name!r}]` must hold scalar statistics, not arrays")


def _compare(crit: SuccessCriteria, pair: Pair, relative: bool) -> ComparisonResult:
    tuning = crit.sequential_tuning if crit.method == "sequential" else None
    return compare(pair[0], pair[1], relative=relative, alpha=crit.alpha, sequential_tuning=tuning)


def _oriented(res: ComparisonResult, sign: float) -> tuple[float, float, float]:
    """(estimate, low, high) with `sign` applied, so that positive means `sign`'s way."""
    lo, hi = sign * float(res.ci_low), sign * float(res.ci_high)  # scalars: `decide` checks
    return sign * float(res.effect), min(lo, hi), max(lo, hi)


def _primary(crit: SuccessCriteria, metrics: Mapping[str, Pair]) -> MetricVerdict:
    spec = crit.primary
    res = _compare(crit, metrics[spec.name], spec.relative)
    if res.reason:
        return MetricVerdict(spec.name, "primary", "degenerate", res)
    gain, lo, hi = _oriented(res, 1.0 if spec.direction == "increase" else -1.0)
    status: Status
    if hi < 0:
        status = "worse"
    elif lo > 0:
        status = "better" if gain >= spec.minimum_effect else "below_minimum"
    else:
        status = "inconclusive"
    return MetricVerdict(spec.name, "primary", status, res)


def _guardrail(crit: SuccessCriteria, spec: GuardrailMetric, metrics: Mapping[str, Pair]) -> MetricVerdict:
    res = _compare(crit, metrics[spec.name], spec.relative)
    if res.reason:
        return MetricVerdict(spec.name, "guardrail", "degenerate", res)
    _, lo, hi = _oriented(res, 1.0 if spec.bad_direction == "increase" else -1.0)
    status: Status
    if lo > spec.max_degradation:
        status = "fail"
    elif hi <= spec.max_degradation:
        status = "clear"
    else:
        status = "pending"
    return MetricVerdict(spec.name, "guardrail", status, res)


def _describe(v: MetricVerdict) -> str:
    r = v.result
    if r.reason:
        return f"{v.role} `{v.name}`: no test ({r.reason})"
    level = f"{1 - r.alpha:.0%}"
    return (
        f"{v.role} `{v.name}`: effect {r.effect:+.4g} ({level} interval {r.ci_low:.4g} "
        f"to {r.ci_high:.4g}, p={r.p_value:.3g}; {r.test}) -> {v.status}"
    )


def _outcome(
    crit: SuccessCriteria,
    primary: MetricVerdict,
    guards: tuple[MetricVerdict, ...],
    srm_result: SRMResult | None,
) -> tuple[Verdict, list[str]]:
    details = [_describe(primary)] + [_describe(g) for g in guards]
    if srm_result is not None and srm_result.srm_detected:
        return Verdict.INVALID, [
            f"sample ratio mismatch: chi-square p={srm_result.p_value:.3g} < "
            f"{srm_result.threshold:g}; the results cannot be trusted",
            *details,
        ]
    failed = [g.name for g in guards if g.status == "fail"]
    if primary.status == "worse" or failed:
        why = [f"guardrail `{n}` degraded beyond its tolerance" for n in failed]
        if primary.status == "worse":
            why.insert(0, f"primary `{primary.name}` is significantly worse")
        return Verdict.ROLLBACK, why + details
    unclear = [g.name for g in guards if g.status != "clear"]
    if primary.status == "better" and not unclear:
        return Verdict.PROMOTE, [
            f"primary `{primary.name}` is significantly better and every guardrail is clear",
            *details,
        ]
    summary = {
        "better": "primary is better but guardrails are not yet clear: " + ", ".join(unclear),
        "below_minimum": "primary is significantly better but below the minimum effect",
        "inconclusive": "primary is not yet significant",
        "degenerate": "primary cannot be tested yet",
    }[primary.status]
    return Verdict.CONTINUE, [summary, *details]


def _still_needed(crit: SuccessCriteria, metrics: Mapping[str, Pair]) -> int | None:
    spec = crit.primary
    control, treatment = metrics[spec.name]
    mean, var = float(control.mean), float(control.variance)
    n_c, n_t = float(control.n), float(treatment.n)
    if spec.minimum_effect == 0 or not (math.isfinite(mean) and math.isfinite(var)) or n_c == 0:
        return None
    kind: Kind = "proportion" if control.kind == "proportion" else "mean"
    sign = 1.0 if spec.direction == "increase" else -1.0
    ratio = n_t / n_c if n_t > 0 else 1.0
    try:
        n_req = sample_size(
            kind,
            baseline=mean,
            mde=sign * spec.minimum_effect,
            sd=math.sqrt(var),
            alpha=crit.alpha,
            power=crit.power,
            relative=spec.relative,
            ratio=ratio,
        )
    except StatsError:
        return None
    return int(max(0.0, n_req - n_c) + max(0.0, math.ceil(ratio * n_req) - n_t))
