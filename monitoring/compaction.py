"""Compaction: sealed JSON Lines segments of a stream folder into one Parquet file.

Analysis reads Parquet several times faster than JSON Lines (columns, types, no
parsing). `compact` takes a stream folder's sealed segments (never the open `.tmp`
ones of a running writer), writes their records with DuckDB into
`.compact-<first>-<n>.parquet.tmp`, checks that it holds every record of its sources,
renames it to `compact-<first>-<n>.parquet` and only then removes the sources. The
Parquet file names its sources in its key-value metadata (`tritonab.sources`), so a
crash between the rename and the removal loses nothing and double-counts nothing:
readers skip a JSON Lines segment that a Parquet file names, and the next compaction
removes it. The Parquet file keeps the newest source's modification time, so
retention (`logs prune`) treats it as it treated its segments.

Exposure and outcome folders also get rollups of each Parquet file, written (and
checked against its record count) before it is renamed into place, in
`<stream>/_rollup/<name>.<kind>.parquet` with its modification time:

- exposures, `units`: per (experiment, unit_id, variant): rows, latency sum, first time;
  `latency`: per (experiment, variant, latency_us): rows, rows with a unit id;
- outcomes, `units`: per (experiment, unit_id, metric): value sum, non-zero values,
  rows, first time.

Sums, counts, minima compose: the analysis (`monitoring.analysis`) groups a file's
rollup rows instead of its rows, the same figures from a fraction of the rows it would
scan and hash. It reads a rollup only beside its Parquet file, so one left by a crash
before the rename is never read (the next compaction removes it).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tritonab.errors import MonitoringError

PARQUET_SUFFIX = ".parquet"
SOURCES_KEY = "tritonab.sources"
_PREFIX = "compact-"
ROLLUP_DIR = "_rollup"

_EXPOSURE_FIELDS = {
    "experiment": "VARCHAR",
    "unit_id": "VARCHAR",
    "variant": "VARCHAR",
    "latency_us": "DOUBLE",
    "time": "DOUBLE",
}
_OUTCOME_FIELDS = {
    "experiment": "VARCHAR",
    "unit_id": "VARCHAR",
    "metric": "VARCHAR",
    "value": "DOUBLE",
    "time": "DOUBLE",
}
ROLLUPS: dict[str, dict[str, tuple[dict[str, str], str, str]]] = {
    # stream -> kind -> (the fields it reads, its SELECT over `src`, its record count)
    "exposures": {
        "units": (
            _EXPOSURE_FIELDS,
            "SELECT experiment, unit_id, variant, count(*) AS n, sum(latency_us) AS lat, "
            "min(time) AS first_time FROM src GROUP BY experiment, unit_id, variant",
            "sum(n)",
        ),
        "latency": (
            _EXPOSURE_FIELDS,
            "SELECT experiment, variant, latency_us, count(*) AS n, count(unit_id) AS with_unit "
            "FROM src GROUP BY experiment, variant, latency_us",
            "sum(n)",
        ),
    },
    "outcomes": {
        "units": (
            _OUTCOME_FIELDS,
            "SELECT experiment, unit_id, metric, sum(value) AS s, count(nullif(value, 0)) AS nz, "
            "count(*) AS c, min(time) AS t0 FROM src GROUP BY experiment, unit_id, metric",
            "sum(c)",
        ),
    },
}
"""The rollups of each stream's compacted files (see the module's docstring)."""

ROLLUP_COLUMNS: dict[tuple[str, str], dict[str, str]] = {
    ("exposures", "units"): {"experiment": "VARCHAR", "unit_id": "VARCHAR", "variant": "VARCHAR"}
    | {"n": "BIGINT", "lat": "DOUBLE", "first_time": "DOUBLE"},
    ("exposures", "latency"): {"experiment": "VARCHAR", "variant": "VARCHAR", "latency_us": "DOUBLE"}
    | {"n": "BIGINT", "with_unit": "BIGINT"},
    ("outcomes", "units"): {"experiment": "VARCHAR", "unit_id": "VARCHAR", "metric": "VARCHAR"}
    | {"s": "DOUBLE", "nz": "BIGINT", "c": "BIGINT", "t0": "DOUBLE"},
}
"""The columns (and DuckDB types) of each (stream, kind) rollup `ROLLUPS` writes."""


@dataclass
class CompactReport:
    """What a compaction did: the Parquet files written, the segments they replace, records."""

    written: list[Path] = field(default_factory=list)
    rollups: list[Path] = field(default_factory=list)
    removed: list[Path] = field(default_factory=list)
    records: int = 0
    bytes_before: int = 0
    bytes_after: int = 0


def compacted_sources(folder: Path) -> set[str]:
    """Names of the JSON Lines segments that the folder's Parquet files already hold."""
    import pyarrow.parquet as pq

    names: set[str] = set()
    for path in sorted(folder.glob(f"{_PREFIX}*{PARQUET_SUFFIX}")):
        try:
            meta = pq.read_schema(path).metadata or {}
        except (OSError, ValueError) as exc:
            raise MonitoringError(f"compacted log `{path}` cannot be read: {exc}") from None
        raw = meta.get(SOURCES_KEY.encode())
        if raw:
            names.update(json.loads(raw))
    return names


def typed_columns(present: set[str], columns: dict[str, str]) -> str:
    """A SELECT list giving `columns` their types, NULL for those not `present` in a file."""
    return ", ".join(f"CAST({k if k in present else 'NULL'} AS {v}) AS {k}" for k, v in columns.items())


def rollup_path(data: Path, kind: str) -> Path:
    """Where the `kind` rollup of compacted file `data` lives."""
    return data.parent / ROLLUP_DIR / f"{data.name.removesuffix(PARQUET_SUFFIX)}.{kind}{PARQUET_SUFFIX}"


def rollups(data: Path, stream: str) -> dict[str, Path] | None:
    """The rollups of compacted file `data` of `stream` (`exposures`, `outcomes`) by kind,
    or None when one is missing (compacted before rollups, or not by `compact`)."""
    kinds = ROLLUPS.get(stream, {})
    found = {kind: rollup_path(data, kind) for kind in kinds}
    if not kinds or not data.name.startswith(_PREFIX) or not all(p.exists() for p in found.values()):
        return None
    return found


def _write_rollups(con, partial: Path, final: Path, stream: str, expected: int) -> list[Path]:
    """Each rollup of `stream` from the written Parquet file `partial` (the future
    `final`), checked to count `expected` records, renamed into place; their paths."""
    import pyarrow.parquet as pq

    from tritonab._io import file_mode

    present = set(pq.read_schema(partial).names)
    written = []
    for kind, (fields, select, total) in ROLLUPS.get(stream, {}).items():
        casts = typed_columns(present, fields)
        target = rollup_path(final, kind)
        target.parent.mkdir(exist_ok=True)
        temporary = target.with_name(f".{target.name}.tmp")
        query = f"WITH src AS (SELECT {casts} FROM read_parquet({sql_string(partial)})) {select}"
        con.execute(f"COPY ({query}) TO {sql_string(temporary)} (FORMAT PARQUET, COMPRESSION zstd)")
        (count,) = con.execute(
            f"SELECT coalesce({total}, 0) FROM read_parquet({sql_string(temporary)})"
        ).fetchone()
        if count != expected:
            temporary.unlink(missing_ok=True)
            raise MonitoringError(f"rollup `{target}`: {count} records summed for {expected} written")
        os.chmod(temporary, file_mode())
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        written.append(target)
    return written


def _orphan_rollups(folder: Path) -> list[Path]:
    """Rollups whose Parquet file is not there (a crash before its rename, or pruned)."""
    rolled = folder / ROLLUP_DIR
    if not rolled.is_dir():
        return []
    out = []
    for path in sorted(rolled.iterdir()):
        stem = path.name.rsplit(".", 2)[0]
        if path.name.startswith(".") or not (folder / f"{stem}{PARQUET_SUFFIX}").exists():
            out.append(path)
    return out


def _line_count(paths: list[Path]) -> int:
    """Whole records in sealed segments (one per newline)."""
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                total += chunk.count(b"\n")
    return total


def sql_string(value: object) -> str:
    """A DuckDB string literal (quotes doubled)."""
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(paths: Sequence[Path]) -> str:
    """A DuckDB list of file paths, for `read_json`, `read_parquet` and `read_csv`."""
    return "[" + ", ".join(sql_string(p) for p in paths) + "]"


def compact(directory: str | os.PathLike[str], *, min_segments: int = 1) -> CompactReport:
    """Compact a stream folder's sealed JSON Lines segments into one Parquet file.

    Args:
        directory: a stream folder (`LOGS/<experiment>/exposures`, `.../payloads`, or
            `LOGS/outcomes`).
        min_segments: do nothing with fewer sealed segments than this.

    Returns:
        What was written and removed (nothing when there was nothing to compact).

    Raises:
        MonitoringError: the folder does not exist, a segment is torn, or the records
            could not be read or written (nothing is removed then).
    """
    import duckdb

    from tritonab._io import file_mode
    from tritonab.monitoring.segments import SEGMENT_SUFFIX, is_torn

    folder = Path(directory)
    if not folder.is_dir():
        raise MonitoringError(f"log folder `{folder}` does not exist")
    report = CompactReport()
    done = compacted_sources(folder)
    leftovers = [p for p in sorted(folder.glob(f"*{SEGMENT_SUFFIX}")) if p.name in done]
    for path in leftovers:  # a crash between a rename and the removal of its sources
        report.removed.append(path)
        path.unlink()
    for path in _orphan_rollups(folder):
        report.removed.append(path)
        path.unlink()
    sources = [p for p in sorted(folder.glob(f"*{SEGMENT_SUFFIX}")) if not p.name.startswith(".")]
    if len(sources) < max(1, min_segments):
        return report
    torn = [p for p in sources if is_torn(p)]
    if torn:
        raise MonitoringError(f"segment `{torn[0]}` ends with an incomplete record: not compacted")
    expected = _line_count(sources)
    first = sources[0].name.removesuffix(SEGMENT_SUFFIX)
    final = folder / f"{_PREFIX}{first}-{len(sources)}{PARQUET_SUFFIX}"
    partial = folder / f".{final.name}.tmp"
    metadata = sql_string(json.dumps([p.name for p in sources]))
    con = duckdb.connect()
    try:
        con.execute(
            f"COPY (SELECT * FROM read_json({sql_list(sources)}, format='newline_delimited', "
            f"union_by_name=true, sample_size=-1)) TO {sql_string(partial)} "
            f"(FORMAT PARQUET, COMPRESSION zstd, KV_METADATA {{{sql_string(SOURCES_KEY)}: {metadata}}})"
        )
        written = con.execute(f"SELECT count(*) FROM read_parquet({sql_string(partial)})").fetchone()
        if written is None or written[0] != expected:
            got = None if written is None else written[0]
            raise MonitoringError(
                f"compacting `{folder}`: {got} records written for {expected} read; nothing removed"
            )
        rolled = _write_rollups(con, partial, final, folder.name, expected)
    except (duckdb.Error, MonitoringError) as exc:
        partial.unlink(missing_ok=True)
        for kind in ROLLUPS.get(folder.name, {}):
            rollup_path(final, kind).unlink(missing_ok=True)
        if isinstance(exc, MonitoringError):
            raise
        raise MonitoringError(f"compacting `{folder}` failed: {exc}") from None
    finally:
        con.close()
    os.chmod(partial, file_mode())
    newest = max(p.stat().st_mtime for p in sources)
    for path in [partial, *rolled]:  # retention prunes a rollup with its file
        os.utime(path, (newest, newest))
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, final)
    with contextlib.suppress(OSError):  # make the rename durable before removing the sources
        fd = os.open(folder, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    report.bytes_before = sum(p.stat().st_size for p in sources)
    for path in sources:
        path.unlink()
    report.written.append(final)
    report.rollups.extend(rolled)
    report.removed.extend(sources)
    report.records = expected
    report.bytes_after = final.stat().st_size
    return report


def compact_tree(log_dir: str | os.PathLike[str], *, min_segments: int = 1) -> dict[Path, CompactReport]:
    """Compact every stream folder under a log folder (exposures, payloads, outcomes).

    Raises:
        MonitoringError: as for `compact`; folders compacted before the failure stay so.
    """
    root = Path(log_dir)
    if not root.is_dir():
        raise MonitoringError(f"log folder `{root}` does not exist")
    folders = sorted(
        {p.parent for p in root.rglob("*.jsonl") if p.parent.name in ("exposures", "payloads", "outcomes")}
    )
    return {folder: compact(folder, min_segments=min_segments) for folder in folders}
