"""`tritonab stats`: sample size, MDE, SRM check and comparisons from sufficient statistics.

Examples::

    tritonab stats sample-size --kind proportion --baseline 0.1 --mde 0.02
    tritonab stats mde --kind mean --baseline 12 --sd 30 --n 5000 --relative
    tritonab stats srm --counts 50210,49790 --weights 0.5,0.5
    tritonab stats compare stats.csv --relative --adjust holm --weights 0.5,0.5 --json

`compare FILE` reads rows of sufficient statistics, as CSV with a header or as JSON (a list
of objects, or {"rows": [...]}); the format is picked by the `.json` suffix. Columns:

    variant, metric, kind, n               always (kind: mean | proportion | ratio)
    sum, sum_squares                       kind = mean
    successes                              kind = proportion
    num_sum, num_sum_squares, den_sum,
    den_sum_squares, num_den_sum           kind = ratio

Rows sharing (variant, metric) are added (days, strata, instances). The control is
`--control` or the first variant in the file; every other variant is compared with it
on every metric. With `--weights`, the SRM check uses `--counts` or, by default, the `n`
of the first metric per variant (in file order).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from tritonab._specfile import validate_mapping
from tritonab.errors import StatsError
from tritonab.splitter import stats
from tritonab.splitter.stats.rows import StatRow


def register(subparsers: Any) -> None:
    """Add `stats` and its sub-commands to the CLI."""
    parser = subparsers.add_parser("stats", help="experiment statistics")
    sub = parser.add_subparsers(dest="stats_command", metavar="SUBCOMMAND", required=True)
    _register_power(sub)
    p = sub.add_parser("srm", help="sample ratio mismatch check (chi-square)")
    p.add_argument("--counts", type=_floats, required=True, help="units per variant, a,b,...")
    p.add_argument("--weights", type=_floats, required=True, help="weights, a,b,... (sum 1)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_srm)
    p = sub.add_parser("compare", help="compare variants from a file of sufficient statistics")
    p.add_argument("file", type=Path, help="CSV or JSON file of sufficient statistics")
    p.add_argument("--control", help="control variant (default: the first in the file)")
    p.add_argument("--relative", action="store_true", help="relative lift (delta method)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--alternative", default="two-sided", choices=("two-sided", "greater", "less"))
    p.add_argument(
        "--sequential-tuning", type=float, default=None, help="N*: use the always-valid confidence sequence"
    )
    p.add_argument("--adjust", choices=("holm", "bh"), help="adjust p-values across rows")
    p.add_argument("--weights", type=_floats, help="configured weights per variant, for SRM")
    p.add_argument("--counts", type=_floats, help="units per variant for SRM (default: n)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd_compare)


def _register_power(sub: Any) -> None:
    for name, target, helptext in (
        ("sample-size", "--mde", "units per arm for an MDE"),
        ("mde", "--n", "minimum detectable effect for n per arm"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--kind", choices=("proportion", "mean"), required=True)
        p.add_argument("--baseline", type=float, required=True)
        p.add_argument(target, type=float, required=True)
        p.add_argument("--sd", type=float, default=None, help="per-unit sd (kind mean)")
        p.add_argument("--alpha", type=float, default=0.05)
        p.add_argument("--power", type=float, default=0.8)
        p.add_argument("--relative", action="store_true")
        p.add_argument("--ratio", type=float, default=1.0, help="n_treatment / n_control")
        p.add_argument("--alternative", default="two-sided", choices=("two-sided", "greater", "less"))
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=_cmd_power, power_command=name)


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",")]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _cmd_power(args: argparse.Namespace) -> int:
    common = dict(
        baseline=args.baseline,
        sd=args.sd,
        alpha=args.alpha,
        power=args.power,
        relative=args.relative,
        ratio=args.ratio,
        alternative=args.alternative,
    )
    if args.power_command == "sample-size":
        n = stats.sample_size(args.kind, mde=args.mde, **common)
        out: dict[str, Any] = {"control": n, "treatment": _ceil(args.ratio * n)}
        text = (
            f"{n} units per arm"
            if args.ratio == 1
            else f"{out['control']} control + {out['treatment']} treatment units"
        )
    else:
        effect = stats.mde(args.kind, n=args.n, **common)
        out = {"mde": effect, "relative": args.relative}
        text = f"minimum detectable effect: {effect:.6g}" + (" (relative)" if args.relative else "")
    print(json.dumps(out) if args.json else text)
    return 0


def _ceil(x: float) -> int:
    return int(-(-round(x, 6) // 1))


def _cmd_srm(args: argparse.Namespace) -> int:
    result = stats.srm(args.counts, args.weights)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        flag = "SRM DETECTED" if result.srm_detected else "no SRM"
        print(f"chi2={result.chi2:.4g} p={result.p_value:.4g}: {flag}")
    return 1 if result.srm_detected else 0  # a check that found a problem, like a failed gate


def _cmd_compare(args: argparse.Namespace) -> int:
    rows = _read_rows(args.file)
    table, variants = _aggregate(rows)
    control = args.control or variants[0]
    if control not in variants:
        raise StatsError(f"`--control` {control!r} is not a variant in the file: {variants}")
    records = []
    for metric, by_variant in table.items():
        if control not in by_variant:
            raise StatsError(f"metric `{metric}` has no row for control `{control}`")
        for variant in (x for x in variants if x != control and x in by_variant):
            res = stats.compare(
                by_variant[control],
                by_variant[variant],
                relative=args.relative,
                alpha=args.alpha,
                alternative=args.alternative,
                sequential_tuning=args.sequential_tuning,
            )
            records.append({"metric": metric, "variant": variant, **res.to_dict()})
    if args.adjust:
        adjusted = stats.adjust([r["p_value"] for r in records], args.adjust)
        for rec, p in zip(records, adjusted.tolist()):
            rec["p_adjusted"] = None if p != p else p
    srm_result = _srm_for(args, table, variants)
    if args.json:
        print(
            json.dumps(
                {
                    "control": control,
                    "comparisons": records,
                    "srm": srm_result.to_dict() if srm_result else None,
                }
            )
        )
    else:
        _print_table(records, control, srm_result)
    return 0


def _read_rows(path: Path) -> list[StatRow]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise StatsError(f"cannot read `{path}`: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise StatsError(f"`{path}` is not UTF-8 text (byte {exc.start})") from exc
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
            raw = data.get("rows") if isinstance(data, dict) else data
        else:
            raw = [
                {k: (v if v != "" else None) for k, v in row.items()}
                for row in csv.DictReader(text.splitlines())
            ]
        if not isinstance(raw, list) or not raw:
            raise StatsError(f"`{path}` holds no rows of statistics")
    except json.JSONDecodeError as exc:
        raise StatsError(f"`{path}` is not valid JSON: {exc}") from exc
    first = 2 if path.suffix.lower() != ".json" else 1  # CSV: line numbers after the header
    return [
        validate_mapping(StatRow, row, source=f"`{path}` row {i}", error=StatsError)
        for i, row in enumerate(raw, start=first)
    ]


def _aggregate(rows: list[StatRow]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """{metric: {variant: summed statistic}} and the variants in file order."""
    table: dict[str, dict[str, Any]] = {}
    variants: list[str] = []
    for row in rows:
        if row.variant not in variants:
            variants.append(row.variant)
        cell = table.setdefault(row.metric, {})
        stat = row.statistic()
        if row.variant in cell and cell[row.variant].kind != stat.kind:
            raise StatsError(f"metric `{row.metric}` mixes kinds {cell[row.variant].kind} and {stat.kind}")
        cell[row.variant] = cell.get(row.variant, 0) + stat
    if len(variants) < 2:
        raise StatsError(f"need at least two variants, found {variants}")
    return table, variants


def _srm_for(args: argparse.Namespace, table: dict, variants: list[str]) -> Any:
    if args.weights is None:
        if args.counts is not None:
            raise StatsError("`--counts` needs `--weights`")
        return None
    counts = args.counts
    if counts is None:
        first = next(iter(table.values()))
        counts = [float(first[v].n) if v in first else 0.0 for v in variants]
    return stats.srm(counts, args.weights)


def _fmt(x: Any, spec: str = ".4g") -> str:
    return "-" if x is None else format(x, spec)


def _print_table(records: list[dict], control: str, srm_result: Any) -> None:
    console = Console(width=140)
    table = Table(title=f"treatment vs control `{control}`")
    adjusted = any("p_adjusted" in r for r in records)
    for col in (
        "metric",
        "variant",
        "control",
        "treatment",
        "effect",
        "interval",
        "p",
        *(("p adj.",) if adjusted else ()),
        "method",
    ):
        table.add_column(col)
    for r in records:
        interval = f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
        cells = [
            r["metric"],
            r["variant"],
            _fmt(r["control_mean"]),
            _fmt(r["treatment_mean"]),
            _fmt(r["effect"], "+.4g"),
            interval,
            _fmt(r["p_value"]),
        ]
        if adjusted:
            cells.append(_fmt(r.get("p_adjusted")))
        cells.append(r["method"] + (f" ({r['reason']})" if r["reason"] else ""))
        table.add_row(*cells)
    console.print(table)
    if srm_result is not None:
        flag = "SRM DETECTED" if srm_result.srm_detected else "no SRM"
        console.print(f"SRM: chi2={srm_result.chi2:.4g} p={_fmt(srm_result.p_value)}: {flag}")
