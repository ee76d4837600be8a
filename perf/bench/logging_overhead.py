"""Logging overhead: router throughput with exposure + payload logging (sample rate 1.0)
against the same router with logging off, in one run.

Both routers live in one temporary copy of the repository (`<name>_log` and
`<name>_nolog`, built from the demo spec) on one server with a log folder. In each
round the two take turns request by request at concurrency 1 and in half-second slices
at concurrency 16, so both see the same moments of the machine. Prints the throughput
ratio at concurrency 16 and the p50 ratio at concurrency 1 (logged / unlogged), each
the median over rounds of the round's ratio, with its spread; and the CPU time of the logged router's
writer threads (`tritonab_log_writer_cpu_seconds_total`, read from Triton's metrics
endpoint): per record and as a share of the time its windows ran. The floor is
throughput >= 0.9x.

    .venv/bin/python perf/bench/logging_overhead.py [--rounds 12] [--window 3]

12 rounds by default: a round's ratio moves by about +-0.1 on this machine, and with 4
rounds the median of one run moved by about +-0.04 from run to run (12: about +-0.02).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from _floors import Floor, Paired, finish
from _paths import measure_round

from tritonab._transport import AsyncConnection
from tritonab.deploy.server import TritonServer
from tritonab.ensembles import build_router
from tritonab.monitoring.metrics import log_metrics
from tritonab.monitoring.router_log import LOG_DIR_ENV
from tritonab.monitoring.segments import read_records
from tritonab.perf._loadgen import run_window
from tritonab.splitter import load_spec, load_spec_dict


def _build(repository: Path, spec_path: str) -> tuple[str, str]:
    base = load_spec(spec_path).model_dump(mode="json")
    names = []
    for suffix, logging in (("_log", {"enabled": True, "sample_rate": 1.0}), ("_nolog", {"enabled": False})):
        data = {**base, "name": base["name"] + suffix, "logging": {**base["logging"], **logging}}
        build_router(load_spec_dict(data), repository)
        names.append(data["name"])
    return names[0], names[1]


async def _measure(args, repository: Path, logs: Path) -> dict:
    logged, plain = _build(repository, args.experiment)
    features = np.random.default_rng(0).normal(size=(1, args.width)).astype(np.float32)
    results = {(p, c): [] for p in ("log", "nolog") for c in (1, 16)}
    with TritonServer(repository, env={LOG_DIR_ENV: str(logs)}) as server:
        client = AsyncConnection(server.urls.grpc)
        inputs = client.inputs({args.input: features})

        def factory(model):
            return lambda i: (model, "", inputs, {"unit_id": f"user-{i % 5000}"})

        paths = (("log", factory(logged)), ("nolog", factory(plain)))
        for _, f in paths:  # warm both
            await run_window(client, f, concurrency=16, duration_s=1.0)
        for r in range(args.rounds):
            # The first 0.1 s of each slice, where the other router's writers may still
            # drain, is left out (`run_alternating`'s settle time).
            for key, w in (await measure_round(client, dict(paths), window=args.window, seed=r)).items():
                results[key].append(w)
        await client.close()
        await asyncio.sleep(0.2)  # the router's metric flusher applies on idle
        results["cpu"] = _writer_cpu(server.urls.metrics, logged)
    exposures, _ = read_records(logs / logged / "exposures")
    payloads, _ = read_records(logs / logged / "payloads")
    results["records"] = (len(exposures), len(payloads))
    return results


def _writer_cpu(metrics_url: str, experiment: str) -> dict[str, float]:
    """CPU seconds per stream of the router's log writer threads, from /metrics."""
    return {stream: m.writer_cpu_s for (_, stream), m in log_metrics(metrics_url, experiment).items()}


def _report(results: dict, args) -> list[Floor]:
    def med(path, c, f):
        return statistics.median(f(w) for w in results[(path, c)])

    thr = {p: med(p, 16, lambda w: w.throughput) for p in ("log", "nolog")}
    p50 = {p: med(p, 1, lambda w: w.percentile(50)) for p in ("log", "nolog")}
    print(f"rounds={args.rounds} window={args.window}s (medians over rounds)")
    print(f"{'router':8} {'p50 c=1 (us)':>14} {'throughput c=16 (req/s)':>24}")
    for p in ("log", "nolog"):
        print(f"{p:8} {p50[p]:14.0f} {thr[p]:24.0f}")
    print(
        f"records written by the logged router: {results['records'][0]} exposures, "
        f"{results['records'][1]} payloads"
    )
    rate = Paired.of(results[("log", 16)], results[("nolog", 16)], lambda w: w.throughput)
    latency = Paired.of(results[("log", 1)], results[("nolog", 1)], lambda w: w.percentile(50))
    print(f"logged/unlogged p50 (c=1), by round:        {latency.spread()}")
    print(f"logged/unlogged throughput (c=16), by round: {rate.spread()}")
    cpu = results.get("cpu", {})
    logged_s = sum(w.duration_s for c in (1, 16) for w in results[("log", c)])
    records = sum(results["records"])
    for stream, seconds in sorted(cpu.items()):
        print(f"writer thread CPU, {stream}: {seconds:.2f} s")
    if cpu and records:
        total = sum(cpu.values())
        print(
            f"writer threads: {1e6 * total / records:.1f} us CPU per record, "
            f"{100 * total / logged_s:.0f}% of one core over the logged windows ({logged_s:.0f} s)"
        )
    return [Floor("logged/unlogged throughput (c=16)", rate.median, 0.9)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default="model_repository")
    parser.add_argument("--experiment", default="examples/experiment.yaml")
    parser.add_argument("--input", default="input")
    parser.add_argument("--width", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--window", type=float, default=3.0, help="seconds per window")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tritonab-logbench-") as tmp:
        repository = Path(tmp) / "repo"
        shutil.copytree(args.repository, repository)
        results = asyncio.run(_measure(args, repository, Path(tmp) / "logs"))
    return finish("logging_overhead", _report(results, args))


if __name__ == "__main__":
    sys.exit(main())
