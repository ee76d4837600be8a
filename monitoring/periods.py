"""Analysis by allocation period: estimates that stay valid while the weights change.

A live reweighting (a bandit, a ramp) changes the weights at known times; each change
opens an allocation period, within which the weights are fixed. So each (unit, period)
is a randomised unit, analysed like a unit of a fixed-weight experiment:

- sample ratio: each period's units per variant against that period's weights
  (`stats.srm`), at `threshold / periods` (Bonferroni: a long run of short periods
  does not halt on chance);
- estimates: each variant's metric summarised per period, and each variant compared
  with the first one within each period, the periods combined by
  `stats.stratified_compare`; pooling the periods instead would compare arms that saw
  different mixes of periods (biased when the metric drifts).

Attribution (DuckDB): an outcome keyed by unit belongs to that unit's latest period
exposure that began at or before the outcome's time (an ASOF join; an outcome without a
time to the unit's last period); an outcome keyed by request id to the period of that
request's exposure. A unit seen in two variants within one period is left out (counted
in the warnings); exposures before the first period are not analysed.

Metric kinds, per (unit, period): `conversion`, a `stats.Proportion` of units with a
non-zero outcome; `continuous`, a `stats.SampleMean` of the outcome's sum.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tritonab.errors import MonitoringError
from tritonab.monitoring.analysis import (
    EXPOSURE_COLUMNS,
    OUTCOME_COLUMNS,
    _exposure_files,
    _outcome_files,
    _source,
    _split,
)
from tritonab.monitoring.router_log import EXPOSURES
from tritonab.splitter import stats

MetricKind = Literal["conversion", "continuous"]


@dataclass(frozen=True)
class Period:
    """An allocation period: from `start` (epoch seconds) to the next period's start."""

    start: float
    weights: Mapping[str, float]


@dataclass(frozen=True)
class PeriodAnalysis:
    """One metric, per variant and allocation period.

    Attributes:
        experiment, metric, kind: what was analysed.
        variants: names, the first one the baseline of the comparisons.
        periods: the allocation periods.
        units: units per (period, variant), shape (periods, variants).
        per_period: the metric's statistic, fields of shape (variants, periods).
        srm: one sample-ratio check per period (None for a period without units).
        srm_threshold: the per-period threshold used (Bonferroni over the periods).
        comparisons: variant -> the stratified comparison with the first variant.
        warnings: data left out, and why.
    """

    experiment: str
    metric: str
    kind: MetricKind
    variants: tuple[str, ...]
    periods: tuple[Period, ...]
    units: np.ndarray
    per_period: stats.Proportion | stats.SampleMean
    srm: tuple[stats.SRMResult | None, ...]
    srm_threshold: float
    comparisons: dict[str, stats.ComparisonResult]
    warnings: tuple[str, ...] = field(default_factory=tuple)

    def pooled(self) -> stats.Proportion | stats.SampleMean:
        """Each variant's statistic summed over the periods (fields of shape (variants,))."""
        stat = self.per_period
        parts = [np.asarray(x, dtype=np.float64).sum(axis=1) for x in stat._values()]
        return type(stat)(*parts)

    @property
    def mismatched(self) -> tuple[int, ...]:
        """The periods whose units do not fit their weights."""
        return tuple(i for i, r in enumerate(self.srm) if r is not None and bool(r.srm_detected))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: units, SRM p-values per period, pooled means, comparisons."""
        pooled = self.pooled()
        return {
            "experiment": self.experiment,
            "metric": self.metric,
            "kind": self.kind,
            "variants": list(self.variants),
            "periods": [{"start": p.start, "weights": dict(p.weights)} for p in self.periods],
            "units": self.units.astype(int).tolist(),
            "srm_p_values": [None if r is None else _num(r.p_value) for r in self.srm],
            "srm_threshold": self.srm_threshold,
            "mismatched_periods": list(self.mismatched),
            "means": dict(zip(self.variants, (_num(x) for x in np.asarray(pooled.mean)))),
            "comparisons": {
                v: {
                    "effect": _num(r.effect),
                    "ci_low": _num(r.ci_low),
                    "ci_high": _num(r.ci_high),
                    "p_value": _num(r.p_value),
                    "test": r.test,
                    "reason": r.reason,
                }
                for v, r in self.comparisons.items()
            },
            "warnings": list(self.warnings),
        }


def _num(value: Any) -> float | None:
    if value is None:
        return None
    x = float(value)
    return None if math.isnan(x) or math.isinf(x) else x


def _periods_sql(periods: Sequence[Period]) -> str:
    """`(idx, start, stop)` rows of the periods, as a VALUES list (numbers only)."""
    starts = [float(p.start) for p in periods]
    stops = [*starts[1:], math.inf]
    rows = ", ".join(f"({i}, {a!r}::DOUBLE, {b!r}::DOUBLE)" for i, (a, b) in enumerate(zip(starts, stops)))
    return rows.replace("inf::DOUBLE", "'infinity'::DOUBLE")


def _load(
    con: Any, experiment: str, metric: str, periods: Sequence[Period], exposures: str, outcomes: str
) -> None:
    """Temp tables: `ue` exposure rows with their period, `up` (unit, period) with its
    variant, `o` the metric's sum and non-zero count per (unit, period)."""
    values = _periods_sql(periods)
    con.execute(f"CREATE OR REPLACE TEMP TABLE p AS SELECT * FROM (VALUES {values}) p(idx, start, stop)")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE ue AS SELECT x.unit_id, x.variant, x.time, x.request_id, p.idx "
        f"FROM ({exposures}) x JOIN p ON x.time >= p.start AND x.time < p.stop "
        f"WHERE x.experiment = ? AND x.variant IS NOT NULL AND x.unit_id IS NOT NULL",
        [experiment],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE up AS SELECT unit_id, idx, min(variant) AS variant, "
        "min(variant) <> max(variant) AS mixed, min(time) AS first_time FROM ue GROUP BY unit_id, idx"
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE oc AS SELECT unit_id, request_id, value, "
        f"coalesce(time, 'infinity'::DOUBLE) AS t FROM ({outcomes}) "
        f"WHERE metric = ? AND (experiment IS NULL OR experiment = ?)",
        [metric, experiment],
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE a AS "
        "SELECT up.unit_id, up.idx, oc.value FROM (SELECT * FROM oc WHERE unit_id IS NOT NULL) oc "
        "ASOF JOIN up ON oc.unit_id = up.unit_id AND oc.t >= up.first_time "
        "UNION ALL SELECT r.unit_id, r.idx, oc.value FROM oc JOIN ("
        "SELECT request_id, min(unit_id) AS unit_id, min(idx) AS idx FROM ue "
        "WHERE request_id IS NOT NULL GROUP BY request_id) r USING (request_id) WHERE oc.unit_id IS NULL"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE o AS SELECT unit_id, idx, sum(value) AS s, "
        "count(*) FILTER (WHERE value <> 0) AS nz FROM a GROUP BY unit_id, idx"
    )


def _sums(con: Any, variants: Sequence[str], n_periods: int) -> np.ndarray:
    """(variants, periods, 4): units, sum, sum of squares, units with a non-zero outcome."""
    index = {v: i for i, v in enumerate(variants)}
    out = np.zeros((len(variants), n_periods, 4))
    rows = con.execute(
        "SELECT up.idx, up.variant, count(*), sum(coalesce(o.s, 0)), sum(coalesce(o.s, 0) ^ 2), "
        "count(*) FILTER (WHERE o.nz > 0) FROM up LEFT JOIN o USING (unit_id, idx) "
        "WHERE NOT up.mixed GROUP BY up.idx, up.variant"
    ).fetchall()
    for idx, variant, *values in rows:
        if variant in index:
            out[index[variant], int(idx)] = np.asarray(values, dtype=np.float64)
    return out


def _notes(con: Any, variants: Sequence[str], experiment: str, exposures: str, first: float) -> list[str]:
    """What the analysis left out."""
    notes = []
    mixed = con.execute("SELECT count(*) FROM up WHERE mixed").fetchone()[0]
    if mixed:
        notes.append(f"{mixed} (unit, period) pair(s) saw more than one variant within a period: excluded")
    early = con.execute(
        f"SELECT count(*) FROM ({exposures}) WHERE experiment = ? AND time < ?", [experiment, first]
    ).fetchone()[0]
    if early:
        notes.append(f"{early} exposure(s) before the first allocation period: not analysed")
    total, used = con.execute(
        "SELECT (SELECT count(*) FROM oc), "
        "(SELECT count(*) FROM a JOIN up USING (unit_id, idx) WHERE NOT up.mixed)"
    ).fetchone()
    if total > used:
        notes.append(
            f"{int(total - used)} outcome record(s) not attributed (before the unit's first exposure, "
            "unit never exposed or mixed, unknown request): ignored"
        )
    seen = {r[0] for r in con.execute("SELECT DISTINCT variant FROM up").fetchall()}
    extra = sorted(seen - set(variants))
    if extra:
        notes.append(f"exposures name variants not in the periods' weights: {extra}")
    return notes


def _srm(
    units: np.ndarray, periods: Sequence[Period], variants: Sequence[str], threshold: float
) -> list[stats.SRMResult | None]:
    """Each period's units against its weights; arms weighted 0 are left out of the test,
    and a unit in one is a mismatch by itself (p = 0)."""
    out: list[stats.SRMResult | None] = []
    for i, period in enumerate(periods):
        weights = np.array([float(period.weights.get(v, 0.0)) for v in variants])
        counts = units[i]
        live = weights > 0
        if counts.sum() == 0 or live.sum() < 2:
            out.append(None)
            continue
        result = stats.srm(counts[live], weights[live] / weights[live].sum(), threshold=threshold)
        if counts[~live].sum() > 0:
            result = stats.SRMResult(result.chi2, 0.0, True, result.expected, threshold, None)
        out.append(result)
    return out


def analyze_periods(
    experiment: str,
    log_dir: str | os.PathLike[str],
    periods: Sequence[Period],
    *,
    metric: str,
    kind: MetricKind = "conversion",
    variants: Sequence[str] | None = None,
    outcomes: Sequence[str | os.PathLike[str]] = (),
    alpha: float = 0.05,
    srm_threshold: float = stats.SRM_THRESHOLD,
    exposure_files: Sequence[str | os.PathLike[str]] | None = None,
) -> PeriodAnalysis:
    """Analyse one metric of an experiment by allocation period.

    Args:
        experiment: the experiment (router) name.
        log_dir: the log folder (`<log_dir>/<experiment>/exposures`, `<log_dir>/outcomes`).
        periods: the allocation periods in time order.
        metric: the outcome metric.
        kind: `conversion` (units with a non-zero outcome) or `continuous` (its sum).
        variants: the variants in order, the first the baseline of the comparisons
            (default: the first period's weights, in their order).
        outcomes: extra outcome files (JSON Lines, CSV or Parquet).
        alpha: the comparisons' significance level.
        srm_threshold: the family-wise SRM threshold, divided among the periods.
        exposure_files: read these instead of the experiment's exposure folder.

    Returns:
        A `PeriodAnalysis`.

    Raises:
        MonitoringError: no periods, periods out of order, no exposure files, unreadable
            files or an unknown kind.
    """
    import duckdb

    if not periods:
        raise MonitoringError(f"analysis of `{experiment}` by period: no allocation period given")
    starts = [p.start for p in periods]
    if any(b <= a for a, b in zip(starts, starts[1:])):
        raise MonitoringError(
            f"analysis of `{experiment}` by period: periods must start in increasing time order"
        )
    if kind not in ("conversion", "continuous"):
        raise MonitoringError(f"metric kind `{kind}`: expected `conversion` or `continuous`")
    variants = tuple(periods[0].weights if variants is None else variants)
    if len(variants) < 2:
        raise MonitoringError(
            f"analysis of `{experiment}` by period: expected two variants or more, got {variants}"
        )
    folder = Path(log_dir)
    notes: list[str] = []
    files = (
        [Path(p) for p in exposure_files]
        if exposure_files is not None
        else _exposure_files(folder / experiment / EXPOSURES, notes)
    )
    if not files:
        raise MonitoringError(f"no exposure segments for experiment `{experiment}` under `{folder}`")
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="tritonab-periods-") as scratch:
            exposures_sql = _source(*_split(files), EXPOSURE_COLUMNS)
            outcomes_sql = _source(*_split(_outcome_files(folder, outcomes, Path(scratch))), OUTCOME_COLUMNS)
            _load(con, experiment, metric, periods, exposures_sql, outcomes_sql)
            notes += _notes(con, variants, experiment, exposures_sql, float(periods[0].start))
        sums = _sums(con, variants, len(periods))
    except duckdb.Error as exc:
        raise MonitoringError(
            f"analysis of `{experiment}` by period failed reading the logs: {exc}"
        ) from None
    finally:
        con.close()
    n, s1, s2, nz = (sums[..., i] for i in range(4))
    stat: stats.Proportion | stats.SampleMean = (
        stats.Proportion(n, nz) if kind == "conversion" else stats.SampleMean(n, s1, s2)
    )
    threshold = srm_threshold / len(periods)
    units = n.T.copy()
    comparisons = {
        v: stats.stratified_compare(stat[0], stat[i], alpha=alpha) for i, v in enumerate(variants) if i > 0
    }
    return PeriodAnalysis(
        experiment=experiment,
        metric=metric,
        kind=kind,
        variants=variants,
        periods=tuple(periods),
        units=units,
        per_period=stat,
        srm=tuple(_srm(units, periods, variants, threshold)),
        srm_threshold=threshold,
        comparisons=comparisons,
        warnings=tuple(notes),
    )
