"""The canary step: weights move step by step between the baseline (first variant) and
the candidate, gated by the perf gate, the Prometheus checks and the statistics.

One tick, in order: put back weights the router lost (a restarted server); before the
first step, the perf gate (a failure rolls back before any traffic moves); then the
statistics (a significant degradation rolls back, a sample ratio mismatch halts); then
the checks (`failed_checks` failed intervals roll back, `progress_deadline` intervals
in a row without a verdict roll back too); all passed: the next step, and the last
step is the promotion.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from tritonab.errors import RolloutError, TritonABError
from tritonab.rollout.checks import (
    CheckResult,
    MetricSource,
    PerfGate,
    StatsProvider,
    StatsVerdict,
    evaluate_checks,
)
from tritonab.rollout.controller import Record, Strategy
from tritonab.rollout.spec import CanarySpec, window_seconds
from tritonab.rollout.state import CanaryState
from tritonab.rollout.tick import StepResult, TickOutcome, judge_checks
from tritonab.rollout.weights import RouterControl as RouterControl  # re-export: it used to live here
from tritonab.rollout.weights import apply_weights, reconcile_weights


def split_weights(
    weights: Mapping[str, float], baseline: str, candidate: str, percent: float
) -> dict[str, float]:
    """Give the candidate `percent` of the baseline + candidate share; others unchanged.

    Args:
        weights: the router's weights now.
        baseline, candidate: the two variants that trade traffic.
        percent: the candidate's share of their pool, 0 to 100.

    Returns:
        The new weights (rounded to 1e-9, so they still sum to what they did).
    """
    pool = weights[baseline] + weights[candidate]
    moved = round(pool * percent / 100.0, 9)
    return {**weights, candidate: moved, baseline: round(pool - moved, 9)}


class CanaryStrategy(Strategy[CanarySpec, CanaryState]):
    """A canary rollout's start, step and abort.

    Args:
        spec: the canary spec.
        router: live weights (a `ModelControl`, or a fake in tests).
        metrics: Prometheus queries (None: no metric checks).
        perf_gate: run before the first step (None: no gate).
        stats: the statistics engine's decision (None: not consulted).
        clock: the time (seconds since the epoch), for tests.

    A step is judged only once it has served a full window (`spec.window`), and every
    reading's range is capped at the time since the step, so a candidate is never judged
    on traffic it served at an earlier weight.
    """

    state_type = CanaryState
    audit_prefix = "rollout"
    resume_keys = ("experiment", "candidate", "steps")

    def __init__(
        self,
        spec: CanarySpec,
        router: RouterControl,
        *,
        metrics: MetricSource | None = None,
        perf_gate: PerfGate | None = None,
        stats: StatsProvider | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec, self.router = spec, router
        self.metrics, self.perf_gate, self.stats = metrics, perf_gate, stats
        self.clock = clock

    # -- what the skeleton asks ---------------------------------------------------------------

    def start(self) -> CanaryState:
        """Read the router and check the variants: the candidate exists and is not the baseline."""
        spec = self.spec
        try:
            experiment, _ = self.router.experiment(spec.experiment)
        except TritonABError as exc:
            raise RolloutError(f"rollout of `{spec.experiment}`: cannot read the router: {exc}") from None
        names = [v.name for v in experiment.variants]
        if spec.candidate not in names:
            raise RolloutError(f"experiment `{spec.experiment}` has no variant `{spec.candidate}`")
        if names[0] == spec.candidate:
            raise RolloutError(
                f"variant `{spec.candidate}` is the baseline (first variant) of "
                f"`{spec.experiment}`: it cannot be the candidate"
            )
        return CanaryState(
            experiment=spec.experiment,
            baseline=names[0],
            candidate=spec.candidate,
            spec=spec.model_dump(mode="json"),
            weights=experiment.weights,
            initial_weights=experiment.weights,
            gate="pending" if self.perf_gate is not None else "skipped",
        )

    def step(self, state: CanaryState, record: Record) -> StepResult:
        """Reconcile drifted weights, then judge the interval and act on it."""
        note = self._reconcile(state, record)
        result = self._decide(state, record)
        return dataclasses.replace(result, reason=f"{result.reason} ({note})") if note else result

    def abort(self, state: CanaryState, reason: str, record: Record) -> str:
        """The candidate back to 0%, its weight to the baseline."""
        self._set(state, split_weights(state.weights, state.baseline, state.candidate, 0.0), reason, record)
        return f"{reason}; candidate back to 0%"

    def summary(self, state: CanaryState) -> str:
        """`step 2/5 5%`: the step and the candidate's share of the baseline + candidate pool."""
        pool = state.weights[state.baseline] + state.weights[state.candidate]
        percent = round(100 * state.weights[state.candidate] / pool, 6) if pool > 0 else 0.0
        return f"step {state.step + 1}/{len(self.spec.steps)} {percent:g}%"

    def identity(self, state: CanaryState) -> dict[str, Any]:
        """The experiment and the two variants that trade traffic."""
        return {"experiment": state.experiment, "baseline": state.baseline, "candidate": state.candidate}

    def weights(self, state: CanaryState) -> Mapping[str, float]:
        """The weights the rollout last set."""
        return state.weights

    def tick_fields(self, state: CanaryState, result: StepResult) -> dict[str, Any]:
        """The step, the counters against their thresholds, the perf gate and the statistics."""
        return {
            "step": state.step,
            "failed_checks": state.failed_checks,
            "thresholds": {
                "failed_checks": self.spec.failed_checks,
                "progress_deadline": self.spec.progress_deadline,
            },
            "gate": result.details.get("gate"),
            "stats": result.details.get("stats"),
        }

    def max_ticks(self) -> int:
        """Every step may use its failed intervals and its progress deadline, and no more."""
        spec = self.spec
        waits = math.ceil(window_seconds(spec.window) / spec.interval_s) + 1
        return (len(spec.steps) + 1) * (spec.failed_checks + spec.progress_deadline + waits) + 2

    # -- the step ------------------------------------------------------------------------------

    def _decide(self, state: CanaryState, record: Record) -> StepResult:
        """The perf gate first, then the first step, then the interval's checks and statistics."""
        if state.gate == "pending":
            return self._gate(state, record)
        if state.gate == "failed":  # the gate failed but its rollback did not go through
            return StepResult(TickOutcome.ROLLBACK, self._rollback(state, "perf gate failed", record))
        if state.step < 0:
            why = "perf gate passed" if state.gate == "passed" else "started"
            return StepResult(*self._advance(state, why, record))
        served = self.clock() - (state.step_started_at or state.updated_at)
        needed = window_seconds(self.spec.window)
        judged_on_data = (self.metrics is not None and bool(self.spec.checks)) or self.stats is not None
        if judged_on_data and served < needed:
            return StepResult(
                TickOutcome.HOLD,
                f"step {state.step + 1} has served {max(served, 0.0):.1f} of the {needed:g} s window",
            )
        checks = tuple(
            evaluate_checks(
                self.metrics,
                self.spec.checks,
                state.experiment,
                state.baseline,
                state.candidate,
                self.spec.window,
                served,
            )
        )
        verdict = self.stats(state.experiment, state.baseline, state.candidate) if self.stats else None
        outcome, reason = self._judge(state, checks, verdict)
        if outcome is TickOutcome.ROLLBACK:
            reason = self._rollback(state, reason, record)
        elif outcome is TickOutcome.ADVANCE:
            outcome, reason = self._advance(state, reason, record)
        details = {} if verdict is None else {"stats": verdict.to_dict()}
        return StepResult(outcome, reason, checks, details)

    def _gate(self, state: CanaryState, record: Record) -> StepResult:
        """The perf gate: the candidate's model against the baseline's, before any traffic."""
        if self.perf_gate is None:  # the spec lost its gate between restarts
            state.gate = "skipped"
            return StepResult(*self._advance(state, "started", record))
        experiment, _ = self.router.experiment(state.experiment)
        base, cand = experiment.variant(state.baseline), experiment.variant(state.candidate)
        verdict = self.perf_gate(_model_ref(base.model, base.version), _model_ref(cand.model, cand.version))
        details = {"gate": verdict.to_dict()}
        if not verdict.passed:
            state.gate = "failed"
            reason = "perf gate failed" + (f": {verdict.detail}" if verdict.detail else "")
            return StepResult(TickOutcome.ROLLBACK, self._rollback(state, reason, record), details=details)
        state.gate = "passed"
        return StepResult(*self._advance(state, "perf gate passed", record), details=details)

    def _judge(
        self, state: CanaryState, checks: tuple[CheckResult, ...], verdict: StatsVerdict | None
    ) -> tuple[TickOutcome, str]:
        """The outcome of an interval's readings (the counters in the state are updated)."""
        if verdict is not None and verdict.outcome == "rollback":
            return TickOutcome.ROLLBACK, "statistics: significant degradation"
        if verdict is not None and verdict.outcome == "invalid":
            return TickOutcome.HALT, "statistics: sample ratio mismatch"
        judged = judge_checks(checks, failed_checks=state.failed_checks, threshold=self.spec.failed_checks)
        state.failed_checks = judged.failed_checks
        if judged.outcome is not TickOutcome.HOLD:
            state.holds = 0
            return judged.outcome, judged.reason
        state.holds += 1
        reason = f"{judged.reason} ({state.holds}/{self.spec.progress_deadline})"
        if state.holds >= self.spec.progress_deadline:
            return TickOutcome.ROLLBACK, f"no verdict within the progress deadline: {reason}"
        return TickOutcome.HOLD, reason

    def _advance(self, state: CanaryState, reason: str, record: Record) -> tuple[TickOutcome, str]:
        """The next step's weights; the last step is the promotion."""
        nxt = state.step + 1
        percent = self.spec.steps[nxt]
        weights = split_weights(state.weights, state.baseline, state.candidate, percent)
        self._set(state, weights, f"step {nxt + 1}: {percent:g}%", record)
        state.step, state.holds, state.step_started_at = nxt, 0, self.clock()
        if nxt == len(self.spec.steps) - 1:
            return TickOutcome.PROMOTE, f"{reason}; candidate at 100%"
        return TickOutcome.ADVANCE, f"{reason}; candidate at {percent:g}%"

    def _rollback(self, state: CanaryState, reason: str, record: Record) -> str:
        """The candidate back to 0%."""
        weights = split_weights(state.weights, state.baseline, state.candidate, 0.0)
        self._set(state, weights, f"rollback: {reason}", record)
        return f"{reason}; candidate back to 0%"

    # -- weights -------------------------------------------------------------------------------

    def _set(self, state: CanaryState, weights: dict[str, float], why: str, record: Record) -> None:
        """Set router weights, record the change, then remember them in the state."""
        apply_weights(self.router, state, weights, why, record)

    def _reconcile(self, state: CanaryState, record: Record) -> str:
        """Put back the weights the state expects when the router serves others."""
        return reconcile_weights(self.router, state, record)


def _model_ref(model: str, version: int) -> str:
    """`model:version` for the perf tools (`model` alone when not pinned)."""
    return model if version == -1 else f"{model}:{version}"
