"""AES-256-GCM on whole byte strings: the encrypted artifact format.

Layout of a sealed blob::

    MAGIC (8) | key id (8 bytes, from the 16 hex digits) | nonce (12) | ciphertext + tag (16)

The header (magic and key id) and the caller's `context` (e.g. `b"artifact"`) are
authenticated as associated data, so a blob cannot be passed off under another key id
or used where a different kind of content is expected. A changed byte anywhere fails
the tag: `open_sealed` then raises a `TamperedError`.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tritonab.errors import SecurityError
from tritonab.security._keys import Key

MAGIC = b"TABENC1\x00"
ENCRYPTION = "aes-256-gcm"
ARTIFACT_CONTEXT = b"tritonab-artifact:v1"
"""Associated data of a model artifact: a sealed log or other blob cannot pass for one."""
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(MAGIC) + 8 + NONCE_BYTES


class TamperedError(SecurityError):
    """Encrypted content failed authentication: wrong key, or changed after it was written."""


def _require_data(key: Key, what: str) -> None:
    if key.purpose != "data":
        raise SecurityError(f"`{what}`: {key} is an audit key; encryption takes a data key")


def seal(key: Key, plaintext: bytes, *, context: bytes = b"") -> bytes:
    """Encrypt `plaintext` under `key` (fresh random nonce); `context` is authenticated."""
    _require_data(key, key.source or "key")
    header = MAGIC + bytes.fromhex(key.id)
    nonce = os.urandom(NONCE_BYTES)
    return header + nonce + AESGCM(key.material).encrypt(nonce, plaintext, header + context)


def is_sealed(blob: bytes) -> bool:
    """True when `blob` starts like a sealed blob."""
    return blob[: len(MAGIC)] == MAGIC


def sealed_key_id(blob: bytes, what: str = "blob") -> str:
    """The id of the key a sealed blob was encrypted with.

    Raises:
        SecurityError: not a sealed blob.
    """
    if not is_sealed(blob) or len(blob) < HEADER_BYTES + TAG_BYTES:
        raise SecurityError(f"`{what}` is not a tritonab encrypted file (bad header)")
    return blob[len(MAGIC) : len(MAGIC) + 8].hex()


def open_sealed(key: Key, blob: bytes, *, context: bytes = b"", what: str = "blob") -> bytes:
    """Decrypt a sealed blob in memory.

    Raises:
        SecurityError: not a sealed blob, or sealed under another key id.
        TamperedError: the tag does not verify (the bytes changed after encryption).
    """
    _require_data(key, what)
    wanted = sealed_key_id(blob, what)
    if wanted != key.id:
        raise SecurityError(f"`{what}` is encrypted with key {wanted}, not with the given key {key.id}")
    header = blob[: len(MAGIC) + 8]
    nonce = blob[len(header) : HEADER_BYTES]
    try:
        return AESGCM(key.material).decrypt(nonce, blob[HEADER_BYTES:], header + context)
    except InvalidTag:
        raise TamperedError(
            f"`{what}` fails AES-GCM authentication: it changed after it was encrypted (tampering?)"
        ) from None
