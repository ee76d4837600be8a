"""`tritonab monitor`: serve data and concept drift of the logs as Prometheus metrics.

    tritonab monitor --logs logs --port 9108 --repository model_repository \\
        [--experiment demo_ab] [--window 1h] [--interval 60s] [--metric correct] [--once]

Refreshes from the log folder every `--interval` and serves the last snapshot on
`http://ADDR:PORT/metrics` until interrupted; `--once` prints one snapshot and exits.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any


def register(subparsers: Any) -> None:
    """Add `monitor`."""
    p = subparsers.add_parser(
        "monitor",
        help="Prometheus exporter of data and concept drift read from the logs",
        description=__doc__.splitlines()[0],
    )
    p.add_argument("--logs", required=True, metavar="DIR", help="the log folder")
    p.add_argument("--port", type=int, default=9108, help="port of /metrics (default 9108)")
    p.add_argument("--addr", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--experiment", action="append", default=[], help="watch only these (repeatable)")
    p.add_argument("--repository", metavar="DIR", help="each variant's profile beside its model version")
    p.add_argument("--reference", metavar="REF", help="one reference (profile or data) for every variant")
    p.add_argument("--spec", metavar="drift.yaml", help="drift thresholds and settings")
    p.add_argument("--window", default="1h", help="the current window (default 1h)")
    p.add_argument("--interval", default="60s", help="refresh interval (default 60s)")
    p.add_argument("--metric", action="append", default=[], help="outcome metric for concept drift")
    p.add_argument("--delta", type=float, default=0.002, help="ADWIN confidence (default 0.002)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.set_defaults(func=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    from tritonab.errors import DriftError
    from tritonab.monitoring.drift import DriftSpec, load_drift_spec
    from tritonab.monitoring.exporter import DriftMonitor, monitor_settings
    from tritonab.monitoring.retention import parse_duration

    if not (args.repository or args.reference):
        raise DriftError("give --repository (profiles beside the models) or --reference")
    settings = monitor_settings(
        args.logs,
        experiments=tuple(args.experiment),
        repository=args.repository,
        reference=args.reference,
        spec=load_drift_spec(args.spec) if args.spec else DriftSpec(),
        window_s=parse_duration(args.window),
        metrics=tuple(args.metric),
        delta=args.delta,
    )
    monitor = DriftMonitor(settings)
    if args.once:
        monitor.refresh()
        sys.stdout.write(monitor.exposition().decode("utf-8"))
        for name, state in sorted(monitor.states.items()):
            if state.error:
                print(f"error: {name}: {state.error}", file=sys.stderr)
        return 1 if any(s.error for s in monitor.states.values()) else 0
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    with monitor:
        monitor.start(args.port, addr=args.addr, interval_s=parse_duration(args.interval))
        print(f"serving drift metrics on http://{args.addr}:{args.port}/metrics", flush=True)
        done.wait()
    return 0
