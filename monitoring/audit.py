"""The audit log: append-only JSON Lines, chained so tampering is detectable.

Each record carries `prev`, a digest of the previous line's bytes (without its
newline), and `seq`, its 1-based position; the first record's `prev` is 64 zeros.
With an audit key (`audit_key=`, or the key file named by `$TRITONAB_AUDIT_KEY_FILE`)
the digest is HMAC-SHA256 under that key and the record says so (`chain:
"hmac-sha256"`, `key_id`): whoever can write the file but lacks the key cannot rebuild
the chain or its head. Without a key the digest is plain SHA-256, readable for old logs
but reported as unkeyed, since anyone who can write the file can recompute it. The
audit key is a key file of purpose `audit`, never one of the data keys.
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
import getpass
import hashlib
import hmac
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tritonab._io import atomic_write_text
from tritonab.errors import MonitoringError, SecurityError
from tritonab.security import (
    AUDIT_KEY_ENV,
    LOG_KEY_ENV,
    MODEL_KEY_ENV,
    Key,
    key_from_env,
    load_key,
    require_distinct,
)

GENESIS = "0" * 64
AUDIT_FILE = "audit.jsonl"
KEYED = "hmac-sha256"


def resolve_audit_key(path: str | os.PathLike[str] | None = None) -> Key | None:
    """The audit key: the key file at `path`, else `$TRITONAB_AUDIT_KEY_FILE`, else None.

    Raises:
        SecurityError: unreadable key file, a `data` key, or the same key as the data
            keys named by `$TRITONAB_LOG_KEY_FILE` / `$TRITONAB_MODEL_KEY_FILE`.
    """
    key = load_key(path, purpose="audit") if path else key_from_env(AUDIT_KEY_ENV, purpose="audit")
    if key is not None:
        require_distinct(key, key_from_env(LOG_KEY_ENV), key_from_env(MODEL_KEY_ENV))
    return key


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


def _digest(line: bytes, key: Key | None = None) -> str:
    if key is None:
        return hashlib.sha256(line).hexdigest()
    return hmac.new(key.material, line, hashlib.sha256).hexdigest()


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


def append(
    path: str | os.PathLike[str], event: str, *, audit_key: Key | None = None, **fields: Any
) -> dict[str, Any]:
    """Append one event to the audit log at `path` (created when missing).

    Args:
        path: the audit file (see `audit_path`).
        event: what happened, e.g. `logs.prune` or `sink.rejected`.
        audit_key: chain under this key (HMAC-SHA256); default: the key named by
            `$TRITONAB_AUDIT_KEY_FILE`, else an unkeyed SHA-256 link.
        fields: JSON-serialisable details.

    Returns:
        The record written (with `time`, `event`, `prev`, and `chain`/`key_id` when keyed).

    Raises:
        MonitoringError: the file cannot be written.
        SecurityError: the audit key is unusable (see `audit_key`).
    """
    key = audit_key or resolve_audit_key()
    keyed = {"chain": KEYED, "key_id": key.id} if key is not None else {}
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
                    **keyed,
                    "prev": GENESIS if last is None else _digest(last, key),
                }
                line = json.dumps(record, sort_keys=True, default=str).encode("utf-8")
                handle.seek(0, os.SEEK_END)
                handle.write(line + b"\n")
                handle.flush()
                os.fsync(handle.fileno())
                head = {"records": count + 1, "last": _digest(line, key), **keyed}
                atomic_write_text(head_path(target), json.dumps(head) + "\n")
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
    except OSError as exc:
        raise MonitoringError(f"audit log `{target}` cannot be written: {exc.strerror}") from None
    return record


def record_read(
    log_dir: str | os.PathLike[str], action: str, paths: Sequence[str | os.PathLike[str]], **fields: Any
) -> dict[str, Any]:
    """Audit a read of logs for analysis (`logs.read`): who (user and pid), when, what.

    Args:
        log_dir: the log folder read (its `audit.jsonl` gets the record).
        action: the reader, e.g. `analyze` or `logs show`.
        paths: the files read (recorded relative to `log_dir` where they lie inside it).
        fields: more details (the experiment).
    """
    base = Path(log_dir)
    names = []
    for path in paths:
        try:
            names.append(str(Path(path).relative_to(base)))
        except ValueError:
            names.append(str(path))
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid (containers)
        user = f"uid:{os.getuid()}"
    return append(
        audit_path(base), "logs.read", actor=user, pid=os.getpid(), action=action, paths=names, **fields
    )


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
        warnings: what could not be checked (no head anchor, an unkeyed chain).
        key_id: the audit key the chain was verified under (None: unkeyed).
    """

    records: int
    broken_at: tuple[int, ...]
    tail: str = ""
    first_bad: int | None = None
    warnings: tuple[str, ...] = ()
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        return not self.broken_at and not self.tail


def verify(path: str | os.PathLike[str], *, key: Key | None = None, use_env: bool = True) -> AuditReport:
    """Check the chain of an audit log, and its end against the head anchor.

    Args:
        path: the audit log.
        key: the audit key; default (with `use_env`): `$TRITONAB_AUDIT_KEY_FILE`'s.
        use_env: look up the key in the environment when `key` is None.

    With a key, every record after the first keyed one must be chained under it
    (an unkeyed record there is a downgrade, a break), and the head anchor must be
    keyed too, so a chain rebuilt without the key fails. Unkeyed records before the
    first keyed one (a log written before the key existed) are bound by the first keyed
    link and reported in a warning. Without a key, an unkeyed log is checked as before
    and reported as unkeyed.

    Raises:
        MonitoringError: the file cannot be read.
        SecurityError: the log is keyed but no key was given, or the key is not the
            one the log is chained under.
    """
    key = key if key is not None or not use_env else resolve_audit_key()
    try:
        lines = Path(path).read_bytes().split(b"\n")
    except OSError as exc:
        raise MonitoringError(f"audit log `{path}` cannot be read: {exc.strerror}") from None
    if lines and lines[-1] == b"":
        lines.pop()
    records = [_parse(line) for line in lines]
    _check_key(path, records, key)
    broken, unkeyed = _check_links(lines, records, key)
    tail = _check_head(Path(path), lines, key)
    first = _first_bad(broken, records)
    if first is None and tail.startswith("the last record"):
        first = len(lines)
    warnings: list[str] = []
    if lines and not head_path(path).exists() and key is None:
        warnings.append(
            f"no head anchor `{head_path(path)}`: an edited or removed last record cannot be detected"
        )
    if unkeyed and key is None:
        warnings.append(
            "unkeyed SHA-256 chain: whoever can write the file can rebuild it; chain it under "
            f"an audit key (${AUDIT_KEY_ENV})"
        )
    elif unkeyed:
        warnings.append(f"records 1-{unkeyed} predate the audit key (unkeyed, bound by the first keyed link)")
    return AuditReport(len(lines), tuple(broken), tail, first, tuple(warnings), key.id if key else None)


def _parse(line: bytes) -> dict[str, Any] | None:
    with contextlib.suppress(ValueError):
        parsed = json.loads(line)
        return parsed if isinstance(parsed, dict) else None
    return None


def _check_key(path: str | os.PathLike[str], records: list[dict[str, Any] | None], key: Key | None) -> None:
    """Refuse to verify a keyed log without its key, or with another key."""
    ids = sorted({str(r.get("key_id")) for r in records if r is not None and r.get("chain") == KEYED})
    if ids and key is None:
        raise SecurityError(
            f"audit log `{path}` is chained under audit key {', '.join(ids)}: "
            f"pass --key-file (or set ${AUDIT_KEY_ENV}) to verify it"
        )
    if ids and key is not None and key.id not in ids:
        raise SecurityError(
            f"audit log `{path}` is chained under audit key {', '.join(ids)}, "
            f"not under the given key {key.id}"
        )


def _check_links(
    lines: list[bytes], records: list[dict[str, Any] | None], key: Key | None
) -> tuple[list[int], int]:
    """Lines whose `prev` does not match, and the length of the unkeyed prefix."""
    broken: list[int] = []
    seen_keyed, unkeyed = False, 0
    previous: bytes | None = None
    for number, (line, record) in enumerate(zip(lines, records), start=1):
        keyed = record is not None and record.get("chain") == KEYED
        if keyed and key is not None and record is not None and record.get("key_id") != key.id:
            keyed = False  # chained under a key we do not hold: cannot be a valid link
            broken.append(number)
        elif record is None or (not keyed and seen_keyed):
            broken.append(number)  # not JSON, or an unkeyed record after keyed ones
        else:
            link = key if keyed else None
            expected = GENESIS if previous is None else _digest(previous, link)
            if record.get("prev") != expected:
                broken.append(number)
        seen_keyed = seen_keyed or keyed
        if not seen_keyed:
            unkeyed = number
        previous = line
    return broken, unkeyed


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


def _check_head(path: Path, lines: list[bytes], key: Key | None = None) -> str:
    """What the head anchor says is wrong with the end of the log ("" when nothing)."""
    head = _read_head(path)
    if head is None and key is not None and lines:
        return f"no head anchor `{head_path(path)}` (with an audit key the keyed anchor is required)"
    if head is None:
        return "" if not head_path(path).exists() else f"head anchor `{head_path(path)}` is unreadable"
    if key is not None and lines and (head.get("chain") != KEYED or head.get("key_id") != key.id):
        return f"head anchor `{head_path(path)}` is not keyed under the audit key {key.id} (rebuilt?)"
    want, last = int(head.get("records", -1)), head.get("last")
    if len(lines) < want:
        return f"{want - len(lines)} record(s) missing at the end (the anchor counts {want})"
    if len(lines) > want:
        return f"{len(lines) - want} record(s) after the anchored end (the anchor counts {want})"
    if lines and _digest(lines[-1], key) != last:
        return f"the last record (line {len(lines)}) differs from the anchored one"
    return ""


def read(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every record of an audit log (an empty list when it does not exist)."""
    target = Path(path)
    if not target.exists():
        return []
    return [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines() if line]
