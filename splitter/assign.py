"""Deterministic, sticky, monotone traffic assignment.

The contract (any language can reproduce it):

    bucket  = int.from_bytes(sha256(f"{salt}:{unit}".encode()).digest()[:8], "big") % 10000
    variant = the variant whose bucket range holds `bucket`

Bucket layout, for variants `v0, v1, ..., vk` in spec order with weights `w0..wk`
(`v0` is the baseline, usually `control`):

* candidates fill from bucket 0 upward in spec order: `v_i` (i >= 1) holds
  `[round(10000 * (w1 + ... + w_{i-1})), round(10000 * (w1 + ... + w_i)))`;
* the baseline holds the rest at the top: `[round(10000 * (w1 + ... + wk)), 10000)`.

Rounding is applied to cumulative sums (half to even, as Python's `round`), so the
ranges always tile 0..9999 exactly. A candidate whose weight grows while the
candidates before it keep theirs only extends its range upward, into the baseline:
it keeps every unit it already had (a monotone ramp). With one candidate, which
is every canary, this holds for any step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

from tritonab.errors import AssignmentError

BUCKETS = 10_000
_WEIGHT_TOLERANCE = 1e-6

Units: TypeAlias = Iterable[str | bytes | int] | NDArray[Any]
"""Unit ids: strings, bytes or integers, or an array of them (of any shape)."""


def _encode(unit: str | bytes | int) -> bytes:
    if isinstance(unit, bytes):
        return unit
    if isinstance(unit, (np.bytes_,)):
        return bytes(unit)
    return str(unit).encode("utf-8")


def bucket(salt: str, unit: str | bytes | int) -> int:
    """The bucket (0..9999) of one unit id under `salt`."""
    return salted_bucket(f"{salt}:".encode(), unit)


def salted_bucket(prefix: bytes, unit: str | bytes | int) -> int:
    """`bucket` with the salt already encoded as `prefix` (`salt:` in UTF-8): the
    router's per-request path."""
    digest = hashlib.sha256(prefix + _encode(unit)).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def buckets(salt: str, units: Units) -> NDArray[np.int64]:
    """Buckets of many unit ids at once, as an int64 array (one sha256 per unit)."""
    prefix = f"{salt}:".encode()
    sha = hashlib.sha256
    if isinstance(units, np.ndarray):
        units = units.ravel().tolist()
    digests = b"".join([sha(prefix + _encode(u)).digest()[:8] for u in units])
    if not digests:
        return np.zeros(0, dtype=np.int64)
    return (np.frombuffer(digests, dtype=">u8") % BUCKETS).astype(np.int64)


@dataclass(frozen=True)
class Allocation:
    """Variant names with weights, laid out over the 10,000 buckets.

    Args:
        names: variant names; the first is the baseline.
        weights: one weight per name, each in [0, 1], summing to 1.

    Raises:
        AssignmentError: mismatched lengths, a negative weight, or a sum other than 1.
    """

    names: tuple[str, ...]
    weights: tuple[float, ...]
    _table: NDArray[np.int16] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names, weights = tuple(self.names), tuple(float(w) for w in self.weights)
        if not names:
            raise AssignmentError("`names` is empty: an allocation needs at least one variant")
        if len(names) != len(weights):
            raise AssignmentError(f"`weights` has {len(weights)} entries for {len(names)} variant names")
        if len(set(names)) != len(names):
            raise AssignmentError(f"`names` has duplicates: {list(names)}")
        if any(not (0.0 <= w <= 1.0) for w in weights):
            raise AssignmentError(f"`weights` must each lie in [0, 1], got {list(weights)}")
        if abs(sum(weights) - 1.0) > _WEIGHT_TOLERANCE:
            raise AssignmentError(f"`weights` must sum to 1, got {sum(weights):.6g}")
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "weights", weights)
        table = np.zeros(BUCKETS, dtype=np.int16)
        for index, (start, end) in enumerate(self.ranges()):
            table[start:end] = index
        table.setflags(write=False)
        object.__setattr__(self, "_table", table)

    @classmethod
    def from_mapping(cls, weights: Mapping[str, float]) -> Allocation:
        """An allocation from `{name: weight}` in insertion order."""
        return cls(tuple(weights), tuple(weights.values()))

    def ranges(self) -> list[tuple[int, int]]:
        """`(start, end)` bucket range per variant, in name order (end exclusive)."""
        edges = [0]
        cumulative = 0.0
        for w in self.weights[1:]:
            cumulative += w
            edges.append(min(BUCKETS, round(cumulative * BUCKETS)))
        candidates = [(edges[i], edges[i + 1]) for i in range(len(edges) - 1)]
        return [(edges[-1], BUCKETS), *candidates]

    def index_of(self, bucket_ids: NDArray[np.integer[Any]] | Sequence[int]) -> NDArray[np.int16]:
        """Variant index per bucket."""
        return self._table[np.asarray(bucket_ids, dtype=np.int64)]

    def assign(self, salt: str, units: Units) -> NDArray[np.int16]:
        """Variant index (into `names`) per unit id."""
        return self.index_of(buckets(salt, units))

    def assign_names(self, salt: str, units: Units) -> list[str]:
        """Variant name per unit id."""
        return [self.names[i] for i in self.assign(salt, units)]


def assign(salt: str, units: Units, weights: Mapping[str, float]) -> list[str]:
    """Variant name per unit id for `{variant: weight}` (first entry = baseline).

    Example:
        >>> assign("exp1", ["alice", "bob"], {"control": 0.5, "treatment": 0.5})  # doctest: +SKIP
    """
    return Allocation.from_mapping(weights).assign_names(salt, units)


def random_buckets(count: int, rng: np.random.Generator | None = None) -> NDArray[np.int64]:
    """Uniform random buckets for rows without a unit id (not sticky)."""
    rng = rng or np.random.default_rng()
    return rng.integers(0, BUCKETS, size=count, dtype=np.int64)
