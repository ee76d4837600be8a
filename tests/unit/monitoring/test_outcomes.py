"""Outcomes: parsing errors name the line and field; add copies; report_outcome appends."""

from __future__ import annotations

import json

import pytest

from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.errors import ClientError, MonitoringError
from tritonab.monitoring.outcomes import OUTCOMES_DIR, add_outcomes, parse_outcomes


def test_csv_and_jsonl_parse(tmp_path):
    csv = tmp_path / "o.csv"
    csv.write_text("unit_id,metric,value,time\nu1,buy,2.5,2026-11-30T10:00:00Z\nu2,buy,,\n")
    records = parse_outcomes(csv)
    assert [(r.unit_id, r.value) for r in records] == [("u1", 2.5), ("u2", 1.0)]
    assert records[0].time == 1796032800.0 and records[1].time is None
    jsonl = tmp_path / "o.jsonl"
    jsonl.write_text('{"request_id": "r1", "metric": "click", "time": 5}\n\n{"unit_id": 7, "metric": "m"}\n')
    records = parse_outcomes(jsonl)
    assert (records[0].request_id, records[0].time, records[1].unit_id) == ("r1", 5.0, "7")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"metric": "buy"}\n', r"line 1: needs `unit_id` or `request_id`"),
        (
            '{"unit_id": "u", "metric": "buy", "value": "lots"}\n',
            r"line 1: value: Input should be a valid number",
        ),
        (
            '{"unit_id": "u", "metric": "buy", "colour": 1}\n',
            r"line 1: colour: Extra inputs are not permitted",
        ),
        (
            '{"unit_id": "u", "metric": "buy", "time": "yesterday"}\n',
            r"line 1: time: time `yesterday` is neither epoch seconds nor ISO 8601",
        ),
        ('{"unit_id": "u", "metric": "a"}\n{"unit_id": "u", \n', r"line 2: not JSON"),
        ("[1, 2]\n", r"line 1: expected an object, got list"),
        ('{"unit_id": "u", "metric": ""}\n', r"line 1: metric: String should have at least 1 character"),
    ],
)
def test_jsonl_errors_name_line_and_field(tmp_path, text, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(MonitoringError, match=message):
        parse_outcomes(path)


def test_csv_errors(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("unit,value\nu1,1\n")
    with pytest.raises(MonitoringError, match=r"CSV header must name `metric`"):
        parse_outcomes(path)
    path.write_text("unit_id,metric,value\nu1,buy,1\nu2,buy,nan\n,buy,1\n")
    with pytest.raises(
        MonitoringError,
        match=r"2 invalid outcome record\(s\):\n.*line 3: value: "
        r"value must be "
        r"a finite number\n.*line 4: needs `unit_id`",
    ):
        parse_outcomes(path)
    with pytest.raises(MonitoringError, match=r"cannot be read"):
        parse_outcomes(tmp_path / "missing.csv")


def test_add_copies_validated_records_and_refuses_bad_files(tmp_path, capsys):
    src = tmp_path / "o.csv"
    src.write_text("unit_id,metric,value\nu1,buy,1\nu2,buy,0\n")
    logs = tmp_path / "logs"
    assert main(["outcomes", "add", str(src), "--log-dir", str(logs)]) == 0
    assert "added 2 outcome record(s)" in capsys.readouterr().out
    (copied,) = (logs / OUTCOMES_DIR).iterdir()
    assert [json.loads(line)["unit_id"] for line in copied.read_text().splitlines()] == ["u1", "u2"]
    src.write_text("unit_id,metric,value\nu1,buy,x\n")
    assert (
        main(["outcomes", "add", str(src), "--log-dir", str(logs)]) == 2
    )  # bad input, as every reader (issue 12: exit 2, never a traceback)
    assert len(list((logs / OUTCOMES_DIR).iterdir())) == 1
    assert add_outcomes  # the API behind the command


def test_report_outcome_appends_client_side(tmp_path, monkeypatch):
    client = ExperimentClient("127.0.0.1:1")
    client.report_outcome("correct", 1, unit_id="user-1", log_dir=tmp_path)
    monkeypatch.setenv("TRITONAB_LOG_DIR", str(tmp_path))
    client.report_outcome("correct", 0, request_id="r-9", experiment="demo_ab", time=12.0)
    lines = [json.loads(x) for f in (tmp_path / OUTCOMES_DIR).iterdir() for x in f.read_text().splitlines()]
    assert [(r["unit_id"], r["request_id"], r["value"]) for r in lines] == [
        ("user-1", None, 1.0),
        (None, "r-9", 0.0),
    ]
    assert lines[1]["time"] == 12.0 and lines[1]["experiment"] == "demo_ab"
    with pytest.raises(ClientError, match="needs `unit_id` or `request_id`"):
        client.report_outcome("correct", 1)
    monkeypatch.delenv("TRITONAB_LOG_DIR")
    with pytest.raises(ClientError, match=r"needs `log_dir` or \$TRITONAB_LOG_DIR"):
        client.report_outcome("correct", 1, unit_id="u")
    client.close()
