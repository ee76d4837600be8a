"""The statistics engine: sufficient statistics, comparisons, SRM, power, CUPED, decisions.

Pure numpy/scipy/statsmodels; never imports Triton. Misuse raises
`tritonab.errors.StatsError` naming the argument; degenerate data returns a result with a
`reason` code and no p-value (None for scalars, NaN inside arrays).

    from tritonab.splitter import stats
    c, t = stats.Proportion(10_000, 1_000), stats.Proportion(10_000, 1_100)
    stats.compare(c, t).p_value
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tritonab.splitter.stats._bayes import BayesSummary, bayes_summary
    from tritonab.splitter.stats._compare import ComparisonResult, compare
    from tritonab.splitter.stats._cuped import AdjustedMean, CovariateMean, cuped, cuped_from_arrays
    from tritonab.splitter.stats._decide import Decision, MetricVerdict, Verdict, decide
    from tritonab.splitter.stats._power import mde, sample_size
    from tritonab.splitter.stats._sequential import half_width as sequential_half_width
    from tritonab.splitter.stats._sequential import p_value as sequential_p_value
    from tritonab.splitter.stats._srm import SRM_THRESHOLD, SRMResult, adjust, srm
    from tritonab.splitter.stats._stratified import stratified_compare
    from tritonab.splitter.stats._sufficient import Proportion, Ratio, SampleMean, aggregate
    from tritonab.splitter.stats.criteria import GuardrailMetric, PrimaryMetric, SuccessCriteria

# Loaded on first use (PEP 562): the router, the transforms and the ONNX runner import the
# spec, which imports `criteria`, in every Python-backend stub; scipy and statsmodels
# would add most of a second to each model's start-up for nothing.
_LAZY = {
    "BayesSummary": "_bayes",
    "bayes_summary": "_bayes",
    "ComparisonResult": "_compare",
    "compare": "_compare",
    "AdjustedMean": "_cuped",
    "CovariateMean": "_cuped",
    "cuped": "_cuped",
    "cuped_from_arrays": "_cuped",
    "Decision": "_decide",
    "MetricVerdict": "_decide",
    "Verdict": "_decide",
    "decide": "_decide",
    "mde": "_power",
    "sample_size": "_power",
    "SRM_THRESHOLD": "_srm",
    "SRMResult": "_srm",
    "adjust": "_srm",
    "srm": "_srm",
    "stratified_compare": "_stratified",
    "Proportion": "_sufficient",
    "Ratio": "_sufficient",
    "SampleMean": "_sufficient",
    "aggregate": "_sufficient",
    "GuardrailMetric": "criteria",
    "PrimaryMetric": "criteria",
    "SuccessCriteria": "criteria",
}
_RENAMED = {
    "sequential_half_width": ("_sequential", "half_width"),
    "sequential_p_value": ("_sequential", "p_value"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name], name
    elif name in _RENAMED:
        module, attribute = _RENAMED[name]
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "SRM_THRESHOLD",
    "AdjustedMean",
    "BayesSummary",
    "ComparisonResult",
    "CovariateMean",
    "Decision",
    "GuardrailMetric",
    "MetricVerdict",
    "Verdict",
    "PrimaryMetric",
    "Proportion",
    "Ratio",
    "SRMResult",
    "SampleMean",
    "SuccessCriteria",
    "adjust",
    "aggregate",
    "bayes_summary",
    "compare",
    "cuped",
    "cuped_from_arrays",
    "decide",
    "mde",
    "sample_size",
    "sequential_half_width",
    "sequential_p_value",
    "srm",
    "stratified_compare",
]
