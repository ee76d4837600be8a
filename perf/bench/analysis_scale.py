"""Analysis at scale: the whole `analyze` against a bare DuckDB GROUP BY scan of the same files.

Generates (once per run, with DuckDB, in a temporary folder) `--rows` exposures over
`--units` units as segment files and as many outcomes (two metrics), as JSON Lines
(the router's format) or Parquet (`--format parquet`, what a compaction would
produce). Then times, in the same run, best of `--repeat`:

- bare scan: `SELECT variant, count(*), sum(latency_us) ... GROUP BY variant` over the
  exposures plus `SELECT metric, count(*), sum(value) ... GROUP BY metric` over the
  outcomes;
- analysis: `tritonab.monitoring.analysis.analyze` (unit table, outcome join, time
  bins, every statistic, SRM, decision).

With `--format compacted` (the default) the data is written as the router writes it,
JSON Lines segments, then compacted with `tritonab.monitoring.compaction.compact` (timed
and reported), and both scans and the analysis read the Parquet files it wrote; the
analysis aggregates the per-unit rollups the compaction wrote beside them. For
reference it is also timed once with the rollups set aside (every row read).

Prints the times and ratios. It also times a bare GROUP BY unit scan of the same
files (count and sum per unit, the sums really computed): the analysis is a per-unit
analysis, and that scan is its irreducible work (with
Parquet, the by-variant scan reads two narrow columns and is no fair baseline). Floors:
on JSON Lines, the analysis within 3x of the by-variant scan; on Parquet (compacted or
written directly), within 1.5x of the by-unit scan.

    .venv/bin/python perf/bench/analysis_scale.py [--rows 10000000] [--format compacted|jsonl|parquet]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import duckdb
from _floors import Floor, finish

from tritonab.monitoring.analysis import analyze
from tritonab.monitoring.compaction import ROLLUP_DIR, compact
from tritonab.splitter import load_spec_dict

SPEC = {
    "name": "bench",
    "variants": [
        {"name": "control", "model": "a", "weight": 0.5},
        {"name": "treatment", "model": "b", "weight": 0.5},
    ],
    "success": {
        "primary": {"name": "buy.per_exposure"},
        "guardrails": [{"name": "latency_us", "max_degradation": 0.2, "relative": True}],
    },
}


def _copy(con, select: str, path: Path, fmt: str) -> None:
    option = "FORMAT JSON" if fmt == "jsonl" else "FORMAT PARQUET"
    con.execute(f"COPY ({select}) TO '{path}' ({option})")


def generate(folder: Path, rows: int, units: int, files: int, fmt: str) -> tuple[list[Path], list[Path]]:
    """Exposure segments and outcome files; returns their paths."""
    con = duckdb.connect()
    ext = "jsonl" if fmt == "jsonl" else "parquet"
    exposures, outcomes = folder / "bench" / "exposures", folder / "outcomes"
    exposures.mkdir(parents=True)
    outcomes.mkdir(parents=True)
    step = -(-rows // files)
    for f in range(files):
        lo, hi = f * step, min(rows, (f + 1) * step)
        _copy(
            con,
            f"""
            SELECT 1.7e9 + i * 0.001 AS time, 'bench' AS experiment,
                   CASE WHEN u % 2 = 0 THEN 'control' ELSE 'treatment' END AS variant,
                   'user-' || u AS unit_id, 'req-' || i AS request_id, 0 AS row,
                   CASE WHEN u % 2 = 0 THEN 'a' ELSE 'b' END AS model, 1 AS version,
                   round(400 + random() * 800 + (u % 2) * 20, 1) AS latency_us, true AS ok,
                   'local' AS region
            FROM (SELECT i, (i * 7919) % {units} AS u FROM range({lo}, {hi}) t(i))""",
            exposures / f"exposures-bench_0_0-1-1-{f + 1:06d}.{ext}",
            fmt,
        )
        _copy(
            con,
            f"""
            SELECT 'user-' || ((i * 104729) % {units}) AS unit_id, NULL::VARCHAR AS request_id,
                   CASE WHEN (i // 2) % 2 = 0 THEN 'buy' ELSE 'click' END AS metric,
                   CASE WHEN random() < 0.3 THEN 1.0 ELSE 0.0 END AS value,
                   1.7e9 + {rows} * 0.001 + i * 0.001 AS time, NULL::VARCHAR AS experiment
            FROM range({lo}, {hi}) t(i)""",
            outcomes / f"added-{f + 1:06d}.{ext}",
            fmt,
        )
    con.close()
    return sorted(exposures.iterdir()), sorted(outcomes.iterdir())


def bare_scan(exposures: list[Path], outcomes: list[Path], fmt: str, by_unit: bool = False) -> float:
    """Seconds for the two GROUP BY scans (by variant and metric, or by unit)."""

    def reader(paths):
        listed = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
        if fmt == "jsonl":
            return f"read_json({listed}, format='newline_delimited')"
        return f"read_parquet({listed})"

    con = duckdb.connect()
    t0 = time.perf_counter()
    if by_unit:
        # The outer sums use every per-unit aggregate: under a bare count(*) DuckDB drops
        # unused aggregates and the scan would only find the distinct units.
        con.execute(
            f"SELECT count(*), sum(n), sum(lat) FROM (SELECT unit_id, count(*) AS n, sum(latency_us) AS lat "
            f"FROM {reader(exposures)} GROUP BY unit_id)"
        ).fetchall()
        con.execute(
            f"SELECT count(*), sum(s) FROM (SELECT unit_id, metric, sum(value) AS s "
            f"FROM {reader(outcomes)} GROUP BY unit_id, metric)"
        ).fetchall()
    else:
        con.execute(
            f"SELECT variant, count(*), sum(latency_us) FROM {reader(exposures)} GROUP BY variant"
        ).fetchall()
        con.execute(f"SELECT metric, count(*), sum(value) FROM {reader(outcomes)} GROUP BY metric").fetchall()
    elapsed = time.perf_counter() - t0
    con.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="exposures, and as many outcomes")
    parser.add_argument("--units", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=10, help="segment files per kind")
    parser.add_argument("--format", choices=["compacted", "jsonl", "parquet"], default="compacted")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    spec = load_spec_dict(SPEC)
    with tempfile.TemporaryDirectory(prefix="tritonab-scale-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        written = "jsonl" if args.format == "compacted" else args.format
        exposures, outcomes = generate(folder, args.rows, args.units, args.files, written)
        size = sum(p.stat().st_size for p in exposures + outcomes) / 2**20
        print(
            f"generated {args.rows} exposures + {args.rows} outcomes ({written}, {size:.0f} MiB) "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        scan_format = "jsonl" if args.format == "jsonl" else "parquet"
        if args.format == "compacted":
            t0 = time.perf_counter()
            reports = [compact(exposures[0].parent), compact(outcomes[0].parent)]
            exposures, outcomes = reports[0].written, reports[1].written
            after = sum(r.bytes_after for r in reports) / 2**20
            rolled_mib = sum(p.stat().st_size for r in reports for p in r.rollups) / 2**20
            print(
                f"compacted into Parquet ({after:.0f} MiB, and {rolled_mib:.0f} MiB of per-unit rollups) "
                f"in {time.perf_counter() - t0:.1f} s"
            )
        bare, unit, full = [], [], []
        for _ in range(args.repeat):
            bare.append(bare_scan(exposures, outcomes, scan_format))
            unit.append(bare_scan(exposures, outcomes, scan_format, by_unit=True))
            t0 = time.perf_counter()
            result = analyze("bench", folder, spec=spec)
            full.append(time.perf_counter() - t0)
        rows_only = None
        if args.format == "compacted":  # for reference: the same files without their rollups
            aside = Path(tmp) / "aside"
            aside.mkdir()
            rolled = [p.parent / ROLLUP_DIR for p in (exposures[0], outcomes[0])]
            for i, folder_ in enumerate(rolled):
                folder_.rename(aside / str(i))
            t0 = time.perf_counter()
            analyze("bench", folder, spec=spec)
            rows_only = time.perf_counter() - t0
            for i, folder_ in enumerate(rolled):
                (aside / str(i)).rename(folder_)
    print(f"units {result.units}, decision: {result.decisions['treatment'].outcome.value}")
    print(f"bare GROUP BY scan: {min(bare):.2f} s   analysis: {min(full):.2f} s   (best of {args.repeat})")
    print(
        f"for reference, a bare GROUP BY unit scan: {min(unit):.2f} s; analysis / that: "
        f"{min(full) / min(unit):.2f}x"
    )
    if rows_only is not None:
        print(
            f"the analysis with the rollups set aside (every row read, once): {rows_only:.2f} s, "
            f"{rows_only / min(unit):.2f}x the unit scan"
        )
    if scan_format == "jsonl":
        floor = Floor(
            "analysis/bare scan time (JSON Lines)", min(full) / min(bare), 3.0, higher_is_better=False
        )
    else:
        floor = Floor(
            "analysis/bare unit scan time (Parquet)", min(full) / min(unit), 1.5, higher_is_better=False
        )
    return finish("analysis_scale", [floor])


if __name__ == "__main__":
    sys.exit(main())
