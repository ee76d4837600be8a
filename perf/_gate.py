"""`perf gate`: thresholds (pydantic, from YAML or flags) checked against a comparison.

Checks, at every load level of the comparison:
- `min_throughput_ratio`: candidate/baseline throughput estimate >= the minimum;
- `max_p99_ratio`: candidate/baseline p99 estimate <= the maximum;
- `p99_sla_ms`: the candidate's p99 <= the SLA (absolute, milliseconds);
- `max_error_rate`: the candidate's failed/completed requests <= the maximum.
The gate passes when every check passes; unset thresholds are not checked. A threshold
that was set but cannot be evaluated FAILS with the reason: a gate never passes what
it did not check. The error rate is unknown for perf_analyzer CSVs (they have no error
column); `perf compare` and `perf run` (which reads failures from Triton's statistics
around each perf_analyzer run) measure it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tritonab._io import atomic_write_text
from tritonab._specfile import format_validation_error, read_yaml
from tritonab.errors import PerfError
from tritonab.perf._compare import CompareResult, LevelComparison
from tritonab.perf._records import dumps_json

Status = Literal["PASS", "FAIL"]


class GateThresholds(BaseModel):
    """Promotion thresholds; any left unset is not checked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_throughput_ratio: float | None = Field(None, gt=0, description="candidate/baseline, at least")
    max_p99_ratio: float | None = Field(None, gt=0, description="candidate/baseline, at most")
    p99_sla_ms: float | None = Field(None, gt=0, description="candidate p99, at most (ms)")
    max_error_rate: float | None = Field(None, ge=0, le=1, description="candidate errors, at most")

    def is_empty(self) -> bool:
        """Whether no threshold is set."""
        return all(v is None for v in self.model_dump().values())


def load_thresholds(path: str | os.PathLike[str] | None = None, **overrides: float | None) -> GateThresholds:
    """Thresholds from a YAML file (optional), with flags in `overrides` taking precedence.

    Args:
        path: a YAML mapping of `GateThresholds` fields (a top-level `gate:` key is accepted).
        overrides: field values from the command line; None means not given.

    Returns:
        The validated thresholds.

    Raises:
        PerfError: unreadable YAML, unknown keys or invalid values (the field is named).
    """
    data: dict = {}
    if path is not None:
        loaded = read_yaml(path, error=PerfError) or {}
        if isinstance(loaded, dict) and isinstance(loaded.get("gate"), dict):
            loaded = loaded["gate"]
        if not isinstance(loaded, dict):
            raise PerfError(f"gate thresholds `{path}`: expected a mapping")
        data.update(loaded)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        thresholds = GateThresholds(**data)
    except ValidationError as exc:
        source = f"gate thresholds `{path}`" if path is not None else "gate thresholds"
        raise PerfError(format_validation_error(exc, source)) from None
    if thresholds.is_empty():
        raise PerfError("no gate threshold given (use --thresholds FILE.yaml or the --min/--max flags)")
    return thresholds


@dataclass(frozen=True)
class Check:
    """One threshold checked at one load level."""

    level: str
    name: str
    value: float | None
    limit: float
    status: Status
    detail: str = ""


@dataclass(frozen=True)
class GateResult:
    """Every check and the verdict."""

    baseline: str
    candidate: str
    checks: list[Check]
    thresholds: dict

    @property
    def passed(self) -> bool:
        """True when no check failed."""
        return not any(c.status == "FAIL" for c in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when passed, 1 when failed."""
        return 0 if self.passed else 1

    def to_dict(self) -> dict:
        """A JSON-ready dict for CI."""
        return {
            "verdict": "PASS" if self.passed else "FAIL",
            "baseline": self.baseline,
            "candidate": self.candidate,
            "thresholds": self.thresholds,
            "checks": [asdict(c) for c in self.checks],
        }


def _ci_text(level: LevelComparison, metric: str) -> str:
    ratio = level.ratios.get(metric)
    if ratio is None or ratio.ci_low is None:
        return ""
    return f"CI [{ratio.ci_low:.3f}, {ratio.ci_high:.3f}] over {ratio.n} pairs"


_UNKNOWN_ERRORS = (
    "unknown: the result has no failed-request counts (perf_analyzer CSVs carry no error column); "
    "measure with `tritonab perf compare`, or `perf run` against a reachable server, "
    "or drop --max-error-rate"
)


def _check(
    label: str, name: str, value: float | None, limit: float, *, higher_is_better: bool, detail: str = ""
) -> Check:
    if value is None or not math.isfinite(value):
        return Check(label, name, None, limit, "FAIL", f"could not be evaluated: {detail or 'not measured'}")
    ok = value >= limit if higher_is_better else value <= limit
    return Check(label, name, value, limit, "PASS" if ok else "FAIL", detail)


def _level_checks(level: LevelComparison, t: GateThresholds) -> list[Check]:
    label = f"{'concurrency' if level.mode == 'concurrency' else 'rate'} {level.load:g}"
    checks = []
    if t.min_throughput_ratio is not None:
        checks.append(
            _check(
                label,
                "throughput ratio",
                level.ratios["throughput"].estimate,
                t.min_throughput_ratio,
                higher_is_better=True,
                detail=_ci_text(level, "throughput"),
            )
        )
    if t.max_p99_ratio is not None:
        checks.append(
            _check(
                label,
                "p99 ratio",
                level.ratios["p99"].estimate,
                t.max_p99_ratio,
                higher_is_better=False,
                detail=_ci_text(level, "p99"),
            )
        )
    if t.p99_sla_ms is not None:
        checks.append(
            _check(
                label,
                "candidate p99 (ms)",
                level.candidate.p99_us / 1e3,
                t.p99_sla_ms,
                higher_is_better=False,
            )
        )
    if t.max_error_rate is not None:
        checks.append(
            _check(
                label,
                "candidate error rate",
                level.candidate.error_rate,
                t.max_error_rate,
                higher_is_better=False,
                detail="" if level.candidate.error_rate is not None else _UNKNOWN_ERRORS,
            )
        )
    return checks


def evaluate_gate(result: CompareResult, thresholds: GateThresholds) -> GateResult:
    """Check every threshold at every load level of `result`.

    Args:
        result: a comparison (from `compare`, `load_compare` or `compare_records`).
        thresholds: the limits.

    Returns:
        The checks and the verdict (`passed`, `exit_code`).
    """
    checks = [c for level in result.levels for c in _level_checks(level, thresholds)]
    return GateResult(result.baseline, result.candidate, checks, thresholds.model_dump(exclude_none=True))


def save_gate(gate: GateResult, path: str | os.PathLike[str]) -> None:
    """Write the gate's JSON (verdict, thresholds, checks) for CI."""
    atomic_write_text(path, dumps_json(gate.to_dict()))


def gate_table(gate: GateResult):
    """A rich `Table` of the checks with a PASS/FAIL title."""
    from rich.table import Table

    verdict = "[bold green]PASS[/]" if gate.passed else "[bold red]FAIL[/]"
    table = Table(title=f"perf gate: {gate.candidate} vs {gate.baseline}: {verdict}")
    for column in ("level", "check", "value", "limit", "status", "detail"):
        table.add_column(column, justify="right" if column in ("value", "limit") else "left")
    colours = {"PASS": "green", "FAIL": "red"}
    for c in gate.checks:
        value = "n/a" if c.value is None else f"{c.value:.3f}"
        table.add_row(c.level, c.name, value, f"{c.limit:g}", f"[{colours[c.status]}]{c.status}[/]", c.detail)
    return table
