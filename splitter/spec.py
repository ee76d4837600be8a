"""The experiment spec: what a user writes in `experiment.yaml`.

Parsed with pydantic, so every error names its field path. Checks that need the
model repository (unknown models, mismatched signatures) live in
`tritonab.ensembles.build`, because this room never reads Triton configs.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tritonab._specfile import read_yaml, validate_mapping
from tritonab.errors import SpecError
from tritonab.splitter.assign import Allocation
from tritonab.splitter.stats.criteria import SuccessCriteria

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_WEIGHT_TOLERANCE = 1e-6


def _check_name(value: str, what: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"{what} `{value}` must be letters, digits, `_`, `-` or `.`")
    return value


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Variant(_Model):
    """One arm: a model (or ensemble) at a pinned version, with its traffic weight."""

    name: str
    model: str
    version: int = Field(default=-1, description="pinned version; -1 = latest loaded")
    weight: float = Field(ge=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "variant name")

    @field_validator("version")
    @classmethod
    def _version(cls, v: int) -> int:
        if v == 0 or v < -1:
            raise ValueError("version must be a positive number, or -1 for the latest")
        return v


class Shadow(_Model):
    """A model mirrored a sample of requests; its answers are never returned."""

    model: str
    version: int = -1
    sample_rate: float = Field(default=1.0, gt=0.0, le=1.0)


class Sink(_Model):
    """Where exposure and payload logs go: a declared region, and optionally a folder.

    Without `path`, the router writes under the folder given by `tritonab serve --log-dir`
    (environment variable `TRITONAB_LOG_DIR` in the Python-backend stubs).
    """

    region: str = Field(default="local", min_length=1)
    path: str | None = None


class LoggingConfig(_Model):
    """Exposure and payload logging of the router (see `tritonab.monitoring`).

    Exposures (one record per routed row) are always written when a log folder is set;
    payloads (inputs and outputs of a request) for a `sample_rate` share of requests,
    with the tensors named in `redact` replaced and those in `hash` hashed (SHA-256 of
    `hash_salt` + value) before they are written.
    """

    enabled: bool = True
    sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    redact: list[str] = Field(default_factory=list)
    hash: list[str] = Field(default_factory=list)
    hash_salt: str = ""
    sink: Sink = Field(default_factory=Sink)
    queue_size: int = Field(default=10_000, ge=1, description="batches waiting for the writer")
    rotate_records: int = Field(default=100_000, ge=1)
    rotate_bytes: int = Field(default=64 << 20, ge=1024)
    rotate_seconds: float = Field(default=300.0, gt=0.0)
    encrypt: bool = Field(
        default=False,
        description="encrypt exposure and payload segments (envelope AES-256-GCM) under the "
        "data key named by $TRITONAB_LOG_KEY_FILE",
    )

    @model_validator(mode="after")
    def _disjoint(self) -> LoggingConfig:
        both = sorted(set(self.redact) & set(self.hash))
        if both:
            raise ValueError(f"names both redacted and hashed: {both}")
        return self


class Experiment(_Model):
    """An A/B experiment: variants, how units are hashed, and what the router accepts.

    The first variant is the baseline (see `tritonab.splitter.assign` for the layout).
    """

    name: str
    salt: str | None = None
    variants: list[Variant] = Field(min_length=1)
    unit_input: str | None = None
    require_unit: bool = True
    allow_override: bool = False
    shadow: list[Shadow] = Field(default_factory=list)
    max_batch_size: int | None = Field(default=None, ge=1)
    instance_count: int = Field(default=1, ge=1)
    description: str = ""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    allowed_regions: list[str] | None = Field(
        default=None, description="regions log sinks may lie in; None = no restriction"
    )
    success: SuccessCriteria | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return _check_name(v, "experiment name")

    @field_validator("shadow", mode="before")
    @classmethod
    def _one_shadow(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    @model_validator(mode="after")
    def _variants(self) -> Experiment:
        names = [v.name for v in self.variants]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"variants: duplicate variant names {dupes}")
        total = sum(v.weight for v in self.variants)
        if abs(total - 1.0) > _WEIGHT_TOLERANCE:
            raise ValueError(f"variants: weights must sum to 1, got {total:.6g}")
        region = self.logging.sink.region
        if self.allowed_regions is not None and region not in self.allowed_regions:
            raise ValueError(
                f"logging.sink.region: region `{region}` is not in allowed_regions "
                f"{list(self.allowed_regions)}"
            )
        return self

    @property
    def effective_salt(self) -> str:
        """The salt used for hashing (the experiment name when none is given)."""
        return self.salt if self.salt is not None else self.name

    @property
    def weights(self) -> dict[str, float]:
        """`{variant: weight}` in spec order."""
        return {v.name: v.weight for v in self.variants}

    def allocation(self) -> Allocation:
        """The bucket layout of this spec's variants."""
        return Allocation(tuple(v.name for v in self.variants), tuple(v.weight for v in self.variants))

    def variant(self, name: str) -> Variant:
        """The variant called `name`.

        Raises:
            SpecError: no such variant.
        """
        for v in self.variants:
            if v.name == name:
                return v
        raise SpecError(f"experiment `{self.name}` has no variant `{name}`")

    def with_weights(self, weights: Mapping[str, float]) -> Experiment:
        """A copy with new weights (every variant named; validated like a fresh spec).

        Raises:
            SpecError: unknown or missing variants, or weights not summing to 1.
        """
        unknown = sorted(set(weights) - {v.name for v in self.variants})
        if unknown:
            raise SpecError(f"experiment `{self.name}` has no variants {unknown}")
        missing = [v.name for v in self.variants if v.name not in weights]
        if missing:
            raise SpecError(f"weights: every variant needs a weight; missing {missing}")
        data = self.model_dump()
        for v in data["variants"]:
            v["weight"] = float(weights[v["name"]])
        return load_spec_dict(data, source=f"experiment `{self.name}`")

    def to_json(self) -> str:
        """Compact JSON, as stored in the router's `experiment` config parameter."""
        return json.dumps(
            self.model_dump(mode="json", exclude_defaults=False), sort_keys=True, separators=(",", ":")
        )


def load_spec_dict(data: Any, *, source: str = "experiment spec") -> Experiment:
    """Validate a parsed spec.

    Raises:
        SpecError: every problem, each with its field path.
    """
    return validate_mapping(Experiment, data, source=source)


def load_spec(path: str | os.PathLike[str]) -> Experiment:
    """Read an experiment spec from YAML (or JSON, which YAML reads too).

    Raises:
        SpecError: unreadable file, bad YAML, or an invalid spec.
    """
    return load_spec_dict(read_yaml(path), source=f"`{Path(path)}`")


def spec_from_json(text: str) -> Experiment:
    """The spec stored in a router config parameter."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SpecError(f"router parameter `experiment` is not JSON: {exc}") from None
    return load_spec_dict(data, source="router parameter `experiment`")
