"""A closed-loop asynchronous load generator over Triton's gRPC asyncio client.

`concurrency` workers each keep one request in flight for a time window; the
window's throughput and latency percentiles come back. One event loop, one
channel: on 2 cores this keeps the generator's own cost low (see
`perf/bench/loadgen_ceiling.py`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """One measurement window."""

    concurrency: int
    duration_s: float
    count: int
    errors: int
    latencies_us: np.ndarray

    @property
    def throughput(self) -> float:
        """Successful requests per second."""
        return (self.count - self.errors) / self.duration_s if self.duration_s > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency percentile `q` (0-100) in microseconds (nan when nothing finished)."""
        return float(np.percentile(self.latencies_us, q)) if self.latencies_us.size else float("nan")

    @property
    def error_rate(self) -> float:
        return self.errors / self.count if self.count else 0.0


RequestFactory = Callable[[int], tuple[str, str, list, dict | None]]


def make_inputs(grpcaio, arrays: Mapping[str, np.ndarray]) -> list:
    """tritonclient `InferInput`s for arrays (batch axis first)."""
    from tritonclient.utils import np_to_triton_dtype

    tensors = []
    for name, array in arrays.items():
        dtype = "BYTES" if array.dtype.kind in "OSU" else np_to_triton_dtype(array.dtype)
        tensor = grpcaio.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


async def run_window(client, factory: RequestFactory, *, concurrency: int, duration_s: float,
                     warmup_s: float = 0.0) -> Window:
    """Keep `concurrency` requests in flight for `duration_s` seconds (after a warm-up).

    `factory(i)` returns `(model, version, inputs, parameters)` for the i-th request.
    """
    latencies: list[float] = []
    errors = 0
    counter = 0
    start = time.perf_counter()
    measure_from = start + warmup_s
    stop_at = measure_from + duration_s

    async def worker() -> None:
        nonlocal errors, counter
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                return
            counter += 1
            model, version, inputs, params = factory(counter)
            t0 = time.perf_counter()
            failed = False
            try:
                await client.infer(model, inputs, model_version=version, parameters=params)
            except Exception:  # counted, never fatal to the run
                failed = True
            t1 = time.perf_counter()
            if t0 >= measure_from and t1 <= stop_at:
                latencies.append((t1 - t0) * 1e6)
                errors += failed

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    measured = np.asarray(latencies, dtype=np.float64)
    return Window(concurrency, duration_s, int(measured.size), int(errors), measured)
