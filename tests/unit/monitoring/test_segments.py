"""SegmentWriter: rotation, fsync before rename, torn tails, drops counted and recorded."""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from tritonab.monitoring import segments
from tritonab.monitoring.segments import (
    SegmentWriter,
    TornRecordWarning,
    dropped_total,
    read_records,
    recover,
)


def _records(n, start=0):
    return [{"i": i} for i in range(start, start + n)]


def test_rotates_by_record_count_and_seals_on_close(tmp_path):
    writer = SegmentWriter(tmp_path / "s", "exposures", instance="r_0", max_records=10)
    for i in range(0, 35, 5):
        writer.submit(_records(5, i), count=5)
    writer.close()
    names = sorted(p.name for p in (tmp_path / "s").iterdir())
    assert len(names) == 4 and all(n.endswith(".jsonl") and not n.startswith(".") for n in names)
    assert all(f"-r_0-{os.getpid()}-" in n for n in names)
    counts = [len(p.read_text().splitlines()) for p in sorted((tmp_path / "s").iterdir())]
    assert counts == [10, 10, 10, 5]
    records, report = read_records(tmp_path / "s")
    assert [r["i"] for r in records] == list(range(35))
    assert report.records == 35 and not report.unsealed and not report.torn


def test_rotates_by_age_while_running(tmp_path):
    writer = SegmentWriter(tmp_path / "s", "exposures", max_age_s=0.05)
    writer.submit(_records(3))
    deadline = time.monotonic() + 5
    while not writer.segments and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(writer.segments) == 1 and writer.segments[0].exists()
    writer.close()


def test_fsync_happens_before_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(segments.os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        segments.os,
        "replace",
        lambda a, b: (events.append(("rename", str(a), str(b))), real_replace(a, b))[1],
    )
    writer = SegmentWriter(tmp_path / "s", "payloads", max_records=2)
    writer.submit(_records(2))
    writer.close()
    rename = next(i for i, e in enumerate(events) if isinstance(e, tuple))
    assert "fsync" in events[:rename]
    _, src, dst = events[rename]
    assert os.path.basename(src).startswith(".") and src.endswith(".jsonl.tmp")
    assert dst.endswith(".jsonl") and not os.path.basename(dst).startswith(".")


def test_torn_last_record_is_skipped_with_a_warning_and_recovered(tmp_path):
    folder = tmp_path / "s"
    writer = SegmentWriter(folder, "exposures", max_records=3)
    writer.submit(_records(3))
    writer.close()
    crashed = folder / ".exposures-r-999999999-1-000001.jsonl.tmp"  # a dead writer's segment
    crashed.write_bytes(b'{"i": 3}\n{"i": 4}\n{"i": ')
    with pytest.warns(TornRecordWarning, match="incomplete record"):
        records, report = read_records(folder)
    assert [r["i"] for r in records] == [0, 1, 2, 3, 4]
    assert report.torn == [crashed] and report.unsealed == [crashed]
    with pytest.warns(TornRecordWarning, match="cut an incomplete last record"):
        sealed = recover(folder)
    assert [p.name for p in sealed] == ["exposures-r-999999999-1-000001.jsonl"]
    assert sealed[0].read_bytes() == b'{"i": 3}\n{"i": 4}\n'
    records, report = read_records(folder)
    assert len(records) == 5 and not report.torn and not report.unsealed


def test_live_writer_segments_are_not_recovered(tmp_path):
    folder = tmp_path / "s"
    (folder).mkdir()
    live = folder / f".exposures-r-{os.getpid()}-1-000001.jsonl.tmp"
    live.write_bytes(b'{"i": 1}\n')
    assert recover(folder) == []
    assert live.exists()


def test_full_queue_drops_are_counted_and_recorded(tmp_path):
    gate = threading.Event()

    def slow(item):
        gate.wait(10)
        return item

    folder = tmp_path / "exp" / "exposures"
    writer = SegmentWriter(folder, "exposures", queue_size=2, expand=slow, labels={"experiment": "exp"})
    accepted = sum(writer.submit(_records(4, 4 * i), count=4) for i in range(20))
    gate.set()
    writer.close()
    assert writer.dropped > 0
    assert writer.dropped + writer.written == 80
    assert writer.submitted == writer.written == accepted * 4
    assert dropped_total(tmp_path / "exp") == writer.dropped
    marker = json.loads((tmp_path / "exp" / "_drops").glob("*.jsonl").__next__().read_text().splitlines()[-1])
    assert marker["experiment"] == "exp" and marker["stream"] == "exposures"


def test_logs_show_and_recover_commands(tmp_path, capsys):
    from tritonab.cli import main

    folder = tmp_path / "exp" / "exposures"
    writer = SegmentWriter(folder, "exposures", max_records=2)
    writer.submit(_records(3))
    writer.close()
    (folder / ".exposures-r-999999999-1-000001.jsonl.tmp").write_bytes(b'{"i": 9}\n{"i"')
    assert main(["logs", "show", str(tmp_path), "exp"]) == 0
    out = capsys.readouterr().out
    assert "exposures: 2 sealed + 1 unsealed segment(s), 4 record(s), 1 torn tail(s)" in out
    assert main(["logs", "recover", str(folder)]) == 0
    assert "1 segment(s) recovered" in capsys.readouterr().out
    assert main(["logs", "show", str(tmp_path), "exp"]) == 0
    assert "3 sealed + 0 unsealed segment(s), 4 record(s), 0 torn" in capsys.readouterr().out


def test_one_pump_writes_several_writers_on_one_thread(tmp_path):
    pump = segments.Pump("test-pump", linger_s=0.001)
    a = SegmentWriter(tmp_path / "a", "exposures", pump=pump)
    b = SegmentWriter(tmp_path / "b", "payloads", pump=pump)
    assert a.pump is pump and b.pump is pump  # no thread of their own
    assert [t.name for t in threading.enumerate()].count("test-pump") == 1
    for i in range(10):
        a.submit(_records(2, 2 * i), count=2)
        b.submit(_records(1, i))
    a.flush()
    b.flush()
    # Written (and flushed to the OS) before any close: the live segments hold them.
    assert len(read_records(tmp_path / "a")[0]) == 20 and len(read_records(tmp_path / "b")[0]) == 10
    a.close()  # a shared pump's writer seals alone; the pump serves the other on
    assert a.segments and not list((tmp_path / "a").glob(".*.tmp"))
    assert not a.submit(_records(1)) and a.dropped == 1
    b.submit(_records(1, 10))
    pump.close()
    records, report = read_records(tmp_path / "b")
    assert [r["i"] for r in records] == list(range(11)) and not report.unsealed
    assert (a.written, b.written) == (20, 11) and a.cpu_s > 0


def test_an_idle_pump_wakes_for_a_submit(tmp_path):
    writer = SegmentWriter(tmp_path / "s", "exposures", linger_s=0.0)
    time.sleep(0.05)  # the pump is asleep on its event now
    writer.submit(_records(3))
    deadline = time.monotonic() + 0.5  # far below the idle wake-up (1 s)
    while writer.written < 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    assert writer.written == 3
    writer.close()
