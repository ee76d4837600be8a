"""Capacity per replica from a `tritonab perf run` (or perf_analyzer `-f`) CSV.

A replica's capacity is the highest throughput among the measured load levels whose
p99 latency is inside the SLA; a level over the SLA says nothing about capacity. Run the
sweep against one replica, up to and past the SLA, for the figure to mean anything.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from tritonab.errors import AutoscaleError
from tritonab.perf import PerfRecord, read_perf_analyzer_csv


def capacity_from_records(records: Sequence[PerfRecord], p99_sla_ms: float) -> float:
    """The highest throughput of a level with p99 <= `p99_sla_ms`.

    Raises:
        AutoscaleError: a non-positive SLA, no levels, or none inside the SLA.
    """
    if p99_sla_ms <= 0:
        raise AutoscaleError(f"p99 SLA `{p99_sla_ms}` ms must be positive")
    inside = [r.throughput for r in records if r.p99_us <= p99_sla_ms * 1000.0 and r.throughput > 0]
    if not inside:
        best = min((r.p99_us for r in records), default=None)
        seen = "no load levels" if best is None else f"the lowest p99 was {best / 1000:.3g} ms"
        raise AutoscaleError(f"no measured level has p99 within {p99_sla_ms:g} ms ({seen})")
    return max(inside)


def capacity_from_perf(path: str | os.PathLike[str], p99_sla_ms: float) -> float:
    """`capacity_from_records` on a perf CSV file.

    Raises:
        AutoscaleError: see `capacity_from_records`.
        PerfError: an unreadable or malformed CSV.
    """
    return capacity_from_records(read_perf_analyzer_csv(path), p99_sla_ms)
