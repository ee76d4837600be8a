"""`tritonab build` and `tritonab validate`: write and check a model repository."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    """Add `build` and `validate`."""
    p = subparsers.add_parser("build", help="write an experiment's router into a repository")
    p.add_argument("experiment", help="experiment spec (YAML)")
    p.add_argument("--repository", required=True, help="model repository folder")
    p.set_defaults(func=_build)

    p = subparsers.add_parser("validate", help="check every model of a repository")
    p.add_argument("repository", help="model repository folder")
    p.set_defaults(func=_validate)


def _build(args: argparse.Namespace) -> int:
    from tritonab.ensembles import build_router
    from tritonab.splitter import load_spec

    spec = load_spec(args.experiment)
    path = build_router(spec, args.repository)
    print(f"wrote router `{spec.name}` to {path}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from tritonab.ensembles import load_repository, validate_repository

    problems = validate_repository(args.repository)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in `{args.repository}`", file=sys.stderr)
        return 1
    models = load_repository(args.repository)
    print(f"`{args.repository}`: {len(models)} models, valid")
    return 0
