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
from tritonab.monitoring.compaction import ROLLUP_DIR, compact, compact_tree, rollups
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


def _outcome_lines(rows):
    return "".join(json.dumps(r) + "\n" for r in rows)


def _more(folder, start):
    """Exposures written after a compaction, and outcomes some of which precede their
    unit's first exposure (counted from it on only)."""
    rng = np.random.default_rng(start)
    writer = SegmentWriter(folder / "exp" / "exposures", "exposures", instance="late", max_records=150)
    writer.submit(
        [
            {
                "time": 4000.0 + i,
                "experiment": "exp",
                "variant": "control" if i % 3 else "treatment",
                "unit_id": f"u{(start + i) % 400}",
                "request_id": f"late{i}",
                "latency_us": round(float(rng.gamma(2.0, 150.0)), 1),
            }
            for i in range(400)
        ]
    )
    writer.close()
    early = [{"unit_id": f"u{i}", "metric": "buy", "value": 1.0, "time": 900.0 + i} for i in range(0, 400, 7)]
    other = [
        {"unit_id": f"u{i}", "metric": "click", "value": float(i % 2), "time": 6000.0} for i in range(380)
    ]
    (folder / OUTCOMES_DIR / f"more-{start}.jsonl").write_text(_outcome_lines(early + other))


def test_rollups_give_the_figures_of_the_rows_whatever_the_mix(logs, tmp_path, same):
    """Compacted files are analysed from their rollups, beside raw segments written since
    and raw Parquet files without rollups: the figures of an analysis of the rows."""
    folder, spec, _, _ = logs
    _more(folder, 1)
    reference = tmp_path / "reference"
    shutil.copytree(folder, reference)
    reports = compact_tree(folder)
    rolled = {p.parent.parent.name: p for r in reports.values() for p in r.rollups}
    assert set(rolled) == {"exposures", "outcomes"}  # payloads get none
    (exposure_file,) = reports[folder / "exp" / "exposures"].written
    found = rollups(exposure_file, "exposures")
    assert found is not None and set(found) == {"units", "latency"}
    assert all(p.stat().st_mtime == exposure_file.stat().st_mtime for p in found.values())
    for more in (folder, reference):  # new segments after the compaction, in both
        _more(more, 2)
    same(_summary(analyze("exp", reference, spec=spec)), _summary(analyze("exp", folder, spec=spec)))
    # A compacted file whose rollups are gone is read row by row: the same figures.
    for path in found.values():
        path.unlink()
    assert rollups(exposure_file, "exposures") is None
    same(_summary(analyze("exp", reference, spec=spec)), _summary(analyze("exp", folder, spec=spec)))


def test_outcomes_keyed_by_request_are_mapped_beside_rollups(logs, same):
    folder, spec, _, _ = logs
    by_request = [
        {"request_id": f"r{i}", "metric": "buy", "value": 2.0, "time": 1.0} for i in range(1, 600, 5)
    ]
    (folder / OUTCOMES_DIR / "by-request.jsonl").write_text(_outcome_lines(by_request))
    before = analyze("exp", folder, spec=spec)
    compact_tree(folder)
    assert not list(folder.rglob("*.jsonl*")) or all(p.name == "audit.jsonl" for p in folder.rglob("*.jsonl"))
    same(_summary(before), _summary(analyze("exp", folder, spec=spec)))


def test_a_rollup_left_without_its_file_is_never_read_and_is_removed(logs, same):
    folder, spec, _, _ = logs
    stream = folder / "exp" / "exposures"
    report = compact(stream)
    (data,) = report.written
    orphan = stream / ROLLUP_DIR / "compact-exposures-gone-1.units.parquet"
    shutil.copy2(stream / ROLLUP_DIR / f"{data.stem}.units.parquet", orphan)
    before = analyze("exp", folder, spec=spec)
    same(_summary(before), _summary(analyze("exp", folder, spec=spec)))
    again = compact(stream)
    assert orphan in again.removed and not orphan.exists()
    assert rollups(data, "exposures") is not None


def test_a_rollup_that_does_not_add_up_fails_the_compaction_and_removes_nothing(logs, monkeypatch):
    from tritonab.monitoring import compaction

    folder, _, _, _ = logs
    stream = folder / "exp" / "exposures"
    sources = sorted(stream.glob("*.jsonl"))
    broken = dict(compaction.ROLLUPS)
    fields, select, _ = broken["exposures"]["units"]
    broken["exposures"] = {"units": (fields, select, "sum(n) - 1")}
    monkeypatch.setattr(compaction, "ROLLUPS", broken)
    with pytest.raises(MonitoringError, match="records summed for"):
        compact(stream)
    assert sorted(stream.glob("*.jsonl")) == sources and not list(stream.glob("*.parquet"))
    assert not list((stream / ROLLUP_DIR).iterdir())
