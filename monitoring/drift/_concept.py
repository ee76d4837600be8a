"""Concept drift: the outcome stream of each variant, windowed, with an ADWIN change detector.

Outcomes (`tritonab outcomes add`, `report_outcome`) are attributed to variants through
the exposure log, as the analysis does: an outcome keyed by request id takes that
request's variant; one keyed by unit id takes the unit's variant (units seen in two
variants are left out, as are outcomes from before the unit's first exposure). An
outcome without a time takes its exposure's.

Each variant's values of one metric (a 0/1 `correct` gives accuracy; an absolute error
gives the mean error), in time order, feed river's ADWIN (Bifet and Gavalda, 2007): a
window that shrinks when two of its sub-windows have means that differ by more than the
Hoeffding-style bound at confidence `delta`. ADWIN says *when* it became sure of a
change; *where* the change happened is then estimated within the window ADWIN held
just before the detection, as the split that maximises the two-sample statistic
n1 * n2 / (n1 + n2) * (mean1 - mean2)^2 (the maximum-likelihood change point of a
mean shift). The means before and after are those of the two sides of that split.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from tritonab.errors import DriftError, MonitoringError
from tritonab.monitoring.router_log import EXPOSURES

DEFAULT_DELTA = 0.002


@dataclass(frozen=True)
class ChangePoint:
    """A change ADWIN detected: when it was seen, where the new regime starts, the means."""

    detected_at: float
    detected_index: int
    changed_at: float
    change_index: int
    mean_before: float
    mean_after: float


@dataclass(frozen=True)
class OutcomeWindow:
    """One window of a variant's outcome values."""

    start: float
    end: float
    count: int
    mean: float


@dataclass(frozen=True)
class VariantConcept:
    """One variant's outcome stream: windows and detected changes."""

    variant: str
    count: int
    mean: float
    windows: tuple[OutcomeWindow, ...]
    changes: tuple[ChangePoint, ...]

    @property
    def drifted(self) -> bool:
        return bool(self.changes)

    def changed_since(self, time: float) -> bool:
        """Whether a change was detected at or after `time`."""
        return any(c.detected_at >= time for c in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": _num(self.mean),
            "drifted": self.drifted,
            "windows": [{**w.__dict__, "mean": _num(w.mean)} for w in self.windows],
            "changes": [c.__dict__ for c in self.changes],
        }


@dataclass(frozen=True)
class ConceptReport:
    """Concept drift of one metric of one experiment, per variant."""

    experiment: str
    metric: str
    delta: float
    window_s: float | None
    variants: dict[str, VariantConcept]
    notes: list[str] = field(default_factory=list)

    @property
    def drifted(self) -> bool:
        return any(v.drifted for v in self.variants.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "metric": self.metric,
            "delta": self.delta,
            "window_s": self.window_s,
            "drifted": self.drifted,
            "variants": {n: v.to_dict() for n, v in self.variants.items()},
            "notes": self.notes,
        }


def _num(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def detect_changes(
    values: ArrayLike, times: ArrayLike | None = None, *, delta: float = DEFAULT_DELTA
) -> list[ChangePoint]:
    """Run ADWIN over `values` (in order) and return every change it detects.

    Args:
        values: the stream (e.g. 1 for a correct prediction, 0 otherwise).
        times: a time per value (default: the positions).
        delta: ADWIN's confidence; smaller detects fewer, surer changes.

    Raises:
        DriftError: `delta` outside (0, 1) or lengths that differ.
    """
    from river.drift import ADWIN

    if not 0 < delta < 1:
        raise DriftError(f"`delta` must be in (0, 1), got {delta}")
    data = np.asarray(values, dtype=np.float64)
    when = np.arange(len(data), dtype=np.float64) if times is None else np.asarray(times, dtype=np.float64)
    if len(when) != len(data):
        raise DriftError(f"{len(data)} values but {len(when)} times")
    detector = ADWIN(delta=delta)  # type: ignore[no-untyped-call]
    changes = []
    for i, x in enumerate(data.tolist()):
        width = int(detector.width)
        detector.update(x)  # type: ignore[no-untyped-call]
        if detector.drift_detected:
            first = i - width
            split, before, after = best_split(data[first : i + 1])
            at = first + split
            changes.append(ChangePoint(float(when[i]), i, float(when[at]), at, before, after))
    return changes


def best_split(values: ArrayLike) -> tuple[int, float, float]:
    """(k, mean of values[:k], mean of values[k:]) for the k that maximises
    k * (n - k) / n * (mean1 - mean2)^2."""
    data = np.asarray(values, dtype=np.float64)
    n = len(data)
    if n < 2:
        return 0, math.nan, float(data.mean()) if n else math.nan
    k = np.arange(1, n)
    total = np.cumsum(data)[:-1]
    left = total / k
    right = (data.sum() - total) / (n - k)
    score = k * (n - k) / n * (left - right) ** 2
    best = int(np.argmax(score))
    return best + 1, float(left[best]), float(right[best])


def windows_of(values: ArrayLike, times: ArrayLike, window_s: float | None) -> list[OutcomeWindow]:
    """Count and mean per window (aligned on multiples of `window_s`; None: one window)."""
    data = np.asarray(values, dtype=np.float64)
    when = np.asarray(times, dtype=np.float64)
    if not len(data):
        return []
    if window_s is None:
        return [OutcomeWindow(float(when.min()), float(when.max()), len(data), float(data.mean()))]
    index = np.floor(when / window_s)
    out = []
    for key in np.unique(index):
        part = data[index == key]
        out.append(
            OutcomeWindow(float(key * window_s), float((key + 1) * window_s), len(part), float(part.mean()))
        )
    return out


# -- the outcome stream ----------------------------------------------------------------


def outcome_stream(
    log_dir: str | os.PathLike[str],
    experiment: str,
    metric: str,
    *,
    outcomes: Sequence[str | os.PathLike[str]] = (),
) -> tuple[pd.DataFrame, list[str]]:
    """(variant, time, value) of every attributed outcome of `metric`, in time order, and notes.

    Raises:
        DriftError: no exposure log, or unreadable files.
    """
    import duckdb

    from tritonab.monitoring import analysis

    folder = Path(log_dir)
    notes: list[str] = []
    files = analysis._exposure_files(folder / experiment / EXPOSURES, notes)
    if not files:
        raise DriftError(f"no exposure segments for experiment `{experiment}` under `{folder}`")
    con = duckdb.connect()
    try:
        with tempfile.TemporaryDirectory(prefix="tritonab-concept-") as scratch:
            outcome_files = analysis._outcome_files(folder, outcomes, Path(scratch))
            exposures = analysis._source(*analysis._split(files), analysis.EXPOSURE_COLUMNS)
            outcome_sql = analysis._source(*analysis._split(outcome_files), analysis.OUTCOME_COLUMNS)
            frame = _attribute(con, experiment, metric, exposures, outcome_sql)
    except MonitoringError as exc:
        raise DriftError(str(exc)) from None
    except duckdb.Error as exc:
        raise DriftError(f"concept drift of `{experiment}`: reading the logs failed: {exc}") from None
    finally:
        con.close()
    lost = int(frame["variant"].isna().sum())
    if lost:
        notes.append(
            f"{lost} `{metric}` outcome(s) not attributed to a variant (unknown request or unit, "
            "a unit in several variants, or an outcome before the unit's first exposure): ignored"
        )
    return frame.dropna(subset=["variant", "time"]).reset_index(drop=True), notes


def _attribute(con: Any, experiment: str, metric: str, exposures: str, outcomes: str) -> pd.DataFrame:
    con.execute(
        f"CREATE TEMP TABLE e AS SELECT unit_id, request_id, variant, time FROM ({exposures}) "
        "WHERE experiment = ? AND variant IS NOT NULL",
        [experiment],
    )
    con.execute(
        "CREATE TEMP TABLE req AS SELECT request_id, min(variant) AS variant, min(time) AS time "
        "FROM e WHERE request_id IS NOT NULL GROUP BY request_id HAVING min(variant) = max(variant)"
    )
    con.execute(
        "CREATE TEMP TABLE un AS SELECT unit_id, min(variant) AS variant, min(time) AS time "
        "FROM e WHERE unit_id IS NOT NULL GROUP BY unit_id HAVING min(variant) = max(variant)"
    )
    return con.execute(
        "SELECT CASE WHEN req.variant IS NOT NULL THEN req.variant "
        "WHEN o.time IS NULL OR o.time >= un.time THEN un.variant END AS variant, "
        "coalesce(o.time, req.time, un.time) AS time, o.value AS value "
        f"FROM ({outcomes}) o LEFT JOIN req ON o.request_id = req.request_id "
        "LEFT JOIN un ON o.unit_id = un.unit_id "
        "WHERE o.metric = ? AND (o.experiment IS NULL OR o.experiment = ?) ORDER BY time",
        [metric, experiment],
    ).df()


def concept_drift(
    log_dir: str | os.PathLike[str],
    experiment: str,
    metric: str,
    *,
    variant: str | None = None,
    window_s: float | None = None,
    delta: float = DEFAULT_DELTA,
    outcomes: Sequence[str | os.PathLike[str]] = (),
    since: float | None = None,
    require_outcomes: bool = True,
) -> ConceptReport:
    """Windowed means and ADWIN change points of `metric` per variant.

    Args:
        log_dir: the log folder (exposures and `outcomes/`).
        experiment: the experiment (router) name.
        metric: the outcome metric (e.g. `correct`).
        variant: only this variant.
        window_s: window width in seconds (None: one window).
        delta: ADWIN's confidence.
        outcomes: extra outcome files (CSV, JSON Lines, Parquet).
        since: only outcomes at or after this time.
        require_outcomes: raise when no outcome of `metric` is found (else: no variants).

    Raises:
        DriftError: unreadable logs, no outcomes of `metric` (see `require_outcomes`),
            bad `delta`.
    """
    frame, notes = outcome_stream(log_dir, experiment, metric, outcomes=outcomes)
    if since is not None:
        frame = frame[frame["time"] >= since]
    if variant is not None:
        frame = frame[frame["variant"] == variant]
    if not len(frame) and require_outcomes:
        which = f" of variant `{variant}`" if variant else ""
        raise DriftError(
            f"no `{metric}` outcomes{which} attributed to experiment `{experiment}` in `{log_dir}`"
        )
    variants = {}
    for name, part in frame.groupby("variant", sort=True):
        values, times = part["value"].to_numpy(np.float64), part["time"].to_numpy(np.float64)
        variants[str(name)] = VariantConcept(
            str(name),
            len(values),
            float(values.mean()),
            tuple(windows_of(values, times, window_s)),
            tuple(detect_changes(values, times, delta=delta)),
        )
    return ConceptReport(experiment, metric, delta, window_s, variants, notes)
