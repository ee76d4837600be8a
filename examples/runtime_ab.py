"""An A/B test on runtime configuration: the same model bytes, served two ways.

    .venv/bin/python examples/runtime_ab.py [--requests 400] [--workers 8]
        [--repository DIR --triton HOST:PORT]   # a running explicit-mode server instead

1. derive: `demo_gbt_x2` (`--variant`) is `demo_gbt` with two instances and a 200 us batching queue
   delay (`tritonab variant derive`); the artifact is shared (same sha256 in both
   manifests), only `config.pbtxt` differs;
2. route: a router `ab_runtime_demo` splits users 50/50 between `one_instance`
   (`demo_gbt`) and `two_instances` (`demo_gbt_x2`);
3. traffic: simulated users call the router concurrently; both arms must answer every
   row identically (only how Triton runs the model differs), and each arm's client
   latency is reported;
4. perf compare: the two models side by side in alternating windows at concurrency 4,
   with the configuration difference named.

Without `--triton` the example copies `model_repository/` to a temporary folder and
starts its own server there. Latencies measured on a shared machine are indicative.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from tritonab.client import ExperimentClient
from tritonab.converters import RuntimeChanges, derive_variant
from tritonab.ensembles import build_router
from tritonab.perf import LoadOptions, MeasureSettings, compare
from tritonab.splitter import load_spec_dict

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_demo import FEATURES, demo_data  # noqa: E402

SOURCE, ROUTER = "demo_gbt", "ab_runtime_demo"


def prepare(repository: Path, variant: str) -> dict:
    """The derived variant and the router, written into `repository`."""
    derived = derive_variant(
        SOURCE,
        name=variant,
        repository=repository,
        changes=RuntimeChanges(instances=2, max_queue_delay_us=200),
        force=True,
    )
    experiment = {
        "name": ROUTER,
        "variants": [
            {"name": "one_instance", "model": SOURCE, "version": 1, "weight": 0.5},
            {"name": "two_instances", "model": variant, "version": 1, "weight": 0.5},
        ],
        "require_unit": True,
    }
    build_router(load_spec_dict(experiment), repository)
    return derived.to_dict()


def traffic(url: str, requests: int, workers: int) -> dict:
    """Requests from simulated users through the router: each arm's answers and latencies."""
    _, x, _, _ = demo_data()  # the test split
    rng = np.random.default_rng(11)
    rows = rng.integers(0, len(x), size=requests)
    latencies: dict[str, list[float]] = defaultdict(list)
    answers: dict[str, dict[int, np.ndarray]] = defaultdict(dict)
    local, lock, clients = threading.local(), threading.Lock(), []

    def one(i: int) -> None:
        if not hasattr(local, "client"):  # one connection per worker thread
            local.client = ExperimentClient(url)
            with lock:
                clients.append(local.client)
        start = time.perf_counter()
        result = local.client.infer(ROUTER, {FEATURES: x[rows[i] : rows[i] + 1]}, unit_id=f"user-{i}")
        elapsed = time.perf_counter() - start
        with lock:
            latencies[result.variant].append(elapsed)
            answers[result.variant][int(rows[i])] = result.outputs["probabilities"]

    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(requests)))
    finally:
        for client in clients:
            client.close()
    # Rows both arms answered: the same model bytes must give the same probabilities.
    common = set(answers["one_instance"]) & set(answers["two_instances"])
    same = all(np.array_equal(answers["one_instance"][r], answers["two_instances"][r]) for r in common)
    return {
        "arms": {
            arm: {
                "requests": len(values),
                "p50_ms": 1000 * float(np.percentile(values, 50)),
                "p99_ms": 1000 * float(np.percentile(values, 99)),
            }
            for arm, values in sorted(latencies.items())
        },
        "rows_answered_by_both": len(common),
        "same_predictions": same,
    }


def side_by_side(url: str, variant: str, window_ms: float) -> dict:
    """`perf compare demo_gbt VARIANT` at concurrency 4, alternating windows."""
    options = LoadOptions(url=url, levels=(4,), settings=MeasureSettings(measurement_interval_ms=window_ms))
    result = compare(SOURCE, variant, options, rounds=2)
    level = result.levels[0]
    return {
        "config_changes": result.config_changes,
        "throughput": {"baseline": level.baseline.throughput, "candidate": level.candidate.throughput},
        "ratios": {k: v.estimate for k, v in level.ratios.items()},
    }


def run(url: str, args: argparse.Namespace) -> dict:
    return {
        "traffic": traffic(url, args.requests, args.workers),
        "perf_compare": side_by_side(url, args.variant, args.window_ms),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--variant", default="demo_gbt_x2", help="the derived model's name")
    parser.add_argument("--window-ms", type=float, default=1000.0, help="perf compare's window")
    parser.add_argument("--repository", type=Path, help="a model repository holding demo_gbt")
    parser.add_argument("--triton", help="a running server (explicit model control) on --repository")
    args = parser.parse_args(argv)
    if args.triton and not args.repository:
        parser.error("--triton needs --repository (the server's model repository)")
    temporary = None
    repository = args.repository
    if repository is None:
        temporary = Path(tempfile.mkdtemp(prefix="tritonab-runtime-ab-"))
        repository = temporary / "model_repository"
        shutil.copytree(HERE.parent / "model_repository", repository)
    models = (SOURCE, args.variant, ROUTER)
    try:
        derived = prepare(repository, args.variant)
        if args.triton:
            from tritonab.deploy.control import ModelControl

            with ModelControl(args.triton) as control:
                for name in models:  # the source may be serving already: leave it be
                    if name != SOURCE or not control.is_ready(name):
                        control.load(name)
                try:
                    result = run(args.triton, args)
                finally:
                    for name in (ROUTER, args.variant):
                        control.unload(name)
        else:
            from tritonab.deploy.server import TritonServer

            with TritonServer(repository, model_control_mode="explicit", load_models=models) as server:
                result = run(server.urls.grpc, args)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    print(
        f"derived `{args.variant}` from `{SOURCE}`: artifact shared ({derived['shared']}), "
        f"sha256 {derived['sha256']}"
    )
    for change in derived["changes"]:
        before = "(unset)" if change["before"] is None else change["before"]
        print(f"  {change['path']}: {before} -> {change['after']}")
    served = result["traffic"]
    for arm, figures in served["arms"].items():
        print(
            f"arm {arm:<14} {figures['requests']:>5} requests  "
            f"p50 {figures['p50_ms']:.2f} ms  p99 {figures['p99_ms']:.2f} ms"
        )
    print(
        f"same predictions on the {served['rows_answered_by_both']} rows both arms answered: "
        f"{'yes' if served['same_predictions'] else 'NO'}"
    )
    perf = result["perf_compare"]
    print("perf compare (concurrency 4), configuration of the candidate against the baseline's:")
    for change in perf["config_changes"]:
        print(f"  {change}")
    ratios = "  ".join(f"{k} {v:.3f}x" for k, v in perf["ratios"].items())
    print(f"candidate / baseline: {ratios}  (measured on this machine, indicative only)")
    return 0 if served["same_predictions"] and len(served["arms"]) == 2 else 1


if __name__ == "__main__":
    sys.exit(main())
