"""The drift spec: thresholds and settings of `tritonab drift check` and the exporter.

```yaml
# drift.yaml (every key optional; flags override)
thresholds:
  psi: 0.2          # magnitude: PSI at or above this ...
  js: null          # ... or Jensen-Shannon distance at or above this (off by default)
  ks: null          # ... or KS statistic at or above this (numeric features; off by default)
  alpha: 0.01       # evidence: the feature's test (KS or chi-square) below this p-value
  correction: holm  # over the features of one window: holm, bh or none
window: 1h          # windows of the payload log (default: one window over everything)
min_rows: 100       # a window with fewer rows is reported as insufficient, not judged
categorical: [country]
ignore: [user_id]
features: null      # only these features (default: every feature of the reference)
domain_classifier: {enabled: false, auc: 0.55, max_rows: 2000}
```

A feature is `drifted` when both hold: the evidence (its p-value, adjusted over the
window's features, is below `alpha`) and the magnitude (any threshold set among `psi`,
`js`, `ks` is reached). The p-value keeps small windows from flagging noise; the
magnitude keeps large windows from flagging shifts too small to matter. Setting
`alpha: null` judges on magnitude alone; leaving every magnitude threshold null judges
on the test alone.
"""

from __future__ import annotations

import os
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tritonab._specfile import read_yaml, validate_mapping
from tritonab.errors import DriftError, MonitoringError
from tritonab.monitoring.retention import parse_duration


class DriftThresholds(BaseModel):
    """When a feature counts as drifted (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    psi: float | None = Field(0.2, gt=0)
    js: float | None = Field(None, gt=0, le=1)
    ks: float | None = Field(None, gt=0, le=1)
    alpha: float | None = Field(0.01, gt=0, lt=1)
    correction: Literal["holm", "bh", "none"] = "holm"

    @model_validator(mode="after")
    def _something(self) -> DriftThresholds:
        if self.alpha is None and self.psi is None and self.js is None and self.ks is None:
            raise ValueError("set `alpha` or at least one of `psi`, `js`, `ks`")
        return self


class DomainClassifierSettings(BaseModel):
    """The optional multivariate check: a classifier telling current rows from reference rows."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    auc: float = Field(0.55, gt=0.5, lt=1)
    max_rows: int = Field(2000, ge=20)


class DriftSpec(BaseModel):
    """Everything `drift check` and `monitor` judge drift by."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: DriftThresholds = DriftThresholds()
    window: str | None = None
    min_rows: int = Field(100, ge=1)
    categorical: list[str] = Field(default_factory=list)
    ignore: list[str] = Field(default_factory=list)
    features: list[str] | None = None
    domain_classifier: DomainClassifierSettings = DomainClassifierSettings()

    @field_validator("window")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_duration(value)
            except MonitoringError as exc:
                raise ValueError(str(exc)) from None
        return value

    @property
    def window_s(self) -> float | None:
        """The window in seconds (None: one window)."""
        return None if self.window is None else parse_duration(self.window)


def load_drift_spec(path: str | os.PathLike[str]) -> DriftSpec:
    """Read a drift spec YAML file.

    Raises:
        DriftError: unreadable file, or every problem with its field path.
    """
    data = read_yaml(path, error=DriftError)
    return validate_mapping(DriftSpec, data or {}, source=f"`{path}`", error=DriftError)
