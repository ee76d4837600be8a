"""The alert rules of `monitoring/rules/`, checked and unit-tested by the real promtool.

Every `<name>.rules.yaml` must pass `promtool check rules` and have a
`tests/unit/monitoring/rules/<name>.test.yaml` that `promtool test rules` passes and that
exercises each of its alerts. The thresholds a deploy spec sets are shown to change what
fires, by running the same cases against rules with other thresholds.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tritonab.errors import MonitoringError
from tritonab.monitoring.alerts import (
    RULES_DIR,
    bucket_labels,
    config_records,
    load_rule_groups,
    read_rule_file,
    rule_files,
    set_thresholds,
)

CASES_DIR = Path(__file__).resolve().parent / "rules"
RULE_FILES = rule_files()
CASE_FILES = sorted(CASES_DIR.glob("*.test.yaml"))


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run Debian's promtool (installed with `prometheus` by make)."""
    binary = shutil.which("promtool")
    assert binary, "promtool is not on PATH: install Debian's `prometheus` package (make does)"
    return subprocess.run([binary, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_shipped_rules_include_the_router_rules():
    assert RULES_DIR / "router.rules.yaml" in RULE_FILES


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_each_rule_file_passes_promtool_check(path):
    done = promtool("check", "rules", str(path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_each_rule_file_has_cases_covering_every_alert(path):
    cases = CASES_DIR / path.name.replace(".rules.yaml", ".test.yaml")
    assert cases.is_file(), f"{path.name} has no promtool cases at {cases}"
    alerts = {r["alert"] for g in read_rule_file(path) for r in g["rules"] if "alert" in r}
    data = yaml.safe_load(cases.read_text())
    tested = {a["alertname"] for t in data["tests"] for a in t.get("alert_rule_test", [])}
    assert alerts - tested == set(), f"alerts without a promtool case: {sorted(alerts - tested)}"
    firing = {
        a["alertname"] for t in data["tests"] for a in t.get("alert_rule_test", []) if a.get("exp_alerts")
    }
    assert alerts - firing == set(), f"alerts never shown to fire: {sorted(alerts - firing)}"


@pytest.mark.parametrize("cases", CASE_FILES, ids=lambda p: p.name)
def test_promtool_cases_pass(cases):
    done = promtool("test", "rules", cases.name, cwd=cases.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _cases_against(groups, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The router cases, run against `groups` instead of the shipped file."""
    rules = tmp_path / "router.rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    data = yaml.safe_load((CASES_DIR / "router.test.yaml").read_text())
    data["rule_files"] = [str(rules)]
    cases = tmp_path / "router.test.yaml"
    cases.write_text(yaml.safe_dump(data, sort_keys=False))
    return promtool("test", "rules", str(cases))


def test_the_cases_fail_when_a_threshold_moves(tmp_path):
    # 10% errors page at the shipped 5%; at 20% they must not, so the cases fail on it.
    groups = load_rule_groups(thresholds={"error_rate_max": 0.2})
    done = _cases_against(groups, tmp_path)
    assert done.returncode != 0
    assert "TritonABVariantErrorRate" in done.stdout + done.stderr


def test_the_slo_bucket_sets_both_spellings_of_le(tmp_path):
    groups = load_rule_groups(thresholds={"latency_slo_bucket": 250000})
    labels = [r["labels"]["le"] for r in config_records(groups)["latency_slo_bucket"]]
    assert labels == ["250000", "250000.0"]
    # The cases' histograms have a 100 ms bucket and no 250 ms one: with the SLO moved to
    # 250 ms the burn records select nothing, and the expected burn alerts no longer fire.
    done = _cases_against(groups, tmp_path)
    assert done.returncode != 0 and "TritonABLatencySLOFastBurn" in done.stdout + done.stderr


def test_bucket_labels_follow_the_exporter_and_prometheus_3():
    assert bucket_labels(100) == ("100", "100.0")
    assert bucket_labels(1_000_000) == ("1000000", "1e+06")
    with pytest.raises(MonitoringError, match="75000 us is not a bucket"):
        bucket_labels(75_000)


def test_unknown_thresholds_and_duplicate_groups_are_refused(tmp_path):
    with pytest.raises(MonitoringError, match=r"no threshold `p99_ms`.*error_rate_max"):
        load_rule_groups(thresholds={"p99_ms": 50})
    shutil.copy(RULES_DIR / "router.rules.yaml", tmp_path / "a.rules.yaml")
    shutil.copy(RULES_DIR / "router.rules.yaml", tmp_path / "b.rules.yaml")
    with pytest.raises(MonitoringError, match="rule group `tritonab-router` is defined in"):
        load_rule_groups(tmp_path)
    (tmp_path / "c.rules.yaml").write_text("rules: []\n")
    with pytest.raises(MonitoringError, match="expected a `groups` list"):
        read_rule_file(tmp_path / "c.rules.yaml")


def test_setting_thresholds_leaves_the_input_untouched():
    groups = load_rule_groups()
    before = yaml.safe_dump(groups)
    changed = set_thresholds(groups, {"error_rate_max": 0.01})
    assert yaml.safe_dump(groups) == before
    assert config_records(changed)["error_rate_max"][0]["expr"] == "vector(0.01)"
