"""Load generator ceiling beside the router's throughput, measured in one run.

Three figures, alternated over rounds (median reported):
- `generator alone`: the generator against an in-process client that answers at once
  (its own cost per request, no server);
- `ceiling`: the generator against the cheapest model the server runs (an identity
  model answered from Triton's response cache, so requests never reach the Python
  backend), gRPC, high concurrency;
- `generator CPU ceiling`: in that same window, requests completed per CPU-second
  spent by this (the generator's) process, tritonclient and gRPC included: the rate
  the generator sustains on one core against the real server;
- `router`: `demo_ab` from `model_repository/` with unit ids, same concurrency.
The ceiling must be at least 2x the router's throughput, so the generator is never what
limits a router measurement. Prints both ratios.

    .venv/bin/python perf/bench/loadgen_ceiling.py [--rounds 3] [--window 2] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
from _floors import Floor, finish
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.deploy.server import TritonServer
from tritonab.ensembles.config import ModelConfig, TensorSpec, add_tensor, write_config
from tritonab.perf._loadgen import LoadSession
from tritonab.perf._target import Target, request_parameters

ROOT = Path(__file__).resolve().parents[2]
IDENTITY_PY = textwrap.dedent("""
    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def execute(self, requests):
            return [pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(
                "OUTPUT0", pb_utils.get_input_tensor_by_name(r, "INPUT0").as_numpy())])
                for r in requests]
""")


class _InstantClient:
    """Answers every request at once: measures the generator alone."""

    async def infer(self, *args, **kwargs):
        await asyncio.sleep(0)


class _InstantConnection:
    """A connection whose client answers at once (what `LoadSession` reads of a connection)."""

    client = _InstantClient()

    def call_kwargs(self) -> dict:
        return {}


def _repository(folder: Path) -> Path:
    config = ModelConfig(name="identity", backend="python", max_batch_size=8)
    add_tensor(config.input, TensorSpec("INPUT0", mc.TYPE_FP32, (4,)))
    add_tensor(config.output, TensorSpec("OUTPUT0", mc.TYPE_FP32, (4,)))
    # Dynamic batching lets the server answer many in-flight requests per execute call:
    # what is left is the generator and the protocol, not the Python backend.
    config.dynamic_batching.SetInParent()
    # Triton's response cache answers repeated inputs in the server core, without
    # reaching the Python backend: the cheapest request this server can serve.
    config.response_cache.enable = True
    (folder / "identity" / "1").mkdir(parents=True)
    (folder / "identity" / "1" / "model.py").write_text(IDENTITY_PY, encoding="utf-8")
    write_config(folder / "identity" / "config.pbtxt", config)
    for name in ("demo_ab", "demo_gbt", "demo_logreg", "demo_logreg_pipeline", "demo_scaler"):
        shutil.copytree(ROOT / "model_repository" / name, folder / name)
    return folder


async def _throughput(client, factory, concurrency: int, window: float) -> tuple[float, float, int]:
    """Throughput, requests per CPU-second of this process (the generator's cost), errors."""
    session = LoadSession(client, factory, concurrency=concurrency)
    session.start()
    try:
        await asyncio.sleep(0.3)
        cpu0 = time.process_time()
        measured = await session.measure(window)
        cpu = time.process_time() - cpu0
    finally:
        await session.stop()
    return measured.throughput, measured.count / cpu if cpu > 0 else float("inf"), measured.errors


async def _measure(args, server: TritonServer) -> dict[str, list[float]]:
    connection = Target(server.urls.grpc, "grpc")
    identity = connection.inputs({"INPUT0": np.zeros((1, 4), np.float32)})
    features = connection.inputs({"input": np.random.default_rng(0).normal(size=(1, 30)).astype(np.float32)})
    params = request_parameters({}, 1000)
    paths = {
        "generator alone": (_InstantConnection(), lambda i: ("identity", "", identity, None)),
        "ceiling": (connection, lambda i: ("identity", "", identity, None)),
        "router": (connection, lambda i: ("demo_ab", "", features, params[i % len(params)])),
    }
    results: dict[str, list[float]] = {name: [] for name in (*paths, "generator CPU ceiling")}
    try:
        for r in range(args.rounds):
            order = list(paths) if r % 2 == 0 else list(paths)[::-1]
            for name in order:
                client, factory = paths[name]
                value, per_cpu, errors = await _throughput(client, factory, args.concurrency, args.window)
                if errors:
                    raise SystemExit(f"{name}: {errors} failed requests")
                results[name].append(value)
                if name == "ceiling":
                    results["generator CPU ceiling"].append(per_cpu)
    finally:
        await connection.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=2.0, help="seconds per window")
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tritonab-ceiling-") as tmp:
        with TritonServer(
            _repository(Path(tmp)), extra_args=("--cache-config=local,size=16777216",)
        ) as server:
            results = asyncio.run(_measure(args, server))
    med = {name: statistics.median(values) for name, values in results.items()}
    print(
        f"rounds={args.rounds} window={args.window}s concurrency={args.concurrency} gRPC "
        "(median over rounds, requests/s)"
    )
    for name, value in med.items():
        print(f"{name:22} {value:10.0f}")
    served = med["ceiling"] / med["router"]
    ratio = med["generator CPU ceiling"] / med["router"]
    print(f"generator CPU ceiling / router throughput: {ratio:.2f}x")
    return finish("loadgen_ceiling", [Floor("ceiling/router throughput", served, 2.0)])


if __name__ == "__main__":
    sys.exit(main())
