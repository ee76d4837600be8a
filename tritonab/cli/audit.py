"""`tritonab audit verify|show`: the hash-chained audit log (`tritonab.monitoring.audit`)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `audit verify` and `audit show`."""
    p = subparsers.add_parser("audit", help="verify or show a hash-chained audit log")
    sub = p.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    verify = sub.add_parser("verify", help="check the hash chain (exit 1 naming the first bad line)")
    verify.add_argument("file", help="audit log (JSON Lines)")
    verify.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 also when something could not be checked (no head anchor)",
    )
    verify.set_defaults(func=_verify)

    show = sub.add_parser("show", help="the records as a table")
    show.add_argument("file", help="audit log (JSON Lines)")
    show.add_argument("--last", type=int, default=0, help="only the last N records")
    show.set_defaults(func=_show)


def _verify(args: argparse.Namespace) -> int:
    from tritonab.monitoring.audit import verify

    report = verify(args.file)
    for warning in report.warnings:
        print(f"warning: audit log `{args.file}`: {warning}")
    if report.ok:
        print(f"audit log `{args.file}`: {report.records} records, chain intact")
        return 1 if args.strict and report.warnings else 0
    if report.first_bad is not None:
        where = f"audit log `{args.file}`: first bad record at line {report.first_bad}"
        if report.broken_at:
            breaks = ", ".join(str(n) for n in report.broken_at)
            where += f" (edited, or records removed or inserted there; the chain breaks at line {breaks})"
        print(where)
    if report.tail:
        print(f"audit log `{args.file}`: {report.tail}")
    return 1


def _show(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console
    from rich.table import Table

    from tritonab.monitoring.audit import read

    records = read(args.file)
    if args.last > 0:
        records = records[-args.last :]
    table = Table(title=f"audit log {args.file}")
    for column in ("time", "event", "actor", "detail"):
        table.add_column(column)
    for record in records:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record.get("time", 0))))
        detail = record.get("reason") or record.get("status") or ""
        if "after" in record:
            detail = f"{detail} {record['after']}".strip()
        table.add_row(when, str(record.get("event", "")), str(record.get("actor", "")), str(detail))
    Console().print(table)
    return 0
