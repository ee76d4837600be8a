"""Offline validation of Kubernetes manifests: built-in kinds against the OpenAPI schemas
of a pinned Kubernetes version (`kubernetes-validate`, strict: unknown fields fail),
custom resources against the models of `crds.py`.

No cluster is needed. `kubernetes-validate` is in tritonab's `test` extra; without it,
validation refuses to run rather than pass what it did not check.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tritonab._specfile import format_validation_error
from tritonab.deploy.k8s.crds import CUSTOM_RESOURCES
from tritonab.errors import DeployError

KUBERNETES_VERSION = "1.30"
"""The oldest Kubernetes the rendered manifests are checked against (and must work on)."""
NOT_MANIFESTS = ("kustomization.yaml",)


@dataclass(frozen=True)
class Finding:
    """One problem in one manifest."""

    source: str
    kind: str
    name: str
    message: str

    def line(self) -> str:
        """`file: Kind/name: problem`."""
        return f"{self.source}: {self.kind}/{self.name}: {self.message}"


def _kubernetes_validate() -> Any:
    """The `kubernetes_validate` module.

    Raises:
        DeployError: not installed.
    """
    try:
        import kubernetes_validate
    except ImportError as exc:
        raise DeployError(
            "validating manifests needs `kubernetes-validate` (pip install 'tritonab[test]'); "
            "nothing was checked"
        ) from exc
    return kubernetes_validate


def validate_document(document: Mapping[str, Any], kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """The problems of one manifest (empty when valid).

    Args:
        document: the manifest.
        kubernetes_version: the Kubernetes version whose schemas apply (built-in kinds).

    Raises:
        DeployError: `kubernetes-validate` is missing, or does not know the version.
    """
    api_version, kind = str(document.get("apiVersion", "")), str(document.get("kind", ""))
    model = CUSTOM_RESOURCES.get((api_version, kind))
    if model is not None:
        try:
            model.model_validate(dict(document))
        except ValidationError as exc:
            return format_validation_error(exc, kind).splitlines()
        return []
    kv = _kubernetes_validate()
    try:
        kv.validate(dict(document), kubernetes_version, strict=True)
    except kv.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path)
        return [f"{path}: {exc.message}" if path else str(exc.message)]
    except kv.SchemaNotFoundError as exc:
        return [f"no schema for {kind} {api_version} in Kubernetes {kubernetes_version}: {exc.message}"]
    except kv.VersionNotSupportedError as exc:
        raise DeployError(f"kubernetes-validate has no schemas for Kubernetes {exc.version}") from exc
    return []


def read_manifests(folder: str | os.PathLike[str]) -> list[tuple[str, dict[str, Any]]]:
    """Every document of every `*.yaml` file in `folder` (not `kustomization.yaml`).

    Raises:
        DeployError: no manifests, or a file that is not YAML mappings.
    """
    root = Path(folder)
    documents: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(root.glob("*.yaml")):
        if path.name in NOT_MANIFESTS:
            continue
        try:
            loaded = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (OSError, yaml.YAMLError) as exc:
            raise DeployError(f"`{path}`: {exc}") from exc
        for document in loaded:
            if document is None:
                continue
            if not isinstance(document, dict):
                raise DeployError(f"`{path}`: a document is not a mapping")
            documents.append((path.name, document))
    if not documents:
        raise DeployError(f"no manifests (`*.yaml`) in `{root}`")
    return documents


def validate_manifests(
    documents: Iterable[tuple[str, Mapping[str, Any]]], kubernetes_version: str = KUBERNETES_VERSION
) -> list[Finding]:
    """Every problem of every manifest.

    Args:
        documents: `(source, manifest)` pairs (`read_manifests`).
        kubernetes_version: the Kubernetes version whose schemas apply.

    Raises:
        DeployError: `kubernetes-validate` is missing, or does not know the version.
    """
    findings = []
    for source, document in documents:
        name = str(document.get("metadata", {}).get("name", "?"))
        for message in validate_document(document, kubernetes_version):
            findings.append(Finding(source, str(document.get("kind", "?")), name, message))
    return findings
