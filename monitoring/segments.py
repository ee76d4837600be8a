"""Segmented JSON Lines logs written off the request path, and their reader.

A `SegmentWriter` owns a bounded queue; a `Pump` thread (the writer's own, or one shared
by several writers: a router's exposures and payloads) writes it. `submit` never
blocks: when the queue is full the item is dropped and counted, and the writer appends
the running drop total to a sidecar (`_drops/<stream>-<instance>-<pid>.jsonl`) so an
analysis can flag the loss. The pump turns each item into records (`expand`),
writes them to the open segment `.<name>.tmp` and flushes to the OS after every pass
(a killed process loses only what was still queued). On rotation (record count, size
or age) and on `close` the segment is fsynced and renamed to `<name>` (`*.jsonl`):
a sealed segment is always whole. Names carry the stream, instance, pid and start time,
so two writers never share a file.

Readers take sealed segments and leftover `.tmp` ones (from a crash or a live writer);
a torn last record (no trailing newline) is skipped with a warning and counted. Sealed
plain segments may be compacted into Parquet (`monitoring.compaction`): readers take
those files too, and skip the segments a Parquet file already holds.

With a data key the writer encrypts (`*.jsonl.enc`, `tritonab.security` envelope
format): a fresh data key per segment, wrapped by the master key, and one AES-GCM chunk
per drain of the queue (not per record), so the hot path is unchanged and a torn tail
loses only the chunk being written. Readers decrypt in memory (`read_segment`); nothing
plaintext is written. A `guard` (a residency check) sees every file before it is opened.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from tritonab.errors import LogFormatError, SecurityError
from tritonab.security import LOG_KEY_ENV, EnvelopeWriter, Key, complete_length, key_from_env, open_segment

DROPS_DIR = "_drops"
SEGMENT_SUFFIX = ".jsonl"
ENCRYPTED_SUFFIX = ".jsonl.enc"
_NAME = re.compile(
    r"^(?P<stream>[a-z]+)-(?P<instance>.+)-(?P<pid>\d+)-(?P<start>\d+)-(?P<seq>\d+)\.jsonl(\.enc)?$"
)


class TornRecordWarning(UserWarning):
    """A segment ends with an incomplete record (the writer died mid-write)."""


def _default(value: Any) -> Any:
    """JSON for numpy values and bytes."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(record: dict[str, Any]) -> str:
    """One compact JSON line, by orjson (about 20x the standard encoder on a payload
    record): numeric numpy arrays and scalars natively (float32 in its shortest form),
    other arrays and bytes through `_default`. NaN and infinities are written as null."""
    return orjson.dumps(record, default=_default, option=orjson.OPT_SERIALIZE_NUMPY).decode()


GIL_SLICE_S = 0.0001
"""Longest stretch a writer works between GIL hand-overs (Python's switch interval is
5 ms; a hand-over after every batch cost the writer about 10 us of CPU per record).
0.1 ms rather than 0.5: over this machine's runs the logged/unlogged p50 at concurrency 1
was 0.96-1.05x (mean 1.01) against 1.00-1.07x (mean 1.04), and the throughput ratio at
concurrency 16 0.885-1.03x (mean 0.94) against 0.875-0.951x (mean 0.92): within the
noise, but a shorter hold can only shorten the request path's wait."""


IDLE_WAKE_S = 1.0
"""How often an idle pump wakes to rotate aged segments and record drops."""


class Pump:
    """One background thread that writes for one or more `SegmentWriter`s.

    The request path only appends to a writer's deque (no lock, no condition): the pump
    wakes every `linger_s` while anything is pending and writes each writer's items in
    one pass, and sleeps on an event, set by the first submit, while nothing is. One
    thread for a router's exposure and payload writers instead of a thread each: every
    wake-up of a writer thread is a GIL hand-over the request path pays for too.

    Args:
        name: the thread's name.
        linger_s: after waking for an item, wait this long for more before writing (one
            write per pass instead of one per submitted batch); what is pending is lost in
            a crash either way. 5 ms: fewer wake-ups, writes and flushes than 2 ms, while a
            crash loses no more than the SIGKILL test's bound (20 ms lost 6 of 150
            sequential requests there, whose bound is 5).
    """

    def __init__(self, name: str = "tritonab-log", *, linger_s: float = 0.005) -> None:
        self.linger_s = linger_s
        self._writers: list[SegmentWriter] = []
        self._wake = threading.Event()
        self._sleeping = False
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def attach(self, writer: SegmentWriter) -> None:
        """Serve `writer` too (starts the thread with the first)."""
        self._writers = [*self._writers, writer]
        if not self._thread.is_alive() and not self._stopping:
            self._thread.start()

    def wake(self) -> None:
        """Called by `submit`: sets the event only when the pump sleeps on it."""
        if self._sleeping:
            self._sleeping = False
            self._wake.set()

    def close(self, timeout: float = 30.0) -> None:
        """Write everything pending, seal every writer's open segment and stop."""
        if self._stopping:
            return
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _pending(self) -> bool:
        return any(w._pending for w in self._writers)

    def _run(self) -> None:
        busy = False
        while True:
            stopping = self._stopping
            if not stopping:
                if not busy and not self._pending():
                    # Idle: sleep until a submit wakes the pump. Under traffic it does not
                    # come here (a submit then sets nothing: no lock, no futex wake-up).
                    self._sleeping = True
                    if not self._pending() and not self._stopping:
                        self._wake.wait(min([IDLE_WAKE_S, *(w.max_age_s for w in self._writers)]))
                    self._sleeping = False
                    self._wake.clear()
                if self.linger_s > 0 and not self._stopping:
                    # Let a few more batches arrive: one pass (and one write) for them all
                    # instead of a wake-up, a write and a flush per batch.
                    time.sleep(self.linger_s)
            busy = self._pending()
            for writer in self._writers:
                writer._pass()
            if stopping:
                for writer in self._writers:
                    writer._pass()  # what was submitted while the last pass ran
                    writer._finish()
                return
            for writer in [w for w in self._writers if w._closing and not w._pending]:
                writer._finish()
                self._writers = [w for w in self._writers if w is not writer]


class SegmentWriter:
    """A bounded queue of items, written to rotating JSON Lines segments off the request
    path by a `Pump` thread (its own, or one shared with other writers).

    Args:
        directory: folder of this stream's segments (created).
        stream: `exposures`, `payloads`, ...: the first part of every segment name.
        instance: the writer's owner (e.g. Triton's model instance name).
        queue_size: items (batches) that may wait; more are dropped and counted.
        max_records, max_bytes, max_age_s: rotate the segment past any of these.
        linger_s: the own pump's linger (`Pump`); ignored with a shared `pump`.
        expand: turns one submitted item into records (default: the item is a list of
            dicts); a record may also be its JSON line already (a `str`).
        labels: added to every drop marker (e.g. the experiment).
        key: a data key: segments are written encrypted (`*.jsonl.enc`).
        guard: called with every file's path before it is opened (a residency check);
            raising refuses the write.
        pump: the thread that writes; by default the writer starts its own.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        stream: str,
        *,
        instance: str = "main",
        queue_size: int = 10_000,
        max_records: int = 100_000,
        max_bytes: int = 64 << 20,
        max_age_s: float = 300.0,
        linger_s: float = 0.005,
        expand: Callable[[Any], Iterable[dict[str, Any] | str]] | None = None,
        labels: dict[str, str] | None = None,
        key: Key | None = None,
        guard: Callable[[Path], object] | None = None,
        pump: Pump | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.key = key
        self._guard = guard
        self._envelope: EnvelopeWriter | None = None
        self.stream = stream
        self.instance = re.sub(r"[^A-Za-z0-9_.]", "_", instance)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.queue_size = queue_size
        self._expand = expand or (lambda item: item)
        self._labels = dict(labels or {})
        # Appended by the request path, popped by the pump: deque operations are atomic.
        self._pending: deque[Any] = deque()
        self._lock = threading.Lock()
        self.submitted = 0
        self.dropped = 0
        self.written = 0
        self.cpu_s = 0.0  # CPU seconds the pump spent for this writer (serialising, encrypting, writing)
        self.segments: list[Path] = []
        self._accepted = 0  # items
        self._done = 0  # items written (or failed)
        self._closing = False
        self._closed = threading.Event()
        self._marked = 0
        self._seq = 0
        self._start = f"{time.time_ns() // 1_000_000}"
        self._handle: BinaryIO | None = None
        self._open_path: Path | None = None
        self._records = 0
        self._bytes = 0
        self._opened_at = 0.0
        self.directory.mkdir(parents=True, exist_ok=True)
        self._own_pump = pump is None
        self.pump = Pump(f"tritonab-log-{stream}", linger_s=linger_s) if pump is None else pump
        self.pump.attach(self)

    def submit(self, item: Any, count: int = 1) -> bool:
        """Queue `item` (worth `count` records) without blocking; False when dropped."""
        if len(self._pending) >= self.queue_size or self._closed.is_set():
            with self._lock:
                self.dropped += count
            return False
        with self._lock:
            self.submitted += count
            self._accepted += 1
        self._pending.append(item)
        self.pump.wake()
        return True

    def count_dropped(self, count: int) -> None:
        """Count records lost before they could be submitted (recorded like queue drops)."""
        with self._lock:
            self.dropped += count

    def close(self, timeout: float = 30.0) -> None:
        """Write everything queued, seal the open segment and stop (the pump too, when it
        is the writer's own)."""
        if self._own_pump:
            self.pump.close(timeout)
            return
        self._closing = True
        self.pump.wake()
        self._closed.wait(timeout)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until everything submitted so far is written (for tests and shutdown)."""
        deadline = time.monotonic() + timeout
        target = self._accepted
        while time.monotonic() < deadline and self._done < target:
            time.sleep(0.01)

    # -- the pump's side -----------------------------------------------------------------

    def _pass(self) -> None:
        """Write what is pending, then rotate and record drops as due."""
        items: list[Any] = []
        while self._pending and len(items) < 4096:
            items.append(self._pending.popleft())
        if items:
            started = time.thread_time()
            try:
                self._write(items)
            except Exception as exc:  # a logging failure must never kill the router
                warnings.warn(f"log writer `{self.stream}`: {exc}", RuntimeWarning, stacklevel=1)
            finally:
                self.cpu_s += time.thread_time() - started
                self._done += len(items)
        self._mark_drops()
        self._maybe_rotate()

    def _finish(self) -> None:
        """Seal the open segment; the writer takes nothing more."""
        try:
            self._mark_drops()
            self._seal()
        except Exception as exc:
            warnings.warn(f"log writer `{self.stream}`: {exc}", RuntimeWarning, stacklevel=1)
        finally:
            self._closed.set()

    def _write(self, items: list[Any]) -> None:
        lines: list[str] = []
        held = time.perf_counter()
        for item in items:
            if time.perf_counter() - held > GIL_SLICE_S:
                # Hand the GIL over between batches: a pass over many batches would
                # otherwise hold it for a whole switch interval while the request path waits.
                time.sleep(0)
                held = time.perf_counter()
            # `expand` yields records, or lines it serialised itself (the router's
            # exposures: one format string per row instead of a dict and an encoder pass).
            lines.extend(r if isinstance(r, str) else dumps(r) for r in self._expand(item))
        while lines:
            handle = self._current()
            room = max(1, self.max_records - self._records)
            chunk, lines = lines[:room], lines[room:]
            data = ("\n".join(chunk) + "\n").encode("utf-8")
            if self._envelope is not None:
                data = self._envelope.chunk(data)
            handle.write(data)
            handle.flush()
            self._records += len(chunk)
            self._bytes += len(data)
            self.written += len(chunk)
            if lines:
                self._seal()

    def _current(self):
        if self._handle is None:
            self._seq += 1
            name = f"{self.stream}-{self.instance}-{os.getpid()}-{self._start}-{self._seq:06d}"
            suffix = SEGMENT_SUFFIX if self.key is None else ENCRYPTED_SUFFIX
            path = self.directory / f".{name}{suffix}.tmp"
            if self._guard is not None:
                self._guard(path)
            self._open_path = path
            self._handle = open(path, "wb")  # noqa: SIM115 - lives across calls
            self._records = self._bytes = 0
            if self.key is not None:
                self._envelope = EnvelopeWriter(self.key)
                self._handle.write(self._envelope.header)
            self._opened_at = time.monotonic()
        return self._handle

    def _maybe_rotate(self) -> None:
        if self._handle is None:
            return
        if (
            self._records >= self.max_records
            or self._bytes >= self.max_bytes
            or time.monotonic() - self._opened_at >= self.max_age_s
        ):
            self._seal()

    def _seal(self) -> None:
        """fsync the open segment and rename it to its final name."""
        handle, path = self._handle, self._open_path
        if handle is None or path is None:
            return
        self._handle = self._open_path = None
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        final = path.with_name(path.name[1:].removesuffix(".tmp"))
        os.replace(path, final)
        with contextlib.suppress(OSError):  # make the rename durable too
            fd = os.open(self.directory, os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        self.segments.append(final)

    def _mark_drops(self) -> None:
        with self._lock:
            dropped = self.dropped
        if dropped == self._marked:
            return
        self._marked = dropped
        sidecar = self.directory.parent / DROPS_DIR / f"{self.stream}-{self.instance}-{os.getpid()}.jsonl"
        if self._guard is not None:
            self._guard(sidecar)
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        with open(sidecar, "a", encoding="utf-8") as handle:
            handle.write(
                dumps(
                    {
                        "time": time.time(),
                        "stream": self.stream,
                        "instance": self.instance,
                        "pid": os.getpid(),
                        "dropped_total": dropped,
                        **self._labels,
                    }
                )
                + "\n"
            )


# -- reading ---------------------------------------------------------------------------


@dataclass
class ReadReport:
    """What a read found: segments, records, torn tails and unsealed segments."""

    sealed: list[Path] = field(default_factory=list)
    unsealed: list[Path] = field(default_factory=list)
    torn: list[Path] = field(default_factory=list)
    records: int = 0
    parquet: list[Path] = field(default_factory=list)

    @property
    def files(self) -> list[Path]:
        """The JSON Lines segments (sealed, then unsealed); Parquet files are `parquet`."""
        return [*self.sealed, *self.unsealed]


def segment_files(directory: str | os.PathLike[str], *, include_unsealed: bool = True) -> ReadReport:
    """Sealed (and optionally unsealed `.tmp`) segments of a stream folder; torn tails noted.

    Warns (`TornRecordWarning`) once per segment whose last record is incomplete.
    """
    from tritonab.monitoring.compaction import PARQUET_SUFFIX, compacted_sources

    folder = Path(directory)
    report = ReadReport()
    if not folder.is_dir():
        return report
    report.parquet = sorted(p for p in folder.glob(f"*{PARQUET_SUFFIX}") if not p.name.startswith("."))
    held = compacted_sources(folder) if report.parquet else set()
    sealed = [*folder.glob(f"*{SEGMENT_SUFFIX}"), *folder.glob(f"*{ENCRYPTED_SUFFIX}")]
    report.sealed = sorted(p for p in sealed if p.name not in held)
    if include_unsealed:
        report.unsealed = sorted(
            [*folder.glob(f".*{SEGMENT_SUFFIX}.tmp"), *folder.glob(f".*{ENCRYPTED_SUFFIX}.tmp")]
        )
    for path in report.files:
        if is_torn(path):
            report.torn.append(path)
            warnings.warn(
                f"segment `{path}` ends with an incomplete record: skipped", TornRecordWarning, stacklevel=2
            )
    return report


def is_encrypted(path: str | os.PathLike[str]) -> bool:
    """True for an encrypted segment (`*.jsonl.enc`, sealed or not)."""
    return os.fspath(path).removesuffix(".tmp").endswith(ENCRYPTED_SUFFIX)


def read_segment(path: str | os.PathLike[str], key: Key | None = None) -> bytes:
    """The whole records of one segment as JSON Lines bytes, decrypted in memory.

    Args:
        path: a segment, plain or encrypted.
        key: the master key of an encrypted segment; default `$TRITONAB_LOG_KEY_FILE`'s.

    Raises:
        SecurityError: an encrypted segment and no key, another key, or a tampered chunk.
    """
    data = Path(path).read_bytes()
    if is_encrypted(path):
        key = key or key_from_env(LOG_KEY_ENV, purpose="data")
        if key is None:
            raise SecurityError(f"segment `{path}` is encrypted: pass --key-file or set ${LOG_KEY_ENV}")
        data = open_segment(key, data, what=os.fspath(path)).plaintext
    return data[: data.rfind(b"\n") + 1]


def is_torn(path: Path) -> bool:
    """True when a non-empty file does not end with a newline (or, encrypted, with a whole chunk)."""
    if is_encrypted(path):
        try:
            data = path.read_bytes()
        except OSError:
            return False
        return complete_length(data) < len(data)
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            if handle.tell() == 0:
                return False
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:
        return False


def iter_records(
    directory: str | os.PathLike[str],
    *,
    include_unsealed: bool = True,
    report: ReadReport | None = None,
    key: Key | None = None,
) -> Iterator[dict[str, Any]]:
    """Every whole record of a stream folder, segment by segment (torn tails skipped);
    encrypted segments are decrypted in memory with `key` (default `$TRITONAB_LOG_KEY_FILE`)."""
    found = segment_files(directory, include_unsealed=include_unsealed)
    if report is not None:
        report.sealed, report.unsealed, report.torn = found.sealed, found.unsealed, found.torn
        report.parquet = found.parquet
    for path in found.parquet:
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
            rows = batch.to_pylist()
            if report is not None:
                report.records += len(rows)
            yield from rows
    for path in found.files:
        lines = read_segment(path, key).split(b"\n")
        for number, line in enumerate(lines[:-1], start=1):  # the last piece is "" (a torn record was cut)
            if line:
                if report is not None:
                    report.records += 1
                yield _record(path, number, line)


def _record(path: Path, number: int, line: bytes) -> dict[str, Any]:
    """One whole line as a record; a line that is not a JSON object is a corrupt segment."""
    try:
        record = json.loads(line)
    except ValueError as exc:  # also UnicodeDecodeError
        raise LogFormatError(f"segment `{path}` line {number} is not a JSON record: {exc}") from None
    if not isinstance(record, dict):
        raise LogFormatError(f"segment `{path}` line {number} is not a JSON object")
    return record


def read_records(directory: str | os.PathLike[str], **kwargs: Any) -> tuple[list[dict[str, Any]], ReadReport]:
    """All whole records of a stream folder and what the read found."""
    report = ReadReport()
    records = list(iter_records(directory, report=report, **kwargs))
    return records, report


def dropped_total(experiment_dir: str | os.PathLike[str], stream: str | None = None) -> int:
    """Records dropped by all writers of an experiment folder (from the `_drops` sidecars)."""
    folder = Path(experiment_dir) / DROPS_DIR
    total = 0
    for path in sorted(folder.glob("*.jsonl")) if folder.is_dir() else []:
        last = None
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):
                last = json.loads(line)
        if last is not None and (stream is None or last.get("stream") == stream):
            total += int(last.get("dropped_total", 0))
    return total


def _pid_alive(pid: int) -> bool:
    """True while process `pid` runs (a zombie, killed but not reaped, counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    return True


def recover(directory: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Seal the unsealed segments left by dead writers: cut a torn tail, fsync, rename.

    A segment whose writer process is still alive is left alone unless `force`.
    Returns the segments sealed.
    """
    sealed = []
    folder = Path(directory)
    leftovers = [*folder.glob(f".*{SEGMENT_SUFFIX}.tmp"), *folder.glob(f".*{ENCRYPTED_SUFFIX}.tmp")]
    for path in sorted(leftovers):
        final = path.with_name(path.name[1:].removesuffix(".tmp"))
        match = _NAME.match(final.name)
        if match and not force and _pid_alive(int(match["pid"])):
            continue
        data = path.read_bytes()
        cut = complete_length(data) if is_encrypted(path) else data.rfind(b"\n") + 1
        if cut < len(data):
            warnings.warn(
                f"segment `{path}`: cut an incomplete last record ({len(data) - cut} bytes)",
                TornRecordWarning,
                stacklevel=2,
            )
        with open(path, "r+b") as handle:
            handle.truncate(cut)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(path, final)
        sealed.append(final)
    return sealed


def rotate_segments(log_dir: str | os.PathLike[str], old: Key, new: Key) -> list[Path]:
    """Re-encrypt every sealed encrypted segment under `log_dir` from `old` to `new`.

    Each segment gets a fresh data key wrapped by `new` and is replaced atomically;
    segments under another key, and unsealed ones (a writer may still append), are
    left alone.

    Returns:
        The segments re-encrypted.

    Raises:
        SecurityError: a segment under `old` fails authentication (tampered).
    """
    from tritonab._io import atomic_write_bytes
    from tritonab.security import rewrap

    rotated = []
    for path in sorted(Path(log_dir).rglob(f"*{ENCRYPTED_SUFFIX}")):
        data = path.read_bytes()
        if len(data) < 16 or data[8:16].hex() != old.id:
            continue
        atomic_write_bytes(path, rewrap(data, old, new, what=str(path)), private=True)
        rotated.append(path)
    return rotated
