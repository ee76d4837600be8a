"""`tritonab outcomes add FILE --log-dir DIR`: validate outcomes and copy them into the logs.

FILE is CSV (header row) or JSON Lines with `unit_id` or `request_id`, `metric`,
`value` (default 1), `time` (epoch seconds or ISO 8601, optional) and `experiment`
(optional). Every bad record is reported with its line; nothing is copied then.
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `outcomes add`."""
    p = subparsers.add_parser("outcomes", help="outcomes (labels, business events) for analysis")
    sub = p.add_subparsers(dest="outcomes_command", metavar="COMMAND", required=True)
    add = sub.add_parser("add", help="validate a CSV/JSON Lines file and copy it into the log folder")
    add.add_argument("file")
    add.add_argument("--log-dir", required=True, help="the log folder (as given to serve --log-dir)")
    add.set_defaults(func=_add)


def _add(args: argparse.Namespace) -> int:
    from tritonab.monitoring.outcomes import add_outcomes, parse_outcomes

    target = add_outcomes(args.file, args.log_dir)
    count = sum(1 for _ in parse_outcomes(target))
    print(f"added {count} outcome record(s) to {target}")
    return 0
