"""Retention: delete sealed log segments older than a cutoff, and audit every prune."""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from tritonab.errors import MonitoringError
from tritonab.monitoring import audit

_DURATION = re.compile(r"^(?P<n>\d+(?:\.\d+)?)(?P<unit>[smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` as seconds.

    Raises:
        MonitoringError: any other form.
    """
    match = _DURATION.match(text.strip())
    if not match:
        raise MonitoringError(f"duration `{text}` must be a number and one of s, m, h, d, w (e.g. `30d`)")
    return float(match["n"]) * _SECONDS[match["unit"]]


@dataclass(frozen=True)
class PruneResult:
    """Files removed (or that would be, on a dry run) and bytes freed."""

    removed: tuple[Path, ...]
    bytes: int
    cutoff: float
    dry_run: bool


def _candidates(log_dir: Path) -> list[Path]:
    """Sealed segments and outcome files (never unsealed ones, the audit log or specs)."""
    files = []
    for path in [*log_dir.rglob("*.jsonl"), *log_dir.rglob("*.jsonl.enc"), *log_dir.rglob("*.parquet")]:
        if path.name.startswith(".") or path.name == audit.AUDIT_FILE:
            continue
        files.append(path)
    return sorted(files)


def prune(
    log_dir: str | os.PathLike[str], older_than_s: float, *, now: float | None = None, dry_run: bool = False
) -> PruneResult:
    """Delete log files last written more than `older_than_s` seconds ago; audit it.

    Raises:
        MonitoringError: the folder does not exist.
    """
    folder = Path(log_dir)
    if not folder.is_dir():
        raise MonitoringError(f"log folder `{folder}` does not exist")
    cutoff = (time.time() if now is None else now) - older_than_s
    removed, freed = [], 0
    for path in _candidates(folder):
        stat = path.stat()
        if stat.st_mtime < cutoff:
            removed.append(path)
            freed += stat.st_size
            if not dry_run:
                path.unlink()
    if not dry_run:
        audit.append(
            audit.audit_path(folder),
            "logs.prune",
            cutoff=cutoff,
            older_than_s=older_than_s,
            bytes=freed,
            files=[str(p.relative_to(folder)) for p in removed],
        )
    return PruneResult(tuple(removed), freed, cutoff, dry_run)
