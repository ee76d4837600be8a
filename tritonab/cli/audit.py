"""`tritonab audit verify|show`: the hash-chained audit log (`tritonab.monitoring.audit`)."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    """Add `audit verify` and `audit show`."""
    p = subparsers.add_parser("audit", help="verify or show a hash-chained audit log")
    sub = p.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)

    verify = sub.add_parser("verify", help="check the hash chain (exit 1 naming the broken lines)")
    verify.add_argument("file", help="audit log (JSON Lines)")
    verify.set_defaults(func=_verify)

    show = sub.add_parser("show", help="the records as a table")
    show.add_argument("file", help="audit log (JSON Lines)")
    show.add_argument("--last", type=int, default=0, help="only the last N records")
    show.set_defaults(func=_show)


def _verify(args: argparse.Namespace) -> int:
    from tritonab.monitoring.audit import verify

    report = verify(args.file)
    if report.ok:
        print(f"audit log `{args.file}`: {report.records} records, chain intact")
        return 0
    if report.broken_at:
        lines = ", ".join(str(n) for n in report.broken_at)
        print(
            f"audit log `{args.file}`: chain broken at line {lines} "
            f"(a record at or just before it was edited, deleted, inserted or reordered)"
        )
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
