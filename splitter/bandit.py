"""Bandit allocation: Thompson sampling turned into traffic weights.

Each interval, an arm's target weight is its posterior probability of being the best
arm (Thompson sampling in its batched, probability-matching form: a unit routed by
these weights is routed as if one posterior draw per unit had been taken). The router
then moves toward that target no faster than `max_change` per arm and never below
`floor`: `constrain` finds the closest weights (Euclidean) inside those bounds.

Posteriors, from the statistics engine's sufficient statistics per arm:

- conversion (`stats.Proportion`): Beta(a0 + successes, b0 + failures);
- continuous (`stats.SampleMean`): the mean's posterior under the reference prior
  (flat on the mean, 1/sigma on the scale), `mean + sd / sqrt(n) * t(n - 1)`; an arm
  needs two units.

Pure numpy; a seeded `numpy.random.Generator` makes every draw reproducible.

    from tritonab.splitter import bandit, stats
    arms = stats.Proportion(n=[900, 1100], successes=[90, 140])   # 10% vs 12.7%
    bandit.probability_best(arms, rng=7)          # about [0.025, 0.975]
    weights, _ = bandit.thompson_weights(arms, [0.5, 0.5], floor=0.05, max_change=0.1, rng=7)
    # weights == [0.4, 0.6]: toward the target, at most 0.1 per interval
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tritonab.errors import StatsError
from tritonab.splitter.stats._sufficient import Proportion, SampleMean

Direction = Literal["increase", "decrease"]
FloatArray: TypeAlias = NDArray[np.float64]
Seed: TypeAlias = np.random.Generator | int | None
DEFAULT_DRAWS = 10_000
_TOLERANCE = 1e-6
_DECIMALS = 9  # weights travel through JSON and are validated to sum to 1 within 1e-6


def generator(seed: Seed) -> np.random.Generator:
    """A `numpy.random.Generator`: the one given, or a new one from `seed`."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _arms(stat: Proportion | SampleMean) -> tuple[FloatArray, ...]:
    """The statistic's fields as 1-D arrays, one entry per arm (at least two)."""
    if stat.shape == () or len(stat.shape) != 1 or stat.shape[0] < 2:
        raise StatsError(f"a bandit needs one statistic per arm (at least 2), got shape {stat.shape}")
    return tuple(np.broadcast_to(np.asarray(x, dtype=np.float64), stat.shape) for x in stat._values())


def posterior_draws(
    stat: Proportion | SampleMean,
    *,
    draws: int = DEFAULT_DRAWS,
    rng: Seed = None,
    prior: tuple[float, float] = (1.0, 1.0),
) -> FloatArray:
    """Draws from each arm's posterior of its mean, shape `(draws, arms)`.

    Args:
        stat: a `Proportion` (conversion) or `SampleMean` (continuous) with one entry per arm.
        draws: posterior draws per arm.
        rng: a Generator or a seed.
        prior: the Beta prior `(a0, b0)` of a conversion metric.

    Returns:
        The draws.

    Raises:
        StatsError: fewer than two arms, a continuous arm with fewer than two units,
            a non-positive prior or draw count.
    """
    if draws < 1:
        raise StatsError(f"`draws` must be at least 1, got {draws}")
    gen = generator(rng)
    if isinstance(stat, Proportion):
        n, successes = _arms(stat)
        a0, b0 = prior
        if a0 <= 0 or b0 <= 0:
            raise StatsError(f"`prior` must be two positive numbers, got {prior}")
        return gen.beta(a0 + successes, b0 + n - successes, size=(draws, n.size))
    if isinstance(stat, SampleMean):
        n, total, squares = _arms(stat)
        if (n < 2).any():
            raise StatsError(f"every arm of a continuous metric needs 2 units, got {n.tolist()}")
        mean = total / n
        sd = np.sqrt(np.maximum((squares - total**2 / n) / (n - 1), 0.0))
        t = np.asarray(gen.standard_t(n - 1, size=(draws, n.size)), dtype=np.float64)
        continuous: FloatArray = mean + sd / np.sqrt(n) * t
        return continuous
    raise StatsError(f"a bandit reads a `Proportion` or a `SampleMean`, got `{type(stat).__name__}`")


def probability_best(
    stat: Proportion | SampleMean,
    *,
    direction: Direction = "increase",
    draws: int = DEFAULT_DRAWS,
    rng: Seed = None,
    prior: tuple[float, float] = (1.0, 1.0),
) -> FloatArray:
    """Each arm's posterior probability of being the best (Monte Carlo over `draws`).

    Args:
        stat, draws, rng, prior: as for `posterior_draws`.
        direction: `increase` (higher is better) or `decrease` (lower is better).

    Returns:
        One probability per arm, summing to 1.

    Raises:
        StatsError: as for `posterior_draws`, or an unknown direction.
    """
    if direction not in ("increase", "decrease"):
        raise StatsError(f"`direction` must be 'increase' or 'decrease', got {direction!r}")
    sample = posterior_draws(stat, draws=draws, rng=rng, prior=prior)
    best = sample.argmax(axis=1) if direction == "increase" else sample.argmin(axis=1)
    counts = np.bincount(best, minlength=sample.shape[1]).astype(np.float64)
    share: FloatArray = counts / counts.sum()
    return share


def _weights(values: ArrayLike, what: str) -> FloatArray:
    """A 1-D array of non-negative finite numbers."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1 or array.size < 2:
        raise StatsError(f"`{what}` must be 1-D with at least 2 arms, got shape {array.shape}")
    if not np.isfinite(array).all() or (array < 0).any():
        raise StatsError(f"`{what}` must be finite and non-negative, got {array.tolist()}")
    return array


def constrain(
    target: ArrayLike, current: ArrayLike, *, floor: float = 0.0, max_change: float = 1.0
) -> FloatArray:
    """The weights closest to `target` that keep every arm at `floor` or more, move no arm
    more than `max_change` from `current`, and sum to 1.

    The Euclidean projection onto that box and the simplex: `clip(target + lam, lo, hi)`
    with `lo = max(floor, current - max_change)`, `hi = min(1, current + max_change)`
    and `lam` found by bisection so the sum is 1 (the sum grows with `lam`). Rounded to
    1e-9, the remainder on the arm with room for it.

    Args:
        target: the weights wished for (need not sum to 1).
        current: the weights now, summing to 1, each at `floor` or more.
        floor: each arm's minimum weight, at most 1 / arms.
        max_change: the largest move of one arm's weight, in (0, 1].

    Returns:
        The new weights.

    Raises:
        StatsError: mismatched lengths, `current` not summing to 1 or below the floor,
            a floor above 1 / arms, `max_change` outside (0, 1].
    """
    t, c = _weights(target, "target"), _weights(current, "current")
    if t.shape != c.shape:
        raise StatsError(f"mismatched lengths: `target` has {t.size} arms, `current` has {c.size}")
    if abs(c.sum() - 1.0) > _TOLERANCE:
        raise StatsError(f"`current` must sum to 1, got {c.sum():.8g}")
    if not 0.0 <= floor <= 1.0 / c.size + 1e-12:
        raise StatsError(f"`floor` must be in [0, 1/{c.size}], got {floor:g}")
    if not 0.0 < max_change <= 1.0:
        raise StatsError(f"`max_change` must be in (0, 1], got {max_change:g}")
    if (c < floor - _TOLERANCE).any():
        raise StatsError(f"`current` {c.tolist()} has arms below the floor {floor:g}")
    lo = np.maximum(floor, c - max_change)
    hi = np.minimum(1.0, c + max_change)
    lo = np.minimum(lo, hi)  # a current weight just under the floor (rounding) stays feasible
    left, right = float((lo - t).min()), float((hi - t).max())
    for _ in range(200):
        middle = 0.5 * (left + right)
        if np.clip(t + middle, lo, hi).sum() > 1.0:
            right = middle
        else:
            left = middle
    return _tidy(np.clip(t + 0.5 * (left + right), lo, hi), lo, hi)


def _tidy(w: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    """Rounded weights summing to 1 exactly (in decimal): the rounding remainder goes to
    the arm with the most room for it."""
    out = np.round(w, _DECIMALS)
    rest = round(1.0 - float(out.sum()), _DECIMALS)
    if rest:
        room = (hi - out) if rest > 0 else (out - lo)
        i = int(np.argmax(room))
        out[i] = round(out[i] + rest, _DECIMALS)
    return out


def thompson_weights(
    stat: Proportion | SampleMean,
    current: ArrayLike,
    *,
    floor: float = 0.0,
    max_change: float = 1.0,
    direction: Direction = "increase",
    draws: int = DEFAULT_DRAWS,
    rng: Seed = None,
    prior: tuple[float, float] = (1.0, 1.0),
) -> tuple[FloatArray, FloatArray]:
    """The next interval's weights: Thompson sampling's target, constrained.

    Args:
        stat, direction, draws, rng, prior: as for `probability_best`.
        current, floor, max_change: as for `constrain`.

    Returns:
        `(weights, probability_best)`.

    Raises:
        StatsError: as for `probability_best` and `constrain`.
    """
    target = probability_best(stat, direction=direction, draws=draws, rng=rng, prior=prior)
    return constrain(target, current, floor=floor, max_change=max_change), target


def equal_split(arms: int) -> FloatArray:
    """`arms` equal weights summing to 1 (rounded as `constrain` rounds)."""
    if arms < 1:
        raise StatsError(f"`arms` must be at least 1, got {arms}")
    flat = np.full(arms, 1.0 / arms)
    return _tidy(flat, np.zeros(arms), np.ones(arms))


def as_weights(names: Sequence[str], values: ArrayLike) -> dict[str, float]:
    """`{name: weight}` as plain floats, in the given order."""
    return {name: float(v) for name, v in zip(names, np.asarray(values, dtype=np.float64))}
