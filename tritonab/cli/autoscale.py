"""`tritonab autoscale`: forecast-driven replicas, planned, run, or simulated against the HPA.

Examples::

    tritonab autoscale plan --prometheus http://127.0.0.1:9090 --capacity-rps 120 \\
        --target-utilization 0.7 --horizon 15m --json plan.json
    tritonab autoscale run --prometheus http://prometheus:9090 --capacity-from perf/perf.csv \\
        --sla-p99 50 --deployment triton --export-port 9109
    tritonab autoscale trace --kind diurnal --days 7 --out trace.csv
    tritonab autoscale simulate --trace trace.csv --capacity-rps 50 --json sim.json --plot sim.png

`simulate` exits 1 when `--check-goal` is given and the predictive policy misses the
goal (at most half the HPA's SLA-violation minutes at no more than 1.1x its
replica-hours).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from typing import Any

from tritonab._io import atomic_write_text
from tritonab.errors import AutoscaleError, TritonABError

DESIRED = "tritonab_desired_replicas"


def register(subparsers: Any) -> None:
    """Add `autoscale plan`, `run`, `simulate` and `trace`."""
    p = subparsers.add_parser("autoscale", help="predictive autoscaling: plan, run, simulate")
    sub = p.add_subparsers(dest="autoscale_command", metavar="COMMAND", required=True)

    plan = sub.add_parser("plan", help="forecast the request rate and print the replicas it needs")
    _live_options(plan)
    plan.add_argument("--current", type=int, help="replicas running now (for the tolerance)")
    plan.add_argument("--json", metavar="FILE", help="write the plan as JSON")
    plan.set_defaults(func=_plan)

    run = sub.add_parser("run", help="decide every sync: export the desired replicas or scale a Deployment")
    _live_options(run)
    run.add_argument("--deployment", required=True, help="the Deployment (and the gauge's label)")
    run.add_argument("--namespace", default="default")
    run.add_argument("--export-port", type=int, help="serve tritonab_desired_replicas on this port")
    run.add_argument("--addr", default="127.0.0.1", help="address of the exporter (default 127.0.0.1)")
    run.add_argument("--patch-scale", action="store_true", help="patch the Deployment's scale subresource")
    run.add_argument("--kubeconfig", help="kubeconfig file (default: in-cluster, else ~/.kube/config)")
    run.add_argument("--ticks", type=int, help="stop after this many decisions")
    run.set_defaults(func=_run)

    sim = sub.add_parser("simulate", help="replay a time_s,rps trace: the predictive policy vs the HPA")
    sim.add_argument("--trace", required=True, metavar="T.csv", help="CSV with columns time_s, rps")
    sim.add_argument("--json", metavar="FILE", help="write the results as JSON")
    sim.add_argument("--plot", metavar="F.png", help="plot capacity and replicas of the last two days")
    sim.add_argument("--warmup", default="2d", help="unscored start, history for the forecast (default 2d)")
    sim.add_argument("--check-goal", action="store_true", help="exit 1 when the goal is missed")
    _settings_options(sim)
    sim.set_defaults(func=_simulate)

    trace = sub.add_parser("trace", help="write a generated trace (diurnal, or diurnal with bursts)")
    trace.add_argument("--kind", choices=("diurnal", "bursty"), default="diurnal")
    trace.add_argument("--days", type=float, default=7.0)
    trace.add_argument("--peak-rps", type=float, default=1000.0)
    trace.add_argument("--trough-ratio", type=float, default=0.2)
    trace.add_argument("--noise", type=float, default=0.1, help="log-normal noise sd (default 0.1)")
    trace.add_argument("--ramp", default="15m", help="the morning rise, 10%% to 90%% (default 15m)")
    trace.add_argument("--step", default="60s", help="sampling step (default 60s)")
    trace.add_argument("--seed", type=int, default=0)
    trace.add_argument("--out", required=True, metavar="T.csv")
    trace.set_defaults(func=_trace)


def _settings_options(p: argparse.ArgumentParser) -> None:
    capacity = p.add_mutually_exclusive_group(required=True)
    capacity.add_argument("--capacity-rps", type=float, help="requests/s one replica sustains within the SLA")
    capacity.add_argument(
        "--capacity-from", metavar="perf.csv", help="a `tritonab perf run` CSV (with --sla-p99)"
    )
    p.add_argument("--sla-p99", type=float, metavar="MS", help="the p99 latency SLA for --capacity-from")
    p.add_argument("--target-utilization", type=float, default=0.7)
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=100)
    p.add_argument("--startup", default="90s", help="pod start-up delay (default 90s)")
    p.add_argument("--stabilization", default="300s", help="scale-down stabilisation (default 300s)")
    p.add_argument("--sync", default="15s", help="sync period (default 15s)")
    p.add_argument("--quantile", type=float, default=0.95, help="forecast bound kept within capacity")
    p.add_argument("--step", default="60s", help="forecast step (default 60s)")


def _live_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--prometheus", required=True, metavar="URL", help="Prometheus base URL")
    query = p.add_mutually_exclusive_group()
    query.add_argument("--query", help="PromQL of the request rate (default: Triton's success rate)")
    query.add_argument("--model", help="the default query restricted to this model")
    p.add_argument("--horizon", default="15m", help="how far the forecast goes (default 15m)")
    p.add_argument("--history", default="7d", help="history the forecast is fitted on (default 7d)")
    _settings_options(p)


def _settings(args: argparse.Namespace, **extra: float) -> Any:
    from tritonab.deploy.autoscale import ScalingSettings, capacity_from_perf
    from tritonab.monitoring.retention import parse_duration

    if args.capacity_from:
        if args.sla_p99 is None:
            raise AutoscaleError("--capacity-from needs --sla-p99 MS")
        capacity = capacity_from_perf(args.capacity_from, args.sla_p99)
    else:
        capacity = args.capacity_rps
    return ScalingSettings(
        capacity_rps=capacity,
        target_utilization=args.target_utilization,
        min_replicas=args.min_replicas,
        max_replicas=args.max_replicas,
        startup_s=parse_duration(args.startup),
        stabilization_s=parse_duration(args.stabilization),
        sync_s=parse_duration(args.sync),
        quantile=args.quantile,
        step_s=parse_duration(args.step),
        **extra,
    )


def _autoscaler(args: argparse.Namespace) -> Any:
    from tritonab.deploy.autoscale import Autoscaler, PrometheusRates, default_query
    from tritonab.monitoring.retention import parse_duration

    settings = _settings(args, horizon_s=parse_duration(args.horizon), history_s=parse_duration(args.history))
    query = args.query or default_query(settings.step_s, args.model)
    return Autoscaler(PrometheusRates(args.prometheus, query), settings)


def _print_decision(decision: Any, capacity: float) -> None:
    print(
        f"observed {decision.observed_rps:.4g} rps; peak forecast {decision.peak_median_rps:.4g} rps "
        f"(upper {decision.peak_upper_rps:.4g}); {decision.model} model on "
        f"{decision.history_points} points; capacity {capacity:.4g} rps/replica"
    )
    print(f"desired replicas: {decision.desired} (recommended now: {decision.recommended})")


def _plan(args: argparse.Namespace) -> int:
    autoscaler = _autoscaler(args)
    decision = autoscaler.tick(args.current)
    _print_decision(decision, autoscaler.settings.capacity_rps)
    if decision.forecast:
        peak = max(decision.forecast, key=lambda p: p.replicas)
        print(f"over the horizon: up to {peak.replicas} replicas ({peak.median_rps:.4g} rps median)")
    if args.json:
        document = {"settings": dict(autoscaler.settings.__dict__), **decision.to_dict()}
        atomic_write_text(args.json, json.dumps(document, indent=2) + "\n")
    return 0


def _run(args: argparse.Namespace) -> int:
    from tritonab.deploy.autoscale import ReplicaExporter, ScaleActuator, kubernetes_apps_api

    if args.export_port is None and not args.patch_scale:
        raise AutoscaleError("give --export-port (a gauge for KEDA or an HPA) or --patch-scale")
    autoscaler = _autoscaler(args)
    exporter = ReplicaExporter(args.deployment)
    scaler = (
        ScaleActuator(kubernetes_apps_api(args.kubeconfig), args.deployment, args.namespace)
        if args.patch_scale
        else None
    )
    done = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: done.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if args.export_port is not None:
            exporter.start(args.export_port, addr=args.addr)
            print(f"serving {DESIRED} on http://{args.addr}:{args.export_port}/metrics", flush=True)
        _loop(autoscaler, exporter, scaler, done, args.ticks)
    finally:
        exporter.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _loop(autoscaler: Any, exporter: Any, scaler: Any, done: threading.Event, limit: int | None) -> None:
    """Tick every sync until stopped: the first failure is fatal (a bad query, no
    history), a later one (Prometheus or the API briefly away) holds the last decision."""
    ticks = 0
    while not done.is_set() and (limit is None or ticks < limit):
        try:
            decision = autoscaler.tick(scaler.current() if scaler else None)
            exporter.apply(decision)
            if scaler:
                scaler.apply(decision)
            _print_decision(decision, autoscaler.settings.capacity_rps)
        except TritonABError as exc:
            if ticks == 0:
                raise
            print(f"warning: holding the last decision: {exc}", file=sys.stderr)
        sys.stdout.flush()
        ticks += 1
        if limit is None or ticks < limit:
            done.wait(autoscaler.settings.sync_s)


def _simulate(args: argparse.Namespace) -> int:
    from tritonab.deploy.autoscale import plot_simulation, read_trace, simulate
    from tritonab.monitoring.retention import parse_duration

    trace = read_trace(args.trace)
    result = simulate(trace, _settings(args), warmup_s=parse_duration(args.warmup))
    document = result.to_dict()
    for name, r in document["policies"].items():
        print(
            f"{name:>10}: {r['sla_violation_minutes']:8.2f} SLA-violation minutes, "
            f"{r['replica_hours']:10.1f} replica-hours, {r['scale_events']} scale events"
        )
    ratios = document.get("predictive_vs_hpa", {})
    met = result.meets_goal()
    print(
        f"predictive / hpa: violations {ratios.get('sla_violation_minutes')}, replica-hours "
        f"{ratios.get('replica_hours')}; goal (<= 0.5x violations at <= 1.1x replica-hours) "
        f"{'met' if met else 'missed'}"
    )
    document["goal_met"] = met
    if args.json:
        atomic_write_text(args.json, json.dumps(document, indent=2) + "\n")
    if args.plot:
        plot_simulation(result, trace, args.plot)
    return 1 if args.check_goal and not met else 0


def _trace(args: argparse.Namespace) -> int:
    from tritonab.deploy.autoscale import bursty_trace, diurnal_trace, write_trace
    from tritonab.monitoring.retention import parse_duration

    make = bursty_trace if args.kind == "bursty" else diurnal_trace
    trace = make(
        days=args.days,
        peak_rps=args.peak_rps,
        trough_ratio=args.trough_ratio,
        noise=args.noise,
        ramp_s=parse_duration(args.ramp),
        step_s=parse_duration(args.step),
        seed=args.seed,
    )
    write_trace(trace, args.out)
    print(f"wrote {len(trace.rps)} rows ({args.days:g} days) to {args.out}")
    return 0
