"""Sufficient statistics: per-arm sums that combine with `+` across days, strata and instances.

Every field is either a float (one statistic) or a numpy array (many statistics at once:
metrics, segments, days); arithmetic broadcasts. `sum([...])` works because `0 + stat`
returns `stat`. Counts are stored as floats so that arrays stay homogeneous.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias, TypeVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tritonab.errors import StatsError
from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._validate import Codes, FloatArray, FloatOrArray

S = TypeVar("S", bound="_Sufficient")


class _Sufficient:
    """Field-wise addition, indexing and validation shared by the statistics."""

    kind: ClassVar[str] = ""
    _non_negative: ClassVar[tuple[str, ...]] = ()
    if TYPE_CHECKING:
        # Every subclass is a dataclass: this lets `dataclasses.fields(self)` accept the base.
        __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]

    def __post_init__(self) -> None:
        arrays: dict[str, FloatArray] = {}
        for f in dataclasses.fields(self):
            raw = getattr(self, f.name)
            if f.name in self._non_negative:
                arrays[f.name] = v.non_negative(raw, f.name)
            else:
                arrays[f.name] = v.as_float(raw, f.name)
        v.broadcast(arrays)
        for name, arr in arrays.items():
            object.__setattr__(self, name, v.scalar_or_array(arr))
        self._check(arrays)

    def _check(self, arrays: dict[str, FloatArray]) -> None:
        """Type-specific consistency checks; overridden where needed."""

    def _values(self) -> list[FloatOrArray]:
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def __add__(self: S, other: S | float) -> S:
        if isinstance(other, (int, float)) and other == 0:
            return self
        if not isinstance(other, _Sufficient) or type(other) is not type(self):
            raise StatsError(f"cannot add `{type(other).__name__}` to `{type(self).__name__}`")
        sums = [np.add(a, b) for a, b in zip(self._values(), other._values())]
        return type(self)(*sums)

    def __radd__(self: S, other: S | float) -> S:
        return self.__add__(other)

    # `index` is anything numpy accepts as an index (numpy exports no type for it).
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


def _mean(total: FloatOrArray, n: FloatOrArray) -> FloatOrArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return v.scalar_or_array(np.where(np.asarray(n) > 0, np.divide(total, n), np.nan))


def _sample_variance(n: FloatOrArray, total: FloatOrArray, squares: FloatOrArray) -> FloatOrArray:
    """Unbiased variance (n - 1 denominator), NaN below two units, clipped at 0."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (np.asarray(squares) - np.square(total) / n) / (n - 1)
    return v.scalar_or_array(np.where(n > 1, np.maximum(var, 0.0), np.nan))


def _sample_covariance(
    n: FloatOrArray, sum_x: FloatOrArray, sum_y: FloatOrArray, sum_xy: FloatOrArray
) -> FloatOrArray:
    """Unbiased covariance (n - 1 denominator), NaN below two units."""
    n = np.asarray(n, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        cov = (np.asarray(sum_xy) - np.multiply(sum_x, sum_y) / n) / (n - 1)
    return v.scalar_or_array(np.where(n > 1, cov, np.nan))


def _group_sums(
    groups: ArrayLike, length: int, n_groups: int | None, *columns: FloatArray
) -> tuple[FloatArray, list[FloatArray]]:
    """Per-group count and per-group sums of each column: one np.bincount pass each."""
    codes = v.check_groups(groups, length)
    n = v.bincount(codes, n_groups).astype(np.float64)
    return n, [v.bincount(codes, n.size, c) for c in columns]


# Up to this many groups the fused pass below beats np.bincount; beyond it, np.bincount.
_FUSED_MAX_GROUPS = 4
# Units per chunk of the fused pass: its chunk-sized temporaries stay in the CPU cache.
_CHUNK = 1 << 15


@dataclasses.dataclass(frozen=True)
class _PerGroup:
    """Per-group sums; arrays with one entry per group (rows: one per column or pair)."""

    n: FloatArray
    successes: FloatArray
    sums: FloatArray
    squares: FloatArray
    cross: FloatArray


def _per_group(
    groups: ArrayLike,
    length: int,
    n_groups: int | None,
    flags: Sequence[NDArray[np.bool_]] = (),
    columns: Sequence[FloatArray] = (),
    pairs: Sequence[tuple[int, int]] = (),
) -> _PerGroup:
    """Per-group unit counts, number of True of each boolean flag array, sum and sum of
    squares of each float64 column, and sum of products of each (i, j) pair of columns.

    Counts are computed once whatever the number of metrics. Few groups (the usual two
    variants) take one fused, chunked pass (`_fused`); many groups, bad codes, NaN or inf
    values take np.bincount, which gives the per-group sums or the error.
    """
    codes = v.check_groups(groups, length)
    with np.errstate(invalid="ignore"):  # inf x 0 in `_fused` gives NaN: bincount decides
        fused = _fused(codes, n_groups, flags, columns, pairs)
    return fused if fused is not None else _bincounts(codes, n_groups, flags, columns, pairs)


def _fused(
    codes: Codes,
    n_groups: int | None,
    flags: Sequence[NDArray[np.bool_]],
    columns: Sequence[FloatArray],
    pairs: Sequence[tuple[int, int]],
) -> _PerGroup | None:
    """One pass over the units in cache-sized chunks: per chunk and group a mask, its
    count, the flags' counts under it, each column times the mask (exact: the value or 0)
    summed and dotted with itself and with its pair (BLAS). No sort, no full-length
    temporary. None when np.bincount must decide (see `_per_group`)."""
    if codes.size == 0:
        return None
    if codes.dtype == np.bool_:
        codes = codes.view(np.uint8)
    k = int(codes.max()) + 1 if n_groups is None else int(n_groups)
    if not 1 <= k <= _FUSED_MAX_GROUPS:
        return None
    n = np.zeros(k)
    successes = np.zeros((len(flags), k))
    sums, squares = np.zeros((len(columns), k)), np.zeros((len(columns), k))
    cross = np.zeros((len(pairs), k))
    size = min(_CHUNK, codes.size)
    mask_buf, both_buf = np.empty(size, dtype=np.bool_), np.empty(size, dtype=np.bool_)
    weight_buf = np.empty(size)
    value_bufs = [np.empty(size) for _ in columns]
    for start in range(0, codes.size, size):
        stop = min(start + size, codes.size)
        part, length = codes[start:stop], stop - start
        mask, both, weight = mask_buf[:length], both_buf[:length], weight_buf[:length]
        flag_parts = [f[start:stop] for f in flags]
        column_parts = [c[start:stop] for c in columns]
        ys = [b[:length] for b in value_bufs]
        for j in range(k):
            np.equal(part, j, out=mask)
            n[j] += np.count_nonzero(mask)
            for i, f in enumerate(flag_parts):
                successes[i, j] += np.count_nonzero(np.logical_and(f, mask, out=both))
            if not columns:
                continue
            np.copyto(weight, mask)
            for i, (c, y) in enumerate(zip(column_parts, ys)):
                np.multiply(c, weight, out=y)
                sums[i, j] += y.sum()
                squares[i, j] += np.dot(y, y)
            for p, (a, b) in enumerate(pairs):
                cross[p, j] += np.dot(ys[a], ys[b])
    if n.sum() != codes.size:  # a negative or too large code: np.bincount says which
        return None
    if np.isnan(sums).any() or np.isnan(squares).any() or np.isnan(cross).any():
        return None  # NaN, or inf x 0 outside its group
    return _PerGroup(n, successes, sums, squares, cross)


def _bincounts(
    codes: Codes,
    n_groups: int | None,
    flags: Sequence[NDArray[np.bool_]],
    columns: Sequence[FloatArray],
    pairs: Sequence[tuple[int, int]],
) -> _PerGroup:
    n = v.bincount(codes, n_groups).astype(np.float64)
    k = n.size
    intp = codes.astype(np.intp, copy=False)
    # One integer pass per flag: codes k..2k-1 count the successes of groups 0..k-1.
    successes = [v.bincount(intp + k * f, 2 * k)[k:] for f in flags]
    sums = [v.bincount(codes, k, c) for c in columns]
    squares = [v.bincount(codes, k, c * c) for c in columns]
    cross = [v.bincount(codes, k, columns[i] * columns[j]) for i, j in pairs]

    def rows(parts: list[NDArray[Any]]) -> FloatArray:
        return np.array(parts, dtype=np.float64).reshape(len(parts), k)

    return _PerGroup(n, rows(successes), rows(sums), rows(squares), rows(cross))


def _moments(x: FloatArray) -> tuple[float, float]:
    return float(x.sum()), float(np.dot(x, x))


def _pair_moments(m: FloatArray, d: FloatArray) -> tuple[float, float, float, float, float]:
    return (float(m.sum()), float(np.dot(m, m)), float(d.sum()), float(np.dot(d, d)), float(np.dot(m, d)))


@dataclasses.dataclass(frozen=True, eq=False)
class SampleMean(_Sufficient):
    """A continuous metric: unit count, sum and sum of squares.

    Attributes:
        n: number of units.
        sum: sum of the per-unit values.
        sum_squares: sum of the squared per-unit values.
    """

    n: FloatOrArray
    sum: FloatOrArray
    sum_squares: FloatOrArray
    kind: ClassVar[str] = "mean"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "sum_squares")
    if TYPE_CHECKING:
        # The generated __init__ takes anything array-like: __post_init__ validates each
        # field and stores it as a float or a float64 array (the field types above).
        def __init__(self, n: ArrayLike, sum: ArrayLike, sum_squares: ArrayLike) -> None: ...

    @property
    def mean(self) -> FloatOrArray:
        """sum / n; NaN when n is 0."""
        return _mean(self.sum, self.n)

    @property
    def variance(self) -> FloatOrArray:
        """Unbiased per-unit variance; NaN when n < 2."""
        return _sample_variance(self.n, self.sum, self.sum_squares)

    @classmethod
    def from_values(cls, values: ArrayLike) -> SampleMean:
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
    def from_groups(cls, values: ArrayLike, groups: ArrayLike, n_groups: int | None = None) -> SampleMean:
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
        g = _per_group(groups, x.size, n_groups, columns=[x])
        v.finite_sums(g.sums[0], "values")
        return cls(g.n, g.sums[0], g.squares[0])


@dataclasses.dataclass(frozen=True, eq=False)
class Proportion(_Sufficient):
    """A binary metric (conversion): unit count and number of successes.

    Attributes:
        n: number of units.
        successes: number of units with outcome 1.
    """

    n: FloatOrArray
    successes: FloatOrArray
    kind: ClassVar[str] = "proportion"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "successes")
    if TYPE_CHECKING:
        # As for SampleMean: array-like in, float or float64 array stored.
        def __init__(self, n: ArrayLike, successes: ArrayLike) -> None: ...

    def _check(self, arrays: dict[str, FloatArray]) -> None:
        if (arrays["successes"] > arrays["n"]).any():
            raise StatsError("`successes` must be <= `n`")

    @property
    def mean(self) -> FloatOrArray:
        """The success rate; NaN when n is 0."""
        return _mean(self.successes, self.n)

    @property
    def variance(self) -> FloatOrArray:
        """Bernoulli variance p (1 - p) (the Wald z-test's, n denominator)."""
        p = np.asarray(self.mean)
        return v.scalar_or_array(p * (1.0 - p))

    @classmethod
    def from_values(cls, values: ArrayLike) -> Proportion:
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
    def from_groups(cls, values: ArrayLike, groups: ArrayLike, n_groups: int | None = None) -> Proportion:
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
        g = _per_group(groups, x.size, n_groups, flags=[x])
        return cls(g.n, g.successes[0])


def _binary(values: ArrayLike) -> NDArray[np.bool_]:
    """Outcomes as a 1-D boolean array (boolean input is used as is: the fast path)."""
    x = np.asarray(values)
    if x.dtype != np.bool_:
        x = v.values_1d(x, "values")
        ones: NDArray[np.bool_] = x == 1  # ndarray.__eq__ is typed Any in numpy's stubs
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

    n: FloatOrArray
    num_sum: FloatOrArray
    num_sum_squares: FloatOrArray
    den_sum: FloatOrArray
    den_sum_squares: FloatOrArray
    num_den_sum: FloatOrArray
    kind: ClassVar[str] = "ratio"
    _non_negative: ClassVar[tuple[str, ...]] = ("n", "num_sum_squares", "den_sum_squares")
    if TYPE_CHECKING:
        # As for SampleMean: array-like in, float or float64 array stored.
        def __init__(
            self,
            n: ArrayLike,
            num_sum: ArrayLike,
            num_sum_squares: ArrayLike,
            den_sum: ArrayLike,
            den_sum_squares: ArrayLike,
            num_den_sum: ArrayLike,
        ) -> None: ...

    @property
    def mean(self) -> FloatOrArray:
        """num_sum / den_sum; NaN when den_sum is 0."""
        den = np.asarray(self.den_sum)
        with np.errstate(divide="ignore", invalid="ignore"):
            return v.scalar_or_array(np.where(den != 0, np.divide(self.num_sum, den), np.nan))

    @property
    def variance(self) -> FloatOrArray:
        """Per-unit delta-method variance of the ratio; NaN when n < 2 or den mean is 0."""
        m, d = np.asarray(_mean(self.num_sum, self.n)), np.asarray(_mean(self.den_sum, self.n))
        var_m = np.asarray(_sample_variance(self.n, self.num_sum, self.num_sum_squares))
        var_d = np.asarray(_sample_variance(self.n, self.den_sum, self.den_sum_squares))
        cov = np.asarray(_sample_covariance(self.n, self.num_sum, self.den_sum, self.num_den_sum))
        with np.errstate(divide="ignore", invalid="ignore"):
            var = var_m / d**2 - 2.0 * cov * m / d**3 + m**2 * var_d / d**4
        return v.scalar_or_array(np.where(d != 0, np.maximum(var, 0.0), np.nan))

    @classmethod
    def from_values(cls, numerator: ArrayLike, denominator: ArrayLike) -> Ratio:
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
        cls, numerator: ArrayLike, denominator: ArrayLike, groups: ArrayLike, n_groups: int | None = None
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
        g = _per_group(groups, m.size, n_groups, columns=[m, d], pairs=[(0, 1)])
        v.finite_sums(g.sums[0], "numerator")
        v.finite_sums(g.sums[1], "denominator")
        return cls(g.n, g.sums[0], g.squares[0], g.sums[1], g.squares[1], g.cross[0])


def _pair(
    numerator: ArrayLike, denominator: ArrayLike, check_nan: bool = True
) -> tuple[FloatArray, FloatArray]:
    m = v.values_1d(numerator, "numerator", check_nan)
    d = v.values_1d(denominator, "denominator", check_nan)
    if m.shape != d.shape:
        raise StatsError(f"mismatched lengths: `numerator` has {m.size}, `denominator` has {d.size}")
    return m, d


_KINDS: dict[str, type[SampleMean | Proportion | Ratio]] = {
    "mean": SampleMean,
    "proportion": Proportion,
    "ratio": Ratio,
}
MetricKind: TypeAlias = (
    Literal["mean", "proportion", "ratio"] | type[SampleMean] | type[Proportion] | type[Ratio]
)
MetricSpec: TypeAlias = tuple[MetricKind, ArrayLike] | tuple[MetricKind, ArrayLike, ArrayLike]
"""`(kind, values)`, or `("ratio", numerator, denominator)`."""


def aggregate(
    groups: ArrayLike, metrics: Mapping[str, MetricSpec], n_groups: int | None = None
) -> dict[str, SampleMean | Proportion | Ratio]:
    """Per-group statistics of several metrics of the same units, sharing the group pass.

    The per-group unit counts are computed once for all metrics, and a column used by
    several metrics (revenue as a mean and as a ratio numerator) is summed once. Each
    result equals the metric's own `from_groups` (to floating point rounding).

        stats.aggregate(variant, {"conversion": ("proportion", converted),
                                  "revenue": ("mean", revenue),
                                  "revenue_per_session": ("ratio", revenue, sessions)}, 2)

    Args:
        groups: per-unit integer group codes (0..k-1), 1-D.
        metrics: {name: (kind, values)} with kind "proportion" or "mean" (or the class
            Proportion, SampleMean) and one per-unit array, or {name: ("ratio", numerator,
            denominator)} (or Ratio); every array as long as `groups`.
        n_groups: k; defaults to max(groups) + 1.

    Returns:
        {name: statistic} in the order of `metrics`, each with fields of length k.

    Raises:
        StatsError: an unknown kind or wrong number of arrays, mismatched lengths, bad
            codes, non-binary proportion values, NaN values.
    """
    # Proportions keep their values as a boolean array, the other kinds as float64.
    specs: list[tuple[str, type[SampleMean | Proportion | Ratio], list[NDArray[Any]]]] = []
    for name, spec in metrics.items():
        cls, arrays = _metric_spec(name, spec)
        specs.append((name, cls, arrays))
    length = specs[0][2][0].size if specs else int(np.size(groups))
    for name, _, arrays in specs:
        for x in arrays:
            if x.size != length:
                raise StatsError(
                    f"mismatched lengths: `metrics[{name!r}]` has {x.size} values, expected {length}"
                )
    flags: list[NDArray[np.bool_]] = []
    columns: list[FloatArray] = []
    index: dict[int, int] = {}  # id(column) -> row; `specs` keeps every column alive

    def row(x: FloatArray) -> int:
        if id(x) not in index:
            index[id(x)] = len(columns)
            columns.append(x)
        return index[id(x)]

    rows: dict[str, list[int]] = {}
    for name, cls, arrays in specs:
        if cls is Proportion:
            rows[name] = [len(flags)]
            flags.append(arrays[0])
        else:
            rows[name] = [row(x) for x in arrays]
    pairs = sorted({(r[0], r[1]) for (_, cls, _), r in zip(specs, rows.values()) if cls is Ratio})
    g = _per_group(groups, length, n_groups, flags, columns, pairs)
    out: dict[str, SampleMean | Proportion | Ratio] = {}
    for name, cls, _ in specs:
        r = rows[name]
        if cls is Proportion:
            out[name] = Proportion(g.n, g.successes[r[0]])
            continue
        for i, what in zip(r, ("",) if len(r) == 1 else (" numerator", " denominator")):
            v.finite_sums(g.sums[i], f"metrics[{name!r}]{what}")
        if cls is SampleMean:
            out[name] = SampleMean(g.n, g.sums[r[0]], g.squares[r[0]])
        else:
            a, b = r
            out[name] = Ratio(
                g.n, g.sums[a], g.squares[a], g.sums[b], g.squares[b], g.cross[pairs.index((a, b))]
            )
    return out


def _metric_spec(name: str, spec: object) -> tuple[type[SampleMean | Proportion | Ratio], list[NDArray[Any]]]:
    if not isinstance(spec, (tuple, list)) or not spec:
        raise StatsError(f"`metrics[{name!r}]` must be (kind, values...), got {spec!r}")
    kind, *arrays = spec
    cls = _KINDS.get(kind) if isinstance(kind, str) else (kind if kind in _KINDS.values() else None)
    if cls is None:
        raise StatsError(f"`metrics[{name!r}]` kind must be one of {tuple(_KINDS)}, got {kind!r}")
    wanted = 2 if cls is Ratio else 1
    if len(arrays) != wanted:
        raise StatsError(f"`metrics[{name!r}]` ({cls.kind}) needs {wanted} array(s), got {len(arrays)}")
    try:
        if cls is Proportion:
            return cls, [_binary(arrays[0])]
        if cls is Ratio:
            return cls, list(_pair(arrays[0], arrays[1], check_nan=False))
        return cls, [v.values_1d(arrays[0], "values", check_nan=False)]
    except StatsError as exc:
        raise StatsError(f"`metrics[{name!r}]`: {exc}") from exc
