"""`tritonab drift`: reference profiles, data drift and concept drift.

Examples::

    tritonab drift reference --repository model_repository --model demo_gbt --input train.npz
    tritonab drift check --reference train.csv --current last_week.csv --json drift.json
    tritonab drift check --logs logs --experiment demo_ab --repository model_repository \\
        --window 1h --html drift.html
    tritonab drift concept --logs logs --experiment demo_ab --metric correct --window 1h

`check` and `concept` exit 0 when nothing drifted, 1 when something did, 2 when they
could not run.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tritonab._io import atomic_write_text
from tritonab.errors import DriftError


def register(subparsers: Any) -> None:
    """Add `drift reference`, `drift check` and `drift concept`."""
    p = subparsers.add_parser("drift", help="data and concept drift: reference profiles, checks")
    sub = p.add_subparsers(dest="drift_command", metavar="COMMAND", required=True)

    ref = sub.add_parser(
        "reference",
        help="profile reference data and store it beside a model version (or in a file)",
        description="Profile DATA (per-feature quantiles, histograms, category counts and a "
        "sample) and store it as reference.json beside a model version, recorded in its manifest.",
    )
    ref.add_argument("--input", required=True, metavar="DATA", help=".csv, .parquet, .jsonl, .npz or .npy")
    ref.add_argument("--repository", metavar="DIR", help="model repository")
    ref.add_argument("--model", help="model name in the repository")
    ref.add_argument("--version", type=int, help="version (default: the newest)")
    ref.add_argument("--out", metavar="FILE", help="write the profile to FILE instead of beside a model")
    ref.add_argument("--categorical", action="append", default=[], metavar="NAME", help="repeatable")
    ref.add_argument("--ignore", action="append", default=[], metavar="NAME", help="column to leave out")
    ref.add_argument("--sample-rows", type=int, default=2000, help="rows kept for KS tests (default 2000)")
    ref.set_defaults(func=_reference)

    check = sub.add_parser(
        "check",
        help="data drift per feature: PSI, KS, chi-square, Jensen-Shannon",
        description="Compare current data (a file, or the router's payload log) with a reference. "
        "Exit 1 when a feature drifted.",
    )
    check.add_argument("--logs", metavar="DIR", help="log folder (with --experiment)")
    check.add_argument("--experiment", help="experiment whose payload log to read")
    check.add_argument("--variant", help="only this variant")
    check.add_argument("--window", help="window width, e.g. 1h (default: one window)")
    check.add_argument("--since", type=float, metavar="EPOCH_S", help="only payloads logged since then")
    check.add_argument("--repository", metavar="DIR", help="read each variant's profile beside its model")
    check.add_argument("--reference", metavar="REF", help="a reference.json profile or reference data")
    check.add_argument("--current", metavar="CUR", help="current data (with --reference)")
    check.add_argument("--spec", metavar="drift.yaml", help="thresholds and settings")
    check.add_argument("--psi", type=float, help="PSI threshold (default 0.2; 0 turns it off)")
    check.add_argument("--js", type=float, help="Jensen-Shannon distance threshold (default off)")
    check.add_argument("--ks", type=float, help="KS statistic threshold (default off)")
    check.add_argument("--alpha", type=float, help="p-value below which a test counts (default 0.01; 0: off)")
    check.add_argument("--min-rows", type=int, help="rows a window needs to be judged (default 100)")
    check.add_argument("--categorical", action="append", default=[], metavar="NAME", help="repeatable")
    check.add_argument("--domain-classifier", action="store_true", help="also a classifier's AUC")
    check.add_argument("--metric", help="also concept drift of this outcome metric (logs only)")
    check.add_argument("--json", dest="json_out", metavar="F", help="write the report as JSON")
    check.add_argument("--html", dest="html_out", metavar="F", help="write an HTML report with plots")
    check.set_defaults(func=_check)

    concept = sub.add_parser(
        "concept",
        help="concept drift: windowed outcome means and ADWIN change points per variant",
        description="Exit 1 when ADWIN detected a change.",
    )
    concept.add_argument("--logs", required=True, metavar="DIR")
    concept.add_argument("--experiment", required=True)
    concept.add_argument("--metric", required=True, help="outcome metric, e.g. correct")
    concept.add_argument("--variant")
    concept.add_argument("--window", help="window width, e.g. 1h (default: one window)")
    concept.add_argument("--delta", type=float, default=0.002, help="ADWIN confidence (default 0.002)")
    concept.add_argument("--outcomes", action="append", default=[], help="extra outcomes file; repeatable")
    concept.add_argument("--json", dest="json_out", metavar="F")
    concept.set_defaults(func=_concept)


def _reference(args: argparse.Namespace) -> int:
    from tritonab.monitoring.drift import build_profile, save_reference
    from tritonab.monitoring.drift._profile import unmatched_features

    if bool(args.out) == bool(args.repository and args.model):
        raise DriftError("give --repository and --model (store beside a model version), or --out FILE")
    inputs = None
    if args.repository:
        from tritonab.ensembles import load_model
        from tritonab.errors import RepositoryError

        try:
            inputs = [t.name for t in load_model(f"{args.repository}/{args.model}").inputs]
        except RepositoryError:
            inputs = None
    profile = build_profile(
        args.input,
        categorical=args.categorical,
        ignore=args.ignore,
        sample_rows=args.sample_rows,
        inputs=inputs,
    )
    if args.out:
        atomic_write_text(args.out, profile.to_json())
        where = args.out
    else:
        where = str(save_reference(args.repository, args.model, profile, version=args.version))
        stray = unmatched_features(profile, args.repository, args.model)
        if stray:
            print(
                f"warning: feature(s) {stray[:8]} name none of `{args.model}`'s inputs: "
                "payload logs will not hold them"
            )
    kinds = [f.kind for f in profile.features.values()]
    print(
        f"profiled {profile.rows} rows: {kinds.count('numeric')} numeric and "
        f"{kinds.count('categorical')} categorical feature(s), sample of {len(profile.sample)} rows"
    )
    print(f"wrote {where}")
    return 0


def _spec(args: argparse.Namespace):
    from tritonab.monitoring.drift import DriftSpec, DriftThresholds, load_drift_spec

    spec = load_drift_spec(args.spec) if args.spec else DriftSpec()
    thresholds = spec.thresholds.model_dump()
    for key in ("psi", "js", "ks", "alpha"):
        value = getattr(args, key)
        if value is not None:
            thresholds[key] = value if value > 0 else None
    updates: dict[str, Any] = {"thresholds": DriftThresholds(**thresholds)}
    if args.window:
        updates["window"] = args.window
    if args.min_rows is not None:
        updates["min_rows"] = args.min_rows
    if args.categorical:
        updates["categorical"] = [*spec.categorical, *args.categorical]
    if args.domain_classifier:
        updates["domain_classifier"] = spec.domain_classifier.model_copy(update={"enabled": True})
    try:
        return DriftSpec.model_validate({**spec.model_dump(), **{k: _dump(v) for k, v in updates.items()}})
    except ValueError as exc:
        raise DriftError(f"drift settings: {exc}") from None


def _dump(value: Any) -> Any:
    return value.model_dump() if hasattr(value, "model_dump") else value


def _check(args: argparse.Namespace) -> int:
    from tritonab.monitoring.drift import check_data, check_logs, concept_drift, print_drift, write_drift_html

    try:
        spec = _spec(args)
    except ValueError as exc:  # pydantic errors from bad flag values
        raise DriftError(f"drift settings: {exc}") from None
    concept = None
    if args.logs or args.experiment:
        if not (args.logs and args.experiment) or args.current:
            raise DriftError("--logs needs --experiment (and no --current)")
        report = check_logs(
            args.logs,
            args.experiment,
            variant=args.variant,
            reference=args.reference,
            repository=args.repository,
            spec=spec,
            since=args.since,
        )
        if args.metric:
            concept = concept_drift(
                args.logs, args.experiment, args.metric, variant=args.variant, window_s=spec.window_s
            )
    else:
        if not (args.reference and args.current):
            raise DriftError("give --logs DIR --experiment E, or --reference REF --current CUR")
        report = check_data(args.reference, args.current, spec)
    print_drift(report)
    if concept is not None:
        from rich.console import Console

        from tritonab.monitoring.drift import concept_table

        Console().print(concept_table(concept))
    if args.json_out:
        document = report.to_dict()
        if concept is not None:
            document["concept"] = concept.to_dict()
        atomic_write_text(args.json_out, json.dumps(document, indent=2) + "\n")
        print(f"wrote {args.json_out}")
    if args.html_out:
        write_drift_html(report, args.html_out, concept)
        print(f"wrote {args.html_out}")
    return 1 if report.drifted or (concept is not None and concept.drifted) else 0


def _concept(args: argparse.Namespace) -> int:
    from rich.console import Console

    from tritonab.monitoring.drift import concept_drift, concept_table
    from tritonab.monitoring.retention import parse_duration

    report = concept_drift(
        args.logs,
        args.experiment,
        args.metric,
        variant=args.variant,
        window_s=parse_duration(args.window) if args.window else None,
        delta=args.delta,
        outcomes=args.outcomes,
    )
    Console().print(concept_table(report))
    for note in report.notes:
        print(f"note: {note}")
    if args.json_out:
        atomic_write_text(args.json_out, json.dumps(report.to_dict(), indent=2) + "\n")
        print(f"wrote {args.json_out}")
    return 1 if report.drifted else 0
