"""Logs encrypted at rest: the router's segments hold no plaintext, readers decrypt in
memory (logs show, analyze, recover), a torn tail keeps every whole chunk, and each
read for analysis is audited."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.backends._routing import RoutedBatch, Router
from tritonab.cli import main
from tritonab.errors import SecurityError
from tritonab.monitoring import audit
from tritonab.monitoring.analysis import analyze
from tritonab.monitoring.router_log import RouterLog
from tritonab.monitoring.segments import SegmentWriter, iter_records, read_records, recover, rotate_segments
from tritonab.security import LOG_KEY_ENV, generate_key


@pytest.fixture
def log_key(tmp_path, monkeypatch):
    key = generate_key(tmp_path / "logs.key")
    monkeypatch.setenv(LOG_KEY_ENV, str(tmp_path / "logs.key"))
    return key


def _everything_on_disk(folder) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_router_segments_hold_no_plaintext(tmp_path, log_key, make_spec, rows, run_batch):
    spec = make_spec(logging={"encrypt": True, "sample_rate": 1.0})
    router = Router(spec, ["x"], 64)
    log = RouterLog(spec, tmp_path / "logs", "exp_0_0", list(router.names))
    per_request = [{"x": rows(2, i)} for i in range(5)]
    params = [{"unit_id": f"secret-unit-{i}"} for i in range(5)]
    plan, results, outcome = run_batch(router, per_request, params)
    log.record(RoutedBatch(1000.0, [f"r{i}" for i in range(5)], params, per_request, plan, results, outcome))
    log.close()
    streams = tmp_path / "logs" / "exp"
    names = sorted(p.name for p in (streams / "exposures").iterdir())
    assert len(names) == 1 and names[0].endswith(".jsonl.enc")
    assert b"secret-unit" not in _everything_on_disk(streams / "exposures")
    assert b"secret-unit" not in _everything_on_disk(streams / "payloads")
    records, _ = read_records(streams / "exposures")
    assert sorted({r["unit_id"] for r in records}) == [f"secret-unit-{i}" for i in range(5)]
    assert len(list(iter_records(streams / "payloads"))) == 5


def test_the_stored_spec_never_holds_the_hash_salt(tmp_path, make_spec):
    spec = make_spec(logging={"hash": ["unit_id"], "hash_salt": "pepper-123"})
    RouterLog(spec, tmp_path, "exp_0_0", ["control", "treatment"]).close()
    stored = json.loads((tmp_path / "exp" / "spec.json").read_text())
    assert stored["logging"]["hash_salt"] == "[REDACTED]" and "pepper-123" not in json.dumps(stored)
    assert stored["variants"] == json.loads(spec.to_json())["variants"]


def test_encrypt_without_a_key_refuses_to_log(tmp_path, make_spec, monkeypatch):
    spec = make_spec(logging={"encrypt": True})
    monkeypatch.delenv(LOG_KEY_ENV, raising=False)
    with pytest.raises(SecurityError, match=r"logging.encrypt is true but \$TRITONAB_LOG_KEY_FILE"):
        RouterLog(spec, tmp_path, "exp_0_0", ["control", "treatment"])
    assert not (tmp_path / "exp").exists()


def test_a_torn_encrypted_tail_keeps_every_whole_chunk(tmp_path, log_key):
    folder = tmp_path / "exp" / "exposures"
    writer = SegmentWriter(folder, "exposures", key=log_key)
    for i in range(3):
        writer.submit([{"n": i}])
        writer.flush()
    segment = writer._open_path  # still open: a live (or killed) writer's segment
    assert segment is not None and segment.name.endswith(".jsonl.enc.tmp")
    with open(segment, "ab") as handle:
        handle.write(b"\x00\x00\x01\x00partial")  # a chunk cut short by a crash
    with pytest.warns(UserWarning, match="incomplete record"):
        records, report = read_records(folder)
    assert [r["n"] for r in records] == [0, 1, 2] and len(report.torn) == 1
    with pytest.warns(UserWarning, match="cut an incomplete"):
        (sealed,) = recover(folder, force=True)
    assert [r["n"] for r in iter_records(folder, include_unsealed=False)] == [0, 1, 2]
    assert sealed.name.endswith(".jsonl.enc")


def test_without_the_key_readers_refuse(tmp_path, log_key, monkeypatch, capsys):
    folder = tmp_path / "exp" / "exposures"
    writer = SegmentWriter(folder, "exposures", key=log_key)
    writer.submit([{"n": 1}])
    writer.close()
    monkeypatch.delenv(LOG_KEY_ENV)
    assert main(["logs", "show", str(tmp_path), "exp"]) == 2
    assert "is encrypted: pass --key-file or set $TRITONAB_LOG_KEY_FILE" in capsys.readouterr().err
    assert main(["logs", "show", str(tmp_path), "exp", "--key-file", str(tmp_path / "logs.key")]) == 0
    assert "exposures: 1 sealed + 0 unsealed segment(s), 1 record(s)" in capsys.readouterr().out
    reads = [r for r in audit.read(tmp_path / "audit.jsonl") if r["event"] == "logs.read"]
    assert len(reads) == 2 and reads[-1]["action"] == "logs show" and reads[-1]["actor"]
    assert reads[-1]["paths"] == [str(p.relative_to(tmp_path)) for p in sorted(folder.iterdir())]


def _exposures(n: int) -> list[dict]:
    rng = np.random.default_rng(0)
    return [
        {
            "time": 1000.0 + i,
            "experiment": "exp",
            "variant": ["control", "treatment"][i % 2],
            "unit_id": f"u{i}",
            "request_id": f"r{i}",
            "latency_us": float(rng.gamma(2.0, 100.0)),
        }
        for i in range(n)
    ]


def test_analysis_of_encrypted_logs_equals_the_plain_one_and_is_audited(tmp_path, log_key, same):
    records = _exposures(400)
    for folder, key in (("plain", None), ("enc", log_key)):
        writer = SegmentWriter(tmp_path / folder / "exp" / "exposures", "exposures", key=key, max_records=150)
        for start in range(0, 400, 50):
            writer.submit(records[start : start + 50])
        writer.close()
        outcomes = tmp_path / folder / "outcomes"
        outcomes.mkdir()
        lines = [
            {"unit_id": f"u{i}", "metric": "buy", "value": 1.0, "time": 5000.0} for i in range(0, 400, 3)
        ]
        (outcomes / "o.jsonl").write_text("".join(json.dumps(o) + "\n" for o in lines))
    plain = analyze("exp", tmp_path / "plain").to_dict()
    encrypted = analyze("exp", tmp_path / "enc").to_dict()
    # Equal up to the order of floating-point sums (DuckDB aggregates in parallel).
    same(encrypted["metrics"], plain["metrics"])
    same(encrypted["srm"], plain["srm"])
    assert b"u17" not in _everything_on_disk(tmp_path / "enc" / "exp")
    (read,) = [r for r in audit.read(tmp_path / "enc" / "audit.jsonl") if r["event"] == "logs.read"]
    assert read["action"] == "analyze" and read["experiment"] == "exp" and len(read["paths"]) == 3


def test_rotate_reencrypts_sealed_segments(tmp_path, log_key):
    folder = tmp_path / "exp" / "exposures"
    writer = SegmentWriter(folder, "exposures", key=log_key)
    writer.submit([{"n": 1}])
    writer.close()
    new = generate_key(tmp_path / "new.key")
    assert len(rotate_segments(tmp_path, log_key, new)) == 1
    with pytest.raises(SecurityError, match="not under the given key"):
        list(iter_records(folder, key=log_key))
    assert [r["n"] for r in iter_records(folder, key=new)] == [1]
