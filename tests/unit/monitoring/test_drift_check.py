"""Data drift between two data sets: the figures against scipy and by hand, the verdicts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import jensenshannon

from tritonab.cli import main
from tritonab.errors import DriftError
from tritonab.monitoring.drift import (
    DriftSpec,
    DriftThresholds,
    build_profile,
    check_data,
    load_drift_spec,
    psi,
)

ROOT = Path(__file__).resolve().parents[3]
SHIFTED = ("x1", "x4")


def _frames(n: int = 5000, seed: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Six numeric features with different scales and a categorical one; the current data
    has `x1` and `x4` shifted by one standard deviation."""
    rng = np.random.default_rng(seed)
    scale = {f"x{i}": 1.0 + 0.5 * i for i in range(6)}

    def table() -> pd.DataFrame:
        data = {name: rng.normal(3.0 * i, scale[name], n) for i, name in enumerate(scale)}
        data["country"] = rng.choice(["de", "fr", "it", "es"], n, p=[0.4, 0.3, 0.2, 0.1])
        return pd.DataFrame(data)

    reference, current = table(), table()
    for name in SHIFTED:
        current[name] += scale[name]
    return reference, current


@pytest.fixture(scope="module")
def frames():
    return _frames()


def test_one_sd_shift_is_flagged_exactly_with_scipy_ks_and_psi_bounds(frames, tmp_path):
    reference, current = frames
    ref_csv, cur_parquet, out = tmp_path / "ref.csv", tmp_path / "cur.parquet", tmp_path / "drift.json"
    reference.to_csv(ref_csv, index=False)
    current.to_parquet(cur_parquet)
    code = main(
        ["drift", "check", "--reference", str(ref_csv), "--current", str(cur_parquet), "--json", str(out)]
    )
    assert code == 1  # drift found
    document = json.loads(out.read_text())
    (window,) = document["windows"]
    assert window["drifted_features"] == list(SHIFTED)
    for name, figures in window["features"].items():
        if figures["kind"] == "numeric":
            expected = scipy.stats.ks_2samp(reference[name].to_numpy(), current[name].to_numpy())
            # CSV round trip keeps floats exactly (shortest repr)
            assert figures["ks_statistic"] == expected.statistic
            assert figures["ks_pvalue"] == expected.pvalue
        if name in SHIFTED:
            assert figures["psi"] > 0.25 and figures["drifted"] is True
        else:
            assert figures["psi"] < 0.02 and figures["drifted"] is False


def test_no_drift_exits_zero(frames, tmp_path, capsys):
    reference, _ = frames
    other = _frames(seed=7)[0]
    reference.to_csv(tmp_path / "a.csv", index=False)
    other.to_csv(tmp_path / "b.csv", index=False)
    assert (
        main(["drift", "check", "--reference", str(tmp_path / "a.csv"), "--current", str(tmp_path / "b.csv")])
        == 0
    )
    assert "verdict: no drift" in capsys.readouterr().out


def test_psi_by_hand_on_the_reference_deciles():
    reference = np.arange(1000, dtype=float)  # deciles at 99.9, 199.8, ...: 100 rows per bin
    current = np.r_[np.arange(0, 500, 2.0), np.arange(500, 1000, 2 / 3)]  # sparse, then dense
    profile = build_profile(pd.DataFrame({"v": reference}))
    feature = profile.features["v"]
    assert feature.counts == (100,) * 10
    counts = feature.bin_counts(current)
    r = np.full(10, 0.1)
    c = counts / counts.sum()
    expected = float(np.sum((c - r) * np.log(c / r)))
    report = check_data(profile, pd.DataFrame({"v": current}))
    figures = report.windows[0].feature("v")
    assert figures.psi == pytest.approx(expected, rel=1e-12)
    assert figures.js == pytest.approx(jensenshannon(r, c, base=2), rel=1e-12)


def test_chi_square_matches_scipy_and_unseen_categories_count_as_other(frames):
    reference, current = frames
    current = current.copy()
    current.loc[:199, "country"] = "pl"  # unseen in the reference
    report = check_data(reference, current)
    f = report.windows[0].feature("country")
    ref_counts = reference["country"].value_counts()
    cur_counts = current["country"].value_counts()
    order = list(ref_counts.index)
    table = np.array(
        [[ref_counts[c] for c in order] + [0], [cur_counts.get(c, 0) for c in order] + [cur_counts["pl"]]]
    )
    expected = scipy.stats.chi2_contingency(table, correction=False)
    assert f.kind == "categorical"
    assert f.chi2_statistic == pytest.approx(expected.statistic, rel=1e-12)
    assert f.chi2_pvalue == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert f.histogram.labels[-1] == "__other__" and f.histogram.current[-1] == 200


def test_evidence_keeps_small_windows_from_flagging_noise():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"v": rng.normal(size=5000)})
    tiny = pd.DataFrame({"v": rng.normal(size=30)})
    loose = DriftSpec(min_rows=10, thresholds=DriftThresholds(psi=0.05, alpha=None))
    strict = DriftSpec(min_rows=10, thresholds=DriftThresholds(psi=0.05, alpha=0.01))
    noisy = check_data(reference, tiny, loose).windows[0].feature("v")
    judged = check_data(reference, tiny, strict).windows[0].feature("v")
    assert noisy.psi >= 0.05 and noisy.drifted is True  # 30 rows over 10 bins: PSI is noise
    assert judged.drifted is False and "p " in judged.reason


def test_too_few_rows_is_insufficient_not_judged(frames):
    reference, current = frames
    report = check_data(reference, current.iloc[:50])
    (window,) = report.windows
    assert window.status == "insufficient" and window.drifted is None and not report.drifted


def test_domain_classifier_sees_a_shift_hidden_from_every_margin():
    """x and y keep their marginals but their correlation flips: only the classifier sees it."""
    rng = np.random.default_rng(5)
    a = rng.normal(size=(3000, 2))
    reference = pd.DataFrame({"x": a[:, 0], "y": a[:, 0] * 0.9 + a[:, 1] * 0.436})
    b = rng.normal(size=(3000, 2))
    current = pd.DataFrame({"x": b[:, 0], "y": -b[:, 0] * 0.9 + b[:, 1] * 0.436})
    spec = DriftSpec(domain_classifier={"enabled": True, "max_rows": 500})
    window = check_data(reference, current, spec).windows[0]
    assert window.drifted_features == []
    assert window.domain is not None and window.domain.auc > 0.8 and window.domain.drifted
    same = check_data(reference, _frames(n=3000, seed=9)[0][["x1"]].rename(columns={"x1": "x"}), spec)
    assert same.windows[0].domain is not None


def test_spec_file_errors_name_the_field(tmp_path):
    bad = tmp_path / "drift.yaml"
    bad.write_text("thresholds: {psi: -1}\nwindow: 3 days\n")
    with pytest.raises(DriftError) as caught:
        load_drift_spec(bad)
    message = str(caught.value)
    assert f"`{bad}`: thresholds.psi: Input should be greater than 0" in message
    assert f"`{bad}`: window: duration `3 days` must be" in message
    bad.write_text("thresholds: {psi: null, alpha: null}\n")
    with pytest.raises(DriftError, match="set `alpha` or at least one of"):
        load_drift_spec(bad)


def test_cli_needs_a_reference_and_current(capsys):
    assert main(["drift", "check", "--current", "x.csv"]) == 2
    assert "give --logs DIR --experiment E, or --reference REF --current CUR" in capsys.readouterr().err


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(0, 500), min_size=2, max_size=12),
    st.lists(st.integers(0, 500), min_size=2, max_size=12),
)
def test_psi_is_symmetric_non_negative_and_zero_on_equal_histograms(a, b):
    n = min(len(a), len(b))
    a, b = a[:n], b[:n]
    if sum(a) == 0 or sum(b) == 0:
        return
    assert psi(a, b) >= 0
    assert psi(a, b) == pytest.approx(psi(b, a), rel=1e-9, abs=1e-12)
    assert psi(a, a) == 0


def test_the_example_spec_loads():
    spec = load_drift_spec(ROOT / "examples" / "drift.yaml")
    assert spec.thresholds.psi == 0.2 and spec.window_s == 3600.0 and not spec.domain_classifier.enabled
