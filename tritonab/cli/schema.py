"""`tritonab schema [NAME] [--out FILE]`: the JSON Schema of a file format users write."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    """Add `schema`."""
    p = subparsers.add_parser(
        "schema", help="print the JSON Schema of a user-written format (no NAME: list them)"
    )
    p.add_argument("name", nargs="?", help="experiment, rollout, transform, outcome, stats-row, gate, ...")
    p.add_argument("--out", help="write the schema to this file instead of printing it")
    p.set_defaults(func=_schema)


def _schema(args: argparse.Namespace) -> int:
    from tritonab._io import atomic_write_text
    from tritonab.schemas import SCHEMAS, schema

    if not args.name:
        width = max(len(n) for n in SCHEMAS)
        for name, entry in SCHEMAS.items():
            print(f"{name:{width}}  {entry.description} (example: {entry.example})")
        return 0
    text = json.dumps(schema(args.name), indent=2) + "\n"
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0
