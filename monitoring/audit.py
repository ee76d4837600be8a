"""The audit log: append-only JSON Lines, hash-chained so tampering is detectable.

Each record carries `prev`, the SHA-256 (hex) of the previous line's bytes (without its
newline), and `seq`, its 1-based position; the first record's `prev` is 64 zeros.
Editing, deleting, inserting or reordering any line breaks the chain, and `verify`
names the first bad line: an edited line shows as the break on the line after it with
`seq` running on, a removed one as a gap in `seq`.
The chain alone cannot see the last line edited or the tail cut off, so every append
also rewrites a head anchor beside the log (`<log>.head`: the record count and the
last line's hash, written atomically); `verify` checks the log against it.
Appends from several processes are serialised with an exclusive `flock` and fsynced.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonab._io import atomic_write_text
from tritonab.errors import MonitoringError

GENESIS = "0" * 64
AUDIT_FILE = "audit.jsonl"


def audit_path(log_dir: str | os.PathLike[str]) -> Path:
    """The audit log of a log folder."""
    return Path(log_dir) / AUDIT_FILE


def head_path(path: str | os.PathLike[str]) -> Path:
    """The head anchor of an audit log."""
    target = Path(path)
    return target.with_name(target.name + ".head")


def _read_head(path: Path) -> dict[str, Any] | None:
    try:
        head = json.loads(head_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return head if isinstance(head, dict) else None


def _count_lines(handle) -> int:
    handle.seek(0)
    return sum(1 for line in handle if line.strip())


def _digest(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()


def _last_line(handle) -> bytes | None:
    """The last complete line of an open binary file (None when empty)."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    if size == 0:
        return None
    block = min(size, 65536)
    while True:
        handle.seek(size - block)
        data = handle.read(block).rstrip(b"\n")
        cut = data.rfind(b"\n")
        if cut >= 0 or block == size:
            return data[cut + 1 :]
        block = min(size, block * 4)


def append(path: str | os.PathLike[str], event: str, **fields: Any) -> dict[str, Any]:
    """Append one event to the audit log at `path` (created when missing).

    Args:
        path: the audit file (see `audit_path`).
        event: what happened, e.g. `logs.prune` or `sink.rejected`.
        fields: JSON-serialisable details.

    Returns:
        The record written (with `time`, `event`, `prev`).

    Raises:
        MonitoringError: the file cannot be written.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                last = _last_line(handle)
                head = _read_head(target)
                count = int(head["records"]) if head and last is not None else _count_lines(handle)
                record = {
                    "time": time.time(),
                    "event": event,
                    **fields,
                    "seq": count + 1,
                    "prev": GENESIS if last is None else _digest(last),
                }
                line = json.dumps(record, sort_keys=True, default=str).encode("utf-8")
                handle.seek(0, os.SEEK_END)
                handle.write(line + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                atomic_write_text(
                    head_path(target), json.dumps({"records": count + 1, "last": _digest(line)}) + "\n"
                )
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        raise MonitoringError(f"audit log `{target}` cannot be written: {exc.strerror}") from None
    return record


@dataclass(frozen=True)
class AuditReport:
    """Result of `verify`: `ok` when every line chains to the one before it and the end
    matches the head anchor.

    Attributes:
        records: lines read.
        broken_at: 1-based line numbers whose `prev` does not match, or that are not JSON.
        tail: what the head anchor says is wrong with the end ("" when nothing).
        first_bad: the first line that was edited, or the first line after removed ones
            (None when the log is intact).
        warnings: what could not be checked (no head anchor).
    """

    records: int
    broken_at: tuple[int, ...]
    tail: str = ""
    first_bad: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.broken_at and not self.tail


def verify(path: str | os.PathLike[str]) -> AuditReport:
    """Check the hash chain of an audit log, and its end against the head anchor.

    Raises:
        MonitoringError: the file cannot be read.
    """
    try:
        lines = Path(path).read_bytes().split(b"\n")
    except OSError as exc:
        raise MonitoringError(f"audit log `{path}` cannot be read: {exc.strerror}") from None
    if lines and lines[-1] == b"":
        lines.pop()
    expected = GENESIS
    broken = []
    records: list[dict[str, Any] | None] = []
    for number, line in enumerate(lines, start=1):
        record = None
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            record = parsed if isinstance(parsed, dict) else None
        records.append(record)
        if record is None or record.get("prev") != expected:
            broken.append(number)
        expected = _digest(line)
    tail = _check_head(Path(path), lines)
    first = _first_bad(broken, records)
    if first is None and tail.startswith("the last record"):
        first = len(lines)
    warnings: tuple[str, ...] = ()
    if lines and not head_path(path).exists():
        warnings = (
            f"no head anchor `{head_path(path)}`: an edited or removed last record cannot be detected",
        )
    return AuditReport(len(lines), tuple(broken), tail, first, warnings)


def _first_bad(broken: list[int], records: list[dict[str, Any] | None]) -> int | None:
    """The first bad line behind the first break in the chain.

    A break at line k means line k - 1 changed after line k was written (an edit: the
    `seq` numbers still run on), or records between them are gone (a gap in `seq`), or
    line k itself is not what was written (not JSON, or the first line).
    """
    if not broken:
        return None
    k = broken[0]
    here, before = records[k - 1], records[k - 2] if k > 1 else None
    if here is None or before is None:
        return k
    seq_here, seq_before = here.get("seq"), before.get("seq")
    if isinstance(seq_here, int) and isinstance(seq_before, int) and seq_here != seq_before + 1:
        return k  # records missing (or inserted) just before line k
    return k - 1


def _check_head(path: Path, lines: list[bytes]) -> str:
    """What the head anchor says is wrong with the end of the log ("" when nothing)."""
    head = _read_head(path)
    if head is None:
        return "" if not head_path(path).exists() else f"head anchor `{head_path(path)}` is unreadable"
    want, last = int(head.get("records", -1)), head.get("last")
    if len(lines) < want:
        return f"{want - len(lines)} record(s) missing at the end (the anchor counts {want})"
    if len(lines) > want:
        return f"{len(lines) - want} record(s) after the anchored end (the anchor counts {want})"
    if lines and _digest(lines[-1]) != last:
        return f"the last record (line {len(lines)}) differs from the anchored one"
    return ""


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of an audit log (an empty list when it does not exist)."""
    target = Path(path)
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line]
