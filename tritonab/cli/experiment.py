"""`tritonab experiment ...`: inspect a spec's layout and compute assignments offline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tritonab.cli._common import add_client_security, client_endpoint
from tritonab.cli._fleet import add_replica_arguments, open_fleet, print_status


def register(subparsers) -> None:
    """Add `experiment show` and `experiment assign`."""
    p = subparsers.add_parser("experiment", help="inspect an experiment spec")
    sub = p.add_subparsers(dest="experiment_command", metavar="COMMAND", required=True)

    show = sub.add_parser("show", help="variants, weights and bucket ranges of a spec")
    show.add_argument("spec", help="experiment spec (YAML)")
    show.set_defaults(func=_show)

    assign = sub.add_parser("assign", help="the variant of unit ids, as the router computes it")
    assign.add_argument("spec", help="experiment spec (YAML)")
    assign.add_argument("units", nargs="+", help="unit ids")
    assign.add_argument("--json", action="store_true", help="print JSON lines")
    assign.set_defaults(func=_assign)

    infer = sub.add_parser("infer", help="send one request through an experiment's router")
    infer.add_argument("experiment", help="the router model's name")
    infer.add_argument("--url", required=True, help="host:port of Triton's gRPC (or HTTP) endpoint")
    infer.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    infer.add_argument(
        "--input",
        action="append",
        required=True,
        metavar="NAME=FILE|JSON",
        help="an input from a .npy file or a JSON list (rows first); repeatable",
    )
    infer.add_argument("--unit-id", help="the unit all rows belong to")
    infer.add_argument("--variant", help="force a variant (the spec must allow_override)")
    infer.add_argument(
        "--fast-path", action="store_true", help="compute the assignment here and call the variant directly"
    )
    add_client_security(infer)
    infer.set_defaults(func=_infer)

    weights = sub.add_parser(
        "set-weights",
        help="change a running router's weights live, on one server or every replica",
        description="Reload the router with new weights through Triton's model-control API "
        "(the servers must run with --model-control-mode explicit). With --repository, its "
        "router config is written first, so a replica that restarts serves the new weights; "
        "if any replica refuses, the change is undone everywhere and the command fails.",
    )
    weights.add_argument("experiment", help="the router model's name")
    weights.add_argument("weights", help="e.g. control=0.9,treatment=0.1")
    add_replica_arguments(weights, what="Triton's gRPC (or HTTP)")
    weights.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    add_client_security(weights)
    weights.set_defaults(func=_set_weights)

    status = sub.add_parser(
        "status",
        help="the weights every replica serves; exit 1 when they differ",
        description="Read the router on every replica and compare it with the fleet's desired "
        "spec (the repository's, with --repository). Exit 1 when a replica differs or cannot be read.",
    )
    status.add_argument("experiment", help="the router model's name")
    add_replica_arguments(status, what="Triton's gRPC (or HTTP)")
    status.add_argument("--protocol", choices=["grpc", "http"], default="grpc")
    add_client_security(status)
    status.set_defaults(func=_status)


def _show(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from tritonab.splitter import load_spec

    spec = load_spec(args.spec)
    table = Table(title=f"experiment {spec.name} (salt {spec.effective_salt!r})")
    for column in ("variant", "model", "version", "weight", "buckets"):
        table.add_column(column)
    for variant, (start, end) in zip(spec.variants, spec.allocation().ranges()):
        version = "latest" if variant.version == -1 else str(variant.version)
        table.add_row(variant.name, variant.model, version, f"{variant.weight:g}", f"[{start}, {end})")
    Console().print(table)
    return 0


def _assign(args: argparse.Namespace) -> int:
    from tritonab.splitter import buckets, load_spec

    spec = load_spec(args.spec)
    allocation = spec.allocation()
    found = buckets(spec.effective_salt, args.units)
    for unit, b in zip(args.units, found.tolist()):
        name = allocation.names[int(allocation.index_of([b])[0])]
        if args.json:
            print(json.dumps({"unit": unit, "bucket": b, "variant": name}))
        else:
            print(f"{unit}\t{b}\t{name}")
    return 0


def _set_weights(args: argparse.Namespace) -> int:
    """The repository first (when given), then every replica; all or nothing."""
    from tritonab.deploy.control import parse_weights

    weights = parse_weights(args.weights)
    with open_fleet(args, args.protocol) as fleet:
        spec = fleet.set_weights(args.experiment, weights)
        count = len(fleet.urls())
    shown = ", ".join(f"{name}={weight:g}" for name, weight in spec.weights.items())
    where = "" if count == 1 else f" on {count} replicas"
    print(f"router `{spec.name}` reloaded{where} with weights {shown}")
    if args.repository:
        print(f"persisted in {Path(args.repository) / spec.name / 'config.pbtxt'}")
    return 0


def _status(args: argparse.Namespace) -> int:
    """A row per replica; 1 when any differs or cannot be read."""
    with open_fleet(args, args.protocol) as fleet:
        status = fleet.status(args.experiment)
    print_status(status)
    return 0 if status.consistent else 1


def _parse_input(text: str, dtypes: dict):
    import numpy as np

    from tritonab.errors import ClientError

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ClientError(f"--input `{text}`: expected NAME=FILE.npy or NAME=[[...], ...]")
    if name not in dtypes:
        raise ClientError(f"--input `{name}`: the experiment's inputs are {sorted(dtypes)}")
    try:
        array = np.load(value) if value.endswith(".npy") else np.asarray(json.loads(value))
    except (OSError, ValueError) as exc:
        raise ClientError(f"--input `{name}`: cannot read `{value}`: {exc}") from None
    return name, array.astype(dtypes[name])


def _infer(args: argparse.Namespace) -> int:
    from tritonab.client import ExperimentClient

    with ExperimentClient(client_endpoint(args, args.url, args.protocol)) as client:
        # Metadata, not the config: an inference client may hold no operator key.
        dtypes = client.input_dtypes(args.experiment)
        inputs = dict(_parse_input(text, dtypes) for text in args.input)
        result = client.infer(
            args.experiment, inputs, unit_id=args.unit_id, variant=args.variant, fast_path=args.fast_path
        )
    print(
        json.dumps(
            {"variants": result.variants, "outputs": {k: v.tolist() for k, v in result.outputs.items()}}
        )
    )
    return 0
