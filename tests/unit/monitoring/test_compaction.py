"""Compaction into Parquet loses nothing, double-counts nothing, and the analysis agrees."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.errors import MonitoringError
from tritonab.monitoring import audit
from tritonab.monitoring.analysis import analyze
from tritonab.monitoring.compaction import compact
from tritonab.monitoring.outcomes import OUTCOMES_DIR
from tritonab.monitoring.segments import SegmentWriter, read_records

SUCCESS = {"primary": {"name": "buy.per_exposure"}}


@pytest.fixture
def logs(tmp_path, make_spec):
    rng = np.random.default_rng(5)
    spec = make_spec(name="exp", success=SUCCESS)
    exposures = [
        {
            "time": 1000.0 + i,
            "experiment": "exp",
            "variant": "control" if i % 3 else "treatment",
            "unit_id": None if i % 50 == 0 else f"u{i % 300}",
            "request_id": f"r{i}",
            "row": 0,
            "model": "m",
            "version": 1,
            "latency_us": round(float(rng.gamma(2.0, 150.0)), 1),
            "ok": bool(i % 40),
            "region": "local",
        }
        for i in range(2000)
    ]
    writer = SegmentWriter(tmp_path / "exp" / "exposures", "exposures", max_records=300)
    for start in range(0, len(exposures), 100):
        writer.submit(exposures[start : start + 100])
    writer.close()
    payloads = [
        {
            "time": 1000.0 + i,
            "experiment": "exp",
            "request_id": f"r{i}",
            "unit_id": f"u{i}",
            "variants": ["control"],
            "inputs": {"input": [[0.5, float(i)]]},
            "outputs": {"control": {"probabilities": [[0.1, 0.9]]}},
            "region": "local",
        }
        for i in range(50)
    ]
    writer = SegmentWriter(tmp_path / "exp" / "payloads", "payloads", max_records=20)
    writer.submit(payloads)
    writer.close()
    (tmp_path / OUTCOMES_DIR).mkdir()
    (tmp_path / OUTCOMES_DIR / "o.jsonl").write_text(
        "".join(
            json.dumps(
                {"unit_id": f"u{i % 300}", "metric": "buy", "value": float(i % 7 == 0), "time": 5000.0}
            )
            + "\n"
            for i in range(900)
        )
    )
    return tmp_path, spec, exposures, payloads


def _summary(result):
    """What the analysis concluded, comparable across file formats."""
    data = json.loads(json.dumps(result.to_dict(), default=str))
    data.pop("warnings", None)
    return data


def test_compaction_keeps_every_record_and_the_analysis(logs, capsys, same):
    folder, spec, exposures, payloads = logs
    before = analyze("exp", folder, spec=spec)
    segments = sorted((folder / "exp" / "exposures").glob("*.jsonl"))
    assert len(segments) > 3
    newest = max(p.stat().st_mtime for p in segments)
    assert main(["logs", "compact", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "3 Parquet file(s)" in out
    assert not list((folder / "exp" / "exposures").glob("*.jsonl"))
    (parquet,) = (folder / "exp" / "exposures").glob("*.parquet")
    assert parquet.stat().st_mtime == newest  # retention sees the age of its newest record
    records, report = read_records(folder / "exp" / "exposures")
    assert report.parquet == [parquet] and report.records == len(exposures)
    assert sorted(records, key=lambda r: r["time"]) == exposures  # every field, every record
    payload_records, _ = read_records(folder / "exp" / "payloads")
    assert sorted(payload_records, key=lambda r: r["time"]) == payloads
    after = analyze("exp", folder, spec=spec)
    same(_summary(before), _summary(after))
    events = [r["event"] for r in audit.read(audit.audit_path(folder))]
    assert events.count("logs.compact") == 1 and "logs.read" in events  # reads are audited too


def test_a_crash_between_rename_and_removal_neither_loses_nor_doubles(logs):
    folder, spec, exposures, _ = logs
    stream = folder / "exp" / "exposures"
    keep = folder / "kept"
    shutil.copytree(stream, keep)
    report = compact(stream)
    assert report.records == len(exposures)
    for source in report.removed:  # as if the process died before removing them
        shutil.copy2(keep / source.name, stream / source.name)
    records, found = read_records(stream)
    assert len(records) == len(exposures) and found.sealed == []
    again = compact(stream)
    assert sorted(p.name for p in again.removed) == sorted(p.name for p in report.removed)
    assert again.written == [] and not list(stream.glob("*.jsonl"))


def test_a_torn_segment_is_not_compacted(logs):
    folder, _, _, _ = logs
    stream = folder / "exp" / "exposures"
    victim = sorted(stream.glob("*.jsonl"))[0]
    victim.write_bytes(victim.read_bytes() + b'{"time": 1')
    with pytest.raises(MonitoringError, match="incomplete record: not compacted"):
        compact(stream)
    assert not list(stream.glob("*.parquet")) and not list(stream.glob(".*"))


def test_compacting_nothing_or_a_missing_folder(tmp_path, capsys):
    assert compact(tmp_path).written == []
    assert main(["logs", "compact", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
