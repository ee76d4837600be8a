"""One round of a side-by-side bench, shared by the router and logging benches: p50 at
concurrency 1 with the paths taking turns request by request (`run_interleaved`), and
throughput at concurrency 16 with the paths taking turns in half-second slices
(`run_alternating`), so every path sees the same moments of the machine."""

from __future__ import annotations

from tritonab._transport import AsyncConnection
from tritonab.perf._loadgen import RequestFactory, Window, run_alternating, run_interleaved

SLICE_S = 0.5
"""Seconds per slice of the concurrency-16 measurement."""


async def measure_round(
    client: AsyncConnection, paths: dict[str, RequestFactory], *, window: float, seed: int
) -> dict[tuple[str, int], Window]:
    """Windows by (path, concurrency) for one round: at concurrency 1, `window` seconds per
    path interleaved over `window * len(paths)`; at 16, slices filling `window` per path,
    the path after the warm-up alternating with `seed`'s parity. A failed request ends the
    bench (SystemExit), naming the path."""
    names = list(paths)
    single = await run_interleaved(
        client, list(paths.values()), duration_s=window * len(paths), warmup_s=0.3, seed=seed
    )
    order = names if seed % 2 == 0 else names[::-1]
    looped = await run_alternating(
        client,
        [paths[n] for n in order],
        concurrency=16,
        slice_s=SLICE_S,
        slices=max(1, round(window / SLICE_S)),
        warmup_s=0.3,
    )
    windows = {(n, 1): w for n, w in zip(names, single)} | {(n, 16): w for n, w in zip(order, looped)}
    for (name, c), w in windows.items():
        if w.errors:
            raise SystemExit(f"{name} c={c}: {w.errors} failed requests")
    return windows
