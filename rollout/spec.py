"""The rollout spec: what a user writes in `rollout.yaml`, beside the experiment spec.

A canary names the experiment (router), the candidate variant, the steps (percent of
the baseline + candidate share the candidate gets), the interval between ticks, how
many failed intervals roll back, and the checks. Parsed with pydantic so every error
names its field path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tritonab._specfile import read_yaml, validate_mapping
from tritonab.errors import RolloutError
from tritonab.perf import GateThresholds

MetricName = Literal["error_rate", "latency", "request_rate", "rows"]
_WINDOW = re.compile(r"^\d+(ms|s|m|h)$")


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
        if v is not None and not _WINDOW.match(v):
            raise ValueError(f"window `{v}` must look like `10s`, `500ms`, `1m`")
        return v

    @model_validator(mode="after")
    def _bounds(self) -> MetricCheck:
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
        if self.thresholds.is_empty():
            raise ValueError("thresholds: set at least one")
        return self


class StatsSpec(_Model):
    """The statistics engine's decision on the KPIs (exposure and outcome logs)."""

    log_dir: str | None = Field(default=None, description="the router's log folder")
    outcomes: list[str] = Field(default_factory=list, description="extra outcome files")


class RolloutSpec(_Model):
    """A canary rollout of one variant of a running experiment.

    `steps` are percentages of the baseline + candidate share of traffic (with two
    variants, of all traffic); the last must be 100, and reaching it is the promotion.
    `failed_checks` failed intervals roll back; `progress_deadline` intervals in a row
    without a verdict (no data) roll back too, so a rollout never hangs.
    """

    strategy: Literal["canary"] = "canary"
    experiment: str
    candidate: str
    steps: list[float] = Field(default_factory=lambda: [1.0, 5.0, 25.0, 50.0, 100.0], min_length=1)
    interval_s: float = Field(default=60.0, gt=0)
    window: str = "1m"
    failed_checks: int = Field(default=2, ge=1)
    progress_deadline: int = Field(default=20, ge=1)
    checks: list[MetricCheck] = Field(default_factory=list)
    perf_gate: PerfGateSpec | None = None
    stats: StatsSpec | None = None

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        if not _WINDOW.match(v):
            raise ValueError(f"window `{v}` must look like `10s`, `500ms`, `1m`")
        return v

    @field_validator("steps")
    @classmethod
    def _steps(cls, v: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in v):
            raise ValueError("every step must be a percentage in (0, 100]")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError("steps must increase")
        if v[-1] != 100:
            raise ValueError("the last step must be 100 (the promotion)")
        return v


def load_rollout_dict(data: Any, *, source: str = "rollout spec") -> RolloutSpec:
    """Validate a parsed rollout spec.

    Raises:
        RolloutError: every problem, each with its field path.
    """
    return validate_mapping(RolloutSpec, data, source=source, error=RolloutError)


def load_rollout_spec(path: str | os.PathLike[str]) -> RolloutSpec:
    """Read a rollout spec from YAML.

    Raises:
        RolloutError: unreadable file, bad YAML, or an invalid spec.
    """
    return load_rollout_dict(read_yaml(path, error=RolloutError), source=f"`{Path(path)}`")
