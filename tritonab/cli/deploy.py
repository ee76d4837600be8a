"""`tritonab deploy render|validate|rules|dashboard`: Kubernetes manifests from a deploy
spec, checked offline, and the alert rules and dashboards on their own."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(subparsers) -> None:
    """Add `deploy render`, `deploy validate`, `deploy rules` and `deploy dashboard`."""
    p = subparsers.add_parser("deploy", help="Kubernetes manifests, alert rules and dashboards")
    sub = p.add_subparsers(dest="deploy_command", metavar="COMMAND", required=True)

    render = sub.add_parser(
        "render",
        help="render a deploy spec into Kubernetes manifests",
        description="Write DIR with one manifest per file (apply order), kustomization.yaml, the "
        "alert rules as a Prometheus rule file and the dashboards as JSON.",
    )
    render.add_argument("spec", help="deploy spec (YAML), e.g. examples/deploy.yaml")
    render.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    render.add_argument("--force", action="store_true", help="replace DIR if it exists")
    render.set_defaults(func=_render)

    validate = sub.add_parser(
        "validate",
        help="check rendered manifests against Kubernetes' schemas, offline (exit 1 on a problem)",
    )
    validate.add_argument("folder", metavar="DIR", help="a folder of manifests (`deploy render --out`)")
    validate.add_argument("--kubernetes-version", default=None, help="schemas of this version (default 1.30)")
    validate.set_defaults(func=_validate)

    rules = sub.add_parser("rules", help="the alert rules as one Prometheus rule file, thresholds set")
    rules.add_argument("--spec", help="take the thresholds from this deploy spec's `alerts`")
    rules.add_argument("--out", help="file to write (default: standard output)")
    rules.set_defaults(func=_rules)

    board = sub.add_parser("dashboard", help="an experiment's Grafana dashboard (JSON)")
    board.add_argument("experiment", help="the router's name")
    board.add_argument("--out", help="file to write (default: standard output)")
    board.set_defaults(func=_dashboard)


def _render(args: argparse.Namespace) -> int:
    from tritonab.deploy.k8s import load_deploy_spec, write_manifests

    spec = load_deploy_spec(args.spec)
    files = write_manifests(spec, args.out, force=args.force)
    print(f"{len(files)} manifests in {args.out} (kubectl apply -k {args.out})")
    print(f"check them: tritonab deploy validate {args.out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from tritonab.deploy.k8s import KUBERNETES_VERSION, read_manifests, validate_manifests

    version = args.kubernetes_version or KUBERNETES_VERSION
    documents = read_manifests(args.folder)
    findings = validate_manifests(documents, version)
    for finding in findings:
        print(finding.line())
    if findings:
        print(
            f"{len(findings)} problems in {len(documents)} manifests (Kubernetes {version})", file=sys.stderr
        )
        return 1
    print(f"{len(documents)} manifests valid for Kubernetes {version}")
    return 0


def _write(text: str, out: str | None) -> None:
    """To a file (atomically) or to standard output."""
    if out is None:
        sys.stdout.write(text)
        return
    from tritonab._io import atomic_write_text

    atomic_write_text(Path(out), text)
    print(f"written to {out}")


def _rules(args: argparse.Namespace) -> int:
    from tritonab.deploy.k8s import load_deploy_spec, to_yaml
    from tritonab.monitoring.alerts import load_rule_groups

    thresholds = load_deploy_spec(args.spec).alerts.thresholds() if args.spec else None
    _write(to_yaml({"groups": load_rule_groups(thresholds=thresholds)}), args.out)
    return 0


def _dashboard(args: argparse.Namespace) -> int:
    from tritonab.monitoring.dashboards import dashboard

    _write(json.dumps(dashboard(args.experiment), indent=2, sort_keys=True) + "\n", args.out)
    return 0
