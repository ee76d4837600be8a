"""A deploy spec rendered to Kubernetes manifests, written as a folder `kubectl apply -k`
takes.

    DIR/
      NN-<kind>-<name>.yaml          one manifest per file, in apply order
      kustomization.yaml             lists them
      prometheus/tritonab.rules.yaml the PrometheusRule's groups as a plain rule file
                                     (for a Prometheus without the operator, and promtool)
      dashboards/<experiment>.json   each Grafana dashboard, for import by hand

The folder is written under a temporary name and renamed: a failed render leaves
nothing, and `--force` replaces an old folder only once the new one is complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from tritonab._io import staged_dir
from tritonab.deploy.k8s._network import network_policies
from tritonab.deploy.k8s._observability import dashboard_maps, pod_monitor, prometheus_rule
from tritonab.deploy.k8s._scaling import autoscaler
from tritonab.deploy.k8s._workload import (
    Manifest,
    controller_access,
    deployment,
    disruption_budget,
    proxy_config,
    service,
    service_account,
)
from tritonab.deploy.k8s.spec import DeploySpec
from tritonab.errors import DeployError
from tritonab.monitoring.dashboards import dashboard, slug

HEADER = "# Rendered by `tritonab deploy render`; change the deploy spec and render again.\n"


def render_manifests(spec: DeploySpec) -> list[Manifest]:
    """Every manifest of the deployment, in the order they apply.

    Returns:
        ServiceAccount, the controller's ServiceAccount, Role and RoleBinding, Service,
        the TLS proxy's ConfigMap (with `tls`), Deployment, PodDisruptionBudget,
        NetworkPolicies, the autoscaler (if any), PodMonitor, PrometheusRule, and a
        dashboard ConfigMap per experiment.
    """
    return [
        service_account(spec),
        *controller_access(spec),
        service(spec),
        *proxy_config(spec),
        deployment(spec),
        disruption_budget(spec),
        *network_policies(spec),
        *autoscaler(spec),
        pod_monitor(spec),
        prometheus_rule(spec),
        *dashboard_maps(spec),
    ]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (PromQL, dashboards) as literal blocks, so they read as written;
    no anchors and aliases for values used twice (each manifest reads on its own)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def to_yaml(document: Any) -> str:
    """YAML of a manifest, keys in the order they were built."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=110)


def file_name(index: int, manifest: Manifest) -> str:
    """`03-service-tritonab.yaml`."""
    return f"{index:02d}-{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"


def write_manifests(spec: DeploySpec, out: str | os.PathLike[str], *, force: bool = False) -> list[Path]:
    """Render `spec` into the folder `out` (see the module's layout).

    Args:
        spec: the deploy spec.
        out: the folder to create.
        force: replace `out` if it exists (only once the new folder is complete).

    Returns:
        The manifest files written, in apply order.

    Raises:
        DeployError: `out` exists (without `force`), or cannot be written.
    """
    manifests = render_manifests(spec)
    target = Path(out)
    names = [file_name(i, m) for i, m in enumerate(manifests, start=1)]
    try:
        with staged_dir(target, replace=force) as stage:
            for name, manifest in zip(names, manifests):
                (stage / name).write_text(HEADER + to_yaml(manifest), encoding="utf-8")
            kustomization = {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": names,
            }
            (stage / "kustomization.yaml").write_text(HEADER + to_yaml(kustomization), encoding="utf-8")
            rule = next(m for m in manifests if m["kind"] == "PrometheusRule")
            (stage / "prometheus").mkdir()
            rules_text = HEADER + to_yaml({"groups": rule["spec"]["groups"]})
            (stage / "prometheus" / "tritonab.rules.yaml").write_text(rules_text, encoding="utf-8")
            if spec.monitoring.dashboards:
                (stage / "dashboards").mkdir()
            for experiment in spec.monitoring.dashboards:
                text = json.dumps(dashboard(experiment), indent=2, sort_keys=True) + "\n"
                (stage / "dashboards" / f"{slug(experiment)}.json").write_text(text, encoding="utf-8")
    except FileExistsError:
        raise DeployError(
            f"`{target}` already exists: give another folder, or --force to replace it"
        ) from None
    except OSError as exc:
        raise DeployError(f"cannot write manifests to `{target}`: {exc}") from exc
    return [target / name for name in names]
