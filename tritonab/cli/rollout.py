"""`tritonab rollout run|status|abort`: canary and blue-green rollouts on a live server.

`run` ticks until the rollout ends: exit 0 promoted, 1 rolled back (or aborted), 2 it
could not run (bad spec, unreachable server, halted, or stopped by `--max-ticks`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from tritonab.cli._common import add_client_security, client_endpoint

if TYPE_CHECKING:
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
    p = subparsers.add_parser("rollout", help="canary and blue-green rollouts, gated, with rollback")
    sub = p.add_subparsers(dest="rollout_command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", help="run a rollout to completion (0 promoted, 1 rolled back, 2 could not run)"
    )
    run.add_argument("spec", help="rollout spec (YAML; `strategy: canary` or `bluegreen`)")
    run.add_argument("--triton", required=True, help="host:port of Triton's gRPC endpoint")
    run.add_argument("--prometheus", help="Prometheus base URL, e.g. http://127.0.0.1:9090")
    _common(run)
    add_client_security(run)
    run.add_argument("--actor", default="tritonab-rollout", help="who acts, for the audit log")
    run.add_argument("--max-ticks", type=int, help="stop after this many ticks (exit 2 if unfinished)")
    run.set_defaults(func=_run)

    status = sub.add_parser("status", help="where a rollout stands (from its state file)")
    status.add_argument("--state", default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    status.add_argument("--json", action="store_true", help="print the state as JSON")
    status.set_defaults(func=_status)

    abort = sub.add_parser("abort", help="send the traffic back to the baseline now")
    abort.add_argument("--triton", required=True, help="host:port of Triton's gRPC endpoint")
    _common(abort)
    add_client_security(abort)
    abort.add_argument("--actor", default="operator", help="who acts, for the audit log")
    abort.add_argument("--reason", default="aborted by the operator")
    abort.set_defaults(func=_abort)


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
    state = run_rollout(
        spec,
        triton_url=client_endpoint(args, args.triton),
        prometheus=args.prometheus,
        state_path=args.state,
        audit_path=args.audit,
        actor=args.actor,
        on_event=_printer(),
        max_ticks=args.max_ticks,
    )
    print(f"rollout {state.status}; state in {args.state}, audit log in {args.audit}")
    return exit_code(state)


def _status(args: argparse.Namespace) -> int:
    """`rollout status`: the state file as a table, or as JSON."""
    import json

    from rich.console import Console
    from rich.table import Table

    from tritonab.rollout import state_json, status_table

    data = state_json(args.state)
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    view = status_table(data)
    table = Table(title=view.title)
    table.add_column("field")
    table.add_column("value")
    for key, value in view.rows:
        table.add_row(key, value)
    Console().print(table)
    return 0


def _abort(args: argparse.Namespace) -> int:
    """`rollout abort`: the traffic back now; 0 when it was aborted, 1 when it had ended."""
    from tritonab.rollout import TickOutcome, abort_rollout

    event = abort_rollout(
        args.state,
        triton_url=client_endpoint(args, args.triton),
        audit_path=args.audit,
        actor=args.actor,
        reason=args.reason,
    )
    _printer()(event)
    return 0 if event.outcome is TickOutcome.ABORT else 1
