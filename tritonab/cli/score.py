"""`tritonab score`: bulk scoring of Parquet/CSV with a pinned model version.

Examples:
    tritonab score --repository model_repository --model demo_gbt --input x.parquet --output out
    tritonab score --repository model_repository --model demo_gbt --input csv/ --output out \\
        --features f00,f01,...,f29 --keep id
    tritonab score --repository model_repository --experiment demo_ab --unit-column user \\
        --input x.parquet --output backfill --engine ray
    tritonab score --repository repo --model churn --input x.parquet --output out --key-file model.key
"""

from __future__ import annotations

import argparse
import os

from tritonab.cli._common import positive_int
from tritonab.errors import BulkError

# The bulk room's choices, spelled here so that building the parser does not import
# pyarrow for every command (a test keeps them equal to `tritonab.bulk`'s).
ENGINES = ("local", "ray", "triton")
FORMATS = ("parquet", "csv")
DEFAULT_BATCH_SIZE = 65_536


def _columns(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def register(subparsers) -> None:
    """Add the `score` command."""
    p = subparsers.add_parser(
        "score",
        help="score a Parquet/CSV table offline with a pinned model version",
        description="Score a Parquet or CSV file (or a folder of them) with a model of the "
        "repository, pinned to a version whose artifacts match their manifests, into one "
        "Parquet part per input file plus _manifest.json in DIR. A rerun skips finished parts.",
    )
    p.add_argument("--repository", required=True, metavar="DIR", help="the model repository")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="the model (or ensemble) to score with")
    what.add_argument(
        "--experiment",
        metavar="SPEC",
        help="an experiment spec (YAML) or a router of the repository: each row is scored by its "
        "unit's variant (needs --unit-column); the output gets a `variant` column",
    )
    p.add_argument("--version", type=positive_int, help="model version (default: the latest served)")
    p.add_argument("--unit-column", metavar="COL", help="unit ids, for --experiment")
    p.add_argument("--input", required=True, metavar="PATH", help="a Parquet/CSV file or a folder of them")
    p.add_argument("--output", required=True, metavar="DIR", help="output folder (parts and _manifest.json)")
    p.add_argument("--format", choices=FORMATS, help="input format (default: from the file suffixes)")
    p.add_argument("--engine", choices=ENGINES, default="local", help="local (default), ray or triton")
    p.add_argument("--ray-address", metavar="ADDR", help="join this Ray cluster (default: start Ray here)")
    p.add_argument("--url", help="server for --engine triton (host:port)")
    p.add_argument("--protocol", choices=("grpc", "http"), default="grpc", help="for --engine triton")
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help=f"rows per batch ({DEFAULT_BATCH_SIZE})",
    )
    p.add_argument(
        "--features",
        action="append",
        metavar="[INPUT=]COL,...",
        help="scalar columns filling the model's input, in order (INPUT= for a model with several inputs)",
    )
    p.add_argument("--keep", type=_columns, default=[], metavar="COL,...", help="input columns to copy")
    p.add_argument(
        "--workers", type=positive_int, help="local engine: batches scored at once (default: CPUs)"
    )
    p.add_argument("--concurrency", type=positive_int, help="ray actors, or requests in flight to triton")
    p.add_argument("--retries", type=int, default=4, help="triton engine: retries of a failed request (4)")
    p.add_argument(
        "--overwrite", action="store_true", help="replace parts of another run instead of refusing"
    )
    p.add_argument(
        "--key-file",
        metavar="FILE",
        help="data key of encrypted artifacts (`convert --encrypt-key-file`), decrypted in memory "
        "where they run, after their ciphertext is checked against the manifest "
        "(default $TRITONAB_MODEL_KEY_FILE; Ray workers started here inherit it)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _features(values: list[str] | None) -> list[str] | dict[str, list[str]] | None:
    if not values:
        return None
    named = [v for v in values if "=" in v.split(",")[0]]
    if not named:
        return [c for v in values for c in _columns(v)]
    if len(named) != len(values):
        raise BulkError("`--features`: name the input of every list (INPUT=COL,...) or of none")
    return {v.split("=", 1)[0]: _columns(v.split("=", 1)[1]) for v in values}


def run(args: argparse.Namespace) -> int:
    """Run `tritonab score`; prints what was scored and skipped."""
    from tritonab.bulk import score

    if args.key_file:
        from tritonab.security import MODEL_KEY_ENV, load_key

        load_key(args.key_file, purpose="data")  # a bad key file fails here, before any work
        os.environ[MODEL_KEY_ENV] = os.path.abspath(args.key_file)
    result = score(
        args.repository,
        args.model,
        input=args.input,
        output=args.output,
        version=args.version or -1,
        engine=args.engine,
        features=_features(args.features),
        keep=args.keep,
        experiment=args.experiment,
        unit_column=args.unit_column,
        batch_size=args.batch_size,
        input_format=args.format,
        url=args.url,
        protocol=args.protocol,
        ray_address=args.ray_address,
        concurrency=args.concurrency,
        workers=args.workers,
        retries=args.retries,
        overwrite=args.overwrite,
        progress=not args.quiet,
    )
    models = ", ".join(f"{m.name} v{m.version} (sha256 {m.sha256[:12]})" for m in result.models)
    print(
        f"scored {result.rows_scored:,} of {result.rows:,} rows with {models} on the {result.engine} engine: "
        f"{result.parts_written} part(s) written, {result.parts_skipped} finished part(s) skipped"
    )
    if result.rows_scored:
        print(f"{result.scoring_seconds:.2f} s scoring, {result.rows_per_second:,.0f} rows/s")
    print(f"output: {result.output} (manifest {result.manifest.name})")
    return 0
