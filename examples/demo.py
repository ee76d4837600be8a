"""`make demo`: a real Triton splits real traffic between two real model variants.

Starts the embedded tritonserver on `model_repository/`, sends requests from
simulated users over HTTP and gRPC (each user sticks to one variant), waits until
Triton's metrics endpoint shows every request the client counted (the router applies
metric updates off the request path, a moment after the last response), prints the
per-variant table read back from it, and stops the server; the table is then checked
against the exposure log, and any disagreement is printed in red (exit 1).
The router logs every assignment (exposure) under a log folder; the client reports
each prediction's outcome (`correct`: 1 when it matches the data set's label); the
analysis joins them with DuckDB and ends with accuracy per variant, the test and the
decision of the spec's success criteria (`tritonab analyze demo_ab --logs DIR` does
the same from the command line).

    .venv/bin/python examples/demo.py [--users 600] [--requests 3000] [--workers 8]
        [--log-dir DIR] [--html report.html]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from tritonab.client import ExperimentClient
from tritonab.deploy.server import TritonServer
from tritonab.monitoring.analysis import analyze
from tritonab.monitoring.metrics import SettledMetrics, wait_for_rows
from tritonab.monitoring.report import print_analysis, write_html
from tritonab.monitoring.router_log import LOG_DIR_ENV
from tritonab.monitoring.segments import read_records
from tritonab.splitter import load_spec

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from train_demo import FEATURES, demo_data  # noqa: E402

console = Console(width=max(110, Console().width))
SETTLE_S = 5.0  # the longest the demo waits for Triton's counts to reach its own


def send_traffic(server: TritonServer, args, x: np.ndarray, y: np.ndarray) -> dict:
    """Requests from simulated users; returns per-variant outcomes and each user's variants."""
    rng = np.random.default_rng(7)
    users = rng.integers(0, args.users, size=args.requests)
    rows = rng.integers(0, len(x), size=args.requests)
    local = threading.local()
    seen: dict[str, set[str]] = defaultdict(set)
    correct: dict[str, list[int]] = defaultdict(list)
    lock = threading.Lock()

    def client() -> ExperimentClient:
        if not hasattr(local, "clients"):
            local.clients = {
                "grpc": ExperimentClient(server.urls.grpc, "grpc"),
                "http": ExperimentClient(server.urls.http, "http"),
            }
        return local.clients

    def one(i: int) -> None:
        protocol = "grpc" if i % 2 == 0 else "http"
        user = f"user-{users[i]}"
        result = client()[protocol].infer(args.experiment, {FEATURES: x[rows[i] : rows[i] + 1]}, unit_id=user)
        label = int(result.outputs["label"].reshape(-1)[0])
        right = int(label == y[rows[i]])
        client()[protocol].report_outcome("correct", right, unit_id=user, log_dir=args.log_dir)
        with lock:
            seen[user].add(result.variant)
            correct[result.variant].append(right)

    with Progress(console=console) as progress, ThreadPoolExecutor(args.workers) as pool:
        task = progress.add_task(
            f"{args.requests} requests from {args.users} users (HTTP + gRPC)", total=args.requests
        )
        for _ in pool.map(one, range(args.requests)):
            progress.advance(task)
    return {"seen": seen, "correct": correct}


def print_split(server: TritonServer, spec, traffic: dict) -> SettledMetrics:
    """Wait for the metrics to show every request the client counted, then print the table."""
    sent = {v.name: len(traffic["correct"].get(v.name, [])) for v in spec.variants}
    with console.status("waiting for Triton's metrics to count every request ..."):
        read = wait_for_rows(server.urls.metrics, spec.name, sent, timeout_s=SETTLE_S)
    if not read.settled:
        console.print(
            f"[bold red]Triton's metrics did not settle on the {sum(sent.values())} requests sent "
            f"(waited up to {SETTLE_S:.0f} s): {read.mismatch()}[/bold red]"
        )
    metrics = read.metrics
    total = sum(read.rows.values())
    table = Table(title=f"experiment {spec.name}: per-variant metrics from Triton's /metrics")
    for column in ("variant", "model", "rows", "share", "target", "p50 ms", "p99 ms", "errors"):
        table.add_column(column, justify="right" if column not in ("variant", "model") else "left")
    for variant in spec.variants:
        m = metrics.get((spec.name, variant.name))
        if m is None:
            continue
        table.add_row(
            variant.name,
            variant.model,
            f"{m.rows:.0f}",
            f"{m.rows / total:.1%}",
            f"{variant.weight:.0%}",
            f"{m.latency_quantile(0.5) / 1000:.2f}",
            f"{m.latency_quantile(0.99) / 1000:.2f}",
            f"{m.errors:.0f}",
        )
    console.print(table)
    return read


def check_exposures(read: SettledMetrics, spec, log_dir: str) -> bool:
    """The table's rows per variant against the exposure log's records per variant."""
    records, _ = read_records(Path(log_dir) / spec.name / "exposures")
    logged = {v.name: 0 for v in spec.variants}
    for record in records:
        logged[record["variant"]] = logged.get(record["variant"], 0) + 1
    shown = {v: int(n) for v, n in read.rows.items()}
    if shown == logged:
        console.print(f"table rows equal the exposure log: {logged}")
        return True
    console.print(
        f"[bold red]MISMATCH: the table shows {shown} rows but the exposure log holds {logged}[/bold red]"
    )
    return False


def print_outcomes(traffic: dict, spec, log_dir: str, html: str | None) -> None:
    """Stickiness seen by the client, then the analysis of the router's logs."""
    sticky = all(len(v) == 1 for v in traffic["seen"].values())
    console.print(
        f"sticky assignment: {len(traffic['seen'])} users, each always got the same "
        f"variant: [bold]{'yes' if sticky else 'NO'}[/bold]"
    )
    console.rule(f"analysis of the logs in {log_dir} (exposures + outcomes, DuckDB)")
    result = analyze(spec.name, log_dir, spec=spec)
    for name in spec.weights:
        acc = result.metrics["correct.per_exposure"][name]
        console.print(
            f"accuracy {name:10} {acc.mean:.3f}  ({acc.den_sum:.0f} predictions, {acc.n:.0f} users)"
        )
    print_analysis(result, console)
    if html:
        write_html(result, html)
        console.print(f"report with plots: {html}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", default=str(HERE.parent / "model_repository"))
    parser.add_argument("--experiment-spec", default=str(HERE / "experiment.yaml"))
    parser.add_argument("--users", type=int, default=600)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--log-dir", help="exposure/outcome logs (default: a temporary folder)")
    parser.add_argument("--html", help="also write the analysis as an HTML report")
    args = parser.parse_args()
    tmp = None
    if args.log_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="tritonab-demo-logs-")
        args.log_dir = tmp.name
    spec = load_spec(args.experiment_spec)
    args.experiment = spec.name
    _, x_test, _, y_test = demo_data()
    console.rule("tritonab demo")
    with console.status("starting tritonserver ..."):
        server = TritonServer(args.repository, env={LOG_DIR_ENV: args.log_dir}).__enter__()
    try:
        console.print(
            f"Triton ready: grpc {server.urls.grpc}, http {server.urls.http}, metrics {server.urls.metrics}"
        )
        traffic = send_traffic(server, args, x_test, y_test)
        read = print_split(server, spec, traffic)
    finally:
        server.stop()  # the routers seal their log segments on the way out
        console.print("tritonserver stopped")
    try:
        agree = check_exposures(read, spec, args.log_dir)
        print_outcomes(traffic, spec, args.log_dir, args.html)
    finally:
        if tmp is not None:
            tmp.cleanup()
    return 0 if read.settled and agree else 1


if __name__ == "__main__":
    sys.exit(main())
