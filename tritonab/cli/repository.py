"""`tritonab build`, `transform`, `chain` and `validate`: write and check a model repository."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add `build`, `transform`, `chain` and `validate`."""
    p = subparsers.add_parser("build", help="write an experiment's router into a repository")
    p.add_argument("experiment", help="experiment spec (YAML)")
    p.add_argument("--repository", required=True, help="model repository folder")
    p.set_defaults(func=_build)

    p = subparsers.add_parser(
        "transform",
        help="write a feature-transform model from a transform spec (JSON)",
        description="Write a Python-backend model that applies a fitted transform spec "
        "(impute, clip, standardize, min_max, log1p, one_hot, select).",
    )
    p.add_argument("name", help="the model's name in the repository")
    p.add_argument("--spec", required=True, help="transform spec (JSON)")
    p.add_argument("--repository", required=True, help="model repository folder")
    p.add_argument("--input-name", default="input", help="the input tensor's name")
    p.add_argument("--output-name", default="features", help="the output tensor's name")
    p.add_argument("--max-batch-size", type=int, default=64)
    p.set_defaults(func=_transform)

    p = subparsers.add_parser(
        "chain", help="write an ensemble feeding each model's outputs to the next one's inputs"
    )
    p.add_argument("name", help="the ensemble's name")
    p.add_argument("steps", nargs="+", help="models in order, e.g. demo_scaler demo_logreg")
    p.add_argument("--repository", required=True, help="model repository folder")
    p.set_defaults(func=_chain)

    p = subparsers.add_parser("validate", help="check every model of a repository")
    p.add_argument("repository", help="model repository folder")
    p.add_argument(
        "--target",
        choices=("embedded", "container"),
        help="also check every backend exists on this server: embedded (the wheel's "
        "tritonserver, Python backend only) or container (NVIDIA's Triton container)",
    )
    p.set_defaults(func=_validate)


def _build(args: argparse.Namespace) -> int:
    from tritonab.ensembles import build_router
    from tritonab.splitter import load_spec

    spec = load_spec(args.experiment)
    path = build_router(spec, args.repository)
    print(f"wrote router `{spec.name}` to {path}")
    return 0


def _transform(args: argparse.Namespace) -> int:
    from tritonab.backends import load_transform
    from tritonab.ensembles import build_transform

    spec = load_transform(args.spec)
    path = build_transform(
        args.name,
        spec,
        args.repository,
        input_name=args.input_name,
        output_name=args.output_name,
        max_batch_size=args.max_batch_size,
    )
    print(f"wrote transform `{args.name}` ({spec.input_width} -> {spec.output_width} columns) to {path}")
    return 0


def _chain(args: argparse.Namespace) -> int:
    from tritonab.ensembles import build_chain

    path = build_chain(args.name, args.steps, args.repository)
    print(f"wrote ensemble `{args.name}` ({' -> '.join(args.steps)}) to {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from tritonab.ensembles import load_repository, validate_repository

    problems = validate_repository(args.repository, target=args.target)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in `{args.repository}`", file=sys.stderr)
        return 1
    models = load_repository(args.repository)
    print(f"`{args.repository}`: {len(models)} models, valid")
    return 0
