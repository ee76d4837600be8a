"""The manifest beside every converted model, and its verification.

`DIR/NAME/<version>/manifest.json` records where the model came from (source
path and sha256), what was produced (artifact file and sha256), the tools and
library versions, opset, precision and the parity results. `verify_manifest`
recomputes the artifact hash: a mismatch means the file changed after
conversion (tampering or corruption).
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

from tritonab.security import Key

MANIFEST = "manifest.json"
FORMAT = 1
_LIBRARIES = ("tritonab", "onnx", "onnxruntime-gpu", "onnxruntime", "numpy")
# Libraries that take part only in some conversions: listed when they did, so the
# manifest does not change with what else happens to be installed.
_LIBRARIES_BY_SOURCE = {"sklearn": ("skl2onnx", "scikit-learn"), "torch": ("torch",), "onnx": ()}
_LIBRARIES_BY_OPTION = {"tensorrt": ("tensorrt",), "fp16": ("onnxconverter-common",)}
_REQUIRED = ("format", "artifact", "source", "created")


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
) -> dict[str, Any]:
    """The manifest dict (JSON-ready)."""
    return {
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
        fields, missing artifact, or an artifact whose sha256 differs from the
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
    missing = [key for key in _REQUIRED if key not in manifest]
    if missing:
        return [f"`{path}`: manifest lacks {', '.join(f'`{k}`' for k in missing)}"]
    artifact = manifest["artifact"]
    if (
        not isinstance(artifact, dict)
        or not isinstance(artifact.get("file"), str)
        or not isinstance(artifact.get("sha256"), str)
    ):
        return [f"`{path}`: `artifact` must hold `file` and `sha256`"]
    target = version_dir / artifact["file"]
    if Path(artifact["file"]).name != artifact["file"]:
        return [f"`{path}`: artifact `{artifact['file']}` must be a file name in the folder"]
    if data is None and not target.is_file():
        return [f"`{target}`: artifact named by the manifest is missing"]
    actual = _file_sha256(target) if data is None else sha256_bytes(data)
    if actual != artifact["sha256"]:
        return [
            f"`{target}`: sha256 {actual[:12]}... differs from the manifest's "
            f"{artifact['sha256'][:12]}...: the file changed after conversion (tampering?)"
        ]
    if key is not None and artifact.get("encrypted"):
        from tritonab.converters._encryption import check_with_key  # it imports this module

        return check_with_key(version_dir, manifest, key)
    return []
