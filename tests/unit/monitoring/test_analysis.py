"""The analysis equals a direct numpy computation from the raw records; CLI and report run."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from tritonab.cli import main
from tritonab.errors import MonitoringError
from tritonab.monitoring.analysis import analyze
from tritonab.monitoring.outcomes import OUTCOMES_DIR
from tritonab.monitoring.segments import SegmentWriter
from tritonab.splitter import stats

SUCCESS = {
    "primary": {"name": "buy.per_exposure"},
    "guardrails": [{"name": "latency_us", "max_degradation": 0.5, "relative": True}],
}


@pytest.fixture
def logs(tmp_path, make_spec):
    """Random exposures (with a mixed unit and unit-less rows) and outcomes, written to disk."""
    rng = np.random.default_rng(3)
    spec = make_spec(name="exp", success=SUCCESS)
    exposures = []
    for i in range(3000):
        unit = f"u{rng.integers(400)}"
        variant = ["control", "treatment"][int(unit[1:]) % 2]
        if unit == "u7" and i % 2:
            variant = "control" if variant == "treatment" else "treatment"  # a mixed unit
        exposures.append(
            {
                "time": 1000.0 + i,
                "experiment": "exp",
                "variant": variant,
                "unit_id": None if i % 97 == 0 else unit,
                "request_id": f"r{i}",
                "latency_us": float(rng.gamma(2.0, 150.0)),
                "region": "local",
            }
        )
    exposures.append({**exposures[0], "experiment": "other", "unit_id": "u1"})  # another experiment
    writer = SegmentWriter(tmp_path / "exp" / "exposures", "exposures", max_records=700)
    for start in range(0, len(exposures), 100):
        writer.submit(exposures[start : start + 100])
    writer.close()
    outcomes = []
    for i in range(1500):
        e = exposures[rng.integers(3000)]
        if e["unit_id"] is None:
            continue
        value = float(rng.random() < (0.3 if e["variant"] == "treatment" else 0.2))
        keyed = {"request_id": e["request_id"]} if i % 5 == 0 else {"unit_id": e["unit_id"]}
        outcomes.append(
            {**keyed, "metric": "buy", "value": value, "time": e["time"] + (-5000 if i % 50 == 0 else 1)}
        )  # some before exposure
    (tmp_path / OUTCOMES_DIR).mkdir()
    (tmp_path / OUTCOMES_DIR / "o.jsonl").write_text("".join(json.dumps(o) + "\n" for o in outcomes))
    return tmp_path, spec, exposures[:-1], outcomes


def _reference(exposures, outcomes):
    """Per-variant per-unit arrays computed directly from the raw records."""
    units = defaultdict(lambda: {"variants": set(), "n": 0, "lat": 0.0, "first": np.inf})
    by_request = {}
    for e in exposures:
        if e["unit_id"] is None:
            continue
        u = units[e["unit_id"]]
        u["variants"].add(e["variant"])
        u["n"] += 1
        u["lat"] += e["latency_us"]
        u["first"] = min(u["first"], e["time"])
        by_request[e["request_id"]] = e["unit_id"]
    sums, nonzero = defaultdict(float), defaultdict(int)
    for o in outcomes:
        unit = o.get("unit_id") or by_request.get(o.get("request_id"))
        # A request's own outcome counts whatever its time; a unit's only after exposure.
        if unit in units and ("request_id" in o or o["time"] >= units[unit]["first"]):
            sums[unit] += o["value"]
            nonzero[unit] += o["value"] != 0
    out = {}
    for variant in ("control", "treatment"):
        keep = [k for k, u in units.items() if u["variants"] == {variant}]
        out[variant] = {
            "n": np.array([units[k]["n"] for k in keep], dtype=float),
            "lat": np.array([units[k]["lat"] for k in keep]),
            "buy": np.array([sums[k] for k in keep]),
            "any": np.array([nonzero[k] > 0 for k in keep], dtype=float),
            "rows_lat": np.array([e["latency_us"] for e in exposures if e["variant"] == variant]),
        }
    return out


def test_figures_equal_a_direct_numpy_computation(logs):
    folder, spec, exposures, outcomes = logs
    a = analyze("exp", folder, spec=spec)
    ref = _reference(exposures, outcomes)
    assert a.variants == ["control", "treatment"]
    for v in a.variants:
        r = ref[v]
        assert a.units[v] == len(r["n"])
        assert a.exposures[v] == len(r["rows_lat"])
        expected = {
            "exposures_per_unit": stats.SampleMean.from_values(r["n"]),
            "latency_us": stats.Ratio.from_values(r["lat"], r["n"]),
            "buy": stats.SampleMean.from_values(r["buy"]),
            "buy.any": stats.Proportion.from_values(r["any"]),
            "buy.per_exposure": stats.Ratio.from_values(r["buy"], r["n"]),
        }
        for name, want in expected.items():
            got = a.metrics[name][v]
            np.testing.assert_allclose(
                [got.mean, got.variance, got.n], [want.mean, want.variance, want.n], rtol=1e-9, err_msg=name
            )
        for q in (50, 95, 99):
            assert a.latency[v][f"p{q}"] == pytest.approx(np.percentile(r["rows_lat"], q), rel=1e-9)
    want = stats.compare(
        stats.Ratio.from_values(ref["control"]["buy"], ref["control"]["n"]),
        stats.Ratio.from_values(ref["treatment"]["buy"], ref["treatment"]["n"]),
    )
    got = a.comparisons["buy.per_exposure"]["treatment"]
    np.testing.assert_allclose(
        [got.effect, got.ci_low, got.p_value], [want.effect, want.ci_low, want.p_value], rtol=1e-9
    )
    counts = [len(ref[v]["n"]) for v in a.variants]
    assert a.srm.p_value == pytest.approx(stats.srm(counts, [0.5, 0.5]).p_value)
    decision = a.decisions["treatment"]
    assert decision.primary.name == "buy.per_exposure"
    assert any("saw more than one variant" in w for w in a.warnings)
    assert any("without a unit id" in w for w in a.warnings)
    # The timeline ends at the totals.
    last = a.timeline.comparisons["treatment"]
    assert float(np.asarray(last.effect)[-1]) == pytest.approx(got.effect)


def test_spec_stored_with_the_logs_is_used_and_drops_are_flagged(logs):
    folder, spec, _, _ = logs
    (folder / "exp" / "spec.json").write_text(spec.to_json())
    (folder / "exp" / "_drops").mkdir()
    (folder / "exp" / "_drops" / "exposures-x-1.jsonl").write_text(
        '{"stream": "exposures", "dropped_total": 3}\n{"stream": "exposures", "dropped_total": 12}\n'
    )
    a = analyze("exp", folder)
    assert a.weights == {"control": 0.5, "treatment": 0.5} and a.decisions
    assert a.dropped == 12 and "12 log record(s) were dropped" in a.warnings[0]


def test_cli_prints_the_decision_and_writes_json_and_html(logs, capsys, tmp_path):
    folder, spec, _, _ = logs
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(spec.to_json())
    out_json, out_html = tmp_path / "a.json", tmp_path / "a.html"
    assert (
        main(
            [
                "analyze",
                "exp",
                "--logs",
                str(folder),
                "--spec",
                str(spec_file),
                "--json",
                str(out_json),
                "--html",
                str(out_html),
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "decision for treatment vs control:" in text and "buy.per_exposure" in text
    data = json.loads(out_json.read_text())
    assert data["decisions"]["treatment"]["outcome"] in {"promote", "continue", "rollback", "invalid"}
    html = out_html.read_text()
    assert html.count("data:image/png;base64,") == 3


def test_no_exposures_is_an_error(tmp_path, capsys):
    assert main(["analyze", "nothing", "--logs", str(tmp_path)]) == 2  # could not run: nothing to analyse
    assert "no exposure segments for experiment `nothing`" in capsys.readouterr().err


def test_extra_outcome_files_are_validated_and_joined(logs, tmp_path):
    folder, spec, exposures, outcomes = logs
    base = analyze("exp", folder, spec=spec)
    unit = next(
        e["unit_id"] for e in exposures if e["unit_id"] and e["variant"] == "control" and e["unit_id"] != "u7"
    )
    extra = tmp_path / "extra.csv"
    extra.write_text(f"unit_id,metric,value,time\n{unit},revenue,12.5,2100-01-01T00:00:00Z\n")
    a = analyze("exp", folder, spec=spec, outcomes=[extra])
    assert a.metrics["revenue"]["control"].sum == 12.5
    assert a.metrics["buy"]["control"].sum == base.metrics["buy"]["control"].sum
    extra.write_text("unit_id,metric,value\nu1,revenue,lots\n")
    with pytest.raises(MonitoringError, match=r"line 2: value: Input should be a valid number"):
        analyze("exp", folder, spec=spec, outcomes=[extra])


def test_every_interval_names_its_test(logs):
    from rich.console import Console

    from tritonab.monitoring.report import decision_lines, metrics_table

    folder, spec, _, _ = logs
    a = analyze("exp", folder, spec=spec)
    console = Console(width=400, record=True)
    console.print(metrics_table(a))
    table = console.export_text()
    assert "(fixed: " in table and "fixed-horizon tests on the totals" in table
    lines = [line for line in decision_lines(a) if "p=" in line]
    method = spec.success.method
    assert lines and all(f"; {method}: " in line or f"; {method} " in line for line in lines), lines
    comparison = a.to_dict()["comparisons"]["buy.per_exposure"]["treatment"]
    assert comparison["test"].startswith("fixed: ")


def test_parquet_logs_give_the_same_figures_as_json_lines(logs, same):
    """Compacted exposures and Parquet outcomes are scanned in place (views): outcomes
    before the first exposure, request-keyed ones and mixed units count as on JSON Lines."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tritonab.monitoring.compaction import compact

    folder, spec, _, outcomes = logs
    before = analyze("exp", folder, spec=spec).to_dict()
    compact(folder / "exp" / "exposures")
    assert not list((folder / "exp" / "exposures").glob("*.jsonl"))
    columns = ("unit_id", "request_id", "metric", "value", "time")
    table = pa.table({c: [o.get(c) for o in outcomes] for c in columns})
    pq.write_table(table, folder / OUTCOMES_DIR / "o.parquet")
    (folder / OUTCOMES_DIR / "o.jsonl").unlink()
    after = analyze("exp", folder, spec=spec).to_dict()
    for part in (
        "units",
        "exposures",
        "latency_us",
        "metrics",
        "comparisons",
        "srm",
        "decisions",
        "warnings",
    ):
        same(before[part], after[part], part)


def test_latency_quantiles_from_a_histogram_equal_them_over_rows():
    from tritonab.monitoring.analysis import _latency_summary

    rng = np.random.default_rng(5)
    rows = np.round(rng.gamma(2.0, 150.0, size=5001), 1)[rng.integers(5001, size=20000)]  # many ties
    x, n = np.unique(rows, return_counts=True)
    got = _latency_summary(x, n)
    assert got["mean"] == pytest.approx(rows.mean(), rel=1e-12)
    for q in (50, 95, 99):
        assert got[f"p{q}"] == pytest.approx(np.percentile(rows, q), rel=1e-12)
    assert _latency_summary(np.array([3.0]), np.array([4]))["p99"] == 3.0
    assert _latency_summary(np.array([]), np.array([], dtype=np.int64))["p50"] is None
