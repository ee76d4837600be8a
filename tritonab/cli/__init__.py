"""The `tritonab` command line: one sub-module per command group.

Each module in `COMMAND_MODULES` exposes `register(subparsers)`, which adds its
sub-commands and sets `func` on each; `func(args)` returns an exit code.
Errors from tritonab are printed as one line and mapped to their exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tritonab._version import __version__
from tritonab.errors import TritonABError

COMMAND_MODULES = (
    "serve",
    "repository",
    "experiment",
    "convert",
    "variant",
    "stats",
    "perf",
    "logs",
    "outcomes",
    "analyze",
    "rollout",
    "bandit",
    "audit",
    "deploy",
    "drift",
    "monitor",
    "autoscale",
    "schema",
    "score",
    "keys",
    "certs",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every command group registered."""
    parser = argparse.ArgumentParser(
        prog="tritonab",
        description="A/B experiments, canary and blue-green rollouts on NVIDIA Triton.",
    )
    parser.add_argument("--version", action="version", version=f"tritonab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(f"tritonab.cli.{name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TritonABError as exc:
        # One `error:` line per problem (a file with three bad fields gives three).
        for line in str(exc).splitlines() or [type(exc).__name__]:
            print(f"error: {line}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        return 130
