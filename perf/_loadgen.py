"""An asynchronous load generator over tritonclient's asyncio clients (gRPC or HTTP).

Closed loop (`concurrency` workers, each keeping one request in flight) or open
loop (`request_rate` requests per second on a Poisson or constant schedule, sent
without waiting for earlier answers, like perf_analyzer's `--request-rate-range`).
Load runs continuously; `LoadSession.measure` cuts consecutive time windows out of
it, counting the requests that *completed* inside each window (perf_analyzer's
rule) and snapshotting the server's statistics at both edges.

One event loop, one channel: on 2 cores this keeps the generator's own cost low
(see `perf/bench/loadgen_ceiling.py`). Every loop is bounded in time (the caller's
windows) and in count (`max_requests`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tritonab._transport import AsyncConnection, transport_errors
from tritonab.perf._server_stats import ServerStats

__all__ = ["LoadSession", "Window", "run_alternating", "run_interleaved", "run_window"]

RequestFactory = Callable[[int], tuple[str, str, list, "dict | None"]]
StatsProbe = Callable[[], Awaitable["ServerStats | None"]]
_MAX_REQUESTS = 5_000_000


@dataclass(frozen=True)
class Window:
    """One measurement window (or several merged).

    `count` is every request that completed inside the window, `errors` those that failed.
    """

    concurrency: int
    duration_s: float
    count: int
    errors: int
    latencies_us: np.ndarray
    request_rate: float = 0.0
    server: ServerStats | None = None

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.count - self.errors) / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile `q` (0-100) in microseconds (nan when nothing finished)."""
        return float(np.percentile(self.latencies_us, q)) if self.latencies_us.size else float("nan")

    @property
    def mean_latency_us(self) -> float:
        """Mean latency of successful requests in microseconds (nan when none)."""
        return float(self.latencies_us.mean()) if self.latencies_us.size else float("nan")

    @property
    def error_rate(self) -> float:
        """Failed / completed requests."""
        return self.errors / self.count if self.count else 0.0

    @staticmethod
    def merge(windows: list[Window]) -> Window:
        """One window pooling the requests, time and server counters of `windows`."""
        server = None
        parts = [w.server for w in windows if w.server is not None]
        if parts and len(parts) == len(windows):
            server = sum(parts[1:], parts[0])
        return Window(
            windows[0].concurrency,
            sum(w.duration_s for w in windows),
            sum(w.count for w in windows),
            sum(w.errors for w in windows),
            np.concatenate([w.latencies_us for w in windows]),
            windows[0].request_rate,
            server,
        )


async def _send(client, kwargs: dict, failures: tuple, request: tuple) -> tuple[float, float, bool]:
    """One request `(model, version, inputs, parameters)`: when it ended, its latency in
    microseconds, and whether it succeeded (a transport or server error is counted by the
    caller, never raised)."""
    model, version, inputs, params = request
    ok = True
    t0 = time.perf_counter()
    try:
        await client.infer(model, inputs, model_version=version, parameters=params, **kwargs)
    except asyncio.CancelledError:
        raise
    except failures:
        ok = False
    t1 = time.perf_counter()
    return t1, (t1 - t0) * 1e6, ok


class LoadSession:
    """Continuous load on a server, measured in windows.

    Args:
        connection: an asyncio connection to the server (gRPC or HTTP).
        factory: `factory(i) -> (model, version, inputs, parameters)` for request i.
        concurrency: closed loop with this many requests in flight (when no `request_rate`).
        request_rate: open loop at this many requests per second.
        schedule: `poisson` (exponential gaps) or `constant` for the open loop.
        max_in_flight: open-loop cap; a send due while the cap is reached is skipped
            and counted in `skipped`.
        max_requests: hard cap on requests sent by the session.
        seed: seed of the Poisson schedule.
    """

    def __init__(
        self,
        connection: AsyncConnection,
        factory: RequestFactory,
        *,
        concurrency: int = 1,
        request_rate: float = 0.0,
        schedule: str = "poisson",
        max_in_flight: int = 2048,
        max_requests: int = _MAX_REQUESTS,
        seed: int = 0,
    ) -> None:
        self.client, self.factory = connection.client, factory
        self._call_kwargs = connection.call_kwargs()
        self._failures = transport_errors()
        self.concurrency, self.request_rate = concurrency, request_rate
        self.schedule, self.max_in_flight, self.max_requests = schedule, max_in_flight, max_requests
        self._rng = np.random.default_rng(seed)
        self._ends: list[float] = []
        self._latencies: list[float] = []
        self._failed: list[bool] = []
        self._sent = 0
        self.skipped = 0
        self._stopping = False
        self._tasks: set[asyncio.Task] = set()
        self._drivers: list[asyncio.Task] = []

    async def _one(self) -> None:
        self._sent += 1
        end, latency, ok = await _send(
            self.client, self._call_kwargs, self._failures, self.factory(self._sent)
        )
        self._ends.append(end)
        self._latencies.append(latency)
        self._failed.append(not ok)

    async def _worker(self) -> None:
        while not self._stopping and self._sent < self.max_requests:
            await self._one()

    async def _scheduler(self) -> None:
        due = time.perf_counter()
        while not self._stopping and self._sent < self.max_requests:
            gap = 1.0 / self.request_rate
            due += self._rng.exponential(gap) if self.schedule == "poisson" else gap
            delay = due - time.perf_counter()
            if delay > 0:  # behind schedule: send at once, as perf_analyzer does
                await asyncio.sleep(delay)
            if len(self._tasks) >= self.max_in_flight:
                self.skipped += 1
                continue
            task = asyncio.create_task(self._one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def start(self) -> None:
        """Start sending (call inside a running event loop)."""
        if self.request_rate > 0:
            self._drivers = [asyncio.create_task(self._scheduler())]
        else:
            self._drivers = [asyncio.create_task(self._worker()) for _ in range(self.concurrency)]

    async def measure(self, duration_s: float, probe: StatsProbe | None = None) -> Window:
        """The next window of `duration_s` seconds, with server counters when `probe` is given."""
        before = await probe() if probe else None
        first, t0 = len(self._ends), time.perf_counter()
        await asyncio.sleep(duration_s)
        t1, last = time.perf_counter(), len(self._ends)
        after = await probe() if probe else None
        # Completions are appended in time order, so the window is a slice.
        while first < last and self._ends[first] < t0:
            first += 1
        failed = np.asarray(self._failed[first:last], dtype=bool)
        latencies = np.asarray(self._latencies[first:last], dtype=np.float64)[~failed]
        server = after - before if before is not None and after is not None else None
        return Window(
            self.concurrency if self.request_rate <= 0 else 0,
            t1 - t0,
            int(failed.size),
            int(failed.sum()),
            latencies,
            self.request_rate,
            server,
        )

    async def stop(self, timeout_s: float = 10.0) -> None:
        """Stop sending; wait up to `timeout_s` for requests in flight, then cancel them."""
        self._stopping = True
        pending = [*self._drivers, *self._tasks]
        if pending:
            _done, late = await asyncio.wait(pending, timeout=timeout_s)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._ends, self._latencies, self._failed = [], [], []


async def run_window(
    connection: AsyncConnection,
    factory: RequestFactory,
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
) -> Window:
    """Keep `concurrency` requests in flight for `duration_s` seconds (after a warm-up).

    `factory(i)` returns `(model, version, inputs, parameters)` for the i-th request.
    """
    session = LoadSession(connection, factory, concurrency=concurrency)
    session.start()
    try:
        if warmup_s > 0:
            await asyncio.sleep(warmup_s)
        return await session.measure(duration_s)
    finally:
        await session.stop()


async def run_interleaved(
    connection: AsyncConnection,
    factories: Sequence[RequestFactory],
    *,
    duration_s: float,
    warmup_s: float = 0.0,
    seed: int = 0,
) -> list[Window]:
    """One request at a time, taking the paths in turn: one window per factory, all over
    the same span of time.

    The paths take turns in cycles, each a fresh random order (seeded) that never starts
    with the path the previous one ended with: a request never follows one of its own
    path, and each path follows every other one about equally often. Both matter on a small
    machine: a Python model's stub that has just run answers about 10% faster, and a
    request to a model that another path's request has just warmed (a forwarder after a
    direct call to its variant) gains too; a fixed order would hand such gains to the same
    paths every time. Windows of separate paths measured one after the other differ
    by whatever the machine did in between (another tenant, a stolen CPU): here every
    path sees the same moments, so their latencies compare request by request. A
    window's throughput is its path's share of one sequential stream, not its capacity.

    Args:
        factories: `factory(i) -> (model, version, inputs, parameters)`, one per path; i
            counts that path's requests.
        duration_s: the measured time, shared by every path.
        warmup_s: time spent sending before measuring.
        seed: of the path order.

    Returns:
        A window per factory, in their order (concurrency 1).
    """
    client, kwargs, failures = connection.client, connection.call_kwargs(), transport_errors()
    paths = len(factories)
    sent = [0] * paths
    latencies: list[list[float]] = [[] for _ in factories]
    failed = [0] * paths
    start = time.perf_counter()
    measure_from = start + warmup_s
    end = measure_from + duration_s
    rng = np.random.default_rng(seed)
    cycle: list[int] = []
    k = -1
    while (now := time.perf_counter()) < end:
        if not cycle:
            cycle = rng.permutation(paths).tolist()
            if paths > 1 and cycle[0] == k:
                cycle[0], cycle[-1] = cycle[-1], cycle[0]
            cycle.reverse()  # taken from the end
        k = cycle.pop()
        sent[k] += 1
        _end, latency, ok = await _send(client, kwargs, failures, factories[k](sent[k]))
        if now < measure_from:
            continue
        if ok:
            latencies[k].append(latency)
        else:
            failed[k] += 1
    return [
        Window(1, duration_s, len(lat) + bad, bad, np.asarray(lat, dtype=np.float64))
        for lat, bad in zip(latencies, failed)
    ]


async def run_alternating(
    connection: AsyncConnection,
    factories: Sequence[RequestFactory],
    *,
    concurrency: int,
    slice_s: float,
    slices: int,
    settle_s: float = 0.1,
    warmup_s: float = 0.0,
) -> list[Window]:
    """Closed-loop load whose workers all switch from path to path every `slice_s`
    seconds: one window per factory, its slices spread over the same span of time.

    Throughput cannot be interleaved request by request (each path's capacity needs
    its own queue of `concurrency` requests), but short slices come close: on a shared
    machine whose speed moves from second to second, paths measured in windows of a few
    seconds one after the other differ by what the machine did, while slices of half a
    second, taken in turn, see the same moments. Slices run forward then backward
    (A B C C B A ...). A slice counts the requests to its path that completed after its
    first `settle_s` seconds (requests to the previous path still in flight drain then).

    Args:
        factories: `factory(i) -> (model, version, inputs, parameters)`, one per path.
        concurrency: requests in flight.
        slice_s: seconds per slice.
        slices: slices per path.
        settle_s: the start of each slice left out of its window.
        warmup_s: time spent sending (to the first path) before the first slice.

    Returns:
        A window per factory, in their order: its slices merged.
    """
    if settle_s >= slice_s:
        raise ValueError(f"settle_s ({settle_s}) must be shorter than slice_s ({slice_s})")
    client, kwargs, failures = connection.client, connection.call_kwargs(), transport_errors()
    paths = len(factories)
    current = 0
    stopping = False
    sent = [0] * paths
    done: list[tuple[float, int, float, bool]] = []  # (end, path, latency us, ok)

    async def worker() -> None:
        while not stopping:
            k = current
            sent[k] += 1
            end, latency, ok = await _send(client, kwargs, failures, factories[k](sent[k]))
            done.append((end, k, latency, ok))

    workers = [asyncio.create_task(worker()) for _ in range(concurrency)]
    spans: list[list[tuple[float, float]]] = [[] for _ in factories]
    try:
        await asyncio.sleep(warmup_s)
        order = [*range(paths), *reversed(range(paths))]
        for step in range(slices * paths):
            current = order[step % len(order)]
            begin = time.perf_counter()
            await asyncio.sleep(slice_s)
            spans[current].append((begin + settle_s, time.perf_counter()))
    finally:
        stopping = True
        _done, late = await asyncio.wait(workers, timeout=10.0)
        for task in late:
            task.cancel()
        for task in late:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    ends = np.asarray([d[0] for d in done])
    tags = np.asarray([d[1] for d in done], dtype=np.int64)
    latency = np.asarray([d[2] for d in done])
    ok = np.asarray([d[3] for d in done], dtype=bool)
    windows = []
    for k in range(paths):
        inside = np.zeros(ends.size, dtype=bool)
        for lo, hi in spans[k]:
            inside |= (ends >= lo) & (ends < hi)
        mine = inside & (tags == k)
        duration = sum(hi - lo for lo, hi in spans[k])
        count, errors = int(mine.sum()), int((mine & ~ok).sum())
        windows.append(Window(concurrency, duration, count, errors, latency[mine & ok]))
    return windows
