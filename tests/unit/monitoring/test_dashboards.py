"""The Grafana dashboard of an experiment: its panels, and PromQL that promtool parses."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
import yaml

from tritonab.cli import main
from tritonab.monitoring.dashboards import dashboard, panel_queries, slug

PANELS = {
    "Share of rows vs target weight",
    "Rows per second",
    "Error rate",
    "Latency of variant calls",
    "Weight per replica (rollout)",
    "Log records dropped per second",
    "Firing alerts",
}


def test_the_dashboard_has_the_panels_an_experiment_needs():
    board = dashboard("demo_ab")
    assert board["uid"] == "tritonab-demo-ab" and board["title"] == "tritonab: demo_ab"
    assert {p["title"] for p in board["panels"]} == PANELS
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
        for target in panel["targets"]:
            assert 'experiment="demo_ab"' in target["expr"] and 'job=~"$job"' in target["expr"]
    # Panels do not overlap.
    cells = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, panel["title"]
                cells.add((x, y))
    assert [v["name"] for v in board["templating"]["list"]] == ["datasource", "job"]
    json.dumps(board)  # JSON-ready


def test_shares_are_drawn_against_their_targets_and_quantiles_are_p50_p90_p99():
    queries = panel_queries("demo_ab")
    legends = [legend for _, legend in queries["Share of rows vs target weight"]]
    assert legends == ["{{variant}} share", "{{variant}} target"]
    assert "tritonab_variant_weight" in queries["Share of rows vs target weight"][1][0]
    assert [legend for _, legend in queries["Latency of variant calls"]] == [
        "{{variant}} p50",
        "{{variant}} p90",
        "{{variant}} p99",
    ]
    assert all('variant!~"shadow:.*|_invalid"' in q for q, _ in queries["Rows per second"])


@pytest.mark.parametrize("experiment", ["demo_ab", 'odd"name'])
def test_every_panel_query_is_valid_promql(experiment, tmp_path):
    """promtool parses each expression (Grafana's variables given concrete values)."""
    rules = [
        {
            "record": f"dashboard:query_{i}",
            "expr": expr.replace("$__rate_interval", "5m").replace("$job", ".*"),
        }
        for i, (expr, _) in enumerate(q for qs in panel_queries(experiment).values() for q in qs)
    ]
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [shutil.which("promtool") or "promtool", "check", "rules", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def test_cli_writes_the_dashboard(tmp_path, capsys):
    out = tmp_path / "board.json"
    assert main(["deploy", "dashboard", "demo_ab", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["uid"] == "tritonab-demo-ab"
    assert slug("Demo_AB v2") == "demo-ab-v2"
