"""Gate logic, thresholds parsing, ratio intervals, reports, and gating from CSVs."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats

from tritonab.cli import main
from tritonab.errors import PerfError
from tritonab.perf import (
    CompareResult,
    GateThresholds,
    LevelComparison,
    PerfRecord,
    compare_records,
    evaluate_gate,
    load_compare,
    load_thresholds,
    ratio_estimate,
    save_compare,
    write_perf_csv,
    write_report,
)


def _record(throughput, p99_us, errors=0, count=1000, load=1):
    return PerfRecord(
        "concurrency",
        load,
        throughput,
        p99_us / 2,
        p99_us * 0.8,
        p99_us * 0.9,
        p99_us,
        count=count,
        errors=errors,
    )


def _result(base, cand, windows=True) -> CompareResult:
    ratios = {
        "throughput": ratio_estimate("throughput", [base.throughput] * 3, [cand.throughput] * 3),
        "p50": ratio_estimate("p50", [base.p50_us] * 3, [cand.p50_us] * 3),
        "p99": ratio_estimate("p99", [base.p99_us] * 3, [cand.p99_us] * 3),
    }
    figures = [{"throughput": 1.0, "p50": 1.0, "p99": 1.0, "count": 1, "errors": 0}] * 3
    level = LevelComparison(
        "concurrency", 1, base, cand, ratios, figures if windows else [], figures if windows else []
    )
    return CompareResult("base", "cand", [level])


def test_ratio_estimate_matches_t_interval():
    b, c = [100, 110, 90, 105], [120, 125, 100, 130]
    r = ratio_estimate("p99", b, c, 0.9)
    logs = [math.log(y / x) for x, y in zip(b, c)]
    mean, se = sum(logs) / 4, stats.sem(logs)
    lo, hi = stats.t.interval(0.9, 3, loc=mean, scale=se)
    assert round(r.estimate, 10) == round(math.exp(mean), 10)
    assert (round(r.ci_low, 10), round(r.ci_high, 10)) == (round(math.exp(lo), 10), round(math.exp(hi), 10))
    assert r.n == 4


def test_ratio_estimate_degenerate():
    assert ratio_estimate("p50", [1.0], [2.0]).ci_low is None
    empty = ratio_estimate("p50", [float("nan")], [1.0])
    assert empty.n == 0 and math.isnan(empty.estimate)


def test_gate_pass_and_fail():
    t = GateThresholds(min_throughput_ratio=0.9, max_p99_ratio=1.5, p99_sla_ms=10, max_error_rate=0.01)
    passed = evaluate_gate(_result(_record(1000, 2000), _record(980, 2500, errors=1)), t)
    assert passed.passed and passed.exit_code == 0
    assert [c.status for c in passed.checks] == ["PASS"] * 4
    failed = evaluate_gate(_result(_record(1000, 2000), _record(500, 22000, errors=50)), t)
    assert failed.exit_code == 1
    assert [c.status for c in failed.checks] == ["FAIL"] * 4
    assert failed.to_dict()["verdict"] == "FAIL"


def test_a_threshold_that_cannot_be_evaluated_fails():
    base = PerfRecord("concurrency", 1, 100, 1, 1, 1, 1000)
    gate = evaluate_gate(_result(base, base), GateThresholds(max_error_rate=0.0))
    assert not gate.passed and gate.exit_code == 1
    check = gate.checks[0]
    assert (check.status, check.value) == ("FAIL", None)
    assert check.detail.startswith("could not be evaluated: unknown: the result has no failed-request counts")
    nan = PerfRecord("concurrency", 1, float("nan"), 1, 1, 1, 1000)
    gate = evaluate_gate(_result(base, nan), GateThresholds(min_throughput_ratio=0.5))
    assert [c.status for c in gate.checks] == ["FAIL"]


def test_thresholds_yaml_and_overrides(tmp_path):
    path = tmp_path / "gate.yaml"
    path.write_text("gate:\n  min_throughput_ratio: 0.9\n  max_p99_ratio: 1.2\n", encoding="utf-8")
    t = load_thresholds(path, max_p99_ratio=1.5, p99_sla_ms=None)
    assert (t.min_throughput_ratio, t.max_p99_ratio, t.p99_sla_ms) == (0.9, 1.5, None)
    path.write_text("max_p99_ratio: -1\n", encoding="utf-8")
    with pytest.raises(PerfError, match="gate.yaml`: max_p99_ratio: Input should be greater than 0"):
        load_thresholds(path)
    path.write_text("max_p99: 2\n", encoding="utf-8")
    with pytest.raises(PerfError, match="gate.yaml`: max_p99: Extra inputs are not permitted"):
        load_thresholds(path)
    with pytest.raises(PerfError, match="no gate threshold given"):
        load_thresholds(None)


def test_compare_json_round_trip_and_report(tmp_path):
    result = _result(_record(1000, 2000), _record(900, 2600))
    save_compare(result, tmp_path / "c.json")
    again = load_compare(tmp_path / "c.json")
    assert again.levels[0].candidate.p99_us == 2600
    assert again.levels[0].ratios["p99"].estimate == pytest.approx(1.3)
    gate = evaluate_gate(again, GateThresholds(max_p99_ratio=1.2))
    report = write_report(again, tmp_path / "rep", gate)
    text = report.read_text()
    assert "**Gate: FAIL**" in text and "![latency_vs_throughput.png]" in text
    assert (tmp_path / "rep" / "latency_vs_throughput.png").stat().st_size > 1000
    assert (tmp_path / "rep" / "ratios.png").exists()
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    with pytest.raises(PerfError, match="not a `perf compare` result"):
        load_compare(tmp_path / "x.json")


def test_compare_records_matches_levels():
    base = [_record(1000, 2000, load=1), _record(1500, 3000, load=2)]
    cand = [_record(800, 2000, load=2)]
    result = compare_records(base, cand)
    assert [lv.load for lv in result.levels] == [2]
    assert result.levels[0].ratios["throughput"].estimate == pytest.approx(800 / 1500)
    with pytest.raises(PerfError, match="share no load level"):
        compare_records(base, [_record(1, 1, load=7)])


def test_cli_gate_from_csvs(tmp_path, capsys):
    write_perf_csv([_record(1000, 2000, load=1)], tmp_path / "b.csv")
    write_perf_csv([_record(990, 2100, load=1)], tmp_path / "c.csv")
    write_perf_csv([_record(400, 9000, load=1)], tmp_path / "slow.csv")
    args = [
        "perf",
        "gate",
        "--baseline-csv",
        str(tmp_path / "b.csv"),
        "--min-throughput-ratio",
        "0.9",
        "--max-p99-ratio",
        "1.5",
        "--json",
        str(tmp_path / "g.json"),
    ]
    assert main([*args, "--candidate-csv", str(tmp_path / "c.csv")]) == 0
    assert json.loads((tmp_path / "g.json").read_text())["verdict"] == "PASS"
    assert main([*args, "--candidate-csv", str(tmp_path / "slow.csv"), "--report", str(tmp_path / "r")]) == 1
    assert json.loads((tmp_path / "g.json").read_text())["verdict"] == "FAIL"
    assert "FAIL" in capsys.readouterr().out
    assert main(["perf", "gate", "--max-p99-ratio", "1"]) == 2


def test_cli_gate_on_csvs_cannot_pass_an_error_rate(tmp_path, capsys):
    write_perf_csv([_record(1000, 2000, load=1)], tmp_path / "b.csv")
    write_perf_csv([_record(1000, 2000, load=1)], tmp_path / "c.csv")
    argv = [
        "perf",
        "gate",
        "--baseline-csv",
        str(tmp_path / "b.csv"),
        "--candidate-csv",
        str(tmp_path / "c.csv"),
    ]
    assert main([*argv, "--max-error-rate", "0.001", "--json", str(tmp_path / "g.json")]) == 1
    verdict = json.loads((tmp_path / "g.json").read_text())
    assert verdict["verdict"] == "FAIL"
    assert "no failed-request counts" in verdict["checks"][0]["detail"]
    assert main([*argv, "--max-p99-ratio", "1.1", "--out", str(tmp_path / "r.json")]) == 0
    # The comparison saved from the CSVs carries no error counts either.
    assert main(["perf", "gate", "--result", str(tmp_path / "r.json"), "--max-error-rate", "0.001"]) == 1
