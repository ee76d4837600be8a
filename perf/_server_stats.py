"""Server-side latency split from Triton's statistics endpoint, as perf_analyzer reports it.

Triton keeps cumulative counters per model version (`success` count and time,
`queue`, `compute_input`, `compute_infer`, `compute_output`, `cache_hit`,
`cache_miss`, each a count and nanoseconds). A window's server-side figures are
the difference of two snapshots taken at its edges, divided by the number of
successful requests in that difference (per-request averages in microseconds).

For an ensemble, like perf_analyzer, queue and compute times are the sums over
its composing models (the ensemble scheduler itself has none), still divided by
the ensemble's own request count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

_SECTIONS = (
    "success",
    "fail",
    "queue",
    "compute_input",
    "compute_infer",
    "compute_output",
    "cache_hit",
    "cache_miss",
)


@dataclass(frozen=True)
class ServerStats:
    """Cumulative counters (a snapshot) or their difference over a window (a delta)."""

    success_count: int = 0
    success_ns: int = 0
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0
    cache_hit_count: int = 0
    cache_hit_ns: int = 0
    cache_miss_count: int = 0
    cache_miss_ns: int = 0
    fail_count: int = 0
    fail_ns: int = 0

    def __add__(self, other: ServerStats) -> ServerStats:
        return ServerStats(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __sub__(self, other: ServerStats) -> ServerStats:
        return ServerStats(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def with_parts_of(self, parts: ServerStats) -> ServerStats:
        """This request count (and failures) with `parts`' queue/compute/cache times (ensembles)."""
        return ServerStats(
            self.success_count,
            self.success_ns,
            parts.queue_ns,
            parts.compute_input_ns,
            parts.compute_infer_ns,
            parts.compute_output_ns,
            parts.cache_hit_count,
            parts.cache_hit_ns,
            parts.cache_miss_count,
            parts.cache_miss_ns,
            self.fail_count,
            self.fail_ns,
        )

    def per_request_us(self) -> dict[str, float] | None:
        """Average microseconds per successful request; None when no request succeeded.

        Returns:
            `queue_us`, `compute_input_us`, `compute_infer_us`, `compute_output_us`,
            `server_total_us` (Triton's own request time), and `cache_hit_us` /
            `cache_miss_us` (average lookup time per hit / per miss) when the cache saw any.
        """
        n = self.success_count
        if n <= 0:
            return None
        out = {
            "queue_us": self.queue_ns / n / 1e3,
            "compute_input_us": self.compute_input_ns / n / 1e3,
            "compute_infer_us": self.compute_infer_ns / n / 1e3,
            "compute_output_us": self.compute_output_ns / n / 1e3,
            "server_total_us": self.success_ns / n / 1e3,
        }
        if self.cache_hit_count or self.cache_miss_count:
            out["cache_hit_us"] = self.cache_hit_ns / max(self.cache_hit_count, 1) / 1e3
            out["cache_miss_us"] = self.cache_miss_ns / max(self.cache_miss_count, 1) / 1e3
        return out


def stats_from_json(document: Mapping, model: str) -> ServerStats:
    """Sum the counters of every version of `model` in a statistics response.

    Accepts both the HTTP form and tritonclient gRPC's `as_json=True` form (whose
    64-bit integers arrive as strings).
    """
    total = ServerStats()
    for entry in document.get("model_stats", []):
        if entry.get("name") != model:
            continue
        sections = entry.get("inference_stats", {})
        values = {}
        for section in _SECTIONS:
            item = sections.get(section, {})
            values[section] = (int(item.get("count", 0) or 0), int(item.get("ns", 0) or 0))
        total = total + ServerStats(
            success_count=values["success"][0],
            success_ns=values["success"][1],
            queue_ns=values["queue"][1],
            compute_input_ns=values["compute_input"][1],
            compute_infer_ns=values["compute_infer"][1],
            compute_output_ns=values["compute_output"][1],
            cache_hit_count=values["cache_hit"][0],
            cache_hit_ns=values["cache_hit"][1],
            cache_miss_count=values["cache_miss"][0],
            cache_miss_ns=values["cache_miss"][1],
            fail_count=values["fail"][0],
            fail_ns=values["fail"][1],
        )
    return total


def split_latency(
    avg_latency_us: float, delta: ServerStats | None, client_send_us: float = 0.0, client_recv_us: float = 0.0
) -> dict[str, float]:
    """perf_analyzer's CSV latency columns from a client average and a server delta.

    `Network+Server Send/Recv` = client-observed average latency minus client send and
    receive minus the server's queue and compute times, floored at 0 (perf_analyzer
    floors it too: client and server clocks measure different spans).

    Args:
        avg_latency_us: the client-observed mean latency of the window's requests.
        delta: the server counters over the window (None: the server gave none).
        client_send_us, client_recv_us: client-side send/receive averages.

    Returns:
        The `*_us` columns; server columns are 0 when `delta` has no successful request.
    """
    parts = delta.per_request_us() if delta is not None else None
    parts = parts or {
        "queue_us": 0.0,
        "compute_input_us": 0.0,
        "compute_infer_us": 0.0,
        "compute_output_us": 0.0,
    }
    server = (
        parts["queue_us"] + parts["compute_input_us"] + parts["compute_infer_us"] + parts["compute_output_us"]
    )
    wait = avg_latency_us - client_send_us - client_recv_us
    out = {
        "client_send_us": client_send_us,
        "network_us": max(wait - server, 0.0),
        "queue_us": parts["queue_us"],
        "compute_input_us": parts["compute_input_us"],
        "compute_infer_us": parts["compute_infer_us"],
        "compute_output_us": parts["compute_output_us"],
        "client_recv_us": client_recv_us,
    }
    for key in ("cache_hit_us", "cache_miss_us"):
        if key in parts:
            out[key] = parts[key]
    return out
