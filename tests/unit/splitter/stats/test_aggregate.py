"""stats.aggregate and the fused per-group pass: golden equality with per-group numpy."""

import dataclasses

import numpy as np
import pytest

from tritonab.errors import StatsError
from tritonab.splitter import stats
from tritonab.splitter.stats import _sufficient


def _fields(stat):
    return np.array([np.asarray(getattr(stat, f.name), dtype=float) for f in dataclasses.fields(stat)])


def _data(n, k, seed=0):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, k, n)
    return (groups, rng.random(n) < 0.3, rng.gamma(2.0, 20.0, n) - 10.0, rng.poisson(3.0, n) + 1.0)


def _golden(groups, k, conv, rev, sess):
    """Per-group statistics computed group by group with plain numpy."""
    rows = {"conversion": [], "revenue": [], "rps": []}
    for j in range(k):
        c, r, s = conv[groups == j], rev[groups == j], sess[groups == j]
        rows["conversion"].append([c.size, c.sum()])
        rows["revenue"].append([r.size, r.sum(), (r * r).sum()])
        rows["rps"].append([r.size, r.sum(), (r * r).sum(), s.sum(), (s * s).sum(), (r * s).sum()])
    return {name: np.array(v, dtype=float).T for name, v in rows.items()}


def _spec(conv, rev, sess):
    return {"conversion": ("proportion", conv), "revenue": ("mean", rev), "rps": ("ratio", rev, sess)}


@pytest.fixture(params=["fused_multi_chunk", "fused", "bincount"])
def path(request, monkeypatch):
    if request.param == "fused_multi_chunk":
        monkeypatch.setattr(_sufficient, "_CHUNK", 97)  # many chunks, a ragged last one
    if request.param == "bincount":
        monkeypatch.setattr(_sufficient, "_FUSED_MAX_GROUPS", 0)
    return request.param


@pytest.mark.parametrize(("n", "k", "n_groups"), [(1000, 2, 2), (1001, 3, None), (500, 2, 4), (800, 7, 7)])
def test_aggregate_matches_per_group_numpy(path, n, k, n_groups):
    groups, conv, rev, sess = _data(n, k)
    out = stats.aggregate(groups, _spec(conv, rev, sess), n_groups=n_groups)
    assert list(out) == ["conversion", "revenue", "rps"]
    assert isinstance(out["conversion"], stats.Proportion)
    assert isinstance(out["revenue"], stats.SampleMean)
    assert isinstance(out["rps"], stats.Ratio)
    golden = _golden(groups, n_groups or k, conv, rev, sess)
    for name, expected in golden.items():
        np.testing.assert_allclose(_fields(out[name]), expected, rtol=1e-12, atol=1e-9)


def test_aggregate_equals_from_groups(path):
    groups, conv, rev, sess = _data(2000, 2, seed=1)
    out = stats.aggregate(
        groups,
        {"c": (stats.Proportion, conv), "r": (stats.SampleMean, rev), "q": (stats.Ratio, sess, rev)},
        2,
    )
    pairs = [
        (out["c"], stats.Proportion.from_groups(conv, groups, 2)),
        (out["r"], stats.SampleMean.from_groups(rev, groups, 2)),
        (out["q"], stats.Ratio.from_groups(sess, rev, groups, 2)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(_fields(ours), _fields(theirs), rtol=1e-12)


def test_from_groups_paths_agree(monkeypatch):
    groups, conv, rev, sess = _data(3000, 3, seed=2)
    fused = [
        stats.Proportion.from_groups(conv, groups),
        stats.SampleMean.from_groups(rev, groups),
        stats.Ratio.from_groups(rev, sess, groups),
    ]
    monkeypatch.setattr(_sufficient, "_FUSED_MAX_GROUPS", 0)
    plain = [
        stats.Proportion.from_groups(conv, groups),
        stats.SampleMean.from_groups(rev, groups),
        stats.Ratio.from_groups(rev, sess, groups),
    ]
    for a, b in zip(fused, plain):
        np.testing.assert_allclose(_fields(a), _fields(b), rtol=1e-12)


def test_boolean_groups_and_integer_values():
    groups = np.array([True, False, True, True, False])
    out = stats.aggregate(groups, {"m": ("mean", [1, 2, 3, 4, 5]), "p": ("proportion", [1, 0, 0, 1, 1])})
    np.testing.assert_array_equal(out["m"].n, [2, 3])
    np.testing.assert_array_equal(out["m"].sum, [7, 8])
    np.testing.assert_array_equal(out["m"].sum_squares, [29, 26])
    np.testing.assert_array_equal(out["p"].successes, [1, 2])


def test_inf_values_follow_bincount():
    groups = np.array([0, 1, 0, 1])
    x = np.array([1.0, np.inf, 2.0, 3.0])
    out = stats.aggregate(groups, {"m": ("mean", x)}, 2)
    np.testing.assert_array_equal(out["m"].sum, [3.0, np.inf])


def test_empty_metrics_and_empty_units():
    assert stats.aggregate([0, 1], {}) == {}
    out = stats.aggregate(np.array([], dtype=int), {"m": ("mean", np.array([]))}, 2)
    np.testing.assert_array_equal(out["m"].n, [0, 0])


@pytest.mark.parametrize(
    ("groups", "metrics", "match"),
    [
        ([0, 1], {"m": ("median", [1.0, 2.0])}, r"kind must be one of"),
        ([0, 1], {"m": (dict, [1.0, 2.0])}, r"kind must be one of"),
        ([0, 1], {"m": np.array([1.0, 2.0])}, r"must be \(kind, values...\)"),
        ([0, 1], {"m": ("ratio", [1.0, 2.0])}, r"\(ratio\) needs 2 array"),
        ([0, 1], {"m": ("mean", [1.0, 2.0]), "p": ("proportion", [1])}, r"mismatched lengths"),
        ([0, 1], {"m": ("mean", [1.0, np.nan])}, r"`metrics\['m'\]` must not contain NaN"),
        ([0, 1], {"m": ("ratio", [1.0, 2.0], [np.nan, 1.0])}, r"denominator` must not contain"),
        ([0, 1], {"p": ("proportion", [0, 2])}, r"`metrics\['p'\]`: `values` must be 0 or 1"),
        ([0, 2], {"m": ("mean", [1.0, 2.0])}, r"`n_groups` is 2"),
        ([0, -1], {"m": ("mean", [1.0, 2.0])}, r"`groups` must be >= 0"),
        ([0], {"m": ("mean", [1.0, 2.0])}, r"`groups` must be 1-D with 2"),
    ],
)
def test_aggregate_misuse_raises(groups, metrics, match):
    with pytest.raises(StatsError, match=match):
        stats.aggregate(groups, metrics, n_groups=2)
