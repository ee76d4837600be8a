"""Envelope-encrypted segments: a torn tail keeps every whole chunk; a changed, moved or
dropped chunk fails authentication; rotation re-encrypts under a fresh data key."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritonab.errors import SecurityError
from tritonab.security import (
    EnvelopeWriter,
    Key,
    TamperedError,
    complete_length,
    open_segment,
    rewrap,
)
from tritonab.security._envelope import HEADER_BYTES

MASTER = Key(bytes(range(32)))
NEW = Key(bytes(range(5, 37)))
chunks = st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=6)


def _segment(parts: list[bytes], key: Key = MASTER) -> tuple[bytes, list[int]]:
    writer = EnvelopeWriter(key)
    blob, ends = writer.header, []
    for part in parts:
        blob += writer.chunk(part)
        ends.append(len(blob))
    return blob, ends


@settings(max_examples=150, deadline=None)
@given(chunks, st.data())
def test_a_torn_tail_recovers_every_complete_chunk(parts, data):
    blob, ends = _segment(parts)
    cut = data.draw(st.integers(0, len(blob)))
    whole = sum(1 for end in ends if end <= cut)
    opened = open_segment(MASTER, blob[:cut])
    assert list(opened.chunks) == parts[:whole]
    assert opened.torn == (cut not in (0, HEADER_BYTES, *ends))
    assert complete_length(blob[:cut]) in (0, HEADER_BYTES, *ends)


@settings(max_examples=150, deadline=None)
@given(chunks, st.data())
def test_a_changed_byte_in_a_complete_segment_fails(parts, data):
    blob = bytearray(_segment(parts)[0])
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    try:
        opened = open_segment(MASTER, bytes(blob))
    except SecurityError:
        return
    # A changed length prefix can only make the tail look torn: never other plaintext.
    assert opened.torn and list(opened.chunks) == parts[: len(opened.chunks)]


def test_chunks_cannot_be_reordered_or_moved_between_segments():
    blob, ends = _segment([b"a" * 10, b"b" * 10])
    header_end = ends[0] - (ends[1] - ends[0])
    swapped = blob[:header_end] + blob[ends[0] : ends[1]] + blob[header_end : ends[0]]
    with pytest.raises(TamperedError, match="chunk 0"):
        open_segment(MASTER, swapped)
    other, _ = _segment([b"c" * 10])
    with pytest.raises(TamperedError):
        open_segment(MASTER, other[: len(other) - (ends[0] - header_end)] + blob[header_end : ends[0]])


def test_another_master_key_is_named():
    blob, _ = _segment([b"x"])
    with pytest.raises(SecurityError, match=f"under key {MASTER.id}, not under the given key {NEW.id}"):
        open_segment(NEW, blob, what="s.enc")


def test_rewrap_uses_a_fresh_data_key():
    blob, _ = _segment([b"one\n", b"two\n"])
    rotated = rewrap(blob, MASTER, NEW)
    assert open_segment(NEW, rotated).chunks == (b"one\n", b"two\n")
    assert rotated[36:] != blob[36:]  # new wrapped key and chunks
    with pytest.raises(SecurityError):
        open_segment(MASTER, rotated)
