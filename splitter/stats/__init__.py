"""The statistics engine: sufficient statistics, comparisons, SRM, power, CUPED, decisions.

Pure numpy/scipy/statsmodels; never imports Triton. Misuse raises
`tritonab.errors.StatsError` naming the argument; degenerate data returns a result with a
`reason` code and no p-value (None for scalars, NaN inside arrays).

    from tritonab.splitter import stats
    c, t = stats.Proportion(10_000, 1_000), stats.Proportion(10_000, 1_100)
    stats.compare(c, t).p_value
"""

from tritonab.splitter.stats._bayes import BayesSummary, bayes_summary
from tritonab.splitter.stats._compare import ComparisonResult, compare
from tritonab.splitter.stats._cuped import AdjustedMean, CovariateMean, cuped, cuped_from_arrays
from tritonab.splitter.stats._decide import Decision, MetricVerdict, Verdict, decide
from tritonab.splitter.stats._power import mde, sample_size
from tritonab.splitter.stats._sequential import half_width as sequential_half_width
from tritonab.splitter.stats._sequential import p_value as sequential_p_value
from tritonab.splitter.stats._srm import SRM_THRESHOLD, SRMResult, adjust, srm
from tritonab.splitter.stats._sufficient import Proportion, Ratio, SampleMean, aggregate
from tritonab.splitter.stats.criteria import GuardrailMetric, PrimaryMetric, SuccessCriteria

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
]
