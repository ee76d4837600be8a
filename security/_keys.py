"""Key files: 256-bit keys with a purpose and a short id, written 0600.

A key file is text, so that an operator can tell what it is without using it::

    # tritonab key: keep this file secret
    purpose: data
    id: 3f1c0a9b2e7d4c55
    key: <64 hex digits>

`purpose` keeps the audit key apart from the data keys (artifacts, logs): an audit
chain refuses a `data` key and the encryption refuses an `audit` key. The id is the
first 16 hex digits of SHA-256 over a fixed label and the key, so it names a key in
manifests and segment headers without revealing it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tritonab._io import atomic_write_text
from tritonab.errors import SecurityError

KEY_BYTES = 32
Purpose = Literal["data", "audit"]
PURPOSES: tuple[Purpose, ...] = ("data", "audit")
MODEL_KEY_ENV = "TRITONAB_MODEL_KEY_FILE"
LOG_KEY_ENV = "TRITONAB_LOG_KEY_FILE"
AUDIT_KEY_ENV = "TRITONAB_AUDIT_KEY_FILE"
_ID_LABEL = b"tritonab-key-id:v1:"


def key_id(material: bytes) -> str:
    """The public id of a key: 16 hex digits of SHA-256 over a label and the key."""
    return hashlib.sha256(_ID_LABEL + material).hexdigest()[:16]


@dataclass(frozen=True)
class Key:
    """A loaded key. Its material never appears in `repr` or `str`.

    Attributes:
        material: the 32 key bytes.
        purpose: `data` (artifacts, logs) or `audit` (the audit chain).
        source: the file it came from (for messages).
    """

    material: bytes = field(repr=False)
    purpose: Purpose = "data"
    source: str = ""

    @property
    def id(self) -> str:
        return key_id(self.material)

    def __str__(self) -> str:
        return f"{self.purpose} key {self.id}"


def _render(material: bytes, purpose: Purpose) -> str:
    return (
        "# tritonab key: keep this file secret (it decrypts or signs what names its id)\n"
        f"purpose: {purpose}\nid: {key_id(material)}\nkey: {material.hex()}\n"
    )


def write_key(
    path: str | os.PathLike[str], material: bytes, *, purpose: Purpose = "data", force: bool = False
) -> Key:
    """Write `material` as a key file (0600, atomically); refuses to overwrite unless `force`."""
    target = Path(path)
    if len(material) != KEY_BYTES:
        raise SecurityError(f"key for `{target}`: expected {KEY_BYTES} bytes, got {len(material)}")
    if purpose not in PURPOSES:
        raise SecurityError(f"key `{target}`: purpose `{purpose}`: expected one of {PURPOSES}")
    if target.exists() and not force:
        raise SecurityError(f"key file `{target}` already exists: refusing to overwrite a key")
    atomic_write_text(target, _render(material, purpose), private=True)
    return Key(material, purpose, str(target))


def generate_key(path: str | os.PathLike[str], *, purpose: Purpose = "data", force: bool = False) -> Key:
    """Write a new random 256-bit key (from the OS CSPRNG) to `path`, mode 0600.

    Args:
        path: the key file to create.
        purpose: `data` for artifacts and logs, `audit` for the audit chain.
        force: replace an existing file (the old key is lost).

    Returns:
        The key (its `id` is what manifests and segment headers record).

    Raises:
        SecurityError: the file exists (without `force`) or the purpose is unknown.
    """
    return write_key(path, secrets.token_bytes(KEY_BYTES), purpose=purpose, force=force)


def load_key(path: str | os.PathLike[str], *, purpose: Purpose | None = None) -> Key:
    """Read a key file, checking its format, its id and (when given) its purpose.

    Like ssh with its private keys, a key file that other users may read or write is
    refused (`tritonab keys generate` writes mode 0600; group bits are allowed, for
    Kubernetes secrets mounted with `defaultMode: 0440` and an `fsGroup`).

    Raises:
        SecurityError: unreadable or malformed file, one open to other users, an id that
            does not match the key, or a key of another purpose (an audit key used for
            data, or the reverse).
    """
    target = Path(path)
    try:
        with open(target, encoding="utf-8") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            text = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecurityError(f"key file `{target}` cannot be read: {exc}") from None
    if os.name == "posix" and mode & 0o007:
        raise SecurityError(
            f"key file `{target}` is open to other users (mode {stat.S_IMODE(mode):04o}): "
            f"`chmod 600 {target}`"
        )
    fields: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and ":" in line:
            name, _, value = line.partition(":")
            fields[name.strip()] = value.strip()
    try:
        material = bytes.fromhex(fields.get("key", ""))
    except ValueError:
        material = b""
    if len(material) != KEY_BYTES:
        raise SecurityError(f"key file `{target}`: expected `key:` with {KEY_BYTES * 2} hex digits")
    found = fields.get("purpose", "data")
    if found not in PURPOSES:
        raise SecurityError(f"key file `{target}`: purpose `{found}`: expected one of {PURPOSES}")
    if fields.get("id") not in (None, key_id(material)):
        raise SecurityError(f"key file `{target}`: its `id` does not match its key (edited?)")
    if purpose is not None and found != purpose:
        raise SecurityError(
            f"key file `{target}` holds a key of purpose `{found}`: expected purpose `{purpose}` "
            "(audit and data keys are kept apart)"
        )
    return Key(material, found, str(target))


def key_from_env(variable: str, *, purpose: Purpose | None = None) -> Key | None:
    """The key in the file named by environment variable `variable` (None when unset)."""
    path = os.environ.get(variable)
    return load_key(path, purpose=purpose) if path else None


def resolve_key(
    path: str | os.PathLike[str] | None, variable: str, *, purpose: Purpose | None = None
) -> Key | None:
    """The key at `path`, else the one named by `$variable`, else None."""
    if path:
        return load_key(path, purpose=purpose)
    return key_from_env(variable, purpose=purpose)


def require_distinct(audit_key: Key, *data_keys: Key | None) -> None:
    """Refuse an audit key that is also a data key (same id).

    Raises:
        SecurityError: a data key has the audit key's id.
    """
    for key in data_keys:
        if key is not None and key.id == audit_key.id:
            raise SecurityError(
                f"audit key `{audit_key.source}` is the same key as data key `{key.source}` "
                f"(id {key.id}): the audit key must be kept apart from the data keys"
            )
