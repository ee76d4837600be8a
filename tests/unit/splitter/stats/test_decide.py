"""Decisions from success criteria: each outcome, criteria validation, misuse."""

import pydantic
import pytest

from tritonab.errors import StatsError
from tritonab.splitter import stats

CRITERIA = stats.SuccessCriteria(
    primary=stats.PrimaryMetric(name="conversion", direction="increase", minimum_effect=0.01),
    guardrails=(
        stats.GuardrailMetric(name="latency", bad_direction="increase", max_degradation=0.05, relative=True),
    ),
)


def _latency(mean_t: float, n: int = 20_000):
    def stat(mean):
        return stats.SampleMean(n, mean * n, n * (mean**2 + 4.0))

    return stat(10.0), stat(mean_t)


def _metrics(conv_t: int, latency_t: float = 10.0, n: int = 20_000):
    return {
        "conversion": (stats.Proportion(n, n // 10), stats.Proportion(n, conv_t)),
        "latency": _latency(latency_t, n),
    }


def test_promote_when_primary_better_and_guardrails_clear():
    d = stats.decide(CRITERIA, _metrics(2_400), counts=[20_000, 20_000], weights=[0.5, 0.5])
    assert d.outcome is stats.Verdict.PROMOTE and d.outcome == "promote"
    assert d.primary.status == "better" and d.guardrails[0].status == "clear"
    assert d.units_still_needed is None and "significantly better" in d.reasons[0]


def test_rollback_on_guardrail_and_on_worse_primary():
    d = stats.decide(CRITERIA, _metrics(2_400, latency_t=11.0))
    assert d.outcome is stats.Verdict.ROLLBACK and d.guardrails[0].status == "fail"
    assert "guardrail `latency` degraded" in d.reasons[0]
    d = stats.decide(CRITERIA, _metrics(1_700))
    assert d.outcome is stats.Verdict.ROLLBACK and d.primary.status == "worse"


def test_invalid_on_srm():
    d = stats.decide(CRITERIA, _metrics(2_400), counts=[20_000, 18_000], weights=[0.5, 0.5])
    assert d.outcome is stats.Verdict.INVALID and d.srm.srm_detected
    assert d.reasons[0].startswith("sample ratio mismatch")


def test_continue_reports_units_still_needed():
    d = stats.decide(CRITERIA, _metrics(210, n=2_000))
    assert d.outcome is stats.Verdict.CONTINUE and d.primary.status == "inconclusive"
    # 14,749 per arm for 10% -> 11% at alpha 0.05, power 0.8, minus the 2,000 held per arm
    need = stats.sample_size("proportion", baseline=0.1, mde=0.01)
    assert d.units_still_needed == 2 * (need - 2_000)
    assert "more units needed" in d.reasons[-1]


def test_significant_but_below_minimum_effect_continues():
    crit = CRITERIA.model_copy(
        update={"primary": stats.PrimaryMetric(name="conversion", minimum_effect=0.05)}
    )
    d = stats.decide(crit, _metrics(2_400))
    assert d.outcome is stats.Verdict.CONTINUE and d.primary.status == "below_minimum"


def test_sequential_method_and_decrease_direction():
    crit = stats.SuccessCriteria.model_validate(
        {
            "primary": {"name": "latency", "direction": "decrease", "minimum_effect": 0.1},
            "method": "sequential",
            "sequential_tuning": 40_000,
        }
    )
    d = stats.decide(crit, {"latency": _latency(9.7)})
    assert d.primary.result.method == "sequential-cs" and d.outcome == "promote"
    assert stats.decide(crit, {"latency": _latency(10.3)}).outcome == "rollback"


def test_degenerate_primary_continues():
    d = stats.decide(
        CRITERIA, {"conversion": (stats.Proportion(1, 0), stats.Proportion(1, 1)), "latency": _latency(10.0)}
    )
    assert d.outcome == "continue" and d.primary.status == "degenerate"


def test_criteria_validation():
    with pytest.raises(pydantic.ValidationError, match="`sequential_tuning` is required"):
        stats.SuccessCriteria(primary={"name": "x"}, method="sequential")
    with pytest.raises(pydantic.ValidationError, match="metric names must be unique"):
        stats.SuccessCriteria(primary={"name": "x"}, guardrails=[{"name": "x"}])
    with pytest.raises(pydantic.ValidationError, match="Extra inputs are not permitted"):
        stats.PrimaryMetric(name="x", minimum_efect=0.1)
    with pytest.raises(StatsError, match="`criteria` is invalid"):
        stats.decide({"primary": {"name": "x", "direction": "up"}}, {})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"metrics": {"conversion": (1, 2)}}, r"`metrics` has no entry for `latency`"),
        ({"metrics": {**_metrics(2_400), "latency": (1,)}}, r"must be a \(control, treatment\)"),
        (
            {
                "metrics": {
                    **_metrics(2_400),
                    "conversion": (stats.Proportion([5, 5], [1, 1]), stats.Proportion([5, 5], [1, 1])),
                }
            },
            r"must hold scalar statistics",
        ),
        ({"metrics": _metrics(2_400), "counts": [1, 2]}, r"`counts` and `weights` must be given"),
        ({"metrics": _metrics(2_400), "counts": [1, 2], "weights": [0.3, 0.3]}, r"`weights` must sum to 1"),
    ],
)
def test_decide_misuse(kwargs, match):
    with pytest.raises(StatsError, match=match):
        stats.decide(CRITERIA, **kwargs)
