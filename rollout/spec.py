"""The rollout spec: what a user writes in `rollout.yaml`, beside the experiment spec.

One file, one strategy, chosen by its `strategy` field (a canary when left out):

- `canary`: names the experiment (router), the candidate variant, the steps (percent
  of the baseline + candidate share the candidate gets), the interval between ticks,
  how many failed intervals roll back, the checks, the perf gate and the statistics;
- `bluegreen`: names the experiment, the variant and the model version it switches
  to, the warm-up, the smoke set, the bake time and the checks;
- `bandit`: names the experiment, the reward metric, the logs, the floor and the
  maximum change per interval, and the stop rule (Thompson sampling over every arm).

Parsed with pydantic (a union discriminated on `strategy`) so every error names its
field path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from tritonab._specfile import format_validation_error, read_yaml
from tritonab.errors import RolloutError
from tritonab.perf import GateThresholds

MetricName = Literal["error_rate", "latency", "request_rate", "rows"]
_WINDOW = re.compile(r"^\d+(ms|s|m|h)$")


def _check_window(value: str) -> str:
    """A PromQL range such as `10s`, `500ms`, `1m`."""
    if not _WINDOW.match(value):
        raise ValueError(f"window `{value}` must look like `10s`, `500ms`, `1m`")
    return value


_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def window_seconds(value: str) -> float:
    """Seconds in a PromQL range such as `10s`, `500ms`, `1m`."""
    match = _WINDOW.match(value)
    if not match:
        raise ValueError(f"window `{value}` must look like `10s`, `500ms`, `1m`")
    unit = match.group(1)
    return int(value[: -len(unit)]) * _UNIT_SECONDS[unit]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MetricCheck(_Model):
    """One Prometheus check on the candidate's router metrics.

    The value must lie in `[min, max]` (either may be left out). With `relative`, the
    bounds are multiplied by the baseline variant's value over the same window (a
    baseline with no data makes the check hold). `on_violation` says what a value
    outside the range means: `fail` (a failed check) or `hold` (not enough data yet);
    by default `hold` for `rows` and `request_rate`, `fail` otherwise.
    """

    metric: MetricName
    name: str | None = None
    quantile: float = Field(default=0.99, gt=0.0, lt=1.0, description="for `latency`")
    min: float | None = None
    max: float | None = None
    relative: bool = False
    window: str | None = Field(default=None, description="PromQL range; default: the spec's window")
    on_violation: Literal["fail", "hold"] | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, v: str | None) -> str | None:
        """A PromQL range, when given."""
        return None if v is None else _check_window(v)

    @model_validator(mode="after")
    def _bounds(self) -> MetricCheck:
        """At least one bound, in order."""
        if self.min is None and self.max is None:
            raise ValueError("a check needs `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min:g} is above max {self.max:g}")
        return self

    @property
    def label(self) -> str:
        """The name shown in events and the audit log."""
        if self.name:
            return self.name
        if self.metric == "latency":
            return f"p{self.quantile * 100:g} latency"
        return self.metric.replace("_", " ")

    @property
    def violation(self) -> Literal["fail", "hold"]:
        """What a value outside the range means."""
        if self.on_violation is not None:
            return self.on_violation
        return "hold" if self.metric in ("rows", "request_rate") else "fail"


class PerfGateSpec(_Model):
    """The perf gate run before the first step: candidate model vs baseline model."""

    thresholds: GateThresholds
    concurrency: int = Field(default=1, ge=1)
    rounds: int = Field(default=2, ge=2)
    window_ms: float = Field(default=1000.0, gt=0)
    warmup_s: float = Field(default=0.2, ge=0)

    @model_validator(mode="after")
    def _some(self) -> PerfGateSpec:
        """A gate without thresholds would pass anything."""
        if self.thresholds.is_empty():
            raise ValueError("thresholds: set at least one")
        return self


class StatsSpec(_Model):
    """The statistics engine's decision on the KPIs (exposure and outcome logs)."""

    log_dir: str | None = Field(default=None, description="the router's log folder")
    outcomes: list[str] = Field(default_factory=list, description="extra outcome files")


class SmokeSpec(_Model):
    """The smoke set run on both versions before a blue-green switch."""

    requests: int = Field(default=20, ge=1, description="inferences per version")
    input_data: str = Field(default="random", description="`random`, `zero` or an `.npz` file")
    max_error_rate: float = Field(default=0.0, ge=0, le=1)
    max_latency_ratio: float | None = Field(default=2.0, gt=0, description="new/old median latency")


class StrategySpec(_Model):
    """What every strategy's spec has: the router, the tick interval, the Prometheus
    checks with their window, and how many failed intervals roll back."""

    strategy: str
    experiment: str
    interval_s: float = Field(default=60.0, gt=0)
    window: str = "1m"
    checks: list[MetricCheck] = Field(default_factory=list)
    failed_checks: int = Field(default=2, ge=1)

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        """A PromQL range."""
        return _check_window(v)


class CanarySpec(StrategySpec):
    """A canary rollout of one variant of a running experiment.

    `steps` are percentages of the baseline + candidate share of traffic (with two
    variants, of all traffic); the last must be 100, and reaching it is the promotion.
    `failed_checks` failed intervals roll back; `progress_deadline` intervals in a row
    without a verdict (no data) roll back too, so a rollout never hangs.
    """

    strategy: Literal["canary"] = "canary"
    candidate: str
    steps: list[float] = Field(default_factory=lambda: [1.0, 5.0, 25.0, 50.0, 100.0], min_length=1)
    progress_deadline: int = Field(default=20, ge=1)
    perf_gate: PerfGateSpec | None = None
    stats: StatsSpec | None = None

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        """Increasing percentages ending at 100."""
        if any(not 0 < s <= 100 for s in v):
            raise ValueError("every step must be a percentage in (0, 100]")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("steps must increase")
        if v[-1] != 100:
            raise ValueError("the last step must be 100 (the promotion)")
        return v


class BlueGreenSpec(StrategySpec):
    """Switch `variant` of router `experiment` to `version` of its model."""

    strategy: Literal["bluegreen"] = "bluegreen"
    variant: str
    version: int = Field(ge=1)
    warmup: int = Field(default=5, ge=0)
    smoke: SmokeSpec = Field(default_factory=SmokeSpec)
    bake_s: float = Field(default=60.0, ge=0)
    interval_s: float = Field(default=5.0, gt=0)
    failed_checks: int = Field(default=1, ge=1)
    load_deadline: int = Field(default=10, ge=1, description="ticks to wait for the new version")

    @field_validator("checks")
    @classmethod
    def _absolute(cls, v: list[MetricCheck]) -> list[MetricCheck]:
        """No baseline variant to be relative to."""
        if any(c.relative for c in v):
            raise ValueError("blue-green checks must be absolute (there is no baseline variant)")
        return v


class RewardSpec(_Model):
    """What a bandit maximises (or minimises): an outcome metric of the logs.

    `conversion`: the share of (unit, period) pairs with a non-zero outcome, a
    Beta-Bernoulli posterior per arm; `continuous`: the outcome's sum per (unit,
    period), the t posterior of its mean.
    """

    metric: str = Field(min_length=1, description="the outcome metric (`tritonab outcomes add`)")
    kind: Literal["conversion", "continuous"] = "conversion"
    direction: Literal["increase", "decrease"] = "increase"


class BanditSpec(StrategySpec):
    """Adaptive allocation over every variant of a running experiment (Thompson sampling).

    Each interval the weights move toward each arm's posterior probability of being the
    best, by at most `max_change` per arm and never below `floor`; each change opens an
    allocation period, and the analysis is stratified by period with a sample-ratio
    check per period (a mismatch halts). The bandit ends when one arm's probability of
    being best reaches `stop_probability` with every arm at `min_units`: a variant
    other than the baseline is promoted (all traffic) once its period-stratified
    comparison with the baseline is significant at `alpha`; the baseline being best
    rolls the candidates back. Failed Prometheus checks on any arm roll back too.
    """

    strategy: Literal["bandit"] = "bandit"
    reward: RewardSpec
    stats: StatsSpec
    floor: float = Field(default=0.05, gt=0.0, lt=0.5, description="each arm's minimum weight")
    max_change: float = Field(default=0.1, gt=0.0, le=1.0, description="largest weight move per interval")
    min_units: int = Field(default=50, ge=2, description="units per arm before the weights adapt")
    stop_probability: float = Field(default=0.95, gt=0.5, lt=1.0)
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0, description="the stratified confirmation's level")
    draws: int = Field(default=10_000, ge=100, description="posterior draws per interval")
    prior: tuple[float, float] = Field(default=(1.0, 1.0), description="Beta prior of a conversion")
    seed: int = Field(default=0, description="the posterior draws' seed (with the tick number)")
    max_intervals: int = Field(default=100, ge=1, description="ticks `run` takes at most")

    @field_validator("prior")
    @classmethod
    def _prior(cls, v: tuple[float, float]) -> tuple[float, float]:
        """Two positive numbers."""
        if v[0] <= 0 or v[1] <= 0:
            raise ValueError("the Beta prior needs two positive numbers")
        return v

    @model_validator(mode="after")
    def _logs(self) -> BanditSpec:
        """A bandit learns from the logs: they must be named."""
        if self.stats.log_dir is None:
            raise ValueError(
                "stats.log_dir: a bandit reads exposures and outcomes from the router's log folder"
            )
        return self


# A new strategy adds its spec class here (and its state, its strategy and its entry in
# `tritonab.rollout.wiring.STRATEGIES`).
RolloutSpec: TypeAlias = Annotated[CanarySpec | BlueGreenSpec | BanditSpec, Field(discriminator="strategy")]
_ADAPTER: TypeAdapter[RolloutSpec] = TypeAdapter(RolloutSpec)
# The strategy names a spec may give, read off the union so it cannot fall behind.
_NAMES: tuple[str, ...] = tuple(
    str(member.model_fields["strategy"].default) for member in get_args(get_args(RolloutSpec)[0])
)
DEFAULT_STRATEGY = "canary"


def load_rollout_dict(data: Any, *, source: str = "rollout spec") -> RolloutSpec:
    """Validate a parsed rollout spec as the strategy it names.

    Args:
        data: the parsed document; without `strategy` it is a canary.
        source: how messages name the document (a file in backticks).

    Returns:
        A `CanarySpec` or a `BlueGreenSpec`.

    Raises:
        RolloutError: not a mapping, an unknown strategy, or every problem, each with
            its field path.
    """
    if not isinstance(data, dict):
        raise RolloutError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    strategy = data.get("strategy", DEFAULT_STRATEGY)
    if strategy not in _NAMES:
        quoted = [f"`{name}`" for name in _NAMES]
        known = " or ".join(quoted) if len(quoted) < 3 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"
        raise RolloutError(f"{source}: strategy `{strategy}` is not {known}")
    try:
        return _ADAPTER.validate_python({**data, "strategy": strategy})
    except ValidationError as exc:
        raise RolloutError(format_validation_error(_untagged(exc, strategy), source)) from exc


def _untagged(exc: ValidationError, tag: str) -> ValidationError:
    """The same errors without the union's tag in front of each path (`steps`, not
    `canary.steps`): the user wrote the fields at the top level."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError(error["type"], error["msg"]),
            loc=error["loc"][1:] if error["loc"][:1] == (tag,) else error["loc"],
            input=error["input"],
        )
        for error in exc.errors()
    ]
    return ValidationError.from_exception_data(exc.title, details)


def load_rollout_spec(path: str | os.PathLike[str]) -> RolloutSpec:
    """Read a rollout spec from YAML.

    Args:
        path: the YAML file.

    Returns:
        A `CanarySpec` or a `BlueGreenSpec`, by the file's `strategy`.

    Raises:
        RolloutError: unreadable file, bad YAML, or an invalid spec.
    """
    return load_rollout_dict(read_yaml(path, error=RolloutError), source=f"`{Path(path)}`")
