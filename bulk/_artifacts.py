"""Pinned artifacts: each model file is read once, its sha256 is checked against the
version's manifest, and those very bytes are what runs (no second read between the
check and the load).

`read_artifact` is the one place an artifact's bytes are read: decryption and
residency checks belong there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tritonab.ensembles.repository import ModelEntry
from tritonab.errors import BulkError


@dataclass(frozen=True)
class Artifact:
    """One file a model runs from, with the digest of the bytes that were read.

    Attributes:
        model, version: the repository model and version folder it belongs to.
        file: its name in the version folder.
        sha256: hex digest of `data`.
        manifest: True when the version's `manifest.json` covers this file and its
            digest matched; False when no manifest covers it (the digest is recorded,
            not verified).
        data: the bytes (not part of comparisons or repr).
    """

    model: str
    version: int
    file: str
    sha256: str
    manifest: bool
    data: bytes = field(repr=False, compare=False)

    @property
    def path(self) -> str:
        """`model/version/file`, relative to the repository."""
        return f"{self.model}/{self.version}/{self.file}"

    def describe(self) -> dict[str, Any]:
        """JSON form for the output manifest."""
        return {
            "path": self.path,
            "sha256": self.sha256,
            "bytes": len(self.data),
            "verified": self.manifest,
        }


def read_artifact(path: Path) -> bytes:
    """The bytes of one artifact (the single read point for model files).

    Raises:
        BulkError: the file cannot be read.
    """
    try:
        return path.read_bytes()
    except OSError as exc:
        raise BulkError(f"`{path}`: cannot read the model file: {exc.strerror}") from exc


def pin_artifact(entry: ModelEntry, version: int, file: str) -> Artifact:
    """Read `file` of a model version and check it against the version's manifest.

    Raises:
        BulkError: unreadable file or manifest, or bytes whose sha256 differs from the
            manifest's (the artifact changed after conversion): scoring is refused.
    """
    from tritonab.converters import MANIFEST, read_manifest, verify_manifest

    version_dir = entry.version_dir(version)
    data = read_artifact(version_dir / file)
    covered = False
    if (version_dir / MANIFEST).exists():
        try:
            manifest = read_manifest(version_dir)
        except (OSError, ValueError) as exc:
            raise BulkError(f"`{version_dir / MANIFEST}`: unreadable manifest: {exc}") from exc
        artifact = manifest.get("artifact")
        if isinstance(artifact, dict) and artifact.get("file") == file:
            problems = verify_manifest(version_dir, data)
            if problems:
                raise BulkError(
                    f"model `{entry.name}` version {version} is not the version its manifest pins; "
                    f"refusing to score: {'; '.join(problems)}"
                )
            covered = True
    return Artifact(entry.name, version, file, hashlib.sha256(data).hexdigest(), covered, data)
