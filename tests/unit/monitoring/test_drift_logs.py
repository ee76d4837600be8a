"""Drift from the router's own logs (written by RouterLog, no Triton): per variant and
window, concept drift on the outcome stream, and the Prometheus exporter."""

from __future__ import annotations

import dataclasses
import json
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tritonab.backends._routing import CallResult, RoutedBatch, Router
from tritonab.cli import main
from tritonab.converters import verify_manifest
from tritonab.deploy.server import free_port
from tritonab.errors import DriftError
from tritonab.monitoring.drift import (
    DriftSpec,
    build_profile,
    check_logs,
    concept_drift,
    reference_for,
    save_reference,
)
from tritonab.monitoring.exporter import DriftMonitor, monitor_settings
from tritonab.monitoring.outcomes import add_outcomes
from tritonab.monitoring.router_log import RouterLog
from tritonab.splitter import load_spec_dict

T0 = 1_700_002_800.0  # a whole hour
CHANGE = T0 + 3600.0  # from here: treatment's x[2] shifts by one sd and its accuracy drops
ROWS = 25


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    """Two hours of payloads and outcomes; a repository with a profile beside each model."""
    root = tmp_path_factory.mktemp("drift")
    spec = load_spec_dict(
        {
            "name": "exp",
            "salt": "s",
            "variants": [
                {"name": "control", "model": "m1", "version": 1, "weight": 0.5},
                {"name": "treatment", "model": "m2", "weight": 0.5},
            ],
            "logging": {"sample_rate": 1.0},
            "allow_override": True,
        }
    )
    router = Router(spec, ["x"], 64)
    log = RouterLog(spec, root / "logs", "exp_0_0", list(router.names))
    rng = np.random.default_rng(11)
    outcomes = []
    for i in range(240):
        t = T0 + 30.0 * i
        variant = ("control", "treatment")[i % 2]
        x = rng.normal(size=(ROWS, 3)).astype(np.float32)
        late = t >= CHANGE and variant == "treatment"
        if late:
            x[:, 2] += 1.0
        params = [{"unit_id": f"u{i}", "variant": variant}]
        plan = router.plan([{"x": x}], params)
        results = [CallResult({"y": call.inputs["x"] * 2}, 100.0) for call in plan.calls]
        outcome = router.scatter(plan, [r.outputs for r in results])
        log.record(RoutedBatch(t, [f"r{i}"], params, [{"x": x}], plan, results, outcome))
        accuracy = 0.75 if late else 0.95
        outcomes += [(f"r{i}", "correct", float(c), t + 1.0) for c in rng.random(8) < accuracy]
    log.close()
    table = root / "outcomes.csv"
    pd.DataFrame(outcomes, columns=["request_id", "metric", "value", "time"]).to_csv(table, index=False)
    add_outcomes(table, root / "logs")
    repo = root / "repo"
    for model in ("m1", "m2"):
        (repo / model / "1").mkdir(parents=True)
    reference = {"x": rng.normal(size=(5000, 3)).astype(np.float32)}
    profile = build_profile(reference)
    save_reference(repo, "m1", profile)
    save_reference(repo, "m2", profile)
    return root / "logs", repo


def test_profiles_beside_unconverted_versions_are_manifested(logs):
    _, repo = logs
    folder = repo / "m2" / "1"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"] == {"kind": "unconverted"} and manifest["artifact"] is None
    assert manifest["attachments"]["reference"]["file"] == "reference.json"
    assert verify_manifest(folder) == []
    assert list(reference_for(repo, "m2").features) == ["x[0]", "x[1]", "x[2]"]


def test_only_the_shifted_variant_and_window_drift(logs):
    log_dir, repo = logs
    report = check_logs(log_dir, "exp", repository=repo, spec=DriftSpec(window="1h"))
    verdicts = {(w.variant, w.start): w.drifted_features for w in report.windows}
    assert verdicts == {
        ("control", T0): [],
        ("control", CHANGE): [],
        ("treatment", T0): [],
        ("treatment", CHANGE): ["x[2]"],
    }
    late = next(w for w in report.windows if w.variant == "treatment" and w.start == CHANGE)
    assert late.rows == 60 * ROWS and late.feature("x[2]").psi > 0.25
    assert late.feature("x[0]").psi < 0.05
    where = report.references["treatment"]
    assert (where["model"], where["version"], where["rows"]) == ("m2", 1, 5000)


def test_one_variant_one_reference_and_errors(logs, tmp_path):
    log_dir, repo = logs
    only = check_logs(log_dir, "exp", variant="control", reference=repo / "m1" / "1" / "reference.json")
    assert {w.variant for w in only.windows} == {"control"} and not only.drifted
    with pytest.raises(DriftError, match="needs a reference"):
        check_logs(log_dir, "exp")
    with pytest.raises(DriftError, match="no payload log for experiment `nope`"):
        check_logs(log_dir, "nope", repository=repo)
    (repo / "m2" / "1" / "reference.json").write_text("{}")
    try:
        with pytest.raises(DriftError, match="is not the profile its manifest records"):
            check_logs(log_dir, "exp", variant="treatment", repository=repo)
        report = check_logs(log_dir, "exp", repository=repo)  # other variants still checked
        assert {w.variant for w in report.windows} == {"control"}
        assert any("variant `treatment` not checked" in n for n in report.notes)
    finally:
        save_reference(repo, "m2", reference_for(repo, "m1"))


def test_concept_drift_finds_the_accuracy_drop_near_its_time(logs):
    log_dir, _ = logs
    report = concept_drift(log_dir, "exp", "correct", window_s=3600)
    control, treatment = report.variants["control"], report.variants["treatment"]
    assert not control.changes
    (change,) = treatment.changes
    assert abs(change.changed_at - CHANGE) < 600 and change.detected_at >= change.changed_at
    assert change.mean_before > 0.9 > 0.85 > change.mean_after
    assert [w.count for w in treatment.windows] == [480, 480]
    assert treatment.windows[0].mean > 0.9 and treatment.windows[1].mean < 0.85


def test_cli_logs_json_and_html(logs, tmp_path, capsys):
    log_dir, repo = logs
    out, page = tmp_path / "d.json", tmp_path / "d.html"
    argv = ["drift", "check", "--logs", str(log_dir), "--experiment", "exp", "--repository", str(repo)]
    code = main([*argv, "--window", "1h", "--metric", "correct", "--json", str(out), "--html", str(page)])
    assert code == 1
    document = json.loads(out.read_text())
    assert [w["drifted_features"] for w in document["windows"]] == [[], [], [], ["x[2]"]]
    assert document["concept"]["variants"]["treatment"]["drifted"] is True
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 4  # histograms x 2 variants, PSI, concept
    assert "verdict: DRIFT" in capsys.readouterr().out
    assert (
        main(
            [
                "drift",
                "concept",
                "--logs",
                str(log_dir),
                "--experiment",
                "exp",
                "--metric",
                "correct",
                "--variant",
                "control",
            ]
        )
        == 0
    )


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_exporter_snapshot_and_http(logs):
    log_dir, repo = logs
    settings = monitor_settings(log_dir, repository=repo, window_s=3600.0, metrics=("correct",))
    monitor = DriftMonitor(settings)
    monitor.refresh(now=T0 + 7200.0)
    samples = _samples(monitor.exposition().decode())

    def value(name, **labels):
        return samples[(name, tuple(sorted({"experiment": "exp", **labels}.items())))]

    assert value("tritonab_drift_detected", variant="treatment", feature="x[2]") == 1.0
    assert value("tritonab_drift_detected", variant="control", feature="x[2]") == 0.0
    assert value("tritonab_drift_psi", variant="treatment", feature="x[2]") > 0.25
    assert value("tritonab_drift_window_rows", variant="treatment") == 60 * ROWS
    assert value("tritonab_concept_drift_detected", variant="treatment", metric="correct") == 1.0
    assert value("tritonab_concept_drift_detected", variant="control", metric="correct") == 0.0
    assert value("tritonab_concept_window_mean", variant="treatment", metric="correct") < 0.85
    assert value("tritonab_monitor_refresh_errors_total") == 0.0
    port = free_port()
    everything = dataclasses.replace(settings, window_s=time.time() - T0 + 60)  # the live clock
    with DriftMonitor(everything) as live:
        live.start(port, interval_s=3600)
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "tritonab_drift_psi{" in body and "tritonab_monitor_last_success_timestamp_seconds{" in body


def test_exporter_counts_a_failing_experiment(logs, tmp_path):
    log_dir, _ = logs
    settings = monitor_settings(
        log_dir, experiments=("exp", "ghost"), reference=str(tmp_path / "missing.json")
    )
    monitor = DriftMonitor(settings)
    monitor.refresh(now=T0 + 7200.0)
    samples = _samples(monitor.exposition().decode())
    assert samples[("tritonab_monitor_refresh_errors_total", (("experiment", "ghost"),))] == 1.0
    assert monitor.states["ghost"].error and "no payload log" in monitor.states["ghost"].error


def test_a_parquet_tensor_column_is_one_feature_per_element(tmp_path):
    """A table with a list per row (bulk scoring's layout) profiles like the payload log."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tritonab.monitoring.drift._frames import feature_names, read_table

    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    pq.write_table(pa.table({"id": [1, 2, 3, 4], "input": [r.tolist() for r in x]}), tmp_path / "t.parquet")
    frame = read_table(tmp_path / "t.parquet")
    names = feature_names("input", (4, 3))
    assert list(frame.columns) == ["id", *names]
    np.testing.assert_array_equal(frame[names].to_numpy(), x)
