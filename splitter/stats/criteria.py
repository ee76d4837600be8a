"""Success criteria of an experiment, as standalone pydantic v2 models.

These are parsed from the experiment spec (YAML/JSON), so they are pydantic models with
`extra="forbid"`; `tritonab.splitter.stats.decide` reads them.

Example (YAML)::

    primary: {name: conversion, direction: increase, minimum_effect: 0.02, relative: false}
    guardrails:
      - {name: latency_ms, bad_direction: increase, max_degradation: 0.05, relative: true}
    alpha: 0.05
    power: 0.8
    method: sequential
    sequential_tuning: 20000
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Direction = Literal["increase", "decrease"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PrimaryMetric(_Frozen):
    """The metric the experiment is meant to move.

    Attributes:
        name: key of the metric in `decide(metrics=...)`.
        direction: "increase" or "decrease": which way is an improvement.
        minimum_effect: smallest improvement worth shipping (absolute, or a fraction of the
            control mean when `relative`), >= 0. It sizes the sample, and a significant
            improvement whose point estimate is below it does not promote.
        relative: `minimum_effect` and the test are on the relative lift.
    """

    name: str = Field(min_length=1)
    direction: Direction = "increase"
    minimum_effect: float = Field(default=0.0, ge=0.0)
    relative: bool = False


class GuardrailMetric(_Frozen):
    """A metric that must not get worse by more than a tolerance (a non-inferiority test).

    Attributes:
        name: key of the metric in `decide(metrics=...)`.
        bad_direction: "increase" (e.g. latency, errors) or "decrease" (e.g. revenue).
        max_degradation: tolerated worsening (absolute, or relative when `relative`), >= 0.
            The guardrail fails when the whole interval lies beyond it and is clear when the
            whole interval lies within it; with 0 it clears only when significantly better.
        relative: `max_degradation` is a fraction of the control mean.
    """

    name: str = Field(min_length=1)
    bad_direction: Direction = "increase"
    max_degradation: float = Field(default=0.0, ge=0.0)
    relative: bool = False


class SuccessCriteria(_Frozen):
    """How an experiment is judged.

    Attributes:
        primary: the primary metric.
        guardrails: metrics that must not degrade; names unique and distinct from primary.
        alpha: significance level of every test (two-sided intervals at 1 - alpha).
        power: target power for the sample-size estimate.
        method: "fixed" (one look at the planned size) or "sequential" (look any time).
        sequential_tuning: N* of the confidence sequence; required when sequential.
        srm_threshold: SRM p-value below which the experiment is invalid.
    """

    primary: PrimaryMetric
    guardrails: tuple[GuardrailMetric, ...] = ()
    alpha: float = Field(default=0.05, gt=0.0, lt=1.0)
    power: float = Field(default=0.8, gt=0.0, lt=1.0)
    method: Literal["fixed", "sequential"] = "fixed"
    sequential_tuning: float | None = Field(default=None, gt=0.0)
    srm_threshold: float = Field(default=0.001, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _consistent(self) -> SuccessCriteria:
        if self.method == "sequential" and self.sequential_tuning is None:
            raise ValueError("`sequential_tuning` is required when method is 'sequential'")
        names = [self.primary.name] + [g.name for g in self.guardrails]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"metric names must be unique, repeated: {duplicates}")
        return self
