"""Request-rate traces: read and write `time_s,rps` CSV files, and generate test traces.

A trace is a step function: the rate of a row holds until the next row's time. The
generators give a daily cycle (a night trough at `trough_ratio` of the peak, a morning
rise over `ramp_s`, 15 minutes by default, the peak in the afternoon, a slower evening
decline) times multiplicative noise, log-normal and autocorrelated (AR(1) in log space
with a correlation time of `correlation_s`, so it wanders for minutes instead of
flickering), and optionally bursts: at random times (Poisson, `bursts_per_day`), the
rate is multiplied by 1.5-3x for 2-15 minutes.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from tritonab._io import atomic_write_text
from tritonab.errors import AutoscaleError

DAY_S = 86400.0


@dataclass(frozen=True)
class Trace:
    """A request-rate trace: `rps[i]` holds from `time_s[i]` until `time_s[i + 1]`."""

    time_s: NDArray[np.float64]
    rps: NDArray[np.float64]

    def __post_init__(self) -> None:
        if len(self.time_s) != len(self.rps) or len(self.time_s) < 2:
            raise AutoscaleError("a trace needs at least two rows of `time_s` and `rps` of equal length")
        if not np.all(np.diff(self.time_s) > 0):
            raise AutoscaleError("trace `time_s` must increase strictly")
        if not np.all(np.isfinite(self.rps)) or np.any(self.rps < 0):
            raise AutoscaleError("trace `rps` must be finite and not negative")

    @property
    def step_s(self) -> float:
        """The typical sampling step (median difference of times)."""
        return float(np.median(np.diff(self.time_s)))

    @property
    def start(self) -> float:
        return float(self.time_s[0])

    @property
    def end(self) -> float:
        """End of the last row (one step after its time)."""
        return float(self.time_s[-1] + self.step_s)

    def at(self, times: NDArray[np.float64]) -> NDArray[np.float64]:
        """The rate holding at each of `times` (the first row's before the start)."""
        index = np.clip(np.searchsorted(self.time_s, times, side="right") - 1, 0, len(self.rps) - 1)
        return self.rps[index]


def read_trace(path: str | os.PathLike[str]) -> Trace:
    """A `time_s,rps` CSV file (header row; other columns ignored).

    Raises:
        AutoscaleError: missing file or columns, a bad number (with its line), or times
            that do not increase.
    """
    source = Path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise AutoscaleError(f"trace `{source}` cannot be read: {exc.strerror}") from None
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or not {"time_s", "rps"} <= set(reader.fieldnames):
        raise AutoscaleError(
            f"trace `{source}`: the header must name `time_s` and `rps`, got {reader.fieldnames}"
        )
    times, rates = [], []
    for line, row in enumerate(reader, start=2):
        try:
            times.append(float(row["time_s"]))
            rates.append(float(row["rps"]))
        except (TypeError, ValueError):
            raise AutoscaleError(
                f"trace `{source}` line {line}: `time_s` and `rps` must be numbers"
            ) from None
    try:
        return Trace(np.asarray(times), np.asarray(rates))
    except AutoscaleError as exc:
        raise AutoscaleError(f"trace `{source}`: {exc}") from None


def write_trace(trace: Trace, path: str | os.PathLike[str]) -> None:
    """Write `trace` as a `time_s,rps` CSV file (atomically)."""
    lines = ["time_s,rps"] + [f"{t:g},{r:.3f}" for t, r in zip(trace.time_s.tolist(), trace.rps.tolist())]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _day(hours: NDArray[np.float64], ramp_s: float) -> NDArray[np.float64]:
    """A working day: a logistic rise centred on 08:30 (10% to 90% in `ramp_s`), an
    afternoon bump, a slow evening decline centred on 20:00; 0 at night."""
    rise = 1 / (1 + np.exp(-(hours - 8.5) * 4.394 / (ramp_s / 3600.0)))
    fall = 1 / (1 + np.exp(-(hours - 20.0) / 1.0))
    bump = 0.9 + 0.1 * np.exp(-(((hours - 14.0) / 3.0) ** 2))
    return np.asarray(rise * (1 - fall) * bump, dtype=np.float64)


def daily_shape(
    time_s: NDArray[np.float64], trough_ratio: float, ramp_s: float = 900.0
) -> NDArray[np.float64]:
    """The daily cycle, from `trough_ratio` (night) to 1 (the afternoon peak); the morning
    rise takes `ramp_s` (10% to 90%), the evening decline about four hours."""
    hours = np.mod(time_s, DAY_S) / 3600.0
    raw = _day(hours, ramp_s) + _day(hours + 24.0, ramp_s)  # yesterday's tail: continuous at midnight
    grid = np.linspace(0.0, 24.0, 2881)
    full = _day(grid, ramp_s) + _day(grid + 24.0, ramp_s)
    lo, hi = float(full.min()), float(full.max())
    return trough_ratio + (1 - trough_ratio) * (raw - lo) / (hi - lo)


def _log_noise(n: int, sigma: float, rho: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Stationary AR(1) noise with standard deviation `sigma`."""
    out = np.empty(n)
    out[0] = rng.normal(0, sigma)
    shocks = rng.normal(0, sigma * math.sqrt(1 - rho * rho), n)
    for i in range(1, n):
        out[i] = rho * out[i - 1] + shocks[i]
    return out


def diurnal_trace(
    *,
    days: float = 7,
    peak_rps: float = 1000.0,
    trough_ratio: float = 0.2,
    noise: float = 0.1,
    correlation_s: float = 300.0,
    step_s: float = 60.0,
    ramp_s: float = 900.0,
    bursts_per_day: float = 0.0,
    seed: int = 0,
) -> Trace:
    """A daily cycle with noise (and bursts, with `bursts_per_day` > 0).

    Args:
        days: length.
        peak_rps: the rate at the daily peak (before noise).
        trough_ratio: the night trough as a share of the peak.
        noise: standard deviation of the log-normal noise (0.1: about 10%).
        correlation_s: the noise's correlation time.
        step_s: sampling step.
        ramp_s: how long the morning rise takes (10% to 90% of the day's swing).
        bursts_per_day: mean number of bursts a day (1.5-3x for 2-15 minutes).
        seed: random seed.

    Raises:
        AutoscaleError: non-positive sizes or rates.
    """
    if days <= 0 or peak_rps <= 0 or step_s <= 0 or not 0 < trough_ratio <= 1 or noise < 0:
        raise AutoscaleError("`days`, `peak_rps` and `step_s` must be positive, `trough_ratio` in (0, 1]")
    rng = np.random.default_rng(seed)
    time_s = np.arange(0.0, days * DAY_S, step_s)
    rho = math.exp(-step_s / correlation_s) if correlation_s > 0 else 0.0
    wobble = _log_noise(len(time_s), noise, rho, rng) if noise > 0 else np.zeros(len(time_s))
    rps = peak_rps * daily_shape(time_s, trough_ratio, ramp_s) * np.exp(wobble - noise * noise / 2)
    for start in rng.uniform(0, days * DAY_S, rng.poisson(bursts_per_day * days)):
        length = rng.uniform(120.0, 900.0)
        inside = (time_s >= start) & (time_s < start + length)
        rps[inside] *= rng.uniform(1.5, 3.0)
    return Trace(time_s, rps)


def bursty_trace(
    *,
    days: float = 7,
    peak_rps: float = 1000.0,
    trough_ratio: float = 0.2,
    noise: float = 0.1,
    correlation_s: float = 300.0,
    step_s: float = 60.0,
    ramp_s: float = 900.0,
    bursts_per_day: float = 6.0,
    seed: int = 0,
) -> Trace:
    """`diurnal_trace` with bursts (default 6 a day)."""
    return diurnal_trace(
        days=days,
        peak_rps=peak_rps,
        trough_ratio=trough_ratio,
        noise=noise,
        correlation_s=correlation_s,
        step_s=step_s,
        ramp_s=ramp_s,
        bursts_per_day=bursts_per_day,
        seed=seed,
    )
