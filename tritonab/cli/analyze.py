"""`tritonab analyze EXPERIMENT --logs DIR`: exposures + outcomes -> statistics -> decision.

    tritonab analyze demo_ab --logs logs/ [--outcomes more.csv] [--spec experiment.yaml]
        [--json out.json] [--html report.html]

Prints a per-variant table, the SRM check, data warnings and, when the spec has
success criteria, the decision. Exit code 0 whatever the decision.
"""

from __future__ import annotations

import argparse
import json

from tritonab._io import atomic_write_text


def register(subparsers) -> None:
    """Add `analyze`."""
    p = subparsers.add_parser(
        "analyze", help="analyse an experiment from its logs", description=__doc__.splitlines()[0]
    )
    p.add_argument("experiment")
    p.add_argument("--logs", required=True, help="the log folder")
    p.add_argument(
        "--outcomes",
        action="append",
        default=[],
        help="extra outcomes file (CSV, JSON Lines or Parquet); repeatable",
    )
    p.add_argument("--spec", help="experiment spec (default: the one stored with the logs)")
    p.add_argument("--bins", type=int, default=20, help="time bins of the timeline")
    p.add_argument("--key-file", help="data key of encrypted segments (default $TRITONAB_LOG_KEY_FILE)")
    p.add_argument("--json", dest="json_out", help="write the analysis as JSON")
    p.add_argument("--html", dest="html_out", help="write an HTML report with plots")
    p.set_defaults(func=_analyze)


def _analyze(args: argparse.Namespace) -> int:
    from tritonab.monitoring.analysis import analyze
    from tritonab.monitoring.report import print_analysis, write_html
    from tritonab.security import LOG_KEY_ENV, resolve_key

    key = resolve_key(args.key_file, LOG_KEY_ENV, purpose="data")
    result = analyze(
        args.experiment, args.logs, outcomes=args.outcomes, spec=args.spec, bins=args.bins, key=key
    )
    print_analysis(result)
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(result.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json_out}")
    if args.html_out:
        write_html(result, args.html_out)
        print(f"wrote {args.html_out}")
    return 0
