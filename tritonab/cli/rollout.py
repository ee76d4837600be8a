"""`tritonab rollout run|status|abort|demo`: canary and blue-green rollouts on a live
server, or on every replica of a fleet (`--url` repeated, or `--service`; `--repository`
is the fleet's source of truth); `demo` runs a local canary to watch.

`run` ticks until the rollout ends: exit 0 promoted, 1 rolled back (or aborted), 2 it
could not run (bad spec, unreachable server, halted, or stopped by `--max-ticks`).
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from tritonab.cli._common import add_client_security, client_endpoint
from tritonab.cli._fleet import add_replica_arguments, is_fleet, open_fleet, print_status, replica_urls

if TYPE_CHECKING:
    from tritonab.deploy.fleet import Fleet
    from tritonab.rollout import TickEvent

DEFAULT_STATE = "rollout.state.json"
DEFAULT_AUDIT = "rollout.audit.jsonl"
_COLOURS = {
    "advance": "green",
    "promote": "bold green",
    "hold": "yellow",
    "failed_check": "red",
    "rollback": "bold red",
    "halt": "bold magenta",
    "abort": "bold red",
    "done": "dim",
}


def register(subparsers) -> None:
    """Add `rollout run`, `rollout status` and `rollout abort`."""
    p = subparsers.add_parser("rollout", help="canary, blue-green and bandit rollouts, gated, with rollback")
    sub = p.add_subparsers(dest="rollout_command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", help="run a rollout to completion (0 promoted, 1 rolled back, 2 could not run)"
    )
    run.add_argument("spec", help="rollout spec (YAML; `strategy: canary`, `bluegreen` or `bandit`)")
    add_replica_arguments(run, flags=("--triton", "--url"))
    run.add_argument("--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    _common(run)
    add_client_security(run)
    run.add_argument("--actor", default="tritonab-rollout", help="who acts, for the audit log")
    run.add_argument("--max-ticks", type=int, help="stop after this many ticks (exit 2 if unfinished)")
    run.set_defaults(func=_run)

    status = sub.add_parser(
        "status",
        help="where a rollout stands (from its state file); with --url, every replica's weights",
        description="The state file as a table. With --url (repeatable), --service or "
        "--repository, also the weights every replica serves: exit 1 when one differs.",
    )
    status.add_argument("--state", default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    add_replica_arguments(status, flags=("--triton", "--url"))
    status.set_defaults(func=_status)

    abort = sub.add_parser("abort", help="send the traffic back to the baseline now")
    add_replica_arguments(abort, flags=("--triton", "--url"))
    _common(abort)
    add_client_security(abort)
    abort.add_argument("--actor", default="operator", help="who acts, for the audit log")
    abort.add_argument("--reason", default="aborted by the operator")
    abort.set_defaults(func=_abort)

    demo = sub.add_parser(
        "demo",
        help="a complete local canary to watch: Triton, Prometheus, traffic, a live table and a PNG",
    )
    demo.add_argument("--out", default="out/demo-rollout", help="state, audit log and rollout.png")
    demo.add_argument("--repository", default="model_repository", help="the demo model repository")
    demo.add_argument("--rate", type=float, default=100.0, help="background requests per second")
    demo.add_argument("--interval", type=float, default=2.0, help="seconds between ticks")
    demo.add_argument("--window", default="6s", help="each step's minimum window (PromQL range)")
    demo.set_defaults(func=_demo)


def _common(parser: argparse.ArgumentParser) -> None:
    """`--state` and `--audit`."""
    parser.add_argument("--state", default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    parser.add_argument("--audit", default=DEFAULT_AUDIT, help=f"audit log (default {DEFAULT_AUDIT})")


def _printer() -> Callable[[TickEvent], None]:
    """A callback printing one coloured line per tick."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)

    def show(event: TickEvent) -> None:
        """One line, coloured by outcome."""
        colour = _COLOURS.get(event.outcome.value, "white")
        console.print(f"[{colour}]{escape(event.line())}[/]")

    return show


def _run(args: argparse.Namespace) -> int:
    """`rollout run`: tick to the end, one line per tick; the exit code says how it ended."""
    from tritonab.rollout import exit_code, load_rollout_spec, run_rollout

    spec = load_rollout_spec(args.spec)
    with _server(args) as (url, control):
        state = run_rollout(
            spec,
            triton_url=client_endpoint(args, url),
            prometheus=args.prometheus,
            state_path=args.state,
            audit_path=args.audit,
            actor=args.actor,
            on_event=_printer(),
            max_ticks=args.max_ticks,
            control=control,
        )
    print(f"rollout {state.status}; state in {args.state}, audit log in {args.audit}")
    return exit_code(state)


@contextlib.contextmanager
def _server(args: argparse.Namespace) -> Iterator[tuple[str, Fleet | None]]:
    """The URL the perf gate and smoke inferences use (the first replica), and a `Fleet`
    over every replica when there is more than one (or a repository, or `--service`);
    None leaves the rollout its own `ModelControl`."""
    if not is_fleet(args):
        yield replica_urls(args)[0], None
        return
    with open_fleet(args) as fleet:
        yield fleet.urls()[0], fleet


def _status(args: argparse.Namespace) -> int:
    """`rollout status`: the state file as a table, or as JSON."""
    import json

    from rich.console import Console
    from rich.table import Table

    from tritonab.rollout import state_json, status_table

    data = state_json(args.state)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
    else:
        view = status_table(data)
        table = Table(title=view.title)
        table.add_column("field")
        table.add_column("value")
        for key, value in view.rows:
            table.add_row(key, value)
        Console().print(table)
    if not (args.urls or args.service or args.repository):
        return 0
    with open_fleet(args) as fleet:
        replicas = fleet.status(str(data.get("experiment")))
    print_status(replicas)
    return 0 if replicas.consistent else 1


def _abort(args: argparse.Namespace) -> int:
    """`rollout abort`: the traffic back now; 0 when it was aborted, 1 when it had ended."""
    from tritonab.rollout import TickOutcome, abort_rollout

    with _server(args) as (url, control):
        event = abort_rollout(
            args.state,
            triton_url=client_endpoint(args, url),
            audit_path=args.audit,
            actor=args.actor,
            reason=args.reason,
            control=control,
        )
    _printer()(event)
    return 0 if event.outcome is TickOutcome.ABORT else 1


def _demo(args: argparse.Namespace) -> int:
    """`rollout demo`: the live table while the canary runs, then where its files are."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    from tritonab.rollout.demo import demo_spec, run_demo

    console = Console(highlight=False, width=max(140, Console().width))
    table = Table(title="canary of `demo_canary` (candidate: treatment, demo_gbt)")
    for column in ("tick", "step", "candidate", "rows", "error rate", "p99 / baseline", "outcome", "why"):
        table.add_column(column, overflow="fold")

    def row(event: TickEvent) -> None:
        readings = {c.name: c for c in event.checks}
        rows, errors, p99 = (readings.get(n) for n in ("rows", "error rate", "p99 latency"))
        ratio = "" if p99 is None or not p99.value or not p99.baseline else f"{p99.value / p99.baseline:.2f}"
        colour = _COLOURS.get(event.outcome.value, "white")
        table.add_row(
            str(event.tick),
            event.summary,
            f"{100 * (event.weights or {}).get('treatment', 0.0):g}%",
            "" if rows is None or rows.value is None else f"{rows.value:.0f}",
            "" if errors is None or errors.value is None else f"{errors.value:.3g}",
            ratio,
            f"[{colour}]{event.outcome.value}[/]",
            event.reason,
        )

    console.print("starting Triton (explicit mode), Prometheus and background traffic ...")
    with Live(table, console=console, refresh_per_second=4):
        result = run_demo(
            args.out,
            repository=args.repository,
            spec=demo_spec(interval_s=args.interval, window=args.window),
            rate=args.rate,
            on_event=row,
        )
    console.print()
    console.print(
        f"rollout {result.state.status} after {len(result.events)} ticks; {result.served} requests "
        f"served, {result.failures} failed"
    )
    console.print(f"picture: {result.picture}\nstate: {result.state_path}\naudit log: {result.audit_path}")
    from tritonab.rollout import exit_code

    return exit_code(result.state)
