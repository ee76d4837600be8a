"""Options shared by the commands that act on one server or a fleet of replicas:
`--url` (repeatable), `--service` (Kubernetes discovery) and `--repository` (the
fleet's source of truth)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from tritonab.errors import DeployError

if TYPE_CHECKING:
    from tritonab._transport import WireProtocol
    from tritonab.deploy.fleet import Fleet, FleetStatus


def add_replica_arguments(
    parser: argparse.ArgumentParser, *, flags: tuple[str, ...] = ("--url",), what: str = "Triton's gRPC"
) -> None:
    """`--url` (repeatable), `--service`, `--repository` and `--protocol`."""
    parser.add_argument(
        *flags,
        dest="urls",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help=f"host:port of {what} endpoint; repeat it for every replica of a fleet",
    )
    parser.add_argument(
        "--service",
        metavar="[NAMESPACE/]NAME",
        help="find the replicas in Kubernetes: the ready endpoints of this Service's `grpc` port",
    )
    parser.add_argument(
        "--repository",
        help="the model repository the replicas load (a shared volume): written first, the source of truth",
    )


def replica_urls(args: argparse.Namespace) -> list[str]:
    """The URLs given, or found for `--service`.

    Raises:
        DeployError: neither given, or both.
    """
    if args.service and args.urls:
        raise DeployError("give the replicas either with --url or with --service, not both")
    if args.service:
        from tritonab.deploy.discovery import service_endpoints

        namespace, _, name = args.service.rpartition("/")
        return service_endpoints(name, namespace or "default")
    if not args.urls:
        raise DeployError("give the server with --url HOST:PORT (repeat it for a fleet), or --service")
    return list(args.urls)


def is_fleet(args: argparse.Namespace) -> bool:
    """More than one replica, a repository, or discovery: the command works on a `Fleet`."""
    return bool(args.service or args.repository or len(args.urls) > 1)


def open_fleet(args: argparse.Namespace, protocol: WireProtocol = "grpc") -> Fleet:
    """A `Fleet` over the replicas the options name (with `--service`, found again on
    every operation).

    Raises:
        DeployError: no replicas, or discovery failed.
    """
    import dataclasses

    from tritonab._transport import Endpoint
    from tritonab.deploy.fleet import CONTROL_RETRY, Fleet

    # Every replica is reached with the command line's TLS files and keys (when the
    # command takes them: `add_client_security`).
    template = Endpoint("replica:0", protocol, retry=CONTROL_RETRY)
    if hasattr(args, "tls_ca"):
        from tritonab.cli._common import access_from_args

        secured = access_from_args(args).endpoint("replica:0", protocol)
        template = dataclasses.replace(secured, retry=CONTROL_RETRY)
    if args.service and not args.urls:
        namespace, _, name = args.service.rpartition("/")
        return Fleet.from_kubernetes(
            name, namespace or "default", repository=args.repository, template=template
        )
    return Fleet(replica_urls(args), repository=args.repository, template=template)


def print_status(status: FleetStatus) -> None:
    """One row per replica: its weights, and whether it serves the fleet's spec."""
    from rich.console import Console
    from rich.table import Table

    desired = status.desired
    title = f"router `{status.experiment}` on {len(status.replicas)} replicas"
    if desired is not None:
        shown = ", ".join(f"{k}={v:g}" for k, v in desired.weights.items())
        title += f"; desired ({status.source}): {shown}"
    table = Table(title=title)
    for column in ("replica", "weights", "state"):
        table.add_column(column)
    differing = {r.url for r in status.differing}
    for replica in status.replicas:
        if replica.spec is None:
            table.add_row(replica.url, "-", f"[red]unreadable: {replica.error}[/]")
            continue
        weights = ", ".join(f"{k}={v:g}" for k, v in replica.spec.weights.items())
        state = "[red]differs[/]" if replica.url in differing else "[green]ok[/]"
        table.add_row(replica.url, weights, state)
    Console(soft_wrap=True).print(table)
    if differing:
        print(f"{len(differing)} of {len(status.replicas)} replicas differ: {', '.join(sorted(differing))}")
