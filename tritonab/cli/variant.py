"""`tritonab variant derive`: a model that differs from a converted one only in how Triton
runs it, for an A/B test on runtime configuration.

Examples:
    tritonab variant derive demo_gbt --name demo_gbt_x2 --instances 2 \\
        --max-queue-delay-us 200 --repository model_repository
    tritonab variant derive demo_gbt --name demo_gbt_fp16 --precision fp16 \\
        --sample-input sample.npz --repository model_repository
"""

from __future__ import annotations

import argparse
import json

from tritonab.cli._common import non_negative_int, positive_int


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected sizes like 4,8,16, got {text}") from None
    if not sizes:
        raise argparse.ArgumentTypeError("expected at least one size")
    return sizes


def register(subparsers) -> None:
    """Add `variant derive`."""
    p = subparsers.add_parser("variant", help="runtime-config variants of a converted model")
    sub = p.add_subparsers(dest="variant_command", metavar="COMMAND", required=True)
    d = sub.add_parser(
        "derive",
        help="a new model: SRC with other instances, batching, backend or precision",
        description="Write model NAME: model SRC with only its configuration changed (the "
        "artifact is shared by hard link, same sha256 in the manifest), or with a lower "
        "precision converted and parity-checked. Nothing is written when a step fails.",
    )
    d.add_argument("source", metavar="SRC", help="a converted model of the repository")
    d.add_argument("--name", required=True, help="the new model's name")
    d.add_argument("--repository", required=True, metavar="DIR", help="model repository folder")
    d.add_argument("--source-version", type=positive_int, help="SRC's version (default: its newest)")
    d.add_argument("--version", type=positive_int, help="the new model's version (default 1)")
    d.add_argument("--instances", type=positive_int, help="instance count")
    d.add_argument("--max-batch-size", type=positive_int, help="Triton max_batch_size")
    d.add_argument("--max-queue-delay-us", type=non_negative_int, help="dynamic batching queue delay")
    d.add_argument("--preferred-batch-sizes", type=_sizes, metavar="A,B", help="e.g. 4,8")
    d.add_argument(
        "--runtime",
        choices=("python", "native"),
        help="python: tritonab's onnxruntime runner; native: Triton's onnxruntime backend",
    )
    d.add_argument("--precision", choices=("fp32", "fp16"), help="fp16: convert the artifact, parity-checked")
    d.add_argument("--sample-input", metavar="FILE.npz", help="parity data for --precision fp16")
    d.add_argument("--atol", type=float, help="absolute parity tolerance (default per precision)")
    d.add_argument("--rtol", type=float, help="relative parity tolerance (default per precision)")
    d.add_argument("--force", action="store_true", help="replace an existing model NAME")
    d.add_argument("--json", metavar="FILE", help="also write the result as JSON")
    d.set_defaults(func=_derive)


def _derive(args: argparse.Namespace) -> int:
    """`variant derive`: write the variant, print what changed and how the artifact is shared."""
    from tritonab._io import atomic_write_text
    from tritonab.converters import RuntimeChanges, derive_variant

    result = derive_variant(
        args.source,
        name=args.name,
        repository=args.repository,
        changes=RuntimeChanges(
            instances=args.instances,
            max_batch_size=args.max_batch_size,
            max_queue_delay_us=args.max_queue_delay_us,
            preferred_batch_sizes=args.preferred_batch_sizes,
            runtime=args.runtime,
            precision=args.precision,
        ),
        source_version=args.source_version,
        version=args.version,
        sample_input=args.sample_input,
        atol=args.atol,
        rtol=args.rtol,
        force=args.force,
    )
    if result.parity is not None:
        print(result.parity.table())
    print(f"`{result.name}` version {result.version} from `{result.source}` version {result.source_version}:")
    for change in result.changes:
        print(f"  {change.describe()}")
    how = {"hardlink": "the source's, hard-linked", "copy": "the source's, copied"}.get(
        result.shared or "", "converted anew"
    )
    print(f"artifact sha256 {result.sha256} ({how}); config `{result.config_path}`")
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=2, sort_keys=True) + "\n")
    return 0
