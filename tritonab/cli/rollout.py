"""`tritonab rollout run|status|abort`: canary and blue-green rollouts on a live server.

`run` ticks until the rollout ends: exit 0 promoted, 1 rolled back (or aborted), 2 it
could not run (bad spec, unreachable server, halted, or stopped by `--max-ticks`).
"""

from __future__ import annotations

import argparse
from typing import Any

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
    abort.add_argument("--actor", default="operator", help="who acts, for the audit log")
    abort.add_argument("--reason", default="aborted by the operator")
    abort.set_defaults(func=_abort)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", default=DEFAULT_STATE, help=f"state file (default {DEFAULT_STATE})")
    parser.add_argument("--audit", default=DEFAULT_AUDIT, help=f"audit log (default {DEFAULT_AUDIT})")


def _printer():
    """A callback printing one coloured line per tick."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)

    def show(event: Any) -> None:
        colour = _COLOURS.get(event.outcome.value, "white")
        console.print(f"[{colour}]{escape(event.line())}[/]")

    return show


def _run(args: argparse.Namespace) -> int:
    from tritonab.deploy.control import ModelControl
    from tritonab.errors import RolloutError, TritonABError
    from tritonab.rollout import canary_controller, exit_code, load_rollout_spec
    from tritonab.rollout.bluegreen import BlueGreenController, BlueGreenSpec, grpc_infer

    spec = load_rollout_spec(args.spec)
    try:
        with ModelControl(args.triton) as control:
            if isinstance(spec, BlueGreenSpec):
                metrics = None
                if spec.checks:
                    if not args.prometheus:
                        raise RolloutError("the spec has checks: give --prometheus")
                    from tritonab.monitoring.promql import RouterQueries

                    metrics = RouterQueries(args.prometheus, window=spec.window)
                state = BlueGreenController(
                    spec,
                    control,
                    grpc_infer(args.triton),
                    state_path=args.state,
                    audit_path=args.audit,
                    metrics=metrics,
                    actor=args.actor,
                    on_event=_printer(),
                ).run(max_ticks=args.max_ticks)
            else:
                controller = canary_controller(
                    spec,
                    control,
                    prometheus=args.prometheus,
                    state_path=args.state,
                    audit_path=args.audit,
                    triton_url=args.triton,
                    actor=args.actor,
                    on_event=_printer(),
                )
                state = controller.run(max_ticks=args.max_ticks)
    except RolloutError:
        raise
    except TritonABError as exc:
        raise RolloutError(f"rollout could not run: {exc}") from None
    print(f"rollout {state.status}; state in {args.state}, audit log in {args.audit}")
    return exit_code(state)  # type: ignore[arg-type]


def _status(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console
    from rich.table import Table

    from tritonab.errors import RolloutError
    from tritonab.rollout.state import read_state_json

    data = read_state_json(args.state)
    if data is None:
        raise RolloutError(f"no rollout state at `{args.state}`")
    if args.json:
        print(json.dumps(data, indent=2, sort_keys=True))
        return 0
    table = Table(title=f"rollout of `{data.get('experiment')}` ({data.get('kind', 'canary')})")
    table.add_column("field")
    table.add_column("value")
    for key in (
        "status",
        "baseline",
        "candidate",
        "step",
        "weights",
        "gate",
        "failed_checks",
        "holds",
        "variant",
        "model",
        "old_version",
        "new_version",
        "phase",
        "ticks",
        "last_outcome",
        "last_reason",
    ):
        if key in data:
            value = data[key]
            if key == "step" and "spec" in data:
                steps = data["spec"].get("steps", [])
                value = (
                    f"{value + 1}/{len(steps)} ({steps[value]:g}%)"
                    if value >= 0
                    else f"0/{len(steps)} (not started)"
                )
            table.add_row(key, str(value))
    Console().print(table)
    return 0


def _abort(args: argparse.Namespace) -> int:
    from tritonab.deploy.control import ModelControl
    from tritonab.errors import RolloutError
    from tritonab.rollout import BlueGreenSpec, CanaryController, load_rollout_dict
    from tritonab.rollout.bluegreen import BlueGreenController, grpc_infer
    from tritonab.rollout.state import read_state_json

    data = read_state_json(args.state)
    if data is None:
        raise RolloutError(f"no rollout state at `{args.state}`")
    with ModelControl(args.triton) as control:
        spec = load_rollout_dict(data["spec"], source=f"`{args.state}`")
        if isinstance(spec, BlueGreenSpec):
            event = BlueGreenController(
                spec,
                control,
                grpc_infer(args.triton),
                state_path=args.state,
                audit_path=args.audit,
                actor=args.actor,
            ).abort(args.reason)
        else:
            event = CanaryController(
                spec, control, state_path=args.state, audit_path=args.audit, actor=args.actor
            ).abort(args.reason)
    _printer()(event)
    return 0 if event.outcome.value == "abort" else 1
