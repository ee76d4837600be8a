"""Sufficient statistics: per-arm sums that combine with `+` across days, strata and instances.

Every field is either a float (one statistic) or a numpy array (many statistics at once:
metrics, segments, days); arithmetic broadcasts. `sum([...])` works because `0 + stat`
returns `stat`. Counts are stored as floats so that arrays stay homogeneous.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import numpy as np

from tritonab.errors import StatsError
from tritonab.splitter.stats import _validate as v

S = TypeVar("S", bound="_Sufficient")


class _Sufficient:
    """Field-wise addition, indexing and validation shared by the statistics."""

    kind: ClassVar[str] = ""
    _non_negative: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        arrays: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            raw = getattr(self, f.name)
            if f.name in self._non_negative:
                arrays[f.name] = v.non_negative(raw, f.name)
            else:
                arrays[f.name] = v.as_float(raw, f.name)
        v.broadcast(arrays)
        for name, arr in arrays.items():
            object.__setattr__(self, name, v.scalar_or_array(arr))
        self._check(arrays)

    def _check(self, arrays: dict[str, np.ndarray]) -> None:
        """Type-specific consistency checks; overridden where needed."""

    def _values(self) -> list[Any]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]  # type: ignore[arg-type]

    def __add__(self: S, other: Any) -> S:
        if isinstance(other, (int, float)) and other == 0:
            return self
        if type(other) is not type(self):
            raise StatsError(
                f"cannot add `{type(other).__name__}` to `{type(self).__name__}`"
            )
        sums = [np.add(a, b) for a, b in zip(self._values(), other._values())]
        return type(self)(*sums)

    def __radd__(self: S, other: Any) -> S:
        return self.__add__(other)

    def __getitem__(self: S, index: Any) -> S:
        parts = [np.broadcast_to(x, self.shape)[index] for x in self._values()]
        return type(self)(*parts)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError(f"a scalar `{type(self).__name__}` has no len()")
        return self.shape[0]

    @property
    def shape(self) -> tuple[int, ...]:
        """The broadcast shape of the fields; () for a single statistic."""
        return np.broadcast_shapes(*(np.shape(x) for x in self._values()))


def _mean(total: Any, n: Any) -> Any:
    with np.errstate(divide="ignore", invalid="ignore"):
        return v.scalar_or_array(np.where(np.asarray(n) > 0, np.divide(total, n), np.nan))


def _sample_variance(n: Any, total: Any, squares: Any) -> Any:
    """Unbiased variance (n - 1 denominator), NaN below two units, clipped at 0."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (np.asarray(squares) - np.square(total) / n) / (n - 1)
    return v.scalar_or_array(np.where(n > 1, np.maximum(var, 0.0), np.nan))


def _sample_covariance(n: Any, sum_x: Any, sum_y: Any, sum_xy: Any) -> Any:
    """Unbiased covariance (n - 1 denominator), NaN below two units."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (np.asarray(sum_xy) - np.multiply(sum_x, sum_y) / n) / (n - 1)
    return v.scalar_or_array(np.where(n > 1, cov, np.nan))


def _group_sums(groups: Any, length: int, n_groups: int | None, *columns: np.ndarray
                ) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per-group count and per-group sums of each column: one np.bincount pass each."""
    codes = v.check_groups(groups, length)
    n = v.bincount(codes, n_groups).astype(np.float64)
    return n, [v.bincount(codes, n.size, c) for c in columns]


def _moments(x: np.ndarray) -> tuple[float, float]:
    return float(x.sum()), float(np.dot(x, x))


def _pair_moments(m: np.ndarray, d: np.ndarray) -> tuple[float, ...]:
    return (float(m.sum()), float(np.dot(m, m)), float(d.sum()), float(np.dot(d, d)),
            float(np.dot(m, d)))


@dataclasses.dataclass(frozen=True, eq=False)
class SampleMean(_Sufficient):
    """A continuous metric: unit count, sum and sum of squares.

    Attributes:
        n: number of units.
        sum: sum of the per-unit values.
        sum_squares: sum of the squared per-unit values.
    """

    n: Any
    sum: Any
    sum_squares: Any
    kind: ClassVar[str] = "mean"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "sum_squares")

    @property
    def mean(self) -> Any:
        """sum / n; NaN when n is 0."""
        return _mean(self.sum, self.n)

    @property
    def variance(self) -> Any:
        """Unbiased per-unit variance; NaN when n < 2."""
        return _sample_variance(self.n, self.sum, self.sum_squares)

    @classmethod
    def from_values(cls, values: Any) -> SampleMean:
        """Statistics of a 1-D array of per-unit values.

        Args:
            values: per-unit values.

        Returns:
            A scalar SampleMean.

        Raises:
            StatsError: `values` is not 1-D numeric or holds NaN.
        """
        x = v.values_1d(values, "values")
        return cls(x.size, *_moments(x))

    @classmethod
    def from_groups(cls, values: Any, groups: Any, n_groups: int | None = None) -> SampleMean:
        """Per-group statistics (e.g. per variant) of per-unit values, in one pass each.

        Args:
            values: per-unit values, 1-D.
            groups: per-unit integer group codes (0..k-1), same length.
            n_groups: k; defaults to max(groups) + 1.

        Returns:
            A SampleMean whose fields are arrays of length k.

        Raises:
            StatsError: mismatched lengths, negative or non-integer codes.
        """
        x = v.values_1d(values, "values", check_nan=False)
        n, (s, ss) = _group_sums(groups, x.size, n_groups, x, x * x)
        v.finite_sums(s, "values")
        return cls(n, s, ss)


@dataclasses.dataclass(frozen=True, eq=False)
class Proportion(_Sufficient):
    """A binary metric (conversion): unit count and number of successes.

    Attributes:
        n: number of units.
        successes: number of units with outcome 1.
    """

    n: Any
    successes: Any
    kind: ClassVar[str] = "proportion"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "successes")

    def _check(self, arrays: dict[str, np.ndarray]) -> None:
        if (arrays["successes"] > arrays["n"]).any():
            raise StatsError("`successes` must be <= `n`")

    @property
    def mean(self) -> Any:
        """The success rate; NaN when n is 0."""
        return _mean(self.successes, self.n)

    @property
    def variance(self) -> Any:
        """Bernoulli variance p (1 - p) (the Wald z-test's, n denominator)."""
        p = np.asarray(self.mean)
        return v.scalar_or_array(p * (1.0 - p))

    @classmethod
    def from_values(cls, values: Any) -> Proportion:
        """Statistics of a 1-D array of 0/1 (or boolean) outcomes.

        Args:
            values: per-unit outcomes, each 0 or 1.

        Returns:
            A scalar Proportion.

        Raises:
            StatsError: `values` is not 1-D or holds something other than 0 and 1.
        """
        x = _binary(values)
        return cls(x.size, float(np.count_nonzero(x)))

    @classmethod
    def from_groups(cls, values: Any, groups: Any, n_groups: int | None = None) -> Proportion:
        """Per-group statistics of 0/1 outcomes (see `SampleMean.from_groups`).

        Args:
            values: per-unit outcomes, each 0 or 1.
            groups: per-unit integer group codes.
            n_groups: number of groups; defaults to max(groups) + 1.

        Returns:
            A Proportion whose fields are arrays of length k.

        Raises:
            StatsError: non-binary values, mismatched lengths, bad codes.
        """
        x = _binary(values)
        codes = v.check_groups(groups, x.size)
        k = v.bincount(codes, n_groups).size
        # One integer pass: codes k..2k-1 count the successes of groups 0..k-1.
        pairs = v.bincount(codes.astype(np.intp, copy=False) + k * x, 2 * k).astype(np.float64)
        return cls(pairs[:k] + pairs[k:], pairs[k:])


def _binary(values: Any) -> np.ndarray:
    """Outcomes as a 1-D boolean array (boolean input is used as is: the fast path)."""
    x = np.asarray(values)
    if x.dtype != np.bool_:
        x = v.values_1d(x, "values")
        ones = x == 1
        if (ones | (x == 0)).sum() != x.size:
            raise StatsError("`values` must be 0 or 1 for a Proportion")
        return ones
    if x.ndim != 1:
        raise StatsError(f"`values` must be 1-D, got shape {x.shape}")
    return x


@dataclasses.dataclass(frozen=True, eq=False)
class Ratio(_Sufficient):
    """A ratio metric sum(num) / sum(den) over units (e.g. revenue per session).

    The per-unit variance comes from the delta method with the covariance term:
    Var = s_m^2 / d^2 - 2 cov(m, d) m / d^3 + m^2 s_d^2 / d^4, with m, d the
    per-unit means of numerator and denominator.

    Attributes:
        n: number of units (the randomisation units, not denominator events).
        num_sum, num_sum_squares: sum and sum of squares of the per-unit numerator.
        den_sum, den_sum_squares: the same for the per-unit denominator.
        num_den_sum: sum of per-unit numerator x denominator products.
    """

    n: Any
    num_sum: Any
    num_sum_squares: Any
    den_sum: Any
    den_sum_squares: Any
    num_den_sum: Any
    kind: ClassVar[str] = "ratio"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "num_sum_squares", "den_sum_squares")

    @property
    def mean(self) -> Any:
        """num_sum / den_sum; NaN when den_sum is 0."""
        den = np.asarray(self.den_sum)
        with np.errstate(divide="ignore", invalid="ignore"):
            return v.scalar_or_array(np.where(den != 0, np.divide(self.num_sum, den), np.nan))

    @property
    def variance(self) -> Any:
        """Per-unit delta-method variance of the ratio; NaN when n < 2 or den mean is 0."""
        m, d = np.asarray(_mean(self.num_sum, self.n)), np.asarray(_mean(self.den_sum, self.n))
        var_m = np.asarray(_sample_variance(self.n, self.num_sum, self.num_sum_squares))
        var_d = np.asarray(_sample_variance(self.n, self.den_sum, self.den_sum_squares))
        cov = np.asarray(_sample_covariance(self.n, self.num_sum, self.den_sum, self.num_den_sum))
        with np.errstate(divide="ignore", invalid="ignore"):
            var = var_m / d**2 - 2.0 * cov * m / d**3 + m**2 * var_d / d**4
        return v.scalar_or_array(np.where(d != 0, np.maximum(var, 0.0), np.nan))

    @classmethod
    def from_values(cls, numerator: Any, denominator: Any) -> Ratio:
        """Statistics of per-unit numerator and denominator arrays.

        Args:
            numerator: per-unit numerator values, 1-D.
            denominator: per-unit denominator values, same length.

        Returns:
            A scalar Ratio.

        Raises:
            StatsError: mismatched lengths, non-numeric or NaN input.
        """
        m, d = _pair(numerator, denominator)
        return cls(m.size, *_pair_moments(m, d))

    @classmethod
    def from_groups(
        cls, numerator: Any, denominator: Any, groups: Any, n_groups: int | None = None
    ) -> Ratio:
        """Per-group statistics of per-unit numerator and denominator arrays.

        Args:
            numerator: per-unit numerator values, 1-D.
            denominator: per-unit denominator values, same length.
            groups: per-unit integer group codes.
            n_groups: number of groups; defaults to max(groups) + 1.

        Returns:
            A Ratio whose fields are arrays of length k.

        Raises:
            StatsError: mismatched lengths, bad codes, NaN input.
        """
        m, d = _pair(numerator, denominator, check_nan=False)
        n, sums = _group_sums(groups, m.size, n_groups, m, m * m, d, d * d, m * d)
        v.finite_sums(sums[0], "numerator")
        v.finite_sums(sums[2], "denominator")
        return cls(n, *sums)


def _pair(numerator: Any, denominator: Any, check_nan: bool = True
          ) -> tuple[np.ndarray, np.ndarray]:
    m = v.values_1d(numerator, "numerator", check_nan)
    d = v.values_1d(denominator, "denominator", check_nan)
    if m.shape != d.shape:
        raise StatsError(
            f"mismatched lengths: `numerator` has {m.size}, `denominator` has {d.size}"
        )
    return m, d
