"""Residency (spec + serve check, audited), the hash-chained audit log, and retention."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tritonab.cli import main
from tritonab.cli.serve import check_residency
from tritonab.ensembles.config import read_config, set_parameter, write_config
from tritonab.errors import MonitoringError, SpecError
from tritonab.monitoring import audit
from tritonab.monitoring.retention import parse_duration, prune

REPO = Path(__file__).resolve().parents[3] / "model_repository"


def test_sink_outside_allowed_regions_is_a_spec_error_with_its_path(make_spec):
    with pytest.raises(
        SpecError,
        match=r"logging\.sink\.region: region `us-east` is not in "
        r"allowed_regions \['eu-west', 'eu-central'\]",
    ):
        make_spec(allowed_regions=["eu-west", "eu-central"], logging={"sink": {"region": "us-east"}})
    assert make_spec(allowed_regions=["local"]).logging.sink.region == "local"


def test_existing_specs_stay_valid_with_logging_defaults(make_spec):
    spec = make_spec()
    assert spec.logging.sample_rate == 0 and spec.allowed_regions is None and spec.success is None


def test_redact_and_hash_must_not_overlap(make_spec):
    with pytest.raises(SpecError, match=r"logging: names both redacted and hashed: \['x'\]"):
        make_spec(logging={"redact": ["x"], "hash": ["x"]})


def _repository_with_bad_sink(tmp_path: Path) -> Path:
    """A repository whose router config holds a spec that bypassed validation."""
    repo = tmp_path / "repo"
    (repo / "demo_ab" / "1").mkdir(parents=True)
    config = read_config(REPO / "demo_ab" / "config.pbtxt")
    data = json.loads(next(v.string_value for k, v in config.parameters.items() if k == "experiment"))
    data["allowed_regions"] = ["eu-west"]
    data["logging"] = {**data.get("logging", {}), "sink": {"region": "us-east", "path": None}}
    set_parameter(config, "experiment", json.dumps(data))
    write_config(repo / "demo_ab" / "config.pbtxt", config)
    (repo / "demo_ab" / "1" / "model.py").write_text("")
    return repo


def test_serving_a_bad_sink_is_refused_and_audited(tmp_path, capsys):
    repo, logs = _repository_with_bad_sink(tmp_path), tmp_path / "logs"
    with pytest.raises(SpecError, match=r"router `demo_ab`: .*logging\.sink\.region: region `us-east`"):
        check_residency(repo, logs)
    assert (
        main(["serve", "--repository", str(repo), "--log-dir", str(logs)]) == 2
    )  # a spec the policy refuses
    assert "logging.sink.region" in capsys.readouterr().err
    records = audit.read(audit.audit_path(logs))
    assert [r["event"] for r in records] == ["sink.rejected", "sink.rejected"]
    assert records[0]["source"] == "router `demo_ab`" and "us-east" in records[0]["reason"]
    assert audit.verify(audit.audit_path(logs)).ok


def test_audit_chain_verifies_and_detects_tampering(tmp_path):
    path = tmp_path / "audit.jsonl"
    for i in range(4):
        audit.append(path, "test", i=i)
    report = audit.verify(path)
    assert report.ok and report.records == 4
    lines = path.read_text().splitlines()
    assert json.loads(lines[0])["prev"] == audit.GENESIS

    edited = lines.copy()
    edited[1] = edited[1].replace('"i": 1', '"i": 7')
    path.write_text("\n".join(edited) + "\n")
    assert audit.verify(path).broken_at == (3,) and audit.verify(path).first_bad == 2

    path.write_text("\n".join(lines[:1] + lines[2:]) + "\n")  # a deleted record
    assert audit.verify(path).broken_at == (2,) and audit.verify(path).first_bad == 2

    path.write_text("\n".join([lines[1], lines[0], *lines[2:]]) + "\n")  # reordered
    assert not audit.verify(path).ok


def test_prune_removes_old_sealed_files_and_audits(tmp_path):
    old = tmp_path / "exp" / "exposures" / "exposures-a-1-1-000001.jsonl"
    new = tmp_path / "exp" / "exposures" / "exposures-a-1-1-000002.jsonl"
    unsealed = tmp_path / "exp" / "exposures" / ".exposures-a-1-1-000003.jsonl.tmp"
    outcome = tmp_path / "outcomes" / "added-x.jsonl"
    for p in (old, new, unsealed, outcome):
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text('{"a": 1}\n')
    month_ago = time.time() - 31 * 86400
    for p in (old, unsealed, outcome):
        os.utime(p, (month_ago, month_ago))
    dry = prune(tmp_path, parse_duration("30d"), dry_run=True)
    assert set(dry.removed) == {old, outcome} and old.exists()
    assert not audit.audit_path(tmp_path).exists()
    assert main(["logs", "prune", str(tmp_path), "--older-than", "30d"]) == 0
    assert not old.exists() and not outcome.exists() and new.exists() and unsealed.exists()
    (record,) = audit.read(audit.audit_path(tmp_path))
    assert record["event"] == "logs.prune"
    assert sorted(record["files"]) == ["exp/exposures/exposures-a-1-1-000001.jsonl", "outcomes/added-x.jsonl"]


@pytest.mark.parametrize("text", ["30", "d30", "3 days", "-1d"])
def test_bad_durations(text):
    with pytest.raises(MonitoringError, match=f"duration `{text}` must be"):
        parse_duration(text)
