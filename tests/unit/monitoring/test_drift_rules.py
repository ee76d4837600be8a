"""The drift alert rules pass `promtool check rules` and their unit tests (`promtool test rules`)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "monitoring" / "rules" / "drift.rules.yaml"
TESTS = ROOT / "tests" / "unit" / "monitoring" / "rules" / "drift.test.yaml"


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_rules_are_valid():
    done = _promtool("check", "rules", str(RULES))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 4 rules found" in done.stdout


def test_rules_unit_tests_pass():
    done = _promtool("test", "rules", str(TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_a_wrong_expectation_fails(tmp_path):
    """The rule tests can fail: the same file expecting the drift alert 10 minutes early."""
    text = TESTS.read_text().replace(
        "- eval_time: 40m\n        alertname: TritonABFeatureDrift",
        "- eval_time: 30m\n        alertname: TritonABFeatureDrift",
        1,
    )
    text = text.replace("../../../../monitoring/rules/drift.rules.yaml", str(RULES))
    broken = tmp_path / "broken.test.yaml"
    broken.write_text(text)
    done = _promtool("test", "rules", str(broken))
    assert done.returncode == 1 and "TritonABFeatureDrift" in done.stdout + done.stderr
