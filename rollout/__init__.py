"""The rollout controller: canary weights step by step, gated, with automatic rollback.

A new variant reaches 100% of an experiment's traffic only when it has earned it: the
perf gate before the first step, then at every interval the Prometheus checks on the
router's per-variant metrics and (when configured) the statistics engine. Failing
`failed_checks` intervals, or a significant degradation, sends it back to 0%. Every
tick reads the saved state, takes one step and writes it back, so a restarted
controller continues where it stopped; every decision and weight change goes to the
hash-chained audit log (`tritonab.monitoring.audit`).

    spec = load_rollout_spec("rollout.yaml")
    with ModelControl("127.0.0.1:8001") as control:
        controller = canary_controller(spec, control, prometheus="http://127.0.0.1:9090",
                                       state_path="rollout.state.json", audit_path="audit.jsonl")
        final = controller.run()

Blue-green version switches are in `tritonab.rollout.bluegreen`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal

from tritonab.rollout.canary import (
    CanaryController,
    Outcome,
    RouterControl,
    TickEvent,
    split_weights,
)
from tritonab.rollout.checks import (
    CheckResult,
    GateVerdict,
    MetricSource,
    PerfGate,
    StatsProvider,
    StatsVerdict,
    analysis_stats,
    evaluate_check,
    evaluate_checks,
    perf_gate_runner,
)
from tritonab.rollout.spec import (
    BlueGreenSpec,
    CanarySpec,
    MetricCheck,
    PerfGateSpec,
    RolloutSpec,
    SmokeSpec,
    StatsSpec,
    load_rollout_dict,
    load_rollout_spec,
)
from tritonab.rollout.state import TERMINAL, RolloutState, load_state, save_state

__all__ = [
    "TERMINAL",
    "BlueGreenSpec",
    "CanarySpec",
    "CanaryController",
    "CheckResult",
    "GateVerdict",
    "MetricCheck",
    "MetricSource",
    "Outcome",
    "PerfGate",
    "PerfGateSpec",
    "RolloutSpec",
    "RolloutState",
    "RouterControl",
    "SmokeSpec",
    "StatsProvider",
    "StatsSpec",
    "StatsVerdict",
    "TickEvent",
    "analysis_stats",
    "canary_controller",
    "evaluate_check",
    "evaluate_checks",
    "exit_code",
    "load_rollout_dict",
    "load_rollout_spec",
    "load_state",
    "perf_gate_runner",
    "save_state",
    "split_weights",
]


def canary_controller(
    spec: CanarySpec,
    control: RouterControl,
    *,
    prometheus: str | None,
    state_path: str | os.PathLike[str],
    audit_path: str | os.PathLike[str] | None = None,
    triton_url: str | None = None,
    protocol: Literal["grpc", "http"] = "grpc",
    actor: str = "tritonab-rollout",
    on_event: Callable[[TickEvent], None] | None = None,
    stats: StatsProvider | None = None,
) -> CanaryController:
    """A controller wired to the real sources the spec asks for.

    Args:
        spec: the rollout spec.
        control: live weights (a `ModelControl`).
        prometheus: Prometheus base URL (needed when the spec has checks).
        state_path, audit_path: the state file and the audit log.
        triton_url: the server the perf gate measures (needed when the spec has one).
        protocol: `grpc` or `http`, for the perf gate.
        actor: who acts, for the audit log.
        on_event: called with every tick's event.
        stats: a statistics provider; default: `analysis_stats` when the spec has `stats`.

    Raises:
        RolloutError: a source the spec needs is not given.
    """
    from tritonab.errors import RolloutError

    metrics = None
    if spec.checks:
        if not prometheus:
            raise RolloutError("the rollout spec has checks: give the Prometheus URL (--prometheus)")
        from tritonab.monitoring.promql import RouterQueries

        metrics = RouterQueries(prometheus, window=spec.window)
    gate = None
    if spec.perf_gate is not None:
        if not triton_url:
            raise RolloutError("the rollout spec has a perf gate: give the Triton URL")
        gate = perf_gate_runner(triton_url, spec.perf_gate, protocol)
    if stats is None and spec.stats is not None:
        stats = analysis_stats(spec.stats)
    return CanaryController(
        spec,
        control,
        state_path=state_path,
        audit_path=audit_path,
        metrics=metrics,
        perf_gate=gate,
        stats=stats,
        actor=actor,
        on_event=on_event,
    )


def exit_code(state: RolloutState) -> int:
    """0 promoted, 1 rolled back or aborted, 2 anything else (halted, not finished)."""
    if state.status == "promoted":
        return 0
    if state.status in ("rolled_back", "aborted"):
        return 1
    return 2
