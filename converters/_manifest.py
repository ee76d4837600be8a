"""The manifest beside every converted model, and its verification.

`DIR/NAME/<version>/manifest.json` records where the model came from (source
path and sha256), what was produced (artifact file and sha256), the tools and
library versions, opset, precision and the parity results. `verify_manifest`
recomputes the artifact hash: a mismatch means the file changed after
conversion (tampering or corruption).

Files that travel with a version (a drift reference profile, ...) are recorded under
`attachments` (role -> file, sha256, bytes) and verified the same way. They are added at
conversion time (`convert(..., reference=...)`, in the one staged write of the version),
or later by `attach_file`, which writes the file, then the manifest, each atomically. A
version tritonab did not convert (an ensemble, a hand-written model) gets a manifest
that records only its attachments: `source.kind` `unconverted` and `artifact` null.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from tritonab._io import atomic_write_bytes
from tritonab.errors import ConversionError
from tritonab.security import Key

MANIFEST = "manifest.json"
FORMAT = 1
_LIBRARIES = ("tritonab", "onnx", "onnxruntime-gpu", "onnxruntime", "numpy")
# Libraries that take part only in some conversions: listed when they did, so the
# manifest does not change with what else happens to be installed.
_LIBRARIES_BY_SOURCE = {"sklearn": ("skl2onnx", "scikit-learn"), "torch": ("torch",), "onnx": ()}
_LIBRARIES_BY_OPTION = {"tensorrt": ("tensorrt",), "fp16": ("onnxconverter-common",)}
_REQUIRED = ("format", "artifact", "source", "created")
ATTACHMENTS = "attachments"
UNCONVERTED = "unconverted"


def library_versions(source_kind: str | None = None, options: tuple[str, ...] = ()) -> dict[str, str]:
    """Installed versions of the libraries that take part in a conversion of `source_kind`
    with `options` (`tensorrt`, `fp16`)."""
    found = {"python": platform.python_version()}
    names = list(_LIBRARIES) + list(_LIBRARIES_BY_SOURCE.get(source_kind or "", ()))
    for option in options:
        names += _LIBRARIES_BY_OPTION.get(option, ())
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def created_at() -> str:
    """Now in UTC, or `SOURCE_DATE_EPOCH` when set (reproducible builds convention)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (
        datetime.fromtimestamp(int(epoch), timezone.utc)
        if epoch and epoch.isdigit()
        else datetime.now(timezone.utc)
    )
    return moment.isoformat(timespec="seconds")


def _options_used(conversion: dict[str, Any]) -> tuple[str, ...]:
    """Which optional tool sets a conversion used (`tensorrt`, `fp16`)."""
    used = []
    if "tensorrt" in (conversion.get("target"), conversion.get("accelerator")):
        used.append("tensorrt")
    if conversion.get("precision") == "fp16":
        used.append("fp16")
    return tuple(used)


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of a byte string."""
    return hashlib.sha256(data).hexdigest()


def build_manifest(
    *,
    name: str,
    version: int,
    artifact: str,
    artifact_bytes: bytes,
    source: dict[str, Any],
    conversion: dict[str, Any],
    parity: dict[str, Any],
    attachments: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The manifest dict (JSON-ready); `attachments` from `file_entry`."""
    manifest = {
        "format": FORMAT,
        "name": name,
        "version": version,
        "created": created_at(),
        "source": source,
        "artifact": {"file": artifact, "sha256": sha256_bytes(artifact_bytes), "bytes": len(artifact_bytes)},
        "conversion": conversion,
        "parity": parity,
        "tools": library_versions(source.get("kind"), _options_used(conversion)),
    }
    if attachments:
        manifest[ATTACHMENTS] = dict(sorted(attachments.items()))
    return manifest


def file_entry(filename: str, data: bytes) -> dict[str, Any]:
    """The manifest's record of one attached file."""
    return {"file": filename, "sha256": sha256_bytes(data), "bytes": len(data)}


def dump_manifest(manifest: dict[str, Any]) -> bytes:
    """Stable, readable JSON bytes."""
    return (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")


def read_manifest(version_dir: Path) -> dict[str, Any]:
    """The parsed manifest of a version folder (raises OSError/ValueError as json does)."""
    with open(Path(version_dir) / MANIFEST, encoding="utf-8") as handle:
        data = json.load(handle)
    if not isinstance(data, dict):
        raise ValueError("the manifest is not a JSON object")
    return data


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_file(path: Path, version_dir: Path, entry: Any, what: str, data: bytes | None = None) -> list[str]:
    """One recorded file (`artifact` or an attachment) against the bytes on disk, or
    against `data` when the caller already read them."""
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("file"), str)
        or not isinstance(entry.get("sha256"), str)
    ):
        return [f"`{path}`: {what} must hold `file` and `sha256`"]
    if Path(entry["file"]).name != entry["file"]:
        return [f"`{path}`: {what} `{entry['file']}` must be a file name in the folder"]
    target = version_dir / entry["file"]
    if data is None and not target.is_file():
        return [f"`{target}`: {what} named by the manifest is missing"]
    actual = _file_sha256(target) if data is None else sha256_bytes(data)
    if actual != entry["sha256"]:
        return [
            f"`{target}`: sha256 {actual[:12]}... differs from the manifest's "
            f"{entry['sha256'][:12]}...: the file changed after it was recorded (tampering?)"
        ]
    return []


def verify_manifest(
    version_dir: str | Path, data: bytes | None = None, *, key: Key | None = None
) -> list[str]:
    """Problems with a version folder's manifest; an empty list means it checks out.

    Args:
        version_dir: `DIR/NAME/<version>`.
        data: the artifact's bytes as the caller already read them (the bulk scorer
            checks the very bytes it loads); read from the file when omitted.
        key: the data key of an encrypted artifact: its AES-GCM tag is checked too, which
            catches a file changed together with its manifest's sha256.

    Returns:
        One readable line per problem: missing or unreadable manifest, missing
        fields, a missing artifact or attachment, or one whose sha256 differs from the
        recorded one (tampering or corruption).
    """
    version_dir = Path(version_dir)
    path = version_dir / MANIFEST
    if not path.is_file():
        return [f"`{path}`: missing manifest"]
    try:
        manifest = read_manifest(version_dir)
    except (OSError, ValueError) as exc:
        return [f"`{path}`: unreadable manifest: {exc}"]
    missing = [name for name in _REQUIRED if name not in manifest]
    if missing:
        return [f"`{path}`: manifest lacks {', '.join(f'`{k}`' for k in missing)}"]
    source = manifest["source"]
    unconverted = isinstance(source, dict) and source.get("kind") == UNCONVERTED
    problems = []
    artifact = manifest["artifact"]
    if not (unconverted and artifact is None):
        problems += _check_file(path, version_dir, artifact, "artifact", data)
    if not problems and key is not None and isinstance(artifact, dict) and artifact.get("encrypted"):
        from tritonab.converters._encryption import check_with_key  # it imports this module

        problems += check_with_key(version_dir, manifest, key)
    attachments = manifest.get(ATTACHMENTS, {})
    if not isinstance(attachments, dict):
        return [*problems, f"`{path}`: `{ATTACHMENTS}` must map roles to files"]
    for role, entry in sorted(attachments.items()):
        problems += _check_file(path, version_dir, entry, f"attachment `{role}`")
    return problems


def attach_file(version_dir: str | Path, role: str, filename: str, data: bytes) -> dict[str, Any]:
    """Add (or replace) an attached file of an existing version and record it in the manifest.

    The file is written first, then the manifest, each atomically; a version without a
    manifest gets one that records only its attachments (`source.kind` `unconverted`).

    Args:
        version_dir: `DIR/NAME/<version>` (must exist).
        role: the attachment's role in the manifest, e.g. `reference`.
        filename: a file name inside the folder.
        data: the file's bytes.

    Returns:
        The manifest as written.

    Raises:
        ConversionError: no such version folder, a bad file name, or an unreadable manifest.
    """
    folder = Path(version_dir)
    if not folder.is_dir():
        raise ConversionError(f"version folder `{folder}` does not exist")
    if Path(filename).name != filename or filename in (MANIFEST, ""):
        raise ConversionError(
            f"attachment file `{filename}`: expected a plain file name other than {MANIFEST}"
        )
    if (folder / MANIFEST).exists():
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError) as exc:
            raise ConversionError(f"`{folder / MANIFEST}`: unreadable manifest: {exc}") from None
    else:
        manifest = {
            "format": FORMAT,
            "name": folder.parent.name,
            "version": int(folder.name) if folder.name.isdigit() else folder.name,
            "created": created_at(),
            "source": {"kind": UNCONVERTED},
            "artifact": None,
        }
    attachments = dict(manifest.get(ATTACHMENTS) or {})
    attachments[role] = file_entry(filename, data)
    manifest[ATTACHMENTS] = dict(sorted(attachments.items()))
    atomic_write_bytes(folder / filename, data)
    atomic_write_bytes(folder / MANIFEST, dump_manifest(manifest))
    return manifest
