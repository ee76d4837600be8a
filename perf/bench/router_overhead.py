"""Router overhead: a direct call to a variant against the same call through the router.

Over gRPC, in one run, alternating the two several times: p50 latency at
concurrency 1 and throughput at concurrency 16. Prints both ratios (router /
direct); the floors are throughput >= 0.6x and p50 <= 2.0x.

    .venv/bin/python perf/bench/router_overhead.py [--repository model_repository]
        [--rounds 4] [--window 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys

import numpy as np
from _floors import Floor, finish

from tritonab._transport import AsyncConnection
from tritonab.deploy.server import TritonServer
from tritonab.perf._loadgen import run_window
from tritonab.splitter import load_spec


def _units_for(spec, variant: str, count: int) -> list[str]:
    """Unit ids that the spec assigns to `variant` (so both paths do the same work)."""
    allocation = spec.allocation()
    candidates = [f"user-{i}" for i in range(count * 20)]
    names = allocation.assign_names(spec.effective_salt, candidates)
    return [u for u, n in zip(candidates, names) if n == variant][:count]


async def _measure(args) -> list[Floor]:
    spec = load_spec(args.experiment)
    variant = spec.variant(args.variant)
    units = _units_for(spec, variant.name, 1000)
    features = np.random.default_rng(0).normal(size=(1, args.width)).astype(np.float32)
    with TritonServer(args.repository) as server:
        client = AsyncConnection(server.urls.grpc)
        inputs = client.inputs({args.input: features})

        def direct(i):
            return variant.model, str(variant.version) if variant.version > 0 else "", inputs, None

        def routed(i):
            return spec.name, "", inputs, {"unit_id": units[i % len(units)]}

        results = {(path, c): [] for path in ("direct", "router") for c in (1, 16)}
        for factory in (direct, routed):  # warm both paths
            await run_window(client, factory, concurrency=16, duration_s=1.0)
        for r in range(args.rounds):
            for c in (1, 16):
                order = (("direct", direct), ("router", routed))
                for path, factory in order if r % 2 == 0 else order[::-1]:
                    w = await run_window(client, factory, concurrency=c, duration_s=args.window, warmup_s=0.3)
                    if w.errors:
                        raise SystemExit(f"{path} c={c}: {w.errors} failed requests")
                    results[(path, c)].append(w)
        await client.close()
    return _report(results, args)


def _report(results, args) -> list[Floor]:
    def med(path, c, f):
        return statistics.median(f(w) for w in results[(path, c)])

    p50 = {p: med(p, 1, lambda w: w.percentile(50)) for p in ("direct", "router")}
    thr = {p: med(p, 16, lambda w: w.throughput) for p in ("direct", "router")}
    print(f"rounds={args.rounds} window={args.window}s model={args.variant} (median over rounds)")
    print(f"{'path':8} {'p50 c=1 (us)':>14} {'throughput c=16 (req/s)':>24}")
    for p in ("direct", "router"):
        print(f"{p:8} {p50[p]:14.0f} {thr[p]:24.0f}")
    return [
        Floor("router/direct p50 (c=1)", p50["router"] / p50["direct"], 2.0, higher_is_better=False),
        Floor("router/direct throughput (c=16)", thr["router"] / thr["direct"], 0.6),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default="model_repository")
    parser.add_argument("--experiment", default="examples/experiment.yaml")
    parser.add_argument("--variant", default="treatment", help="the variant called directly")
    parser.add_argument("--input", default="input")
    parser.add_argument("--width", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--window", type=float, default=3.0, help="seconds per window")
    return finish("router_overhead", asyncio.run(_measure(parser.parse_args())))


if __name__ == "__main__":
    sys.exit(main())
