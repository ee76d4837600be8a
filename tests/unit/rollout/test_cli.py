"""`tritonab audit verify|show` and `tritonab rollout status`, offline."""

from __future__ import annotations

import json

import pytest

from tritonab.cli import main
from tritonab.monitoring import audit


@pytest.fixture()
def log(tmp_path):
    path = tmp_path / "audit.jsonl"
    for i in range(4):
        audit.append(path, "rollout.advance", actor="test", step=i, weights={"control": 1 - i / 10})
    return path


def test_verify_intact_chain(log, capsys):
    assert main(["audit", "verify", str(log)]) == 0
    assert "4 records, chain intact" in capsys.readouterr().out


def test_verify_names_an_edited_line(log, capsys):
    lines = log.read_text().splitlines()
    lines[1] = lines[1].replace('"step": 1', '"step": 9')
    log.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify", str(log)]) == 1
    assert "first bad record at line 2" in capsys.readouterr().out  # the edited line itself


def test_verify_names_a_deleted_line(log, capsys):
    lines = log.read_text().splitlines()
    del lines[1]
    log.write_text("\n".join(lines) + "\n")
    assert main(["audit", "verify", str(log)]) == 1
    assert "first bad record at line 2" in capsys.readouterr().out  # the line after the gap


def test_verify_missing_file(tmp_path, capsys):
    assert main(["audit", "verify", str(tmp_path / "none.jsonl")]) == 1
    assert "cannot be read" in capsys.readouterr().err


def test_show(log, capsys):
    assert main(["audit", "show", str(log), "--last", "2"]) == 0
    assert capsys.readouterr().out.count("rollout.advance") == 2


def test_status_reads_the_state_file(tmp_path, capsys):
    state = {
        "kind": "canary",
        "experiment": "exp",
        "baseline": "control",
        "candidate": "treatment",
        "spec": {"steps": [10, 50, 100]},
        "status": "progressing",
        "step": 1,
        "weights": {"control": 0.5, "treatment": 0.5},
        "gate": "passed",
        "ticks": 3,
        "last_outcome": "advance",
        "last_reason": "all checks passed",
    }
    path = tmp_path / "state.json"
    path.write_text(json.dumps(state))
    assert main(["rollout", "status", "--state", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2/3 (50%)" in out and "progressing" in out
    assert main(["rollout", "status", "--state", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 1


def test_status_without_state_exits_2(tmp_path, capsys):
    assert main(["rollout", "status", "--state", str(tmp_path / "none.json")]) == 2
    assert "no rollout state at" in capsys.readouterr().err


def test_run_with_a_bad_spec_exits_2(tmp_path, capsys):
    spec = tmp_path / "rollout.yaml"
    spec.write_text("experiment: e\ncandidate: t\nsteps: [10, 50]\n")
    assert main(["rollout", "run", str(spec), "--triton", "127.0.0.1:9"]) == 2
    assert "steps: the last step must be 100" in capsys.readouterr().err
    spec.write_text("strategy: linear\nexperiment: e\n")
    assert main(["rollout", "run", str(spec), "--triton", "127.0.0.1:9"]) == 2
    assert "strategy `linear`" in capsys.readouterr().err


def test_run_with_an_unreachable_server_exits_2(tmp_path, capsys):
    spec = tmp_path / "rollout.yaml"
    spec.write_text("experiment: e\ncandidate: t\nsteps: [100]\n")
    code = main(
        [
            "rollout",
            "run",
            str(spec),
            "--triton",
            "127.0.0.1:9",
            "--state",
            str(tmp_path / "s.json"),
            "--audit",
            str(tmp_path / "a.jsonl"),
        ]
    )
    assert code == 2
    assert "cannot read the router" in capsys.readouterr().err


def test_run_dispatches_blue_green_specs(tmp_path, capsys):
    spec = tmp_path / "bg.yaml"
    spec.write_text("strategy: bluegreen\nexperiment: r\nvariant: main\nversion: 2\n")
    code = main(
        [
            "rollout",
            "run",
            str(spec),
            "--triton",
            "127.0.0.1:9",
            "--state",
            str(tmp_path / "s.json"),
            "--audit",
            str(tmp_path / "a.jsonl"),
        ]
    )
    assert code == 2
    assert "blue-green on `r`" in capsys.readouterr().err
    spec.write_text("strategy: bluegreen\nexperiment: r\nvariant: main\n")
    assert main(["rollout", "run", str(spec), "--triton", "127.0.0.1:9"]) == 2
    assert "version: Field required" in capsys.readouterr().err
