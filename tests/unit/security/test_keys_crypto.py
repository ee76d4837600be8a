"""Key files and AES-256-GCM sealing: ids, purposes, 0600, and tampering of any byte."""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritonab.cli import main
from tritonab.errors import SecurityError
from tritonab.security import (
    Key,
    TamperedError,
    generate_key,
    load_key,
    open_sealed,
    require_distinct,
    seal,
    sealed_key_id,
    write_key,
)

KEY = Key(bytes(range(32)))
OTHER = Key(bytes(range(1, 33)))


def test_generate_writes_a_private_key_file_and_never_shows_the_key(tmp_path, capsys):
    path = tmp_path / "k"
    assert main(["keys", "generate", str(path)]) == 0
    key = load_key(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(key.material) == 32 and key.purpose == "data"
    out = capsys.readouterr().out
    assert key.id in out and key.material.hex() not in out
    assert key.material.hex() not in repr(key) and key.material.hex() not in str(key)


def test_generate_refuses_to_overwrite_a_key(tmp_path, capsys):
    path = tmp_path / "k"
    first = generate_key(path)
    assert main(["keys", "generate", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert load_key(path).id == first.id


def test_purposes_are_kept_apart(tmp_path):
    generate_key(tmp_path / "audit", purpose="audit")
    with pytest.raises(SecurityError, match=r"holds a key of purpose `audit`: expected purpose `data`"):
        load_key(tmp_path / "audit", purpose="data")
    audit = load_key(tmp_path / "audit")
    with pytest.raises(SecurityError, match="is an audit key"):
        seal(audit, b"x")


def test_the_same_key_as_audit_and_data_key_is_refused(tmp_path):
    data = write_key(tmp_path / "d", bytes(32))
    audit = write_key(tmp_path / "a", bytes(32), purpose="audit")
    with pytest.raises(SecurityError, match=f"same key as data key .*id {data.id}"):
        require_distinct(audit, data)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("key: abcd\n", "64 hex digits"),
        ("purpose: data\nkey: " + "zz" * 32 + "\n", "64 hex digits"),
        ("purpose: root\nkey: " + "00" * 32 + "\n", "purpose `root`"),
        ("id: 0000000000000000\nkey: " + "00" * 32 + "\n", "does not match"),
    ],
)
def test_malformed_key_files_are_named(tmp_path, text, problem):
    path = tmp_path / "bad.key"
    path.write_text(text)
    path.chmod(0o600)
    with pytest.raises(SecurityError, match=f"`{path}`.*{problem}"):
        load_key(path)


def test_a_key_file_open_to_other_users_is_refused(tmp_path, capsys):
    path = tmp_path / "data.key"
    key = generate_key(path)
    path.chmod(0o644)
    with pytest.raises(SecurityError, match=r"open to other users \(mode 0644\): `chmod 600 "):
        load_key(path)
    path.chmod(0o440)  # a Kubernetes secret mounted for an fsGroup
    assert load_key(path).id == key.id
    path.chmod(0o604)
    assert main(["analyze", "exp", "--logs", str(tmp_path), "--key-file", str(path)]) == 2
    assert "open to other users" in capsys.readouterr().err


def test_seal_round_trip_and_header():
    blob = seal(KEY, b"graph", context=b"ctx")
    assert sealed_key_id(blob) == KEY.id
    assert b"graph" not in blob
    assert open_sealed(KEY, blob, context=b"ctx") == b"graph"
    assert seal(KEY, b"graph", context=b"ctx") != blob  # a fresh nonce each time


def test_wrong_key_and_wrong_context_are_refused():
    blob = seal(KEY, b"graph", context=b"artifact")
    wrong = f"encrypted with key {KEY.id}, not with the given key {OTHER.id}"
    with pytest.raises(SecurityError, match=wrong):
        open_sealed(OTHER, blob, context=b"artifact", what="m.enc")
    with pytest.raises(TamperedError):
        open_sealed(KEY, blob, context=b"log", what="m.enc")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.data())
def test_any_changed_byte_fails(plaintext, data):
    blob = bytearray(seal(KEY, plaintext))
    index = data.draw(st.integers(0, len(blob) - 1))
    blob[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(SecurityError):  # a bad header, another key id, or a failed tag
        open_sealed(KEY, bytes(blob))
