"""Encrypted artifacts: decryption in memory, verification with the key, key rotation.

A conversion with an encryption key writes `model.onnx.enc` (AES-256-GCM, see
`tritonab.security`) and records in the manifest's `artifact` the ciphertext's sha256,
`encrypted: aes-256-gcm` and the `key_id`. The sha256 catches a changed file without
the key; with the key, the GCM tag also catches a file changed together with its
manifest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from tritonab._io import staged_dir
from tritonab.converters._manifest import MANIFEST, dump_manifest, read_manifest, sha256_bytes
from tritonab.errors import ConversionError, SecurityError
from tritonab.security import ARTIFACT_CONTEXT, Key, open_sealed, seal, sealed_key_id


def is_encrypted(manifest: dict[str, Any]) -> bool:
    """True when a manifest describes an encrypted artifact."""
    artifact = manifest.get("artifact")
    return isinstance(artifact, dict) and bool(artifact.get("encrypted"))


def decrypt_artifact(version_dir: str | os.PathLike[str], key: Key) -> bytes:
    """The plaintext of a version's encrypted artifact, in memory (nothing written).

    Raises:
        ConversionError: no manifest, or the artifact is not encrypted.
        SecurityError: another key, or a tampered file (`TamperedError`).
    """
    folder = Path(version_dir)
    try:
        manifest = read_manifest(folder)
    except (OSError, ValueError) as exc:
        raise ConversionError(f"`{folder / MANIFEST}`: unreadable manifest: {exc}") from None
    if not is_encrypted(manifest):
        raise ConversionError(f"`{folder}`: the artifact is not encrypted")
    path = folder / str(manifest["artifact"]["file"])
    return open_sealed(key, path.read_bytes(), context=ARTIFACT_CONTEXT, what=str(path))


def check_with_key(version_dir: Path, manifest: dict[str, Any], key: Key) -> list[str]:
    """Problems an encrypted artifact shows under `key` (wrong key, failed tag)."""
    path = version_dir / str(manifest["artifact"]["file"])
    blob = path.read_bytes()
    try:
        recorded = str(manifest["artifact"].get("key_id"))
        if sealed_key_id(blob, str(path)) != recorded:
            return [f"`{path}`: its header names key {sealed_key_id(blob)}, the manifest key {recorded}"]
        open_sealed(key, blob, context=ARTIFACT_CONTEXT, what=str(path))
    except SecurityError as exc:
        return [str(exc)]
    return []


def rotate_repository(repository: str | os.PathLike[str], old: Key, new: Key) -> list[Path]:
    """Re-encrypt every version encrypted under `old` with `new` (manifests updated).

    Each version folder is rebuilt beside itself and swapped in whole, so a failure
    leaves every version either old or new. Versions under other keys are left alone.

    Returns:
        The version folders re-encrypted.

    Raises:
        SecurityError: a version under `old` fails to decrypt (tampered): nothing more
            is rotated after it.
    """
    rotated = []
    for manifest_path in sorted(Path(repository).glob(f"*/*/{MANIFEST}")):
        folder = manifest_path.parent
        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError):
            continue
        if not is_encrypted(manifest) or manifest["artifact"].get("key_id") != old.id:
            continue
        name = str(manifest["artifact"]["file"])
        plain = open_sealed(
            old, (folder / name).read_bytes(), context=ARTIFACT_CONTEXT, what=str(folder / name)
        )
        blob = seal(new, plain, context=ARTIFACT_CONTEXT)
        manifest["artifact"].update(sha256=sha256_bytes(blob), bytes=len(blob), key_id=new.id)
        with staged_dir(folder, replace=True) as stage:
            for item in folder.iterdir():
                if item.name not in (name, MANIFEST):
                    copy = shutil.copytree if item.is_dir() else shutil.copy2
                    copy(item, stage / item.name)
            (stage / name).write_bytes(blob)
            (stage / MANIFEST).write_bytes(dump_manifest(manifest))
        rotated.append(folder)
    return rotated
