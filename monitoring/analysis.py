"""Experiment analysis: DuckDB over exposure and outcome files -> the statistics engine.

One scan of the exposure segments builds a unit table (variant, exposures, latency sum,
first exposure time); one scan of the outcome files sums each metric per unit
(outcomes at or after the unit's first exposure; outcomes keyed by request id only are
mapped to their unit through the exposures, whatever their time). Everything else is
aggregation over those two small tables, grouped by (time bin of first exposure,
variant), so the figures over time and the totals come from the same sums.

Metrics (units are the randomisation units; a unit seen in two variants is excluded
and counted in the warnings):

- `<m>`: SampleMean of the per-unit sum of outcome `m` (units without it count 0);
- `<m>.any`: Proportion of units with a non-zero outcome `m` (conversion);
- `<m>.per_exposure`: Ratio sum(m) / exposures over units (delta method);
- `exposures_per_unit`: SampleMean; `latency_us`: Ratio of latency per exposure.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tritonab.errors import MonitoringError, SpecError
from tritonab.monitoring import audit
from tritonab.monitoring.compaction import (
    ROLLUP_COLUMNS,
    compacted_sources,
    rollups,
    sql_list,
    sql_string,
    typed_columns,
)
from tritonab.monitoring.outcomes import OUTCOMES_DIR, parse_outcomes
from tritonab.monitoring.router_log import EXPOSURES
from tritonab.monitoring.segments import dropped_total, dumps, is_encrypted, read_segment, segment_files
from tritonab.security import Key
from tritonab.splitter import stats
from tritonab.splitter.spec import Experiment, load_spec, spec_from_json

EXPOSURE_COLUMNS = {
    "time": "DOUBLE",
    "experiment": "VARCHAR",
    "variant": "VARCHAR",
    "unit_id": "VARCHAR",
    "request_id": "VARCHAR",
    "latency_us": "DOUBLE",
}
OUTCOME_COLUMNS = {
    "unit_id": "VARCHAR",
    "request_id": "VARCHAR",
    "metric": "VARCHAR",
    "value": "DOUBLE",
    "time": "DOUBLE",
    "experiment": "VARCHAR",
}
BASE_METRICS = ("exposures_per_unit", "latency_us")


@dataclass(frozen=True)
class Timeline:
    """Cumulative comparisons of one metric over time bins (by units' first exposure).

    Attributes:
        metric: the metric name.
        ends: end time (epoch seconds) of each bin.
        comparisons: treatment variant -> sequential ComparisonResult with arrays per bin.
    """

    metric: str
    ends: np.ndarray
    comparisons: dict[str, stats.ComparisonResult]


@dataclass(frozen=True)
class Analysis:
    """Everything `analyze` found; `to_dict` gives JSON.

    Attributes:
        experiment: its name. variants: names, control first. weights: configured weights
        (None without a spec). units, exposures: per variant. latency: per variant
        {mean, p50, p95, p99} over rows (microseconds). metrics: name -> variant -> statistic.
        comparisons: name -> treatment variant -> ComparisonResult (fixed horizon).
        srm: the SRM check on units, None without weights. decisions: treatment variant ->
        Decision when the spec has success criteria. timeline: the primary metric over
        time. warnings: data problems (drops, torn records, mixed units, ...).
    """

    experiment: str
    variants: list[str]
    weights: dict[str, float] | None
    units: dict[str, int]
    exposures: dict[str, int]
    latency: dict[str, dict[str, float]]
    metrics: dict[str, dict[str, Any]]
    comparisons: dict[str, dict[str, stats.ComparisonResult]]
    srm: stats.SRMResult | None
    decisions: dict[str, stats.Decision]
    timeline: Timeline | None
    warnings: list[str] = field(default_factory=list)
    dropped: int = 0

    @property
    def control(self) -> str:
        return self.variants[0]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly summary."""
        return {
            "experiment": self.experiment,
            "variants": self.variants,
            "weights": self.weights,
            "units": self.units,
            "exposures": self.exposures,
            "latency_us": self.latency,
            "metrics": {m: {v: _stat_dict(s) for v, s in per.items()} for m, per in self.metrics.items()},
            "comparisons": {
                m: {v: r.to_dict() for v, r in per.items()} for m, per in self.comparisons.items()
            },
            "srm": None if self.srm is None else self.srm.to_dict(),
            "decisions": {v: _decision_dict(d) for v, d in self.decisions.items()},
            "warnings": self.warnings,
            "dropped": self.dropped,
        }


def _stat_dict(stat: Any) -> dict[str, Any]:
    out = {f.name: _num(getattr(stat, f.name)) for f in dataclasses.fields(stat)}
    out.update(kind=stat.kind, mean=_num(stat.mean))
    return out


def _num(x: Any) -> Any:
    x = float(x)
    return None if math.isnan(x) or math.isinf(x) else x


def _decision_dict(d: stats.Decision) -> dict[str, Any]:
    return {
        "outcome": d.outcome.value,
        "reasons": list(d.reasons),
        "primary": {"name": d.primary.name, "status": d.primary.status},
        "guardrails": [{"name": g.name, "status": g.status} for g in d.guardrails],
        "units_still_needed": d.units_still_needed,
    }


# -- file discovery --------------------------------------------------------------------


def _columns(columns: dict[str, str]) -> str:
    return "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"


def _source(
    jsonl: Sequence[Path],
    parquet: Sequence[Path],
    csv: Sequence[Path],
    columns: dict[str, str],
    registered: Sequence[str] = (),
) -> str:
    """A SELECT over JSON Lines, Parquet and CSV files and registered in-memory tables."""
    names = ", ".join(columns)
    parts = [f"SELECT {names} FROM {name}" for name in registered]
    if jsonl:
        parts.append(
            f"SELECT {names} FROM read_json({sql_list(jsonl)}, format='newline_delimited', "
            f"columns={_columns(columns)}, ignore_errors=true)"
        )
    if parquet:
        import pyarrow.parquet as pq

        present = {name for path in parquet for name in pq.read_schema(path).names}
        typed = typed_columns(present, columns)
        parts.append(f"SELECT {typed} FROM read_parquet({sql_list(parquet)}, union_by_name=true)")
    if csv:
        parts.append(
            f"SELECT {names} FROM read_csv({sql_list(csv)}, header=true, "
            f"union_by_name=true, columns={_columns(columns)})"
        )
    if not parts:
        nulls = ", ".join(f"CAST(NULL AS {v}) AS {k}" for k, v in columns.items())
        parts.append(f"SELECT {nulls} WHERE false")
    return " UNION ALL ".join(parts)


_ARROW_TYPES = {"DOUBLE": "float64", "VARCHAR": "string"}


def _decrypted_table(paths: Sequence[Path], columns: dict[str, str], key: Key | None):
    """Encrypted segments decrypted in memory into one Arrow table with `columns`
    (for DuckDB to scan as a registered relation: no plaintext is written)."""
    import json

    import pyarrow as pa

    values: dict[str, list[Any]] = {name: [] for name in columns}
    for path in paths:
        for line in read_segment(path, key).splitlines():
            if not line:
                continue
            record = json.loads(line)
            for name, kind in columns.items():
                value = record.get(name)
                if value is not None:
                    value = float(value) if kind == "DOUBLE" else str(value)
                values[name].append(value)
    schema = pa.schema([(n, _ARROW_TYPES[k]) for n, k in columns.items()])
    return pa.table(values, schema=schema)


def _split(paths: Sequence[Path]) -> tuple[list[Path], list[Path], list[Path]]:
    jsonl = [p for p in paths if p.suffix.lower() in (".jsonl", ".json", ".tmp")]
    parquet = [p for p in paths if p.suffix.lower() == ".parquet"]
    csv = [p for p in paths if p.suffix.lower() == ".csv"]
    return jsonl, parquet, csv


def _exposure_files(folder: Path, notes: list[str]) -> list[Path]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        found = segment_files(folder)
    for w in caught:
        notes.append(str(w.message))
    if found.unsealed:
        notes.append(
            f"{len(found.unsealed)} unsealed exposure segment(s) read (writer running "
            "or crashed; `tritonab logs recover` seals crashed ones)"
        )
    return [*found.files, *found.parquet]


def _outcome_files(log_dir: Path, extra: Sequence[str | os.PathLike[str]], scratch: Path) -> list[Path]:
    """The log folder's outcome files, plus `extra` ones: CSV and JSON Lines validated
    (`parse_outcomes`) and normalised into `scratch`, Parquet read as it is."""
    folder = log_dir / OUTCOMES_DIR
    files: list[Path] = []
    if folder.is_dir():
        held = compacted_sources(folder)
        files = [p for p in sorted(folder.glob("*.jsonl")) if p.name not in held]
        files += sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
    for i, item in enumerate(extra):
        path = Path(item)
        if not path.exists():
            raise MonitoringError(f"outcomes file `{path}` does not exist")
        if path.suffix.lower() == ".parquet":
            files.append(path)
            continue
        target = scratch / f"extra-{i}.jsonl"
        target.write_text(
            "".join(dumps(o.model_dump()) + "\n" for o in parse_outcomes(path)), encoding="utf-8"
        )
        files.append(target)
    return files


def _load_spec(
    experiment: str, log_dir: Path, spec: Experiment | str | os.PathLike[str] | None
) -> Experiment | None:
    if isinstance(spec, Experiment):
        return spec
    if spec is not None:
        return load_spec(spec)
    stored = log_dir / experiment / "spec.json"
    if stored.exists():
        try:
            return spec_from_json(stored.read_text(encoding="utf-8"))
        except SpecError:
            return None
    return None


# -- queries ---------------------------------------------------------------------------


def _rolled(paths: Sequence[Path], stream: str) -> tuple[dict[str, list[Path]], list[Path]]:
    """Compacted Parquet files with rollups (`monitoring.compaction`): the rollups by kind;
    and the files without, read row by row."""
    by_kind: dict[str, list[Path]] = {}
    raw = []
    for path in paths:
        found = rollups(path, stream)
        if found is None:
            raw.append(path)
            continue
        for kind, rollup in found.items():
            by_kind.setdefault(kind, []).append(rollup)
    return by_kind, raw


def _rollup_rows(paths: Sequence[Path], stream: str, kind: str) -> str:
    """The rows of `kind` rollups of `stream` (`ROLLUP_COLUMNS`), or an empty relation of them."""
    columns = ROLLUP_COLUMNS[stream, kind]
    if paths:
        return f"SELECT {', '.join(columns)} FROM read_parquet({sql_list(paths)})"
    return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items()) + " WHERE false"


def _load_tables(
    con,
    experiment: str,
    exposures_sql: str,
    outcomes_sql: str,
    *,
    columnar: bool,
    columnar_outcomes: bool,
    all_exposures_sql: str | None = None,
    rolled_outcomes_sql: str | None = None,
    exposure_rollups: dict[str, list[Path]] | None = None,
    outcome_rollups: Sequence[Path] = (),
) -> int:
    """Temp relations: `e` (exposure rows), `oc` (outcome rows), `x` (outcome rows with
    their unit); `eu` (per-unit parts of the exposures: their rollups and `e`'s rows),
    `el` (its latency histogram parts) and `xu` (per (unit, metric) parts of `x`), which
    the aggregates read; `_units` adds `u` (units). Outcomes keyed by request id only
    are mapped to their unit through a second read of the exposures (all of them,
    `all_exposures_sql`), which only they pay for; the outcome rollups are not read then.
    Files with rollups are in `exposure_rollups` (by kind) and `outcome_rollups`, their
    rows left out of `exposures_sql` and `outcomes_sql` and given by `all_exposures_sql`
    and `rolled_outcomes_sql`.
    Returns the experiment's outcome rows."""
    # Over columnar sources (Parquet, decrypted Arrow tables) `e` and `oc` are views: each
    # query scans the columns it needs instead of copying every row first. JSON Lines and
    # CSV are parsed once, into a table. A view takes no parameters: names are literals.
    literal = sql_string(experiment)
    rolled = exposure_rollups or {}
    con.execute(
        f"CREATE OR REPLACE TEMP {'VIEW' if columnar else 'TABLE'} e AS "
        f"SELECT unit_id, variant, time, latency_us "
        f"FROM ({exposures_sql}) WHERE variant IS NOT NULL AND experiment = {literal}"
    )
    exposed = f"WHERE variant IS NOT NULL AND experiment = {literal}"
    con.execute(
        "CREATE OR REPLACE TEMP VIEW eu AS SELECT unit_id, variant, n, lat, first_time FROM ("
        f"{_rollup_rows(rolled.get('units', []), EXPOSURES, 'units')}"
        f") {exposed} UNION ALL SELECT unit_id, variant, 1 AS n, latency_us AS lat, time AS first_time FROM e"
    )
    con.execute(
        "CREATE OR REPLACE TEMP VIEW el AS SELECT variant, latency_us, n, with_unit FROM ("
        f"{_rollup_rows(rolled.get('latency', []), EXPOSURES, 'latency')}"
        f") {exposed} UNION ALL SELECT variant, latency_us, 1 AS n, "
        "CASE WHEN unit_id IS NULL THEN 0 ELSE 1 END AS with_unit FROM e"
    )
    # `ocr`: the rows of outcome files without rollups; `oc`: every outcome row (the
    # compacted files' rows too: request-keyed outcomes and early ones are read from it).
    mine = f"metric IS NOT NULL AND (experiment IS NULL OR experiment = {literal})"
    con.execute(
        f"CREATE OR REPLACE TEMP {'VIEW' if columnar_outcomes else 'TABLE'} ocr AS "
        f"SELECT unit_id, request_id, metric, value, time FROM ({outcomes_sql}) WHERE {mine}"
    )
    rolled_rows = ""
    if rolled_outcomes_sql is not None:
        rolled_rows = (
            " UNION ALL SELECT unit_id, request_id, metric, value, time "
            f"FROM ({rolled_outcomes_sql}) WHERE {mine}"
        )
    con.execute(f"CREATE OR REPLACE TEMP VIEW oc AS SELECT * FROM ocr{rolled_rows}")
    rollup_rows = f"SELECT * FROM ({_rollup_rows(outcome_rollups, OUTCOMES_DIR, 'units')}) WHERE {mine}"
    mapped = ""
    # Two queries, not one with a FILTER: over Parquet the first reads row counts and the
    # filter columns, and the second skips every row group whose statistics say `unit_id`
    # has no nulls, where one query would decode every unit id of every row.
    if outcome_rollups:  # the compacted files' counts from their rollups
        (outcomes,) = con.execute(
            f"SELECT (SELECT count(*) FROM ocr) + (SELECT coalesce(sum(c), 0) FROM ({rollup_rows}))"
        ).fetchone()
    else:
        (outcomes,) = con.execute("SELECT count(*) FROM oc").fetchone()
    by_request = con.execute(
        "SELECT 1 FROM oc WHERE unit_id IS NULL AND request_id IS NOT NULL LIMIT 1"
    ).fetchone()
    if by_request:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE r AS SELECT request_id, min(unit_id) AS unit_id "
            f"FROM ({all_exposures_sql or exposures_sql}) WHERE experiment = ? AND request_id IS NOT NULL "
            f"AND unit_id IS NOT NULL GROUP BY request_id",
            [experiment],
        )
        # A request's own outcome counts whatever its time.
        mapped = (
            "UNION ALL SELECT r.unit_id, oc.metric, oc.value, NULL AS time FROM oc "
            "JOIN r USING (request_id) WHERE oc.unit_id IS NULL"
        )
    # Outcome rows with their unit: the view `x` the early outcomes are summed from.
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW x AS SELECT unit_id, metric, value, time FROM oc "
        f"WHERE unit_id IS NOT NULL {mapped}"
    )
    row_parts = (
        "SELECT unit_id, metric, value AS s, CASE WHEN value <> 0 THEN 1 ELSE 0 END AS nz, 1 AS c, time AS t0"
    )
    if outcome_rollups and not by_request:
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW xu AS SELECT unit_id, metric, s, nz, c, t0 FROM ({rollup_rows}) "
            f"WHERE unit_id IS NOT NULL UNION ALL {row_parts} FROM ocr WHERE unit_id IS NOT NULL"
        )
    else:
        con.execute(f"CREATE OR REPLACE TEMP VIEW xu AS {row_parts} FROM x")
    return int(outcomes)


def _units(con, seen: Sequence[str]) -> None:
    """The unit table `u`: variant (its position in `seen`), mixed, n_exp, lat, first_time.

    Variants are grouped as small integers: min/max over integers cost a fraction of
    min/max over strings, in the one aggregate of the analysis that touches every row."""
    codes = " ".join(f"WHEN {sql_string(name)} THEN {i}" for i, name in enumerate(seen))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE u AS SELECT unit_id, min(v) AS variant, "
        "min(v) <> max(v) AS mixed, sum(n)::BIGINT AS n_exp, sum(lat) AS lat, min(first_time) AS first_time "
        f"FROM (SELECT unit_id, CASE variant {codes} END AS v, n, lat, first_time FROM eu "
        "WHERE unit_id IS NOT NULL) GROUP BY unit_id"
    )


def _bins(con, bins: int) -> tuple[float, float]:
    lo, hi = con.execute("SELECT min(first_time), max(first_time) FROM u WHERE NOT mixed").fetchone()
    lo = 0.0 if lo is None else float(lo)
    hi = lo if hi is None else float(hi)
    return lo, max((hi - lo) / bins, 1e-9)


def _grouped(
    con, sql: str, index: dict[int, int], size: int, bins: int, width: int, params: list
) -> np.ndarray:
    """Rows (bin, variant code, v1..vk) -> array (variants, bins, k) of sums; `index` maps
    a unit's variant code to its row (of `size`)."""
    out = np.zeros((size, bins, width))
    for row in con.execute(sql, params).fetchall():
        b, variant, *values = row
        if variant in index:
            out[index[variant], min(int(b), bins - 1)] += np.asarray(values, dtype=np.float64)
    return out


def _unit_sums(con, index, size, bins, lo, step) -> np.ndarray:
    """(variants, bins, 6): n, exposures, exposures^2, latency, latency^2, latency*exposures."""
    return _grouped(
        con,
        "SELECT floor((first_time - ?) / ?) AS b, variant, count(*), sum(n_exp), "
        "sum(n_exp * n_exp), sum(lat), sum(lat * lat), sum(lat * n_exp) "
        "FROM u WHERE NOT mixed GROUP BY b, variant",
        index,
        size,
        bins,
        6,
        [lo, step],
    )


_BINNED = (
    "SELECT metric, floor((first_time - ?) / ?) AS b, variant{by}, sum(s) AS s, sum(s * s) AS s2, "
    "count(*) FILTER (WHERE nz > 0) AS nz, sum(s * n_exp) AS sn, sum(c) AS c "
    "FROM ({pairs}) GROUP BY metric, b, variant{by}"
)
"""Per (metric, time bin, variant) sums over (unit, metric) pairs `{pairs}` (with `s`, `nz`,
`c` and the unit's `variant`, `first_time`, `n_exp`); `{by}` adds grouping columns."""


def _metric_sums(con, index, size, bins, lo, step) -> tuple[dict[str, np.ndarray], int]:
    """metric -> (variants, bins, 4): sum, sum of squares, units with non-zero, sum*exposures;
    and how many outcome records were counted.

    An outcome counts from its unit's first exposure on. The rows are grouped by (unit,
    metric) in one pass, like a bare scan, keeping the earliest time; the pairs whose
    earliest outcome precedes the unit's first exposure keep their unit id in a small
    table, and only they are summed again, row by row."""
    pairs = (
        "SELECT p.metric, p.s, p.nz, p.c, u.variant, u.first_time, u.n_exp, "
        "CASE WHEN p.t0 < u.first_time THEN p.unit_id END AS early "
        "FROM (SELECT unit_id, metric, sum(s) AS s, sum(nz)::BIGINT AS nz, "
        "sum(c)::BIGINT AS c, min(t0) AS t0 FROM xu GROUP BY unit_id, metric) p "
        "JOIN u USING (unit_id) WHERE NOT u.mixed"
    )
    con.execute(f"CREATE OR REPLACE TEMP TABLE ob AS {_BINNED.format(pairs=pairs, by=', early')}", [lo, step])
    rows = con.execute("SELECT metric, b, variant, s, s2, nz, sn, c FROM ob WHERE early IS NULL").fetchall()
    if con.execute("SELECT count(*) FROM ob WHERE early IS NOT NULL").fetchone()[0]:
        redo = (
            "SELECT x.metric, sum(x.value) AS s, count(nullif(x.value, 0)) AS nz, "
            "count(*) AS c, any_value(u.variant) AS variant, any_value(u.first_time) AS first_time, "
            "any_value(u.n_exp) AS n_exp FROM x "
            "JOIN (SELECT DISTINCT early AS unit_id, metric FROM ob WHERE early IS NOT NULL) p "
            "USING (unit_id, metric) JOIN u USING (unit_id) "
            "WHERE x.time IS NULL OR x.time >= u.first_time GROUP BY x.unit_id, x.metric"
        )
        rows += con.execute(_BINNED.format(pairs=redo, by=""), [lo, step]).fetchall()
    out: dict[str, np.ndarray] = {}
    used = 0
    for metric, b, variant, *values, c in rows:
        used += int(c)
        if variant not in index:
            continue
        array = out.setdefault(metric, np.zeros((size, bins, 4)))
        array[index[variant], min(int(b), bins - 1)] += np.asarray(values, dtype=np.float64)
    return out, used


def _statistics(units: np.ndarray, sums: dict[str, np.ndarray]) -> dict[str, Any]:
    """metric -> statistic whose fields have the leading shape of the inputs."""
    n, d1, d2, l1, l2, ld = (units[..., i] for i in range(6))
    out: dict[str, Any] = {
        "exposures_per_unit": stats.SampleMean(n, d1, d2),
        "latency_us": stats.Ratio(n, l1, l2, d1, d2, ld),
    }
    for metric, s in sums.items():
        s1, s2, conv, sd = (s[..., i] for i in range(4))
        out[metric] = stats.SampleMean(n, s1, s2)
        out[f"{metric}.any"] = stats.Proportion(n, conv)
        out[f"{metric}.per_exposure"] = stats.Ratio(n, s1, s2, d1, d2, sd)
    return out


# -- the analysis ----------------------------------------------------------------------


@dataclass(frozen=True)
class _ByVariant:
    """One scan of the exposure rows, by variant."""

    exposures: dict[str, int]
    no_unit: int
    latency: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, con) -> _ByVariant:
        """Counts, mean and exact quantiles (as DuckDB's quantile_cont) from a histogram of
        the latencies: the router logs them to 0.1 us, so the histogram is small however
        many rows there are, and costs a fraction of sorting every row."""
        hist = con.execute(
            "SELECT variant, latency_us, sum(n)::BIGINT AS n, (sum(n) - sum(with_unit))::BIGINT AS no_unit "
            "FROM el GROUP BY variant, latency_us ORDER BY variant, latency_us"
        ).fetchnumpy()
        names = hist["variant"]
        cuts = np.flatnonzero(names[1:] != names[:-1]) + 1
        exposures, latency, no_unit = {}, {}, 0
        for lo, hi in zip([0, *cuts.tolist()], [*cuts.tolist(), len(names)]):
            name = str(names[lo])
            n = hist["n"][lo:hi].astype(np.int64)
            exposures[name] = int(n.sum())
            no_unit += int(hist["no_unit"][lo:hi].sum())
            values = hist["latency_us"][lo:hi]
            x = np.ma.getdata(values).astype(np.float64)
            known = ~np.ma.getmaskarray(values)
            latency[name] = {"rows": exposures[name], **_latency_summary(x[known], n[known])}
        return cls(exposures=exposures, no_unit=no_unit, latency=latency)


def _latency_summary(x: np.ndarray, n: np.ndarray) -> dict[str, Any]:
    """Mean and p50/p95/p99 of a sorted histogram (values `x`, counts `n`), interpolated
    like quantile_cont: position (N - 1) * q between the order statistics around it."""
    total = int(n.sum())
    if not total:
        return {"mean": 0.0, "p50": None, "p95": None, "p99": None}
    cumulative = np.cumsum(n)
    out: dict[str, Any] = {"mean": float(np.dot(x, n) / total)}
    for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        h = (total - 1) * q
        below, above = x[np.searchsorted(cumulative, [math.floor(h), math.ceil(h)], side="right")]
        out[label] = float(below + (h - math.floor(h)) * (above - below))
    return out


def _order(spec: Experiment | None, seen: list[str]) -> list[str]:
    if spec is None:
        return seen
    named = [v.name for v in spec.variants]
    return named + [v for v in seen if v not in named]


def _notes(
    con, spec: Experiment | None, variants: list[str], no_unit: int, used: int, total: int
) -> list[str]:
    out = []
    (mixed,) = con.execute("SELECT count(*) FROM u WHERE mixed").fetchone()
    if mixed:
        out.append(f"{mixed} unit(s) saw more than one variant: excluded")
    if no_unit:
        out.append(f"{no_unit} exposure(s) without a unit id: counted in latency only")
    if total > used:
        out.append(
            f"{int(total - used)} outcome record(s) not attributed (unit never exposed or "
            "in several variants, outcome before the first exposure, unknown request): ignored"
        )
    if spec is not None:
        extra = [v for v in variants if v not in spec.weights]
        if extra:
            out.append(f"exposures name variants not in the spec: {extra}")
    return out


def _compare_all(
    metrics: dict[str, Any], variants: list[str], alpha: float
) -> dict[str, dict[str, stats.ComparisonResult]]:
    return {
        name: {v: stats.compare(stat[0], stat[i], alpha=alpha) for i, v in enumerate(variants) if i > 0}
        for name, stat in metrics.items()
    }


def _timeline(
    cumulative: dict[str, Any],
    name: str,
    variants: list[str],
    ends: np.ndarray,
    alpha: float,
    tuning: float | None,
) -> Timeline | None:
    stat = cumulative.get(name)
    if stat is None or len(variants) < 2:
        return None
    n_total = float(np.sum(np.asarray(stat.n)[:, -1]))
    tuning = tuning or max(n_total, 1.0)
    comparisons = {
        v: stats.compare(stat[0], stat[i], alpha=alpha, sequential_tuning=tuning)
        for i, v in enumerate(variants)
        if i > 0
    }
    return Timeline(name, ends, comparisons)


def _decide(
    spec: Experiment | None, totals: dict[str, Any], variants: list[str], counts: list[int], notes: list[str]
) -> dict[str, stats.Decision]:
    if spec is None or spec.success is None or len(variants) < 2:
        return {}
    crit = spec.success
    names = [crit.primary.name, *(g.name for g in crit.guardrails)]
    missing = [n for n in names if n not in totals]
    if missing:
        notes.append(f"no data for metric(s) {missing} named in the success criteria: no decision")
        return {}
    weights = [spec.weights.get(v, 0.0) for v in variants]
    srm_ok = all(w > 0 for w in weights)
    return {
        v: stats.decide(
            crit,
            {n: (totals[n][0], totals[n][i]) for n in names},
            counts=counts if srm_ok else None,
            weights=weights if srm_ok else None,
        )
        for i, v in enumerate(variants)
        if i > 0
    }


def analyze(
    experiment: str,
    log_dir: str | os.PathLike[str],
    *,
    outcomes: Sequence[str | os.PathLike[str]] = (),
    spec: Experiment | str | os.PathLike[str] | None = None,
    bins: int = 20,
    exposure_files: Sequence[str | os.PathLike[str]] | None = None,
    key: Key | None = None,
) -> Analysis:
    """Analyse an experiment from its logs.

    Args:
        experiment: the experiment (router) name.
        log_dir: the log folder (`<log_dir>/<experiment>/exposures`, `<log_dir>/outcomes`).
        outcomes: extra outcome files (JSON Lines, CSV or Parquet).
        spec: the spec (object or path); default: the one the router stored in the logs.
        bins: time bins of the timeline.
        exposure_files: read these instead of the experiment's exposure folder.
        key: the data key of encrypted segments (default `$TRITONAB_LOG_KEY_FILE`'s); they
            are decrypted in memory and scanned as an Arrow table.

    The read is recorded in the log folder's audit log (`logs.read`: who, when, what).

    Returns:
        An Analysis.

    Raises:
        MonitoringError: no exposures, or unreadable files.
        SecurityError: encrypted segments without their key, or tampered ones.
    """
    import duckdb

    folder = Path(log_dir)
    notes: list[str] = []
    the_spec = _load_spec(experiment, folder, spec)
    files = (
        [Path(p) for p in exposure_files]
        if exposure_files is not None
        else _exposure_files(folder / experiment / EXPOSURES, notes)
    )
    if not files:
        raise MonitoringError(f"no exposure segments for experiment `{experiment}` under `{folder}`")
    audit.record_read(folder, "analyze", [*files, *outcomes], experiment=experiment)
    encrypted = [p for p in files if is_encrypted(p)]
    con = duckdb.connect()
    try:
        registered = []
        if encrypted:
            con.register("encrypted_exposures", _decrypted_table(encrypted, EXPOSURE_COLUMNS, key))
            registered.append("encrypted_exposures")
        plain = [p for p in files if not is_encrypted(p)]
        with tempfile.TemporaryDirectory(prefix="tritonab-analysis-") as scratch:
            outcome_files = _outcome_files(folder, outcomes, Path(scratch))
            jsonl, parquet, csv = _split(plain)
            outcome_jsonl, outcome_parquet, outcome_csv = _split(outcome_files)
            # Compacted files with rollups are aggregated from those (a fraction of the rows).
            exposure_rollups, raw_parquet = _rolled(parquet, EXPOSURES)
            outcome_rollups, raw_outcomes = _rolled(outcome_parquet, OUTCOMES_DIR)
            rolled_outcomes = [p for p in outcome_parquet if p not in raw_outcomes]
            outcome_rows = _load_tables(
                con,
                experiment,
                _source(jsonl, raw_parquet, csv, EXPOSURE_COLUMNS, registered),
                _source(outcome_jsonl, raw_outcomes, outcome_csv, OUTCOME_COLUMNS),
                columnar=not jsonl and not csv,
                # The scratch folder (normalised extra files) goes when this block ends.
                columnar_outcomes=not outcome_jsonl and not outcome_csv,
                # Every exposure row, for request-keyed outcomes: another SELECT only when
                # rollups stand in for some files' rows.
                all_exposures_sql=_source(jsonl, parquet, csv, EXPOSURE_COLUMNS, registered)
                if exposure_rollups
                else None,
                rolled_outcomes_sql=_source([], rolled_outcomes, [], OUTCOME_COLUMNS)
                if rolled_outcomes
                else None,
                exposure_rollups=exposure_rollups,
                outcome_rollups=outcome_rollups.get("units", []),
            )
        return _summarise(con, experiment, folder, the_spec, bins, notes, outcome_rows)
    except duckdb.Error as exc:
        raise MonitoringError(f"analysis of `{experiment}` failed reading the logs: {exc}") from None
    finally:
        con.close()


def _summarise(
    con,
    experiment: str,
    folder: Path,
    spec: Experiment | None,
    bins: int,
    notes: list[str],
    outcome_rows: int,
) -> Analysis:
    by_variant = _ByVariant.read(con)
    variants = _order(spec, list(by_variant.exposures))
    if not variants:
        raise MonitoringError(f"no exposures of experiment `{experiment}` in the logs")
    _units(con, list(by_variant.exposures))
    index = {code: variants.index(v) for code, v in enumerate(by_variant.exposures)}
    lo, step = _bins(con, bins)
    units = np.cumsum(_unit_sums(con, index, len(variants), bins, lo, step), axis=1)
    metric_sums, used = _metric_sums(con, index, len(variants), bins, lo, step)
    sums = {m: np.cumsum(a, axis=1) for m, a in metric_sums.items()}
    cumulative = _statistics(units, sums)
    totals = {name: stat[:, -1] for name, stat in cumulative.items()}
    counts = [int(units[i, -1, 0]) for i in range(len(variants))]
    exposures = by_variant.exposures
    crit = spec.success if spec is not None else None
    alpha = crit.alpha if crit is not None else 0.05
    weights = spec.weights if spec is not None else None
    srm = None
    if weights is not None and len(variants) > 1 and all(weights.get(v, 0) > 0 for v in variants):
        srm = stats.srm(
            counts,
            [weights[v] for v in variants],
            threshold=crit.srm_threshold if crit else stats.SRM_THRESHOLD,
        )
    notes += _notes(con, spec, variants, by_variant.no_unit, used, outcome_rows)
    dropped = dropped_total(folder / experiment)
    if dropped:
        notes.insert(
            0,
            f"{dropped} log record(s) were dropped by the writers (queue full): "
            "exposure counts are incomplete",
        )
    primary = crit.primary.name if crit is not None else _default_primary(sums)
    tuning = crit.sequential_tuning if crit is not None else None
    ends = lo + step * np.arange(1, bins + 1)
    decisions = _decide(spec, totals, variants, counts, notes)
    return Analysis(
        experiment=experiment,
        variants=variants,
        weights=weights,
        units=dict(zip(variants, counts)),
        exposures={v: int(exposures.get(v, 0)) for v in variants},
        latency=by_variant.latency,
        metrics={name: {v: stat[i] for i, v in enumerate(variants)} for name, stat in totals.items()},
        comparisons=_compare_all(totals, variants, alpha) if len(variants) > 1 else {},
        srm=srm,
        decisions=decisions,
        timeline=_timeline(cumulative, primary, variants, ends, alpha, tuning),
        warnings=notes,
        dropped=dropped,
    )


def _default_primary(sums: dict[str, np.ndarray]) -> str:
    return f"{sorted(sums)[0]}.per_exposure" if sums else "exposures_per_unit"
