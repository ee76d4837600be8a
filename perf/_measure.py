"""perf_analyzer's measurement method on the built-in generator.

Per load level: consecutive windows of `measurement_interval_ms`; after each, the
last three windows are stable when, in both throughput and latency (the mean, or
the `--percentile` when given), max/min - 1 <= `stability_percentage` / 100. The
level's result merges those three windows (pooled latencies, summed counters), as
perf_analyzer does. A level still unstable after `max_trials` windows is reported
from its last three windows with `stable=False`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tritonab._transport import AsyncConnection
from tritonab.errors import PerfError
from tritonab.perf._loadgen import LoadSession, StatsProbe, Window
from tritonab.perf._records import LoadMode, PerfRecord
from tritonab.perf._server_stats import split_latency

_STABLE_WINDOWS = 3


@dataclass(frozen=True)
class MeasureSettings:
    """How each load level is measured (perf_analyzer's defaults)."""

    measurement_interval_ms: float = 5000.0
    stability_percentage: float = 10.0
    max_trials: int = 10
    percentile: float | None = None
    schedule: str = "poisson"

    def __post_init__(self) -> None:
        if self.measurement_interval_ms <= 0:
            raise PerfError("--measurement-interval must be positive")
        if self.stability_percentage <= 0:
            raise PerfError("--stability-percentage must be positive")
        if self.max_trials < _STABLE_WINDOWS:
            raise PerfError(f"--max-trials must be at least {_STABLE_WINDOWS}")
        if self.percentile is not None and not 0 < self.percentile < 100:
            raise PerfError("--percentile must be between 0 and 100")
        if self.schedule not in ("poisson", "constant"):
            raise PerfError(f"schedule `{self.schedule}`: expected poisson or constant")


def parse_range(text: str, *, integer: bool) -> list[float]:
    """perf_analyzer's `START:END:STEP` (END and STEP optional) as a list of load levels.

    Raises:
        PerfError: not numbers, non-positive values, or END < START.
    """
    parts = text.split(":")
    try:
        nums = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        nums = []
    if not 1 <= len(nums) <= 3 or min(nums) <= 0 or (len(nums) > 1 and nums[1] < nums[0]):
        kind = "positive integers" if integer else "positive numbers"
        raise PerfError(f"range `{text}`: expected START[:END[:STEP]] with {kind}")
    start, end = nums[0], nums[1] if len(nums) > 1 else nums[0]
    step = nums[2] if len(nums) > 2 else 1
    levels: list[float] = []
    value = start
    while value <= end + 1e-9 and len(levels) < 1000:
        levels.append(value)
        value += step
    return levels


def latency_metric(window: Window, percentile: float | None) -> float:
    """The latency figure stability is judged on: the mean, or the chosen percentile."""
    return window.percentile(percentile) if percentile is not None else window.mean_latency_us


def is_stable(windows: Sequence[Window], settings: MeasureSettings) -> bool:
    """Whether the last three windows agree within the stability percentage."""
    if len(windows) < _STABLE_WINDOWS:
        return False
    last = windows[-_STABLE_WINDOWS:]
    limit = 1.0 + settings.stability_percentage / 100.0
    for values in ([w.throughput for w in last], [latency_metric(w, settings.percentile) for w in last]):
        arr = np.asarray(values, dtype=float)
        if not np.all(np.isfinite(arr)) or arr.min() <= 0 or arr.max() / arr.min() > limit:
            return False
    return True


def record_from_window(
    window: Window, mode: LoadMode, load: float, *, stable: bool | None, trials: int | None
) -> PerfRecord:
    """A `PerfRecord` from a (merged) window: client percentiles plus the server split."""
    avg = window.mean_latency_us if window.latencies_us.size else 0.0
    split: dict[str, Any] = split_latency(avg, window.server)
    has_server = window.server is not None and window.server.success_count > 0
    if not has_server:
        split = {"client_send_us": 0.0, "client_recv_us": 0.0}
    return PerfRecord(
        mode=mode,
        load=load,
        throughput=window.throughput,
        p50_us=window.percentile(50),
        p90_us=window.percentile(90),
        p95_us=window.percentile(95),
        p99_us=window.percentile(99),
        avg_latency_us=avg,
        count=window.count,
        errors=window.errors,
        stable=stable,
        trials=trials,
        **split,
    )


async def measure_level(
    connection: AsyncConnection,
    factory: Callable,
    mode: LoadMode,
    load: float,
    settings: MeasureSettings,
    probe: StatsProbe | None = None,
    on_window: Callable[[Window], None] | None = None,
) -> tuple[PerfRecord, list[Window]]:
    """Measure one load level until stable or `max_trials` windows.

    Args:
        connection: the asyncio connection to the server.
        factory: request factory (see `LoadSession`).
        mode: `concurrency` or `request_rate`.
        load: the concurrency or the request rate.
        settings: window length, stability and trial limits.
        probe: async callable giving a server statistics snapshot.
        on_window: called with each window (progress display).

    Returns:
        The level's record and every window measured.
    """
    session = LoadSession(
        connection,
        factory,
        concurrency=int(load) if mode == "concurrency" else 1,
        request_rate=load if mode == "request_rate" else 0.0,
        schedule=settings.schedule,
    )
    session.start()
    windows: list[Window] = []
    try:
        for _ in range(settings.max_trials):
            windows.append(await session.measure(settings.measurement_interval_ms / 1e3, probe))
            if on_window:
                on_window(windows[-1])
            if is_stable(windows, settings):
                break
    finally:
        await session.stop()
    merged = Window.merge(windows[-_STABLE_WINDOWS:])
    record = record_from_window(merged, mode, load, stable=is_stable(windows, settings), trials=len(windows))
    return record, windows


async def profile(
    connection: AsyncConnection,
    factory: Callable,
    mode: LoadMode,
    levels: Sequence[float],
    settings: MeasureSettings,
    probe: StatsProbe | None = None,
    on_level: Callable[[PerfRecord], None] | None = None,
) -> list[PerfRecord]:
    """Measure every load level in turn (perf_analyzer's sweep); one record per level."""
    records = []
    for load in levels:
        record, _windows = await measure_level(connection, factory, mode, load, settings, probe)
        records.append(record)
        if on_level:
            on_level(record)
        await asyncio.sleep(0)
    return records
