"""The audit log's head anchor: the end of the log is protected too."""

from __future__ import annotations

import json

from tritonab.cli import main
from tritonab.monitoring import audit


def write_log(tmp_path, n=4):
    path = tmp_path / "audit.jsonl"
    for i in range(n):
        audit.append(path, "weights.set", step=i)
    return path


def test_an_intact_log_verifies_against_its_anchor(tmp_path):
    path = write_log(tmp_path)
    report = audit.verify(path)
    assert report.ok and report.records == 4
    assert json.loads(audit.head_path(path).read_text())["records"] == 4


def test_deleting_the_last_record_is_detected(tmp_path, capsys):
    path = write_log(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-1]))
    report = audit.verify(path)
    assert report.broken_at == ()
    assert report.tail == "1 record(s) missing at the end (the anchor counts 4)"
    assert main(["audit", "verify", str(path)]) == 1
    assert "1 record(s) missing at the end" in capsys.readouterr().out


def test_editing_the_last_record_is_detected(tmp_path):
    path = write_log(tmp_path)
    text = path.read_text()
    path.write_text(
        text[: text.rstrip("\n").rfind("\n") + 1]
        + text.rstrip("\n").rsplit("\n", 1)[1].replace('"step": 3', '"step": 9')
        + "\n"
    )
    assert audit.verify(path).tail == "the last record (line 4) differs from the anchored one"


def test_an_edit_in_the_middle_is_named_by_its_own_line(tmp_path, capsys):
    path = write_log(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = lines[1].replace('"step": 1', '"step": 7')
    path.write_text("".join(lines))
    report = audit.verify(path)
    assert report.broken_at == (3,) and report.first_bad == 2
    assert main(["audit", "verify", str(path)]) == 1
    assert "first bad record at line 2" in capsys.readouterr().out


def test_a_removed_record_is_named_by_the_line_after_the_gap(tmp_path):
    path = write_log(tmp_path, n=5)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:2] + lines[3:]))
    report = audit.verify(path)
    assert report.broken_at == (3,) and report.first_bad == 3
    lines[0] = "not json\n"
    path.write_text("".join(lines))
    assert audit.verify(path).first_bad == 1


def test_the_edited_last_record_is_the_first_bad_line(tmp_path):
    path = write_log(tmp_path)
    path.write_text(path.read_text().replace('"step": 3', '"step": 8'))
    report = audit.verify(path)
    assert report.broken_at == () and report.first_bad == 4


def test_a_log_without_an_anchor_is_checked_by_its_chain_alone_with_a_warning(tmp_path, capsys):
    path = write_log(tmp_path)
    audit.head_path(path).unlink()
    report = audit.verify(path)
    assert report.ok and "no head anchor" in report.warnings[0]
    assert main(["audit", "verify", str(path)]) == 0
    assert "warning:" in capsys.readouterr().out
    assert main(["audit", "verify", "--strict", str(path)]) == 1
    audit.append(path, "again")
    assert json.loads(audit.head_path(path).read_text())["records"] == 5
    assert audit.verify(path).ok
