"""`tritonab perf run|compare|gate`: measure, compare side by side, gate a promotion.

Exit codes: 0 done / gate passed, 1 gate failed, 2 a measurement could not be
taken (`PerfError`: unreachable server, unknown model, bad input data).
"""

from __future__ import annotations

import argparse
import sys

from tritonab.cli._common import access_from_args, add_client_security
from tritonab.errors import PerfError
from tritonab.perf._records import LoadMode


def _add_load_args(parser: argparse.ArgumentParser) -> None:
    """Arguments shared by `run`, `compare` and `gate` (perf_analyzer's spelling)."""
    parser.add_argument("--url", default="127.0.0.1:8001", help="server host:port (default %(default)s)")
    parser.add_argument("-i", "--protocol", choices=("grpc", "http"), default="grpc")
    load = parser.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency",
        "--concurrency-range",
        dest="concurrency",
        metavar="START:END:STEP",
        help="closed-loop concurrency sweep (default 1)",
    )
    load.add_argument(
        "--request-rate",
        "--request-rate-range",
        dest="request_rate",
        metavar="START:END:STEP",
        help="open-loop request-rate sweep (requests/s)",
    )
    parser.add_argument("--request-distribution", choices=("poisson", "constant"), default="poisson")
    parser.add_argument("--input-data", default="random", help="zero, random or a perf_analyzer JSON file")
    parser.add_argument(
        "--shape",
        action="append",
        default=[],
        metavar="NAME:DIMS",
        help="dims of a variable-shaped input, e.g. input:1,30 (repeatable)",
    )
    parser.add_argument("-b", "--batch-size", type=int, default=1)
    parser.add_argument("-p", "--measurement-interval", type=float, default=5000.0, metavar="MS")
    parser.add_argument("-s", "--stability-percentage", type=float, default=10.0, metavar="P")
    parser.add_argument("-r", "--max-trials", type=int, default=10, metavar="N")
    parser.add_argument(
        "--percentile",
        type=float,
        default=None,
        metavar="P",
        help="judge stability on this latency percentile instead of the mean",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="request parameter sent with every request (repeatable)",
    )
    parser.add_argument(
        "--unit-ids",
        type=int,
        default=0,
        metavar="N",
        help="send request parameter unit_id drawn from N synthetic users (routers)",
    )
    add_client_security(parser)


def _load_options(args: argparse.Namespace):
    from tritonab.perf import LoadOptions, MeasureSettings, parse_range, parse_shape_overrides

    mode: LoadMode = "request_rate" if args.request_rate else "concurrency"
    if args.request_rate:
        levels = parse_range(args.request_rate, integer=False)
    else:
        levels = parse_range(args.concurrency or "1", integer=True)
    parameters = {}
    for item in args.parameter:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PerfError(f"--parameter `{item}`: expected KEY=VALUE")
        parameters[key] = value
    access = access_from_args(args)
    settings = MeasureSettings(
        args.measurement_interval,
        args.stability_percentage,
        args.max_trials,
        args.percentile,
        args.request_distribution,
    )
    return LoadOptions(
        url=args.url,
        protocol=args.protocol,
        mode=mode,
        levels=tuple(levels),
        input_data=args.input_data,
        shapes=parse_shape_overrides(args.shape),
        batch_size=args.batch_size,
        parameters=parameters,
        unit_ids=args.unit_ids,
        settings=settings,
        tls=access.tls,
        headers=access.headers(args.protocol),
    )


def _records_table(title: str, records):
    from rich.table import Table

    table = Table(title=title)
    columns = ("load", "inf/s", "p50ms", "p90ms", "p99ms", "queue", "infer", "net", "err", "ok")
    for column in columns:
        table.add_column(column, justify="right")
    for r in records:
        level = f"c={r.concurrency}" if r.mode == "concurrency" else f"{r.load:g}/s"
        server = [
            f"{v:.0f}" if v is not None else "-" for v in (r.queue_us, r.compute_infer_us, r.network_us)
        ]
        table.add_row(
            level,
            f"{r.throughput:.0f}",
            *(f"{v / 1e3:.2f}" for v in (r.p50_us, r.p90_us, r.p99_us)),
            *server,
            "-" if r.errors is None else str(r.errors),
            {True: "yes", False: "NO", None: "-"}[r.stable],
        )
    table.caption = "server columns: us per request (Triton statistics)"
    return table


def _cmd_run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tritonab.perf import run_perf, write_run

    options = _load_options(args)
    run = run_perf(args.model, options, backend=args.backend, work_dir=args.out)
    console = Console()
    console.print(_records_table(f"{args.model} on {args.url} ({run.backend})", run.records))
    for warning in run.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    if args.out:
        csv_path, json_path = write_run(run, args.out)
        console.print(f"wrote {csv_path} and {json_path}")
    return 0


def _run_compare(args: argparse.Namespace):
    from tritonab.perf import compare

    return compare(
        args.baseline,
        args.candidate,
        _load_options(args),
        rounds=args.rounds,
        warmup_s=args.warmup,
        confidence=args.confidence,
        candidate_url=args.candidate_url,
    )


def _ratios_table(result):
    from rich.table import Table

    table = Table(title=f"{result.candidate} / {result.baseline} ({result.confidence:.0%} interval)")
    for column in ("level", "metric", "ratio", "interval", "pairs"):
        table.add_column(column, justify="right")
    for level in result.levels:
        for metric, ratio in level.ratios.items():
            interval = "-" if ratio.ci_low is None else f"[{ratio.ci_low:.3f}, {ratio.ci_high:.3f}]"
            table.add_row(f"{level.load:g}", metric, f"{ratio.estimate:.3f}", interval, str(ratio.n))
    return table


def _cmd_compare(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tritonab.perf import save_compare, write_report

    result = _run_compare(args)
    console = Console()
    for side in ("baseline", "candidate"):
        records = [getattr(level, side) for level in result.levels]
        console.print(_records_table(f"{side}: {getattr(result, side)}", records))
    if result.config_changes:
        console.print("configuration of the candidate, against the baseline's:", highlight=False)
        for change in result.config_changes:
            console.print(f"  {change}", highlight=False, markup=False)
    console.print(_ratios_table(result))
    if args.out:
        save_compare(result, args.out)
        console.print(f"wrote {args.out}")
    if args.report:
        console.print(f"wrote {write_report(result, args.report)}")
    return 0


def _gate_source(args: argparse.Namespace):
    from tritonab.perf import compare_records, load_compare, read_perf_analyzer_csv

    if args.result:
        return load_compare(args.result)
    if args.baseline_csv or args.candidate_csv:
        if not (args.baseline_csv and args.candidate_csv):
            raise PerfError("give both --baseline-csv and --candidate-csv")
        return compare_records(
            read_perf_analyzer_csv(args.baseline_csv),
            read_perf_analyzer_csv(args.candidate_csv),
            baseline_name=args.baseline_csv,
            candidate_name=args.candidate_csv,
        )
    if not (args.baseline and args.candidate):
        raise PerfError(
            "give --result FILE.json, --baseline-csv/--candidate-csv, or --baseline/--candidate to measure"
        )
    return _run_compare(args)


def _cmd_gate(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tritonab.perf import (
        evaluate_gate,
        gate_table,
        load_thresholds,
        save_compare,
        save_gate,
        write_report,
    )

    thresholds = load_thresholds(
        args.thresholds,
        min_throughput_ratio=args.min_throughput_ratio,
        max_p99_ratio=args.max_p99_ratio,
        p99_sla_ms=args.p99_sla_ms,
        max_error_rate=args.max_error_rate,
    )
    result = _gate_source(args)
    gate = evaluate_gate(result, thresholds)
    console = Console()
    console.print(gate_table(gate))
    if args.json:
        save_gate(gate, args.json)
        console.print(f"wrote {args.json}")
    if args.out and not args.result:
        save_compare(result, args.out)
    if args.report:
        console.print(f"wrote {write_report(result, args.report, gate)}")
    print("PASS" if gate.passed else "FAIL", file=sys.stderr)
    return gate.exit_code


def _add_compare_args(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--baseline", required=required, metavar="MODEL[:VERSION]")
    parser.add_argument("--candidate", required=required, metavar="MODEL[:VERSION]")
    parser.add_argument("--candidate-url", default=None, help="the candidate's server (default --url)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating window pairs per level")
    parser.add_argument("--warmup", type=float, default=0.2, metavar="S", help="unmeasured load per window")
    parser.add_argument("--confidence", type=float, default=0.95)
    _add_load_args(parser)


def register(subparsers) -> None:
    """Add `perf` with its `run`, `compare` and `gate` sub-commands."""
    perf = subparsers.add_parser("perf", help="measure, compare and gate model performance")
    commands = perf.add_subparsers(dest="perf_command", metavar="SUBCOMMAND", required=True)

    run = commands.add_parser("run", help="measure a model at a sweep of load levels")
    run.add_argument("model", metavar="MODEL[:VERSION]")
    _add_load_args(run)
    run.add_argument(
        "--backend",
        choices=("auto", "builtin", "perf_analyzer"),
        default="auto",
        help="perf_analyzer when on PATH (auto), or the built-in generator",
    )
    run.add_argument("--out", default=None, metavar="DIR", help="write perf.csv and perf.json here")
    run.set_defaults(func=_cmd_run)

    cmp_ = commands.add_parser("compare", help="baseline vs candidate in alternating windows")
    _add_compare_args(cmp_, required=True)
    cmp_.add_argument("--out", default=None, metavar="FILE.json", help="write the comparison here")
    cmp_.add_argument("--report", default=None, metavar="DIR", help="write report.md and PNG plots")
    cmp_.set_defaults(func=_cmd_compare)

    gate = commands.add_parser("gate", help="PASS/FAIL a candidate against thresholds (exit 0/1)")
    gate.add_argument("--result", default=None, metavar="FILE.json", help="a `perf compare --out` file")
    gate.add_argument("--baseline-csv", default=None, help="perf_analyzer CSV of the baseline")
    gate.add_argument("--candidate-csv", default=None, help="perf_analyzer CSV of the candidate")
    _add_compare_args(gate, required=False)
    gate.add_argument("--thresholds", default=None, metavar="FILE.yaml")
    gate.add_argument("--min-throughput-ratio", type=float, default=None)
    gate.add_argument("--max-p99-ratio", type=float, default=None)
    gate.add_argument("--p99-sla-ms", type=float, default=None)
    gate.add_argument("--max-error-rate", type=float, default=None)
    gate.add_argument("--json", default=None, metavar="FILE.json", help="write the verdict for CI")
    gate.add_argument("--out", default=None, metavar="FILE.json", help="write the measured comparison")
    gate.add_argument("--report", default=None, metavar="DIR", help="write report.md and PNG plots")
    gate.set_defaults(func=_cmd_gate)
