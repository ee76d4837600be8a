"""Residency that binds: writes are checked by real path (symlinks resolved), refusals
are audited, and `logs verify-residency` finds files outside their region."""

from __future__ import annotations

import json

import pytest

from tritonab.cli import main
from tritonab.errors import SecurityError
from tritonab.monitoring import audit
from tritonab.monitoring.outcomes import OutcomeRecord, append_outcome
from tritonab.security import POLICY_ENV, REGION_ENV, ResidencyError, check_write, load_policy, scan


@pytest.fixture
def world(tmp_path):
    """Two regions' storage and a policy file naming them (roots relative to the file)."""
    (tmp_path / "eu").mkdir()
    (tmp_path / "us").mkdir()
    policy = tmp_path / "regions.yaml"
    policy.write_text("regions:\n  eu-west:\n    roots: [eu]\n  us-east:\n    roots: [us]\n")
    return tmp_path, policy


def test_a_symlink_into_another_region_is_refused_and_audited(world):
    root, policy_file = world
    policy = load_policy(policy_file)
    (root / "eu" / "logs").symlink_to(root / "us")
    assert check_write(root / "eu" / "a.jsonl", policy, "eu-west") == (root / "eu" / "a.jsonl").resolve()
    trail = root / "eu" / "audit.jsonl"
    with pytest.raises(ResidencyError, match=r"resolves to `.*/us/x.jsonl`, in region `us-east`"):
        check_write(root / "eu" / "logs" / "x.jsonl", policy, "eu-west", audit_log=trail, writer="t")
    (record,) = audit.read(trail)
    assert record["event"] == "residency.refused" and record["region"] == "eu-west"
    assert record["target"].endswith("/us/x.jsonl")


def test_a_path_that_only_looks_inside_is_refused(world):
    root, policy_file = world
    policy = load_policy(policy_file)
    (root / "eu-copy").mkdir()
    with pytest.raises(ResidencyError, match="in no region of the policy"):
        check_write(root / "eu-copy" / "a", policy, "eu-west")
    with pytest.raises(ResidencyError, match="region `mars` is not in the region policy"):
        check_write(root / "eu" / "a", policy, "mars")


def test_a_bad_policy_names_the_field(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("regions:\n  eu:\n    roots: []\n")
    with pytest.raises(SecurityError, match=r"`.*p.yaml`: regions.eu.roots: List should have at least 1"):
        load_policy(path)


def test_outcome_writes_follow_the_policy(world, monkeypatch):
    root, policy_file = world
    monkeypatch.setenv(POLICY_ENV, str(policy_file))
    monkeypatch.setenv(REGION_ENV, "eu-west")
    outcome = OutcomeRecord(unit_id="u1", metric="m", value=1.0)
    assert append_outcome(root / "eu" / "logs", outcome).exists()
    with pytest.raises(ResidencyError, match="outcomes: "):
        append_outcome(root / "us" / "logs", outcome)
    assert not (root / "us" / "logs" / "outcomes").exists()
    assert audit.read(root / "us" / "logs" / "audit.jsonl")[-1]["event"] == "residency.refused"


def test_verify_residency_scans_real_paths(world, capsys):
    root, policy_file = world
    logs = root / "eu" / "logs"
    (logs / "exp" / "exposures").mkdir(parents=True)
    (logs / "exp" / "spec.json").write_text(json.dumps({"logging": {"sink": {"region": "eu-west"}}}))
    (logs / "exp" / "exposures" / "a.jsonl").write_text("{}\n")
    assert main(["logs", "verify-residency", str(logs), "--policy", str(policy_file)]) == 0
    (root / "us" / "b.jsonl").write_text("{}\n")
    (logs / "exp" / "exposures" / "b.jsonl").symlink_to(root / "us" / "b.jsonl")
    assert main(["logs", "verify-residency", str(logs), "--policy", str(policy_file)]) == 1
    out = capsys.readouterr().out
    assert "b.jsonl` -> `" in out and "lies in region `us-east`, not in region `eu-west`" in out
    found = scan(logs, load_policy(policy_file), "eu-west")
    assert [f.path.name for f in found] == ["b.jsonl"]


def test_the_example_policy_loads_with_roots_from_its_folder():
    from pathlib import Path

    examples = Path(__file__).resolve().parents[3] / "examples"
    policy = load_policy(examples / "regions.yaml")
    assert sorted(policy.regions) == ["eu-west-1", "local", "us-east-1"]
    assert policy.roots("local") == (str((examples.parent / "logs").resolve()),)
