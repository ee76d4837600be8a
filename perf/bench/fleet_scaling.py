"""Replicas vs throughput: the demo experiment served by 1, 2 and 3 embedded Triton
replicas behind Debian's nginx (gRPC), beside one replica called directly.

In one run, alternating the configurations every round (nginx reloads its upstreams
between windows), closed-loop load at concurrency 16 through the router with random unit
ids. Prints throughput and latency per configuration and the ratios:

- nginx over one replica / that replica directly: what the balancer costs;
- N replicas / one replica, both through nginx: how throughput scales with replicas.

Every replica runs on the same machine: with fewer cores than the replicas need, they
share the CPUs and scaling cannot exceed what the cores allow. The scaling floor
therefore depends on the machine: >= 1.5x for 3 replicas on 8 cores or more, and on
fewer cores only "no collapse" (>= 0.7x).

    .venv/bin/python perf/bench/fleet_scaling.py [--rounds 3] [--window 3] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _floors import Floor, finish

from tritonab._transport import AsyncConnection
from tritonab.deploy.server import TritonServer
from tritonab.perf._loadgen import run_window

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from nginx_balancer import NginxBalancer  # noqa: E402

MODELS = ("demo_scaler", "demo_logreg", "demo_logreg_pipeline", "demo_gbt", "demo_ab")


async def _window(url: str, args: argparse.Namespace, features: np.ndarray):
    """One measured window of routed requests against `url`."""
    client = AsyncConnection(url)
    inputs = client.inputs({"input": features})

    def routed(i: int):
        return "demo_ab", "", inputs, {"unit_id": f"user-{i % 5000}"}

    try:
        window = await run_window(
            client, routed, concurrency=args.concurrency, duration_s=args.window, warmup_s=0.5
        )
    finally:
        await client.close()
    if window.errors:
        raise SystemExit(f"{url}: {window.errors} failed requests")
    return window


def _measure(args: argparse.Namespace) -> tuple[list[Floor], dict]:
    features = np.random.default_rng(0).normal(size=(1, 30)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="tritonab-fleet-bench-") as tmp:
        repo = Path(tmp) / "model_repository"
        for name in MODELS:
            shutil.copytree(ROOT / "model_repository" / name, repo / name)
        servers = [TritonServer(repo, model_control_mode="explicit", load_models=MODELS) for _ in range(3)]
        try:
            with ThreadPoolExecutor(3) as pool:
                list(pool.map(TritonServer.start, servers))
            urls = [s.urls.grpc for s in servers]
            configs = [("direct", 1), ("nginx", 1), ("nginx", 2), ("nginx", 3)]
            results: dict[tuple[str, int], list] = {c: [] for c in configs}
            with NginxBalancer(urls[:1]) as balancer:
                for r in range(args.rounds):
                    for kind, count in configs if r % 2 == 0 else configs[::-1]:
                        if kind == "nginx":
                            balancer.set_upstreams(urls[:count])
                        target = urls[0] if kind == "direct" else balancer.url
                        results[(kind, count)].append(asyncio.run(_window(target, args, features)))
        finally:
            with ThreadPoolExecutor(3) as pool:
                list(pool.map(TritonServer.stop, servers))
    return _report(results, args)


def _report(results, args) -> tuple[list[Floor], dict]:
    def med(key, f):
        return statistics.median(f(w) for w in results[key])

    throughput = {k: med(k, lambda w: w.throughput) for k in results}
    p50 = {k: med(k, lambda w: w.percentile(50)) for k in results}
    p99 = {k: med(k, lambda w: w.percentile(99)) for k in results}
    cores = os.cpu_count() or 1
    print(
        f"rounds={args.rounds} window={args.window}s concurrency={args.concurrency} "
        f"cores={cores} (median over rounds)"
    )
    print(f"{'configuration':24} {'req/s':>9} {'p50 us':>9} {'p99 us':>9} {'vs 1 via nginx':>15}")
    base = throughput[("nginx", 1)]
    for kind, count in results:
        label = f"{count} replica{'s' if count > 1 else ''} {'direct' if kind == 'direct' else 'via nginx'}"
        key = (kind, count)
        ratio = throughput[key] / base
        print(f"{label:24} {throughput[key]:9.0f} {p50[key]:9.0f} {p99[key]:9.0f} {ratio:14.2f}x")
    scaling_floor = 1.5 if cores >= 8 else 0.7
    floors = [
        Floor(
            "nginx over 1 replica / direct throughput",
            throughput[("nginx", 1)] / throughput[("direct", 1)],
            0.5,
        ),
        Floor(
            "2 replicas / 1 replica throughput (nginx)",
            throughput[("nginx", 2)] / base,
            scaling_floor * 2 / 3,
        ),
        Floor("3 replicas / 1 replica throughput (nginx)", throughput[("nginx", 3)] / base, scaling_floor),
    ]
    info = {"cores": cores, "throughput": {f"{k}-{n}": v for (k, n), v in throughput.items()}}
    return floors, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=3.0, help="seconds per window")
    parser.add_argument("--concurrency", type=int, default=16)
    floors, info = _measure(parser.parse_args())
    return finish("fleet_scaling", floors, info)


if __name__ == "__main__":
    sys.exit(main())
