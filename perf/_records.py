"""One result per load level, and perf_analyzer's `-f` CSV format (read and write).

Columns, in perf_analyzer's order (all latencies in microseconds):
`Concurrency` or `Request Rate`, `Inferences/Second`, `Client Send`,
[`Network+Server Send/Recv`, `Server Queue`, `Server Compute Input`,
`Server Compute Infer`, `Server Compute Output`, [`Server Cache Hit`,
`Server Cache Miss`]], `Client Recv`, `p50 latency`, `p90 latency`,
`p95 latency`, `p99 latency` [, `Avg latency`, `request/response`, `response wait`].
The server block is absent when perf_analyzer had no server statistics, the cache
pair appears only when the response cache is on, and the tail with `--verbose-csv`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tritonab._io import atomic_write_text
from tritonab.errors import PerfError

LoadMode = Literal["concurrency", "request_rate"]

_LOAD_COLUMNS: dict[str, LoadMode] = {"Concurrency": "concurrency", "Request Rate": "request_rate"}
_SERVER_COLUMNS = {
    "Network+Server Send/Recv": "network_us",
    "Server Queue": "queue_us",
    "Server Compute Input": "compute_input_us",
    "Server Compute Infer": "compute_infer_us",
    "Server Compute Output": "compute_output_us",
}
_CACHE_COLUMNS = {"Server Cache Hit": "cache_hit_us", "Server Cache Miss": "cache_miss_us"}
_CLIENT_COLUMNS = {
    "Inferences/Second": "throughput",
    "Client Send": "client_send_us",
    "Client Recv": "client_recv_us",
}
_PERCENTILE_COLUMNS = {
    "p50 latency": "p50_us",
    "p90 latency": "p90_us",
    "p95 latency": "p95_us",
    "p99 latency": "p99_us",
}
_VERBOSE_COLUMNS = {
    "Avg latency": "avg_latency_us",
    "request/response": "request_response",
    "response wait": "response_wait_us",
}
_REQUIRED = ("Inferences/Second", "Client Send", "Client Recv", *_PERCENTILE_COLUMNS)


@dataclass(frozen=True)
class PerfRecord:
    """One load level's result, from the built-in generator or a perf_analyzer CSV.

    Server-side fields are None when the source had no server statistics; the cache
    fields only when the response cache was on; `extra` holds any other numeric column.
    Fields after `extra` exist for built-in measurements only.
    """

    mode: LoadMode
    load: float
    throughput: float
    p50_us: float
    p90_us: float
    p95_us: float
    p99_us: float
    client_send_us: float = 0.0
    client_recv_us: float = 0.0
    network_us: float | None = None
    queue_us: float | None = None
    compute_input_us: float | None = None
    compute_infer_us: float | None = None
    compute_output_us: float | None = None
    cache_hit_us: float | None = None
    cache_miss_us: float | None = None
    avg_latency_us: float | None = None
    request_response: float | None = None
    response_wait_us: float | None = None
    extra: dict[str, float] = field(default_factory=dict)
    count: int | None = None
    errors: int | None = None
    stable: bool | None = None
    trials: int | None = None

    @property
    def concurrency(self) -> int | None:
        """The concurrency of a concurrency-mode level (else None)."""
        return int(self.load) if self.mode == "concurrency" else None

    @property
    def request_rate(self) -> float | None:
        """The request rate of a request-rate-mode level (else None)."""
        return self.load if self.mode == "request_rate" else None

    @property
    def error_rate(self) -> float | None:
        """Failed / completed requests (None when unknown, as in perf_analyzer CSVs)."""
        if self.count is None or self.errors is None:
            return None
        return self.errors / self.count if self.count else 0.0

    @property
    def has_server_stats(self) -> bool:
        """Whether the server-side columns are known."""
        return self.queue_us is not None

    def to_dict(self) -> dict:
        """A JSON-ready dict (with `concurrency` / `request_rate` spelled out)."""
        out = asdict(self)
        out.update(concurrency=self.concurrency, request_rate=self.request_rate, error_rate=self.error_rate)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> PerfRecord:
        """The inverse of `to_dict`."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


def json_safe(value: object) -> object:
    """`value` with NaN/inf floats replaced by None (strict JSON), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def dumps_json(document: object) -> str:
    """Strict, indented JSON text of `document` (NaN becomes null)."""
    return json.dumps(json_safe(document), indent=2, allow_nan=False) + "\n"


def csv_header(records: list[PerfRecord], *, verbose: bool = False) -> list[str]:
    """perf_analyzer's header for `records` (server and cache blocks only when known)."""
    mode = records[0].mode if records else "concurrency"
    header = ["Concurrency" if mode == "concurrency" else "Request Rate", "Inferences/Second", "Client Send"]
    if records and all(r.has_server_stats for r in records):
        header += list(_SERVER_COLUMNS)
        if any(r.cache_hit_us is not None for r in records):
            header += list(_CACHE_COLUMNS)
    header += ["Client Recv", *_PERCENTILE_COLUMNS]
    if verbose:
        header += list(_VERBOSE_COLUMNS)
    return header


def _cell(record: PerfRecord, column: str) -> str:
    if column in _LOAD_COLUMNS:
        return str(int(record.load)) if float(record.load).is_integer() else f"{record.load:g}"
    key = {**_SERVER_COLUMNS, **_CACHE_COLUMNS, **_CLIENT_COLUMNS, **_PERCENTILE_COLUMNS, **_VERBOSE_COLUMNS}[
        column
    ]
    value = getattr(record, key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "0"
    # perf_analyzer prints integers for microseconds and a decimal for throughput.
    return f"{value:.4f}" if key == "throughput" else str(int(round(value)))


def format_perf_csv(records: list[PerfRecord], *, verbose: bool = False) -> str:
    """The CSV text of `records`, exactly in perf_analyzer's `-f` format."""
    header = csv_header(records, verbose=verbose)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for record in records:
        writer.writerow([_cell(record, column) for column in header])
    return buffer.getvalue()


def write_perf_csv(records: list[PerfRecord], path: str | os.PathLike[str], *, verbose: bool = False) -> None:
    """Write `records` as a perf_analyzer-format CSV file (atomically)."""
    atomic_write_text(path, format_perf_csv(records, verbose=verbose))


def read_perf_analyzer_csv(path: str | os.PathLike[str]) -> list[PerfRecord]:
    """Read a perf_analyzer `-f` CSV (or one this harness wrote) into records.

    Args:
        path: the CSV file.

    Returns:
        One `PerfRecord` per load level, in file order.

    Raises:
        PerfError: unreadable file, missing required columns, or a non-numeric cell.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PerfError(f"perf_analyzer CSV `{path}`: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PerfError(f"perf_analyzer CSV `{path}` is not UTF-8 text (byte {exc.start})") from None
    return parse_perf_analyzer_csv(text, source=str(path))


def parse_perf_analyzer_csv(text: str, *, source: str = "<csv>") -> list[PerfRecord]:
    """`read_perf_analyzer_csv` on CSV text; reading stops at the first blank line."""
    lines: list[str] = []
    for line in text.lstrip("\ufeff").splitlines():
        if not line.strip():
            if lines:
                break
            continue
        lines.append(line)
    rows = list(csv.reader(lines))
    if not rows:
        raise PerfError(f"perf_analyzer CSV `{source}` is empty")
    header = [h.strip() for h in rows[0]]
    load_column = next((h for h in header if h in _LOAD_COLUMNS), None)
    missing = [c for c in _REQUIRED if c not in header]
    if load_column is None or missing:
        need = "`Concurrency` or `Request Rate`" if load_column is None else f"`{missing[0]}`"
        raise PerfError(f"perf_analyzer CSV `{source}`: missing column {need}")
    return [_record(header, row, load_column, source, n) for n, row in enumerate(rows[1:], start=2)]


def _record(header: list[str], row: list[str], load_column: str, source: str, line: int) -> PerfRecord:
    if len(row) < len(header):
        raise PerfError(f"perf_analyzer CSV `{source}` line {line}: {len(row)} cells, expected {len(header)}")
    values: dict[str, float] = {}
    for column, cell in zip(header, row):
        try:
            values[column] = float(cell)
        except ValueError:
            raise PerfError(
                f"perf_analyzer CSV `{source}` line {line}: `{column}` is `{cell}`, not a number"
            ) from None
    known = {
        **_SERVER_COLUMNS,
        **_CACHE_COLUMNS,
        **_CLIENT_COLUMNS,
        **_PERCENTILE_COLUMNS,
        **_VERBOSE_COLUMNS,
    }
    fields_: dict[str, Any] = {known[c]: v for c, v in values.items() if c in known}
    extra = {c: v for c, v in values.items() if c not in known and c != load_column}
    return PerfRecord(mode=_LOAD_COLUMNS[load_column], load=values[load_column], extra=extra, **fields_)
