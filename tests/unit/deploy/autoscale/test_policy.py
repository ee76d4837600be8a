"""The HPA algorithm as documented, and the predictive policy's rules."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritonab.deploy.autoscale import ClusterView, HPAPolicy, PredictivePolicy, ScalingSettings
from tritonab.errors import AutoscaleError

SETTINGS = ScalingSettings(capacity_rps=100.0, target_utilization=0.5)  # 50 rps per pod planned


def view(now: float, replicas: int, load: float, ready: int | None = None) -> ClusterView:
    return ClusterView(now, replicas, replicas if ready is None else ready, load)


def test_hpa_keeps_the_count_within_the_tolerance():
    hpa = HPAPolicy(SETTINGS)
    assert hpa.decide(view(0, 4, 4 * 50 * 1.09)) == 4
    assert hpa.decide(view(15, 4, 4 * 50 * 0.91)) == 4


def test_hpa_scales_by_the_usage_ratio_and_is_rate_limited():
    hpa = HPAPolicy(SETTINGS)
    assert hpa.decide(view(0, 4, 300.0)) == 6  # ratio 1.5 -> ceil(6)
    assert hpa.decide(view(15, 2, 2000.0)) == 6  # wants 40: at most max(2x, +4)


def test_hpa_counts_starting_pods_as_idle_when_scaling_up():
    hpa = HPAPolicy(SETTINGS)
    # 6 pods, 4 serving 300 rps: ratio over the serving ones is 1.5, but with the
    # starting pods counted as using nothing the load is 300 / 6 / 50 = 1.0: no change.
    assert hpa.decide(view(0, 6, 300.0, ready=4)) == 6
    assert hpa.decide(view(15, 6, 450.0, ready=4)) == 9


def test_hpa_scale_down_waits_for_the_stabilisation_window():
    hpa = HPAPolicy(SETTINGS)
    assert hpa.decide(view(0, 10, 500.0)) == 10
    assert hpa.decide(view(15, 10, 100.0)) == 10  # 2 recommended, 10 seen 15 s ago
    assert hpa.decide(view(299, 10, 100.0)) == 10
    assert hpa.decide(view(301, 10, 100.0)) == 2


def test_predictive_plans_the_forecast_peak_at_the_target():
    policy = PredictivePolicy(ScalingSettings(capacity_rps=100.0, target_utilization=0.5, quantile=0.6))
    for i in range(30):
        policy.observe(60.0 * (i + 1), 200.0)
    # flat 200 rps: 4 pods at 50 rps planned; the upper bound stays well within capacity
    assert policy.decide(view(30 * 60.0, 1, 200.0)) == 4


def test_predictive_follows_a_burst_no_forecast_saw():
    policy = PredictivePolicy(ScalingSettings(capacity_rps=100.0, target_utilization=0.5))
    for i in range(30):
        policy.observe(60.0 * (i + 1), 200.0)
    assert policy.decide(view(30 * 60.0, 4, 1000.0)) >= 10  # the observed rate within capacity


def test_predictive_sees_a_ramp_before_the_load_arrives():
    settings = ScalingSettings(capacity_rps=100.0, target_utilization=0.5)
    policy = PredictivePolicy(settings)
    rate = 100.0
    for i in range(60):
        rate *= 1.03
        policy.observe(60.0 * (i + 1), rate)
    assert policy.recommend(view(3600.0, 1, rate)) > settings.replicas_for(rate)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"capacity_rps": 0}, "capacity `0` rps must be positive"),
        ({"capacity_rps": 1, "target_utilization": 1.5}, "target utilization `1.5`"),
        ({"capacity_rps": 1, "min_replicas": 5, "max_replicas": 2}, r"min \(5\) <= max \(2\)"),
    ],
)
def test_settings_reject_nonsense(kwargs, message):
    with pytest.raises(AutoscaleError, match=message):
        ScalingSettings(**kwargs)


@settings(max_examples=60, deadline=None)
@given(
    loads=st.lists(st.floats(0.0, 5000.0), min_size=1, max_size=40),
    bounds=st.tuples(st.integers(1, 5), st.integers(0, 60)),
    gap=st.sampled_from([15.0, 60.0, 200.0]),
)
def test_hpa_scales_down_to_the_window_maximum_and_up_within_the_rate_limit(loads, bounds, gap):
    lo, extra = bounds
    settings = ScalingSettings(capacity_rps=100.0, min_replicas=lo, max_replicas=lo + extra)
    hpa, replicas, raw = HPAPolicy(settings), lo, []
    for i, load in enumerate(loads):
        now = gap * i
        current = view(now, replicas, load)
        raw.append((now, hpa.recommend(current)))
        desired = hpa.decide(current)
        highest = max(r for t, r in raw if t >= now - settings.stabilization_s)
        limit = max(2 * replicas, replicas + 4)
        assert desired == settings.clamp(highest if highest <= replicas else min(highest, limit))
        replicas = desired


@settings(max_examples=40, deadline=None)
@given(
    history=st.lists(st.floats(1.0, 3000.0), min_size=1, max_size=30),
    load=st.floats(0.0, 8000.0),
    replicas=st.integers(1, 80),
)
def test_predictive_always_covers_the_observed_rate_within_capacity(history, load, replicas):
    settings = ScalingSettings(capacity_rps=100.0, max_replicas=60)
    policy = PredictivePolicy(settings)
    for i, rate in enumerate(history):
        policy.observe(60.0 * (i + 1), rate)
    desired = policy.decide(view(60.0 * len(history), replicas, load))
    assert settings.min_replicas <= desired <= settings.max_replicas
    assert desired >= min(settings.max_replicas, math.ceil(load / settings.capacity_rps - 1e-9))
