"""Analysis by allocation period against a direct computation from the raw records: units
routed by the real bucket layout under weights that change, a conversion rate that
drifts over the periods; pooled estimates are fooled, stratified ones are not, and a
period whose split is off is named."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tritonab.errors import MonitoringError
from tritonab.monitoring.outcomes import OUTCOMES_DIR
from tritonab.monitoring.periods import Period, analyze_periods
from tritonab.splitter import Allocation, stats

NAMES = ("control", "treatment")
PERIODS = (
    Period(1000.0, {"control": 0.9, "treatment": 0.1}),
    Period(2000.0, {"control": 0.5, "treatment": 0.5}),
    Period(3000.0, {"control": 0.1, "treatment": 0.9}),
)
RATES = (0.1, 0.2, 0.3)  # the same for both variants: no true effect, a drifting base rate


def _write(tmp_path, drop_treatment_in=None, seed=11):
    """Exposures (JSON Lines) and outcomes, as the router and `outcomes add` would write them."""
    rng = np.random.default_rng(seed)
    exposures, outcomes = [], []
    for p, period in enumerate(PERIODS):
        allocation = Allocation(NAMES, tuple(period.weights.values()))
        units = [f"u{i}" for i in rng.choice(6000, size=3000, replace=False)]
        for unit, variant in zip(units, allocation.assign_names("exp", units)):
            if variant == "treatment" and p == drop_treatment_in and rng.random() < 0.3:
                continue
            t = period.start + float(rng.uniform(0, 900))
            exposures.append(
                {
                    "time": t,
                    "experiment": "exp",
                    "variant": variant,
                    "unit_id": unit,
                    "request_id": f"r{len(exposures)}",
                }
            )
            if rng.random() < RATES[p]:
                keyed = (
                    {"request_id": exposures[-1]["request_id"]}
                    if len(outcomes) % 7 == 0
                    else {"unit_id": unit}
                )
                outcomes.append(
                    {**keyed, "metric": "buy", "value": 1.0, "time": t + float(rng.uniform(1, 50))}
                )
    exposures.append(
        {"time": 500.0, "experiment": "exp", "variant": "control", "unit_id": "early", "request_id": "e0"}
    )
    outcomes.append({"unit_id": "u1", "metric": "buy", "value": 1.0, "time": 10.0})  # before any exposure
    path = tmp_path / "exposures.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in exposures))
    (tmp_path / OUTCOMES_DIR).mkdir(exist_ok=True)
    (tmp_path / OUTCOMES_DIR / "o.jsonl").write_text("".join(json.dumps(o) + "\n" for o in outcomes))
    return path, exposures, outcomes


def _reference(exposures, outcomes):
    """(variants, periods) units and converted units, attributing each outcome to the unit's
    latest period exposure that began before it (a request's outcome to its request)."""
    starts = [p.start for p in PERIODS]
    first = {}
    variant = {}
    by_request = {}
    for e in exposures:
        if e["time"] < starts[0]:
            continue
        idx = int(np.searchsorted(starts, e["time"], side="right")) - 1
        key = (e["unit_id"], idx)
        first[key] = min(first.get(key, np.inf), e["time"])
        variant[key] = e["variant"]
        by_request[e["request_id"]] = key
    converted = set()
    for o in outcomes:
        if "request_id" in o:
            converted.add(by_request[o["request_id"]])
            continue
        candidates = [k for k in first if k[0] == o["unit_id"] and first[k] <= o["time"]]
        if candidates:
            converted.add(max(candidates, key=lambda k: first[k]))
    n, nz = np.zeros((2, 3)), np.zeros((2, 3))
    for key, v in variant.items():
        i = NAMES.index(v)
        n[i, key[1]] += 1
        nz[i, key[1]] += key in converted
    return n, nz


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("periods")
    return root, *_write(root)


def test_the_figures_equal_a_direct_computation(written):
    root, path, exposures, outcomes = written
    result = analyze_periods("exp", root, PERIODS, metric="buy", exposure_files=[path])
    n, nz = _reference(exposures, outcomes)
    assert np.array_equal(np.asarray(result.per_period.n), n)
    assert np.array_equal(np.asarray(result.per_period.successes), nz)
    assert result.units.tolist() == n.T.tolist()
    assert result.srm_threshold == pytest.approx(0.001 / 3)
    for p, check in enumerate(result.srm):
        expected = stats.srm(n[:, p], list(PERIODS[p].weights.values()))
        assert check is not None and check.p_value == pytest.approx(expected.p_value)
    assert result.mismatched == ()
    assert any("1 exposure(s) before the first allocation period" in w for w in result.warnings)
    assert any("outcome record(s) not attributed" in w for w in result.warnings)
    pooled = result.pooled()
    assert np.asarray(pooled.n).tolist() == n.sum(axis=1).tolist()


def test_changing_weights_over_a_drifting_rate_fool_the_pooled_estimate_only(written):
    root, path, _, _ = written
    result = analyze_periods("exp", root, PERIODS, metric="buy", exposure_files=[path])
    pooled = result.pooled()
    naive = stats.compare(pooled[0], pooled[1])
    # The treatment got most of its units in the late, high-converting period.
    assert naive.effect > 0.05 and naive.p_value < 1e-6
    strat = result.comparisons["treatment"]
    assert strat.ci_low < 0 < strat.ci_high and abs(strat.effect) < 0.03
    assert strat.test == "fixed: z, stratified"
    summary = result.to_dict()
    assert summary["mismatched_periods"] == [] and summary["comparisons"]["treatment"]["test"] == strat.test


def test_a_period_whose_split_is_off_is_named(tmp_path):
    path, _, _ = _write(tmp_path, drop_treatment_in=1)
    result = analyze_periods("exp", tmp_path, PERIODS, metric="buy", exposure_files=[path])
    assert result.mismatched == (1,)


def test_continuous_metrics_and_bad_requests(written):
    root, path, exposures, outcomes = written
    result = analyze_periods("exp", root, PERIODS, metric="buy", kind="continuous", exposure_files=[path])
    n, nz = _reference(exposures, outcomes)
    assert np.array_equal(np.asarray(result.per_period.n), n)
    assert np.asarray(result.per_period.sum).sum() >= nz.sum()  # a unit may convert twice in a period
    with pytest.raises(MonitoringError, match=r"periods must start in increasing time order"):
        analyze_periods("exp", root, PERIODS[::-1], metric="buy", exposure_files=[path])
    with pytest.raises(MonitoringError, match=r"no allocation period given"):
        analyze_periods("exp", root, [], metric="buy", exposure_files=[path])
    with pytest.raises(MonitoringError, match=r"no exposure segments for experiment `nope`"):
        analyze_periods("nope", root, PERIODS, metric="buy")
