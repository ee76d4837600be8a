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


@dataclass
class CompactReport:
    """What a compaction did: the Parquet files written, the segments they replace, records."""

    written: list[Path] = field(default_factory=list)
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
    except duckdb.Error as exc:
        partial.unlink(missing_ok=True)
        raise MonitoringError(f"compacting `{folder}` failed: {exc}") from None
    finally:
        con.close()
    if written is None or written[0] != expected:
        partial.unlink(missing_ok=True)
        got = None if written is None else written[0]
        raise MonitoringError(
            f"compacting `{folder}`: {got} records written for {expected} read; nothing removed"
        )
    os.chmod(partial, file_mode())
    newest = max(p.stat().st_mtime for p in sources)
    os.utime(partial, (newest, newest))
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
