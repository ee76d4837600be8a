"""`tritonab logs`: inspect, recover and prune exposure/payload logs.

Examples::

    tritonab logs show logs/ demo_ab
    tritonab logs recover logs/demo_ab/exposures
    tritonab logs prune logs/ --older-than 30d [--dry-run]
    tritonab logs compact logs/ [--min-segments 4]             # plain segments into Parquet
    tritonab logs show logs/ demo_ab --key-file logs.key       # encrypted segments
    tritonab logs verify-residency logs/ --policy regions.yaml [--region eu-west]

Reads for analysis (`show`) are recorded in the folder's audit log.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path


def register(subparsers) -> None:
    """Add `logs show`, `logs recover` and `logs prune`."""
    p = subparsers.add_parser("logs", help="exposure and payload logs: show, recover, prune")
    sub = p.add_subparsers(dest="logs_command", metavar="COMMAND", required=True)

    show = sub.add_parser("show", help="segments, records, drops and torn tails of an experiment")
    show.add_argument("log_dir")
    show.add_argument("experiment")
    show.add_argument("--key-file", help="data key of encrypted segments (default $TRITONAB_LOG_KEY_FILE)")
    show.set_defaults(func=_show)

    recover = sub.add_parser("recover", help="seal the unsealed segments of crashed writers")
    recover.add_argument("folder", help="a stream folder, e.g. LOGS/<experiment>/exposures")
    recover.add_argument("--force", action="store_true", help="also segments of live processes")
    recover.set_defaults(func=_recover)

    prune = sub.add_parser("prune", help="delete log files older than a retention period (audited)")
    prune.add_argument("log_dir")
    prune.add_argument("--older-than", required=True, help="e.g. 30d, 12h, 90m")
    prune.add_argument("--dry-run", action="store_true", help="list, delete nothing, audit nothing")
    prune.set_defaults(func=_prune)

    compact = sub.add_parser(
        "compact", help="sealed JSON Lines segments into Parquet, losing nothing (audited)"
    )
    compact.add_argument("log_dir", help="the log folder (every stream under it), or one stream folder")
    compact.add_argument(
        "--min-segments", type=int, default=1, help="leave a stream with fewer sealed segments alone"
    )
    compact.set_defaults(func=_compact)

    res = sub.add_parser(
        "verify-residency", help="find files whose real path lies outside their region (exit 1)"
    )
    res.add_argument("log_dir")
    res.add_argument("--policy", required=True, help="region policy (YAML: regions -> roots)")
    res.add_argument(
        "--region", help="the region every file belongs to (default: each experiment's sink region)"
    )
    res.set_defaults(func=_verify_residency)


def _show(args: argparse.Namespace) -> int:
    from tritonab.monitoring.audit import record_read
    from tritonab.monitoring.segments import ReadReport, dropped_total, iter_records, segment_files
    from tritonab.security import LOG_KEY_ENV, resolve_key

    key = resolve_key(args.key_file, LOG_KEY_ENV, purpose="data")
    folder = Path(args.log_dir) / args.experiment
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = [p for s in ("exposures", "payloads") for p in segment_files(folder / s).files]
    record_read(args.log_dir, "logs show", files, experiment=args.experiment)
    for stream in ("exposures", "payloads"):
        report = ReadReport()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in iter_records(folder / stream, report=report, key=key):
                pass
        print(
            f"{stream}: {len(report.sealed)} sealed + {len(report.unsealed)} unsealed segment(s), "
            f"{report.records} record(s), {len(report.torn)} torn tail(s)"
        )
        for w in caught:
            print(f"  warning: {w.message}")
    print(f"dropped (queue full): {dropped_total(folder)}")
    return 0


def _recover(args: argparse.Namespace) -> int:
    from tritonab.monitoring.segments import recover

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sealed = recover(args.folder, force=args.force)
    for w in caught:
        print(f"warning: {w.message}")
    for path in sealed:
        print(f"sealed {path}")
    print(f"{len(sealed)} segment(s) recovered")
    return 0


def _prune(args: argparse.Namespace) -> int:
    from tritonab.monitoring.retention import parse_duration, prune

    result = prune(args.log_dir, parse_duration(args.older_than), dry_run=args.dry_run)
    verb = "would remove" if result.dry_run else "removed"
    for path in result.removed:
        print(f"{verb} {path}")
    print(
        f"{verb} {len(result.removed)} file(s), {result.bytes} bytes"
        + ("" if result.dry_run else "; recorded in the audit log")
    )
    return 0


def _compact(args: argparse.Namespace) -> int:
    from tritonab.errors import MonitoringError
    from tritonab.monitoring import audit
    from tritonab.monitoring.compaction import compact_tree

    root = Path(args.log_dir)
    if args.min_segments < 1:
        raise MonitoringError(f"--min-segments must be at least 1, got {args.min_segments}")
    reports = compact_tree(root, min_segments=args.min_segments)
    total = 0
    for report in reports.values():
        for path in report.written:
            ratio = report.bytes_after / report.bytes_before if report.bytes_before else 0.0
            print(
                f"{path}: {report.records} record(s) from {len(report.removed)} segment(s), "
                f"{report.bytes_before:,} -> {report.bytes_after:,} bytes ({ratio:.2f}x)"
            )
            total += report.records
    written = [str(p) for r in reports.values() for p in r.written]
    if written:
        # The log folder's audit log: LOGS, whether LOGS, LOGS/outcomes or LOGS/<exp>/<stream> was given.
        audit_root = {
            "outcomes": root.parent,
            "exposures": root.parent.parent,
            "payloads": root.parent.parent,
        }
        audit_root_dir = audit_root.get(root.name, root)
        audit.append(
            audit.audit_path(audit_root_dir),
            "logs.compact",
            files=written,
            removed=[str(p) for r in reports.values() for p in r.removed],
            records=total,
        )
    print(f"{len(written)} Parquet file(s), {total} record(s) compacted")
    return 0


def _verify_residency(args: argparse.Namespace) -> int:
    from tritonab.security import load_policy, scan

    found = scan(args.log_dir, load_policy(args.policy), args.region)
    for item in found:
        print(f"outside its region: {item}")
    if found:
        print(f"{len(found)} file(s) outside their region under `{args.log_dir}`")
        return 1
    print(f"`{args.log_dir}`: every file lies in its region")
    return 0
