"""What a rollout tick looks at: Prometheus checks, the perf gate and the statistics.

Each source is pluggable (a protocol or a callable), so the state machine is tested
with fakes and run with `RouterQueries`, `perf.compare` and `monitoring.analysis`.
A check without data is `nodata` (the tick holds, never advances); an unreachable
source is `nodata` too, with the error as its detail.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from tritonab._transport import Endpoint, as_endpoint
from tritonab.errors import MonitoringError, PerfError, TritonABError
from tritonab.rollout.spec import MetricCheck, PerfGateSpec, StatsSpec, window_seconds

CheckStatus = Literal["pass", "fail", "hold", "nodata"]
_UNREACHABLE = "unreachable: "


class MetricSource(Protocol):
    """Per-variant router metrics (`tritonab.monitoring.promql.RouterQueries`)."""

    def rows(self, experiment: str, variant: str, window: str | None = None) -> float | None: ...

    def request_rate(self, experiment: str, variant: str, window: str | None = None) -> float | None: ...

    def error_rate(self, experiment: str, variant: str, window: str | None = None) -> float | None: ...

    def latency_quantile(
        self, experiment: str, variant: str, q: float = 0.99, window: str | None = None
    ) -> float | None: ...


@dataclass(frozen=True)
class CheckResult:
    """One check's reading: the value, its allowed range, and what it says."""

    name: str
    value: float | None
    low: float | None
    high: float | None
    status: CheckStatus
    baseline: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the audit log."""
        return asdict(self)

    def text(self) -> str:
        """`error rate=0.012 (<= 0.01) FAIL` style, for the terminal."""
        value = "n/a" if self.value is None else f"{self.value:.4g}"
        bounds = " ".join(
            part
            for part in (
                "" if self.low is None else f">= {self.low:.4g}",
                "" if self.high is None else f"<= {self.high:.4g}",
            )
            if part
        )
        if not bounds:
            bounds = "relative to the baseline"
        return f"{self.name}={value} ({bounds}) {self.status.upper()}"


def _read(
    source: MetricSource, check: MetricCheck, experiment: str, variant: str, window: str
) -> float | None:
    """The check's metric for one variant over `window`."""
    if check.metric == "latency":
        return source.latency_quantile(experiment, variant, check.quantile, window)
    if check.metric == "rows":
        return source.rows(experiment, variant, window)
    if check.metric == "request_rate":
        return source.request_rate(experiment, variant, window)
    return source.error_rate(experiment, variant, window)


def capped_window(window: str, served_s: float | None) -> str:
    """`window`, or the time the step has served when that is shorter (whole seconds, at
    least one), so a reading never reaches back before the step."""
    if served_s is None or window_seconds(window) <= served_s:
        return window
    return f"{max(1, int(served_s))}s"


def evaluate_check(
    source: MetricSource,
    check: MetricCheck,
    experiment: str,
    baseline: str,
    candidate: str,
    window: str,
    served_s: float | None = None,
) -> CheckResult:
    """Read one check for the candidate (and the baseline when relative) and judge it.

    Args:
        source: the metrics.
        check: the check.
        experiment: the router.
        baseline, candidate: the variants (the baseline is read for relative checks).
        window: the PromQL range when the check gives none.
        served_s: seconds since the weights were last changed: the range never reaches
            further back (None: no cap).

    Returns:
        The reading: `pass`, `fail` or `hold` by the range, `nodata` without a value
        (or with Prometheus unreachable, the error as its detail).
    """
    w = capped_window(check.window or window, served_s)
    try:
        value = _read(source, check, experiment, candidate, w)
        base = _read(source, check, experiment, baseline, w) if check.relative else None
    except MonitoringError as exc:
        return CheckResult(check.label, None, check.min, check.max, "nodata", detail=f"{_UNREACHABLE}{exc}")
    scale = 1.0
    if check.relative:
        if base is None or not math.isfinite(base):
            return CheckResult(
                check.label, value, None, None, "nodata", base, "no baseline data for a relative check"
            )
        scale = base
    low = None if check.min is None else check.min * scale
    high = None if check.max is None else check.max * scale
    if value is None:
        return CheckResult(check.label, None, low, high, "nodata", base, "no data yet")
    inside = (low is None or value >= low) and (high is None or value <= high)
    status: CheckStatus = "pass" if inside else check.violation
    return CheckResult(check.label, value, low, high, status, base)


def evaluate_checks(
    source: MetricSource | None,
    checks: list[MetricCheck],
    experiment: str,
    baseline: str,
    candidate: str,
    window: str,
    served_s: float | None = None,
) -> list[CheckResult]:
    """Every metric check of a tick, as `evaluate_check` reads them.

    Args:
        source: the metrics (None: no readings).
        checks, experiment, baseline, candidate, window, served_s: as for `evaluate_check`.

    Returns:
        One reading per check, in order; none without a source.
    """
    if source is None:
        return []
    results: list[CheckResult] = []
    for check in checks:
        if results and results[-1].detail.startswith(_UNREACHABLE):
            # One failed query is enough: the client retries with back-off, so asking again
            # for every check would stretch a tick by seconds each.
            results.append(
                CheckResult(check.label, None, check.min, check.max, "nodata", detail=results[-1].detail)
            )
            continue
        results.append(evaluate_check(source, check, experiment, baseline, candidate, window, served_s))
    return results


# -- the perf gate -----------------------------------------------------------------------


@dataclass(frozen=True)
class GateVerdict:
    """The perf gate's outcome: passed, with the checks it rests on (JSON-ready)."""

    passed: bool
    checks: list[dict[str, Any]] = field(default_factory=list)
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the audit log."""
        return {"passed": self.passed, "checks": self.checks, "detail": self.detail}


PerfGate = Callable[[str, str], GateVerdict]
"""`(baseline "model:version", candidate "model:version") -> GateVerdict`."""


def perf_gate_runner(
    url: Endpoint | str, spec: PerfGateSpec, protocol: Literal["grpc", "http"] = "grpc"
) -> PerfGate:
    """A `PerfGate` that measures both models on `url` with `tritonab.perf.compare`.

    A measurement that cannot be taken (unreachable server, failed probe request) is a
    failed gate: a candidate that cannot be measured has not earned traffic.

    Args:
        url: the server's `host:port`, or an `Endpoint` (then its protocol, TLS files
            and access keys are used).
        spec: load, rounds and thresholds.
        protocol: `grpc` or `http` (with a `host:port` string).

    Returns:
        The gate, to call with `model:version` of the baseline and of the candidate.
    """
    from tritonab.perf import LoadOptions, MeasureSettings, compare, evaluate_gate

    endpoint = as_endpoint(url, protocol)

    def run(baseline: str, candidate: str) -> GateVerdict:
        """Both models side by side, then the thresholds."""
        options = LoadOptions(
            url=endpoint.url,
            protocol=endpoint.protocol,
            tls=endpoint.tls,
            headers=endpoint.headers,
            levels=(float(spec.concurrency),),
            settings=MeasureSettings(measurement_interval_ms=spec.window_ms),
        )
        try:
            result = compare(baseline, candidate, options, rounds=spec.rounds, warmup_s=spec.warmup_s)
        except PerfError as exc:
            return GateVerdict(False, [], f"could not measure: {exc}")
        gate = evaluate_gate(result, spec.thresholds)
        return GateVerdict(gate.passed, gate.to_dict()["checks"])

    return run


# -- the statistics engine -----------------------------------------------------------------


StatsOutcome = Literal["continue", "promote", "rollback", "invalid"]


@dataclass(frozen=True)
class StatsVerdict:
    """The statistics engine's word on the candidate.

    Attributes:
        outcome: `continue`, `promote`, `rollback` (a significant degradation) or
            `invalid` (sample ratio mismatch: the rollout halts).
        reasons: sentences from the decision.
        details: inputs worth auditing (p-values, effects, SRM p-value).
    """

    outcome: StatsOutcome
    reasons: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, for the audit log: the outcome, the reasons and the details."""
        return {"outcome": self.outcome, "reasons": list(self.reasons), **dict(self.details)}


StatsProvider = Callable[[str, str, str], "StatsVerdict | None"]
"""`(experiment, baseline, candidate) -> StatsVerdict`, or None when there is no data yet."""


def _decision_details(decision: Any) -> dict[str, Any]:
    """p-values and effects of a `stats.Decision`, JSON-ready."""

    def one(verdict: Any) -> dict[str, Any]:
        """One metric's status, effect and p-value."""
        result = verdict.result
        return {
            "status": verdict.status,
            "effect": getattr(result, "effect", None),
            "p_value": getattr(result, "p_value", None),
        }

    details: dict[str, Any] = {
        "primary": {decision.primary.name: one(decision.primary)},
        "guardrails": {g.name: one(g) for g in decision.guardrails},
    }
    if decision.srm is not None:
        details["srm_p_value"] = decision.srm.p_value
    return details


def analysis_stats(spec: StatsSpec) -> StatsProvider:
    """A `StatsProvider` over `tritonab.monitoring.analysis.analyze` (DuckDB on the logs).

    No log folder, no exposures yet, no success criteria or no decision for the
    candidate give None (no verdict: the checks decide alone).

    Args:
        spec: the log folder and extra outcome files.

    Returns:
        The provider.
    """

    def provide(experiment: str, baseline: str, candidate: str) -> StatsVerdict | None:
        """The decision on the candidate against the baseline, if there is one."""
        from tritonab.monitoring.analysis import analyze

        if spec.log_dir is None:
            return None
        try:
            analysis = analyze(experiment, spec.log_dir, outcomes=spec.outcomes)
        except TritonABError:  # no exposures yet, unreadable logs: no verdict
            return None
        decision = analysis.decisions.get(candidate)
        if decision is None or analysis.control != baseline:
            return None
        return StatsVerdict(decision.outcome.value, tuple(decision.reasons), _decision_details(decision))

    return provide
