"""Outcomes (labels, business events) keyed by unit id or request id, joined to exposures later.

Record: `unit_id` or `request_id` (at least one), `metric`, `value` (default 1), `time`
(epoch seconds or ISO 8601; optional), `experiment` (optional: outcomes may serve
several experiments). `tritonab outcomes add FILE` validates a CSV or JSON Lines file
and copies it, as JSON Lines written atomically, into `<log_dir>/outcomes/`;
`append_outcome` (behind `ExperimentClient.report_outcome`) appends one record to a
per-process file there under an exclusive lock.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tritonab._io import atomic_write_text
from tritonab.errors import LogFormatError
from tritonab.monitoring.segments import dumps

OUTCOMES_DIR = "outcomes"
MAX_ERRORS = 20


class OutcomeRecord(BaseModel):
    """One outcome record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    unit_id: str | None = None
    request_id: str | None = None
    metric: str = Field(min_length=1)
    value: float = 1.0
    time: float | None = None
    experiment: str | None = None

    @field_validator("unit_id", "request_id", "experiment", mode="before")
    @classmethod
    def _text(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip() == ""):
            return None
        return str(v) if isinstance(v, (int, float)) else v

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("value must be a finite number")
        return v

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and v.strip() == ""):
            return None
        if isinstance(v, str):
            try:
                return float(v)
            except ValueError:
                pass
            try:
                return datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp()
            except ValueError:
                raise ValueError(f"time `{v}` is neither epoch seconds nor ISO 8601") from None
        return v

    @model_validator(mode="after")
    def _keyed(self) -> OutcomeRecord:
        if self.unit_id is None and self.request_id is None:
            raise ValueError("needs `unit_id` or `request_id`")
        return self


def _problem(where: str, exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"])
        message = err["msg"].removeprefix("Value error, ")
        out.append(f"{where}: {field + ': ' if field else ''}{message}")
    return out


def _rows(path: Path) -> list[tuple[str, Any]]:
    """(where, raw row) for every record of a CSV or JSON Lines file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise LogFormatError(f"outcomes file `{path}` cannot be read: {exc}") from None
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or "metric" not in reader.fieldnames:
            raise LogFormatError(
                f"`{path}`: the CSV header must name `metric` and `unit_id` or "
                f"`request_id`; got {reader.fieldnames}"
            )
        # An empty cell is a missing field (so `value` defaults to 1, `time` to none).
        return [
            (f"`{path}` line {i}", {k: v for k, v in row.items() if v not in ("", None)})
            for i, row in enumerate(reader, start=2)
        ]
    rows = []
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append((f"`{path}` line {i}", json.loads(line)))
        except ValueError as exc:
            rows.append((f"`{path}` line {i}", exc))
    return rows


def parse_outcomes(path: str | os.PathLike[str]) -> list[OutcomeRecord]:
    """Validate a CSV (header row) or JSON Lines outcomes file.

    Raises:
        LogFormatError: unreadable file, or every bad record (up to 20) with its line (exit 2).
    """
    source = Path(path)
    records, problems = [], []
    for where, row in _rows(source):
        if isinstance(row, Exception):
            problems.append(f"{where}: not JSON: {row}")
            continue
        if not isinstance(row, dict):
            problems.append(f"{where}: expected an object, got {type(row).__name__}")
            continue
        try:
            records.append(OutcomeRecord.model_validate(row))
        except ValidationError as exc:
            problems.extend(_problem(where, exc))
    if problems:
        extra = len(problems) - MAX_ERRORS
        more = f"\n`{source}`: {extra} more invalid record(s)" if extra > 0 else ""
        raise LogFormatError("\n".join(problems[:MAX_ERRORS]) + more)
    return records


def _line(o: OutcomeRecord) -> str:
    return dumps(o.model_dump())


def _check_residency(target: Path, log_dir: str | os.PathLike[str]) -> None:
    """Refuse (and audit) an outcomes write outside the region of `$TRITONAB_REGION`."""
    from tritonab.monitoring.audit import audit_path
    from tritonab.security import guard_from_env

    guard = guard_from_env(audit_log=audit_path(log_dir), writer="outcomes")
    if guard is not None:
        guard(target)


def add_outcomes(path: str | os.PathLike[str], log_dir: str | os.PathLike[str]) -> Path:
    """Validate `path` and copy its records into `<log_dir>/outcomes/` (atomically).

    Returns:
        The file written.

    Raises:
        LogFormatError: see `parse_outcomes`.
        ResidencyError: a region policy (`$TRITONAB_REGION_POLICY`, `$TRITONAB_REGION`) is
            set and the file's real path lies outside the region (audited).
    """
    records = parse_outcomes(path)
    now = int(time.time() * 1000)
    target = Path(log_dir) / OUTCOMES_DIR / f"added-{Path(path).stem}-{os.getpid()}-{now}.jsonl"
    _check_residency(target, log_dir)
    atomic_write_text(target, "".join(_line(o) + "\n" for o in records))
    return target


def append_outcome(log_dir: str | os.PathLike[str], outcome: OutcomeRecord) -> Path:
    """Append one record to this process's outcomes file in `<log_dir>/outcomes/` (checked
    against the region policy like `add_outcomes`)."""
    target = Path(log_dir) / OUTCOMES_DIR / f"client-{os.getpid()}.jsonl"
    _check_residency(target, log_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            handle.write(_line(outcome) + "\n")
            handle.flush()
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    return target
