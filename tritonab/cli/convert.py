"""`tritonab convert`: a model file -> parity-checked Triton repository entry.

Examples:
    tritonab convert model.joblib --name churn --repository model_repository
    tritonab convert net.pt --name net --repository repo --sample-input x.npz --fp16
    tritonab convert model.onnx --name m --repository repo --to tensorrt --int8 \\
        --sample-input calib.npz
    tritonab convert model.joblib --name churn --repository repo --encrypt-key-file model.key
"""

from __future__ import annotations

import argparse

from tritonab.cli._common import non_negative_int, positive_int
from tritonab.converters import Precision, convert


def register(subparsers) -> None:
    """Add the `convert` command."""
    p = subparsers.add_parser(
        "convert",
        help="convert a model to ONNX/TensorRT and add it to a repository",
        description="Convert a scikit-learn (joblib/pickle), PyTorch (.pt) or ONNX model, "
        "check parity against the source, and write DIR/NAME/<version>/ with "
        "config.pbtxt and manifest.json. Nothing is written when a step fails.",
    )
    p.add_argument("source", help="model file: .onnx, .joblib/.pkl/.pickle, .pt/.pth")
    p.add_argument("--name", required=True, help="model name in the repository")
    p.add_argument("--repository", required=True, metavar="DIR", help="model repository folder")
    p.add_argument("--version", type=positive_int, help="version to write (default: next free)")
    p.add_argument("--to", choices=("onnx", "tensorrt"), default="onnx")
    p.add_argument(
        "--runtime",
        choices=("python", "native"),
        default="python",
        help="python: tritonab's onnxruntime runner (embedded Triton); native: the onnxruntime backend",
    )
    p.add_argument(
        "--accelerator",
        choices=("tensorrt",),
        help="onnxruntime backend's TensorRT execution accelerator (--runtime native)",
    )
    p.add_argument(
        "--max-batch-size",
        type=non_negative_int,
        default=64,
        help="Triton max_batch_size; 0 keeps the graph's fixed shapes (default 64)",
    )
    p.add_argument("--opset", type=positive_int, help="target ai.onnx opset")
    precision = p.add_mutually_exclusive_group()
    precision.add_argument("--fp16", action="store_true", help="FP16 precision")
    precision.add_argument("--int8", action="store_true", help="INT8 (Q/DQ calibrated on --sample-input)")
    p.add_argument(
        "--sample-input", metavar="FILE.npz", help="inputs for export, calibration and parity (.npz or .npy)"
    )
    p.add_argument("--atol", type=float, help="absolute tolerance (default per precision)")
    p.add_argument("--rtol", type=float, help="relative tolerance (default per precision)")
    p.add_argument(
        "--max-label-mismatch",
        type=float,
        help="share of rows whose labels may differ (default per precision)",
    )
    p.add_argument(
        "--parity-rows",
        type=positive_int,
        default=256,
        help="rows drawn from the sample for parity (default 256)",
    )
    p.add_argument("--no-optimize", action="store_true", help="do not save onnxruntime graph optimisations")
    p.add_argument("--workspace-mb", type=positive_int, default=1024, help="TensorRT workspace")
    p.add_argument("--timing-cache", metavar="FILE", help="TensorRT timing cache file")
    p.add_argument("--force", action="store_true", help="overwrite an existing version")
    p.add_argument(
        "--encrypt-key-file",
        metavar="FILE",
        help="write the graph encrypted with AES-256-GCM under this data key (model.onnx.enc; "
        "no plaintext graph on disk); serve with $TRITONAB_MODEL_KEY_FILE set",
    )
    p.add_argument(
        "--reference",
        metavar="DATA",
        help="reference data of the model's inputs (.csv, .parquet, .jsonl, .npz, .npy): its drift "
        "profile is stored beside the version (reference.json, in the manifest)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `tritonab convert`; prints the parity table and where the model went."""
    precision: Precision = "fp16" if args.fp16 else "int8" if args.int8 else "fp32"
    result = convert(
        args.source,
        name=args.name,
        repository=args.repository,
        version=args.version,
        to=args.to,
        runtime=args.runtime,
        accelerator=args.accelerator,
        max_batch_size=args.max_batch_size,
        opset=args.opset,
        precision=precision,
        sample_input=args.sample_input,
        atol=args.atol,
        rtol=args.rtol,
        max_label_mismatch=args.max_label_mismatch,
        parity_rows=args.parity_rows,
        optimize=not args.no_optimize,
        workspace_mb=args.workspace_mb,
        timing_cache=args.timing_cache,
        force=args.force,
        encrypt_key=args.encrypt_key_file,
        reference=args.reference,
    )
    print(result.parity.table())
    print(f"wrote `{result.artifact}` (version {result.version}) and `{result.config_path}`")
    if args.reference:
        print(f"wrote the drift reference profile `{result.version_dir / 'reference.json'}`")
    return 0
