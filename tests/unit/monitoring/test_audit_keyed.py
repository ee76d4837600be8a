"""The keyed audit chain: HMAC-SHA256 under an audit key kept apart from the data keys.
A chain rebuilt without the key, in any of the ways an attacker could try, fails."""

from __future__ import annotations

import hashlib
import json

import pytest

from tritonab.cli import main
from tritonab.errors import SecurityError
from tritonab.monitoring import audit
from tritonab.security import AUDIT_KEY_ENV, LOG_KEY_ENV, generate_key, load_key, write_key


@pytest.fixture
def keyed_log(tmp_path):
    key = generate_key(tmp_path / "audit.key", purpose="audit")
    path = tmp_path / "audit.jsonl"
    for i in range(4):
        audit.append(path, "weights.set", audit_key=key, step=i)
    return path, key


def _rebuild_unkeyed(path, edit):
    """What someone who can write the file but lacks the key can do: edit a record and
    recompute every SHA-256 link and the head anchor."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    edit(records)
    prev, lines = audit.GENESIS, []
    for record in records:
        record["prev"] = prev
        line = json.dumps(record, sort_keys=True).encode()
        lines.append(line)
        prev = hashlib.sha256(line).hexdigest()
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    anchor = {"records": len(lines), "last": prev}
    if "key_id" in records[-1]:
        anchor.update(chain=records[-1]["chain"], key_id=records[-1]["key_id"])
    audit.head_path(path).write_text(json.dumps(anchor))


def test_a_keyed_chain_verifies_under_its_key(keyed_log, capsys):
    path, key = keyed_log
    assert all(r["chain"] == "hmac-sha256" and r["key_id"] == key.id for r in audit.read(path))
    report = audit.verify(path, key=key)
    assert report.ok and report.key_id == key.id and not report.warnings
    assert main(["audit", "verify", str(path), "--key-file", str(key.source), "--strict"]) == 0
    assert f"HMAC-SHA256 chain under audit key {key.id} intact" in capsys.readouterr().out


@pytest.mark.parametrize(
    "edit",
    [
        lambda rs: rs[1].update(step=99),  # keep the keyed labels, recompute as SHA-256
        lambda rs: [r.pop(k) for r in rs for k in ("chain", "key_id")],  # downgrade to unkeyed
    ],
    ids=["relinked", "downgraded"],
)
def test_a_chain_rebuilt_without_the_key_fails(keyed_log, edit, capsys):
    path, key = keyed_log
    _rebuild_unkeyed(path, edit)
    report = audit.verify(path, key=key)
    assert not report.ok
    assert main(["audit", "verify", str(path), "--key-file", str(key.source)]) == 1


def test_a_chain_rebuilt_under_another_key_fails(keyed_log, tmp_path):
    path, key = keyed_log
    forged = write_key(tmp_path / "forged.key", b"\x01" * 32, purpose="audit")
    records = audit.read(path)
    path.unlink()
    audit.head_path(path).unlink()
    for r in records:
        audit.append(path, r["event"], audit_key=forged, step=r["step"])
    with pytest.raises(SecurityError, match=f"chained under audit key {forged.id}, not under the given key"):
        audit.verify(path, key=key)


def test_removing_the_head_anchor_fails_with_a_key(keyed_log):
    path, key = keyed_log
    audit.head_path(path).unlink()
    assert "keyed anchor is required" in audit.verify(path, key=key).tail


def test_a_keyed_log_needs_its_key(keyed_log, monkeypatch, capsys):
    path, key = keyed_log
    monkeypatch.delenv(AUDIT_KEY_ENV, raising=False)
    assert main(["audit", "verify", str(path)]) == 2
    assert f"chained under audit key {key.id}: pass --key-file" in capsys.readouterr().err
    monkeypatch.setenv(AUDIT_KEY_ENV, str(key.source))
    assert audit.verify(path).ok


def test_an_unkeyed_log_is_readable_and_reported_unkeyed(tmp_path, capsys):
    path = tmp_path / "old.jsonl"
    audit.append(path, "a", audit_key=None)
    report = audit.verify(path, use_env=False)
    assert report.ok and any("unkeyed SHA-256 chain" in w for w in report.warnings)
    assert main(["audit", "verify", str(path), "--strict"]) == 1


def test_an_old_log_continued_under_a_key_binds_its_unkeyed_prefix(tmp_path):
    path = tmp_path / "audit.jsonl"
    audit.append(path, "old", audit_key=None)
    audit.append(path, "old", audit_key=None)
    key = generate_key(tmp_path / "a.key", purpose="audit")
    audit.append(path, "new", audit_key=key)
    report = audit.verify(path, key=key)
    assert report.ok
    assert report.warnings == ("records 1-2 predate the audit key (unkeyed, bound by the first keyed link)",)
    lines = path.read_text().splitlines()
    lines[0] = lines[0].replace('"old"', '"odd"')
    path.write_text("\n".join(lines) + "\n")
    assert audit.verify(path, key=key).first_bad == 1


def test_a_data_key_is_never_the_audit_key(tmp_path, monkeypatch):
    generate_key(tmp_path / "data.key")
    with pytest.raises(SecurityError, match="holds a key of purpose `data`: expected purpose `audit`"):
        audit.resolve_audit_key(tmp_path / "data.key")
    # the same 32 bytes relabelled as an audit key: refused by id
    data = load_key(tmp_path / "data.key")
    write_key(tmp_path / "copy.key", data.material, purpose="audit")
    monkeypatch.setenv(LOG_KEY_ENV, str(tmp_path / "data.key"))
    with pytest.raises(SecurityError, match="must be kept apart from the data keys"):
        audit.resolve_audit_key(tmp_path / "copy.key")
    monkeypatch.setenv(AUDIT_KEY_ENV, str(tmp_path / "copy.key"))
    with pytest.raises(SecurityError, match="must be kept apart from the data keys"):
        audit.append(tmp_path / "audit.jsonl", "x")
    assert not (tmp_path / "audit.jsonl").exists()
