"""Envelope encryption for append-only segments: a data key per segment, wrapped by the
master key, and AES-256-GCM in chunks.

Layout of an encrypted segment::

    header: MAGIC (8) | master key id (8) | wrap nonce (12) | wrapped data key (32 + 16)
    chunk:  length (4, big-endian, of what follows) | ciphertext + tag (16)
    chunk:  ...

The data key is random per segment, so chunk nonces are a counter (chunk index) and
never repeat under one key. Each chunk authenticates the header and its index, so
chunks cannot be reordered, dropped from the middle or moved to another segment.
A writer killed mid-chunk leaves a torn tail: every complete chunk before it still
decrypts, and readers report the tail instead of failing. Rotating the master key
re-encrypts each segment under a fresh data key (`rewrap`).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tritonab.errors import SecurityError
from tritonab.security._crypto import TamperedError
from tritonab.security._keys import KEY_BYTES, Key

MAGIC = b"TABENV1\x00"
_WRAP_NONCE = 12
_WRAPPED = KEY_BYTES + 16
HEADER_BYTES = len(MAGIC) + 8 + _WRAP_NONCE + _WRAPPED
_LENGTH = struct.Struct(">I")
MAX_CHUNK = 1 << 30


def _chunk_nonce(index: int) -> bytes:
    return b"\x00\x00\x00\x00" + index.to_bytes(8, "big")


def _aad(header: bytes, index: int) -> bytes:
    return header + index.to_bytes(8, "big")


class EnvelopeWriter:
    """Makes the header of one segment and then its chunks, in order.

    Args:
        master: the master (data-purpose) key that wraps this segment's data key.
    """

    def __init__(self, master: Key) -> None:
        if master.purpose != "data":
            raise SecurityError(f"{master} cannot encrypt logs: expected a data key")
        data_key = os.urandom(KEY_BYTES)
        prefix = MAGIC + bytes.fromhex(master.id)
        nonce = os.urandom(_WRAP_NONCE)
        self.header = prefix + nonce + AESGCM(master.material).encrypt(nonce, data_key, prefix)
        self._aead = AESGCM(data_key)
        self._index = 0

    def chunk(self, plaintext: bytes) -> bytes:
        """The next chunk (length prefix included) holding `plaintext`."""
        sealed = self._aead.encrypt(_chunk_nonce(self._index), plaintext, _aad(self.header, self._index))
        self._index += 1
        return _LENGTH.pack(len(sealed)) + sealed


def is_envelope(blob: bytes) -> bool:
    """True when `blob` starts like an encrypted segment."""
    return blob[: len(MAGIC)] == MAGIC


def _unwrap(master: Key, header: bytes, what: str) -> bytes:
    prefix = header[: len(MAGIC) + 8]
    wanted = prefix[len(MAGIC) :].hex()
    if wanted != master.id:
        raise SecurityError(f"`{what}` is encrypted under key {wanted}, not under the given key {master.id}")
    nonce = header[len(prefix) : len(prefix) + _WRAP_NONCE]
    try:
        return AESGCM(master.material).decrypt(nonce, header[len(prefix) + _WRAP_NONCE :], prefix)
    except InvalidTag:
        raise TamperedError(f"`{what}`: the wrapped data key fails authentication (tampering?)") from None


def _frames(blob: bytes) -> Iterator[tuple[int, int, int]]:
    """(index, start, end) of each complete chunk's ciphertext, stopping at a torn tail."""
    offset, index = HEADER_BYTES, 0
    while offset + _LENGTH.size <= len(blob):
        (length,) = _LENGTH.unpack_from(blob, offset)
        start = offset + _LENGTH.size
        if length > MAX_CHUNK or start + length > len(blob):
            return
        yield index, start, start + length
        offset, index = start + length, index + 1


def complete_length(blob: bytes) -> int:
    """Bytes of `blob` up to the end of its last complete chunk (0 for a torn header)."""
    if len(blob) < HEADER_BYTES:
        return 0
    end = HEADER_BYTES
    for _index, _start, stop in _frames(blob):
        end = stop
    return end


@dataclass(frozen=True)
class Opened:
    """An encrypted segment read in memory: its chunks' plaintexts, and whether bytes
    after the last complete chunk (a torn tail) were left out."""

    chunks: tuple[bytes, ...]
    torn: bool

    @property
    def plaintext(self) -> bytes:
        return b"".join(self.chunks)


def open_segment(master: Key, blob: bytes, *, what: str = "segment") -> Opened:
    """Decrypt every complete chunk of an encrypted segment, in memory.

    Raises:
        SecurityError: not an encrypted segment, or encrypted under another key.
        TamperedError: a complete chunk or the wrapped key fails authentication.
    """
    if len(blob) < HEADER_BYTES:
        if MAGIC.startswith(blob[: len(MAGIC)]):  # a header torn by a crash (or empty)
            return Opened((), bool(blob))
        raise SecurityError(f"`{what}` is not an encrypted segment (bad header)")
    if not is_envelope(blob):
        raise SecurityError(f"`{what}` is not an encrypted segment (bad header)")
    header = blob[:HEADER_BYTES]
    aead = AESGCM(_unwrap(master, header, what))
    chunks, end = [], HEADER_BYTES
    for index, start, stop in _frames(blob):
        try:
            chunks.append(aead.decrypt(_chunk_nonce(index), blob[start:stop], _aad(header, index)))
        except InvalidTag:
            raise TamperedError(
                f"`{what}`: chunk {index} fails AES-GCM authentication (tampering?)"
            ) from None
        end = stop
    return Opened(tuple(chunks), end < len(blob))


def rewrap(blob: bytes, old: Key, new: Key, *, what: str = "segment") -> bytes:
    """The same records re-encrypted for key rotation: a fresh data key wrapped by `new`.

    A fresh data key, not the old one under a new header: re-encrypting chunk nonces
    0, 1, ... under the same data key with other associated data would reuse GCM nonces.
    A torn tail is left out.
    """
    opened = open_segment(old, blob, what=what)
    writer = EnvelopeWriter(new)
    return writer.header + b"".join(writer.chunk(c) for c in opened.chunks)
