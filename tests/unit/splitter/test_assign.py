"""Assignment: the documented hash, bucket layout, and its statistical properties."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tritonab.errors import AssignmentError
from tritonab.splitter import BUCKETS, Allocation, assign, bucket, buckets


def reference_bucket(salt: str, unit: str) -> int:
    """DESIGN.md's formula, written out independently."""
    return int.from_bytes(hashlib.sha256(f"{salt}:{unit}".encode()).digest()[:8], "big") % 10000


def test_bucket_matches_the_documented_formula():
    units = ["alice", "bob", "ümlaut", "", "12345", "user-42"]
    assert [bucket("exp", u) for u in units] == [reference_bucket("exp", u) for u in units]
    assert buckets("exp", units).tolist() == [reference_bucket("exp", u) for u in units]


def test_golden_buckets_stay_fixed():
    # Pinned so an accidental change of the contract fails loudly.
    assert bucket("demo_ab", "alice") == reference_bucket("demo_ab", "alice")
    assert bucket("s", "u1") == 7699
    assert bucket("s", b"u1") == 7699
    assert bucket("s", 7) == bucket("s", "7")


def test_buckets_accepts_numpy_bytes_arrays():
    units = np.array([b"a", b"b", b"c"], dtype=object)
    assert buckets("x", units).tolist() == [bucket("x", u) for u in ("a", "b", "c")]
    assert buckets("x", []).shape == (0,)


def test_layout_candidates_from_zero_baseline_on_top():
    allocation = Allocation(("control", "t1", "t2"), (0.5, 0.3, 0.2))
    assert allocation.ranges() == [(5000, 10000), (0, 3000), (3000, 5000)]
    assert allocation.index_of([0, 2999, 3000, 4999, 5000, 9999]).tolist() == [1, 1, 2, 2, 0, 0]


def test_ranges_tile_the_bucket_space_with_awkward_weights():
    allocation = Allocation(("a", "b", "c"), (1 / 3, 1 / 3, 1 / 3))
    ranges = allocation.ranges()
    assert sum(end - start for start, end in ranges) == BUCKETS
    assert np.bincount(allocation.index_of(np.arange(BUCKETS)), minlength=3).sum() == BUCKETS


@pytest.mark.parametrize(
    ("names", "weights", "message"),
    [
        ((), (), "needs at least one variant"),
        (("a", "b"), (1.0,), "has 1 entries for 2 variant names"),
        (("a", "a"), (0.5, 0.5), "duplicates"),
        (("a", "b"), (1.5, -0.5), r"must each lie in \[0, 1\]"),
        (("a", "b"), (0.5, 0.4), "must sum to 1"),
    ],
)
def test_allocation_rejects_bad_weights(names, weights, message):
    with pytest.raises(AssignmentError, match=message):
        Allocation(names, weights)


unit_ids = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=50)


@given(salt=st.text(max_size=10), units=unit_ids, w=st.floats(0, 1))
@settings(max_examples=60, deadline=None)
def test_assignment_is_deterministic(salt, units, w):
    weights = {"control": 1 - w, "treatment": w}
    assert assign(salt, units, weights) == assign(salt, list(units), weights)
    assert assign(salt, units, weights) == [assign(salt, [u], weights)[0] for u in units]


@given(w=st.floats(0.01, 0.99), salt=st.text(max_size=8))
@settings(max_examples=25, deadline=None)
def test_shares_within_binomial_bounds(w, salt):
    n = 20_000
    units = [f"u{i}" for i in range(n)]
    share = np.mean(np.asarray(assign(salt, units, {"control": 1 - w, "treatment": w})) == "treatment")
    # Bucket rounding moves the target by at most half a bucket.
    target = round(w * BUCKETS) / BUCKETS
    sigma = np.sqrt(target * (1 - target) / n)
    assert abs(share - target) <= 5 * sigma + 1e-9


@given(lo=st.floats(0, 1), hi=st.floats(0, 1), salt=st.text(max_size=8))
@settings(max_examples=50, deadline=None)
def test_a_growing_candidate_keeps_every_unit(lo, hi, salt):
    lo, hi = sorted((lo, hi))
    units = [f"unit-{i}" for i in range(2000)]
    before = np.asarray(assign(salt, units, {"control": 1 - lo, "treatment": lo}))
    after = np.asarray(assign(salt, units, {"control": 1 - hi, "treatment": hi}))
    assert np.all(after[before == "treatment"] == "treatment")


@given(fixed=st.floats(0, 0.5), lo=st.floats(0, 0.5), hi=st.floats(0, 0.5))
@settings(max_examples=40, deadline=None)
def test_the_last_candidate_ramps_monotonically_beside_another(fixed, lo, hi):
    lo, hi = sorted((lo, hi))
    units = [f"unit-{i}" for i in range(2000)]
    alloc = lambda w: {"control": 1 - fixed - w, "a": fixed, "b": w}  # noqa: E731
    before = np.asarray(assign("s", units, alloc(lo)))
    after = np.asarray(assign("s", units, alloc(hi)))
    assert np.all(after[before == "b"] == "b")
    assert np.all(after[before == "a"] == "a")


def test_assignment_is_independent_across_salts():
    n = 20_000
    units = [f"u{i}" for i in range(n)]
    weights = {"control": 0.5, "treatment": 0.5}
    a = np.asarray(assign("experiment-1", units, weights)) == "treatment"
    b = np.asarray(assign("experiment-2", units, weights)) == "treatment"
    # Independent 50/50 splits: each of the four cells holds a quarter, within 5 sigma.
    sigma = np.sqrt(0.25 * 0.75 / n)
    for cell in (a & b, a & ~b, ~a & b, ~a & ~b):
        assert abs(cell.mean() - 0.25) <= 5 * sigma
