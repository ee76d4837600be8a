"""Router overhead: a variant called directly, through a bare batched BLS forwarder (the
floor of any Python-backend router), and through the tritonab router.

Over gRPC, in one run, several rounds: p50 latency at concurrency 1, the paths taking
turns request by request, and throughput at concurrency 16, the paths taking turns in
half-second slices: on a shared machine whose speed moves from second to second, every
path sees the same moments of it. The forwarder is a 25-line Python model (written
into a temporary copy of the repository, with the router's batching settings) that
concatenates the dynamic batch, makes one BLS call to the variant and slices the
outputs, with no other logic. A second one, `contract`, also reads each request's
parameters and answers `AB_VARIANT`, as the router must: the router against it shows
the cost of its own routing work apart from the cost of its public contract
(diagnostic, no floor). With `--native BUILD_DIR` (from
`perf/bench/native_forwarder/build.sh BUILD_DIR`) a C++ backend that forwards each
request in-process to the variant is measured too, as evidence of what leaving Python
would buy (not a product path).

Prints every path against the direct call (medians over rounds), and the router
against the forwarder and the direct call paired by round: the median over rounds of
the ratio of the two paths' windows in that round (spread over the same span of time),
with the spread of those ratios. Floors (on the paired
medians): router/forwarder throughput >= 0.92x and p50 <= 1.10x; router/direct
throughput >= 0.6x and p50 <= 2.0x.

    .venv/bin/python perf/bench/router_overhead.py [--repository model_repository]
        [--rounds 4] [--window 3] [--native BUILD_DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from _floors import Floor, Paired, finish
from _paths import measure_round

from tritonab._transport import AsyncConnection
from tritonab.deploy._runtime import find_runtime
from tritonab.deploy.server import TritonServer
from tritonab.ensembles.config import ModelConfig, read_config, set_parameter, write_config
from tritonab.perf._loadgen import run_window
from tritonab.splitter import load_spec

FORWARDER = '''"""A bare batched BLS forwarder: the floor of any Python-backend router."""
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.target = config["parameters"]["target"]["string_value"]
        self.inputs = [i["name"] for i in config["input"]]
        self.outputs = [o["name"] for o in config["output"]]

    def execute(self, requests):
        get = pb_utils.get_input_tensor_by_name
        arrays = {n: [get(r, n).as_numpy() for r in requests] for n in self.inputs}
        sizes = [len(a) for a in arrays[self.inputs[0]]]
        tensors = [pb_utils.Tensor(n, a[0] if len(a) == 1 else np.concatenate(a)) for n, a in arrays.items()]
        reply = pb_utils.InferenceRequest(
            model_name=self.target, requested_output_names=self.outputs, inputs=tensors
        ).exec()
        if reply.has_error():
            return [pb_utils.InferenceResponse(error=reply.error()) for _ in requests]
        outputs = {n: pb_utils.get_output_tensor_by_name(reply, n).as_numpy() for n in self.outputs}
        responses, start = [], 0
        for size in sizes:
            part = [pb_utils.Tensor(n, v[start : start + size]) for n, v in outputs.items()]
            responses.append(pb_utils.InferenceResponse(output_tensors=part))
            start += size
        return responses
'''


def _edited(text: str, *edits: tuple[str, str]) -> str:
    """`text` with each (old, new) replaced; an `old` that is not there is an error, so a
    change to the forwarder cannot silently turn the contract path into a copy of it."""
    for old, new in edits:
        if old not in text:
            raise AssertionError(f"forwarder source lacks {old!r}")
        text = text.replace(old, new)
    return text


CONTRACT = _edited(
    FORWARDER,
    (
        '"""A bare batched BLS forwarder: the floor of any Python-backend router."""',
        '"""The bare forwarder with the router\'s contract: it reads each request\'s parameters\n'
        "and answers AB_VARIANT (one label tensor, built once: the bench sends one row per\n"
        'request), with no routing."""',
    ),
    (
        "        get = pb_utils.get_input_tensor_by_name\n",
        "        get = pb_utils.get_input_tensor_by_name\n"
        "        for r in requests:\n"
        "            json.loads(r.parameters() or '{}')\n"
        "        if not hasattr(self, 'label'):\n"
        "            label = np.array([[b'treatment']], dtype=np.object_)\n"
        "            self.label = pb_utils.Tensor('AB_VARIANT', label)\n",
    ),
    ("for n, v in outputs.items()]\n", "for n, v in outputs.items()] + [self.label]\n"),
    (
        'self.outputs = [o["name"] for o in config["output"]]',
        'self.outputs = [o["name"] for o in config["output"] if o["name"] != "AB_VARIANT"]',
    ),
)
"""A diagnostic path, not a floor: what the router's public contract (a `unit_id` request
parameter in, a BYTES `AB_VARIANT` out) costs the client, the server and the stub
without any routing; against it, the router's gap is its own per-batch work."""


def _units_for(spec, variant: str, count: int) -> list[str]:
    """Unit ids that the spec assigns to `variant` (so every path does the same work)."""
    allocation = spec.allocation()
    candidates = [f"user-{i}" for i in range(count * 20)]
    names = allocation.assign_names(spec.effective_salt, candidates)
    return [u for u, n in zip(candidates, names) if n == variant][:count]


def _forwarder_config(router: Path, name: str, target: str, backend: str) -> ModelConfig:
    """The router's config (batching, instances, the variant's outputs) as a forwarder's."""
    config = read_config(router / "config.pbtxt")
    config.name, config.backend = name, backend
    config.parameters.clear()
    keep = [o for o in config.output if o.name != "AB_VARIANT"]
    del config.output[:]
    config.output.extend(keep)
    set_parameter(config, "target", target)
    return config


def _prepare(args, target: str, tmp: Path) -> tuple[Path, Path | None]:
    """A copy of the repository with the forwarders; a backend folder for the native one."""
    repo = tmp / "repository"
    shutil.copytree(args.repository, repo)
    router = repo / args.router
    forwarder = repo / "bench_forwarder"
    (forwarder / "1").mkdir(parents=True)
    (forwarder / "1" / "model.py").write_text(FORWARDER)
    write_config(forwarder / "config.pbtxt", _forwarder_config(router, "bench_forwarder", target, "python"))
    contract = repo / "bench_contract"
    (contract / "1").mkdir(parents=True)
    (contract / "1" / "model.py").write_text(CONTRACT)
    config = _forwarder_config(router, "bench_contract", target, "python")
    del config.output[:]
    config.output.extend(read_config(router / "config.pbtxt").output)  # with AB_VARIANT
    write_config(contract / "config.pbtxt", config)
    if not args.native:
        return repo, None
    library = Path(args.native) / "forwarder" / "libtriton_forwarder.so"
    if not library.exists():
        raise SystemExit(
            f"--native: `{library}` not found (build it with perf/bench/native_forwarder/build.sh)"
        )
    backends = tmp / "backends"
    backends.mkdir()
    os.symlink(find_runtime().backend_dir / "python", backends / "python")
    os.symlink(library.parent.resolve(), backends / "forwarder")
    native = repo / "bench_native"
    (native / "1").mkdir(parents=True)
    write_config(native / "config.pbtxt", _forwarder_config(router, "bench_native", target, "forwarder"))
    return repo, backends


async def _measure(args) -> list[Floor]:
    spec = load_spec(args.experiment)
    variant = spec.variant(args.variant)
    units = _units_for(spec, variant.name, 1000)
    features = np.random.default_rng(0).normal(size=(1, args.width)).astype(np.float32)
    with tempfile.TemporaryDirectory(prefix="tritonab-router-bench-") as tmp:
        repo, backends = _prepare(args, variant.model, Path(tmp))
        with TritonServer(repo, backend_directory=backends) as server:
            client = AsyncConnection(server.urls.grpc)
            inputs = client.inputs({args.input: features})
            version = str(variant.version) if variant.version > 0 else ""

            def unit(i: int) -> dict[str, str]:
                return {"unit_id": units[i % len(units)]}

            paths = {
                "direct": lambda i: (variant.model, version, inputs, None),
                "forwarder": lambda i: ("bench_forwarder", "", inputs, None),
                "contract": lambda i: ("bench_contract", "", inputs, unit(i)),
                "router": lambda i: (spec.name, "", inputs, unit(i)),
            }
            if backends is not None:
                paths["native"] = lambda i: ("bench_native", "", inputs, None)
            results = {(path, c): [] for path in paths for c in (1, 16)}
            for factory in paths.values():  # warm every path
                await run_window(client, factory, concurrency=16, duration_s=1.0)
            for r in range(args.rounds):
                for key, w in (await measure_round(client, paths, window=args.window, seed=r)).items():
                    results[key].append(w)
            await client.close()
    return _report(results, list(paths), args)


def _report(results, paths: list[str], args) -> list[Floor]:
    def med(path, c, f):
        return statistics.median(f(w) for w in results[(path, c)])

    p50 = {p: med(p, 1, lambda w: w.percentile(50)) for p in paths}
    thr = {p: med(p, 16, lambda w: w.throughput) for p in paths}
    print(f"rounds={args.rounds} window={args.window}s model={args.variant} (median over rounds)")
    print(f"{'path':10} {'p50 c=1 (us)':>13} {'vs direct':>10} {'req/s c=16':>11} {'vs direct':>10}")
    for p in paths:
        latency, rate = p50[p] / p50["direct"], thr[p] / thr["direct"]
        print(f"{p:10} {p50[p]:13.0f} {latency:9.2f}x {thr[p]:11.0f} {rate:9.2f}x")

    def pair(a: str, b: str, c: int) -> Paired:
        figure = (lambda w: w.percentile(50)) if c == 1 else (lambda w: w.throughput)
        return Paired.of(results[(a, c)], results[(b, c)], figure)

    ratios = {
        (b, c): pair("router", b, c)
        for b in ("forwarder", "contract", "direct")
        for c in (1, 16)
        if b in paths
    }
    print("router vs ..., paired by round (requests interleaved at c=1, half-second slices at c=16):")
    for (b, c), ratio in ratios.items():
        print(f"  {b:9} {'p50 c=1' if c == 1 else 'throughput c=16':16} {ratio.spread()}")
    return [
        Floor("router/forwarder p50 (c=1)", ratios[("forwarder", 1)].median, 1.10, higher_is_better=False),
        Floor("router/forwarder throughput (c=16)", ratios[("forwarder", 16)].median, 0.92),
        Floor("router/direct p50 (c=1)", ratios[("direct", 1)].median, 2.0, higher_is_better=False),
        Floor("router/direct throughput (c=16)", ratios[("direct", 16)].median, 0.6),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default="model_repository")
    parser.add_argument("--experiment", default="examples/experiment.yaml")
    parser.add_argument("--router", default="demo_ab", help="the router model in the repository")
    parser.add_argument("--variant", default="treatment", help="the variant called directly")
    parser.add_argument("--input", default="input")
    parser.add_argument("--width", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--window", type=float, default=3.0, help="seconds per window")
    parser.add_argument("--native", metavar="BUILD_DIR", help="also measure the C++ forwarder built there")
    return finish("router_overhead", asyncio.run(_measure(parser.parse_args())))


if __name__ == "__main__":
    sys.exit(main())
