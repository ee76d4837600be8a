"""The canary state machine, Flagger's way: each tick reads the saved state, takes one
step, writes the state back and records a readable event.

Outcomes of a tick:
- `advance`: every check passed (or, before the first step, the perf gate did): the
  candidate gets the next step's weight;
- `hold`: a check has no data yet (or reads below its minimum rows): nothing moves;
- `failed_check`: a check failed; at the spec's threshold of failed intervals, or when
  the statistics show a significant degradation, the tick is a `rollback` instead
  (candidate to 0%, its weight back to the baseline);
- `promote`: the last step passed, the candidate takes the whole baseline share;
- `halt`: the statistics found a sample ratio mismatch: nothing moves until a person
  looks (`tritonab rollout abort` sends the traffic back);
- `done`: the rollout had already ended.
Weights move between the baseline (first variant) and the candidate only.
"""

from __future__ import annotations

import enum
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from tritonab.errors import RolloutError, TritonABError
from tritonab.monitoring import audit as audit_log
from tritonab.rollout.checks import (
    CheckResult,
    GateVerdict,
    MetricSource,
    PerfGate,
    StatsProvider,
    StatsVerdict,
    evaluate_checks,
)
from tritonab.rollout.spec import CanarySpec
from tritonab.rollout.state import (
    Exclusive,
    RolloutState,
    Status,
    load_state,
    save_state,
    tick_until_done,
)
from tritonab.splitter.spec import Experiment


class Outcome(str, enum.Enum):
    """What one tick did."""

    ADVANCE = "advance"
    HOLD = "hold"
    FAILED_CHECK = "failed_check"
    ROLLBACK = "rollback"
    PROMOTE = "promote"
    HALT = "halt"
    ABORT = "abort"
    DONE = "done"


_STATUS_AFTER: dict[Outcome, Status] = {
    Outcome.ROLLBACK: "rolled_back",
    Outcome.PROMOTE: "promoted",
    Outcome.HALT: "halted",
    Outcome.ABORT: "aborted",
}


class RouterControl(Protocol):
    """Live router weights (`tritonab.deploy.control.ModelControl`)."""

    def experiment(self, name: str) -> tuple[Experiment, Any]: ...

    def set_weights(self, name: str, weights: dict[str, float]) -> Experiment: ...


@dataclass(frozen=True)
class TickEvent:
    """The readable record of one tick (also what the terminal shows)."""

    tick: int
    outcome: Outcome
    status: str
    step: int
    steps: int
    percent: float
    weights: dict[str, float]
    reason: str
    checks: tuple[CheckResult, ...] = ()
    gate: GateVerdict | None = None
    stats: StatsVerdict | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One line: tick, step, weights, check values, outcome and why."""
        weights = " ".join(f"{k}={v:.4g}" for k, v in self.weights.items())
        checks = "; ".join(c.text() for c in self.checks)
        step = f"step {self.step + 1}/{self.steps} {self.percent:g}%"
        parts = [f"tick {self.tick}", step, weights, checks, f"-> {self.outcome.value}: {self.reason}"]
        return "  ".join(p for p in parts if p)


def split_weights(
    weights: dict[str, float], baseline: str, candidate: str, percent: float
) -> dict[str, float]:
    """Give the candidate `percent` of the baseline + candidate share; others unchanged."""
    pool = weights[baseline] + weights[candidate]
    moved = round(pool * percent / 100.0, 9)
    return {**weights, candidate: moved, baseline: round(pool - moved, 9)}


class CanaryController(Exclusive):
    """Runs a canary rollout one tick at a time, with its state in a JSON file.

    Args:
        spec: the rollout spec.
        router: live weights (a `ModelControl`, or a fake in tests).
        state_path: the state file (created on the first tick).
        audit_path: the hash-chained audit log (None: no audit).
        metrics: Prometheus queries (None: no metric checks).
        perf_gate: run before the first step (None: no gate).
        stats: the statistics engine's decision (None: not consulted).
        actor: who acts, for the audit log.
        on_event: called with every `TickEvent`.
        sleep: how `run` waits between ticks (tests pass a fake).
    """

    def __init__(
        self,
        spec: CanarySpec,
        router: RouterControl,
        *,
        state_path: str | os.PathLike[str],
        audit_path: str | os.PathLike[str] | None = None,
        metrics: MetricSource | None = None,
        perf_gate: PerfGate | None = None,
        stats: StatsProvider | None = None,
        actor: str = "tritonab-rollout",
        on_event: Callable[[TickEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec, self.router, self.state_path = spec, router, state_path
        self.audit_path, self.metrics, self.perf_gate, self.stats = audit_path, metrics, perf_gate, stats
        self.actor, self.on_event, self.sleep = actor, on_event, sleep

    # -- records ----------------------------------------------------------------------

    def _audit(self, event: str, **fields: Any) -> None:
        if self.audit_path is not None:
            audit_log.append(self.audit_path, event, actor=self.actor, **fields)

    def _emit(self, state: RolloutState, outcome: Outcome, reason: str, **parts: Any) -> TickEvent:
        pool = state.weights[state.baseline] + state.weights[state.candidate]
        percent = round(100 * state.weights[state.candidate] / pool, 6) if pool > 0 else 0.0
        event = TickEvent(
            state.ticks,
            outcome,
            state.status,
            state.step,
            len(self.spec.steps),
            percent,
            dict(state.weights),
            reason,
            **parts,
        )
        self._audit(
            f"rollout.{outcome.value}",
            experiment=state.experiment,
            candidate=state.candidate,
            tick=state.ticks,
            step=state.step,
            status=state.status,
            weights=event.weights,
            reason=reason,
            failed_checks=state.failed_checks,
            thresholds={
                "failed_checks": self.spec.failed_checks,
                "progress_deadline": self.spec.progress_deadline,
            },
            checks=[c.to_dict() for c in event.checks],
            gate=None
            if event.gate is None
            else {"passed": event.gate.passed, "checks": event.gate.checks, "detail": event.gate.detail},
            stats=None
            if event.stats is None
            else {
                "outcome": event.stats.outcome,
                "reasons": list(event.stats.reasons),
                **dict(event.stats.details),
            },
            **event.extra,
        )
        if self.on_event is not None:
            self.on_event(event)
        return event

    # -- state --------------------------------------------------------------------------

    def _start(self) -> RolloutState:
        """The first tick: read the router, check the variants, record the start."""
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
        state = RolloutState(
            experiment=spec.experiment,
            baseline=names[0],
            candidate=spec.candidate,
            spec=spec.model_dump(mode="json"),
            weights=experiment.weights,
            initial_weights=experiment.weights,
            gate="pending" if self.perf_gate is not None else "skipped",
        )
        self._audit(
            "rollout.start",
            experiment=state.experiment,
            baseline=state.baseline,
            candidate=state.candidate,
            weights=state.weights,
            spec=state.spec,
        )
        return state

    def state(self) -> RolloutState | None:
        """The saved state (None before the first tick)."""
        return load_state(self.state_path)

    def _set(self, state: RolloutState, weights: dict[str, float], why: str) -> None:
        """Set router weights, record the change, then remember them in the state."""
        before = dict(state.weights)
        if _same(before, weights):
            return
        self.router.set_weights(state.experiment, weights)
        state.weights = dict(weights)
        self._audit(
            "rollout.weights",
            experiment=state.experiment,
            tick=state.ticks,
            before=before,
            after=dict(weights),
            reason=why,
        )

    def _reconcile(self, state: RolloutState) -> str:
        """Put back the weights the state expects when the router serves others (a
        restarted server, a crash between the reload and the state write)."""
        experiment, _ = self.router.experiment(state.experiment)
        served = experiment.weights
        if _same(served, state.weights):
            return ""
        self.router.set_weights(state.experiment, state.weights)
        self._audit(
            "rollout.weights",
            experiment=state.experiment,
            tick=state.ticks,
            before=served,
            after=dict(state.weights),
            reason="reconcile: the router served other weights",
        )
        return "weights re-applied"

    # -- one tick -------------------------------------------------------------------------

    def tick(self) -> TickEvent:
        """Read the state, take one step, write the state back, record the event.

        Raises:
            RolloutError: the router cannot be read on the first tick, bad variants, or
                another controller holds the state.
        """
        with self._exclusive():
            return self._tick()

    def _tick(self) -> TickEvent:
        state = self.state() or self._start()
        self._same_rollout(state)
        if state.done:
            return self._emit(state, Outcome.DONE, f"rollout already {state.status}")
        state.ticks += 1
        try:
            note = self._reconcile(state)
            outcome, reason, parts = self._step(state)
            if note:
                reason = f"{reason} ({note})"
        except TritonABError as exc:
            # The router or a source failed mid-tick: nothing moved that the state does not
            # know about; the next tick tries again.
            outcome, reason, parts = Outcome.HOLD, f"could not complete the tick: {exc}", {}
        state.last_outcome, state.last_reason = outcome.value, reason
        save_state(self.state_path, state)
        return self._emit(state, outcome, reason, **parts)

    def _same_rollout(self, state: RolloutState) -> None:
        """A saved state continues only under the spec's experiment, candidate and steps
        (thresholds and checks may change between restarts)."""
        for key in ("experiment", "candidate", "steps"):
            saved, given = state.spec.get(key), self.spec.model_dump(mode="json")[key]
            if saved != given:
                raise RolloutError(
                    f"rollout state `{self.state_path}` was started with {key} "
                    f"{saved!r}, the spec says {given!r}: use another --state file"
                )

    def _step(self, state: RolloutState) -> tuple[Outcome, str, dict[str, Any]]:
        if state.gate == "pending":
            return self._gate_step(state)
        if state.gate == "failed":  # the gate failed but its rollback did not go through
            return Outcome.ROLLBACK, self._rollback(state, "perf gate failed"), {}
        if state.step < 0:
            why = "perf gate passed" if state.gate == "passed" else "started"
            outcome, reason = self._advance(state, why)
            return outcome, reason, {}
        checks = tuple(
            evaluate_checks(
                self.metrics,
                self.spec.checks,
                state.experiment,
                state.baseline,
                state.candidate,
                self.spec.window,
            )
        )
        verdict = self.stats(state.experiment, state.baseline, state.candidate) if self.stats else None
        outcome, reason = self._judge(state, checks, verdict)
        if outcome is Outcome.ROLLBACK:
            reason = self._rollback(state, reason)
        elif outcome in (Outcome.ADVANCE, Outcome.PROMOTE):
            outcome, reason = self._advance(state, reason)
        elif outcome is Outcome.HALT:
            state.status = "halted"
        return outcome, reason, {"checks": checks, "stats": verdict}

    def _gate_step(self, state: RolloutState) -> tuple[Outcome, str, dict[str, Any]]:
        assert self.perf_gate is not None
        experiment, _ = self.router.experiment(state.experiment)
        base, cand = experiment.variant(state.baseline), experiment.variant(state.candidate)
        verdict = self.perf_gate(_model_ref(base.model, base.version), _model_ref(cand.model, cand.version))
        if not verdict.passed:
            state.gate = "failed"
            reason = "perf gate failed" + (f": {verdict.detail}" if verdict.detail else "")
            return Outcome.ROLLBACK, self._rollback(state, reason), {"gate": verdict}
        state.gate = "passed"
        outcome, reason = self._advance(state, "perf gate passed")
        return outcome, reason, {"gate": verdict}

    def _judge(
        self, state: RolloutState, checks: tuple[CheckResult, ...], verdict: StatsVerdict | None
    ) -> tuple[Outcome, str]:
        """The outcome of an interval's readings (counters in the state are updated)."""
        if verdict is not None and verdict.outcome == "rollback":
            return Outcome.ROLLBACK, "statistics: significant degradation"
        if verdict is not None and verdict.outcome == "invalid":
            return Outcome.HALT, "statistics: sample ratio mismatch"
        failed = [c.name for c in checks if c.status == "fail"]
        if failed:
            state.failed_checks += 1
            state.holds = 0
            reason = f"failed {', '.join(failed)} ({state.failed_checks}/{self.spec.failed_checks})"
            if state.failed_checks >= self.spec.failed_checks:
                return Outcome.ROLLBACK, reason
            return Outcome.FAILED_CHECK, reason
        waiting = [c.name for c in checks if c.status in ("hold", "nodata")]
        if waiting:
            state.holds += 1
            reason = f"waiting for {', '.join(waiting)} ({state.holds}/{self.spec.progress_deadline})"
            if state.holds >= self.spec.progress_deadline:
                return Outcome.ROLLBACK, f"no verdict within the progress deadline: {reason}"
            return Outcome.HOLD, reason
        state.holds = 0
        return Outcome.ADVANCE, "all checks passed" if checks else "no checks configured"

    def _advance(self, state: RolloutState, reason: str) -> tuple[Outcome, str]:
        nxt = state.step + 1
        percent = self.spec.steps[nxt]
        self._set(
            state,
            split_weights(state.weights, state.baseline, state.candidate, percent),
            f"step {nxt + 1}: {percent:g}%",
        )
        state.step, state.holds = nxt, 0
        if nxt == len(self.spec.steps) - 1:
            state.status = "promoted"
            return Outcome.PROMOTE, f"{reason}; candidate at 100%"
        return Outcome.ADVANCE, f"{reason}; candidate at {percent:g}%"

    def _rollback(self, state: RolloutState, reason: str) -> str:
        self._set(
            state, split_weights(state.weights, state.baseline, state.candidate, 0.0), f"rollback: {reason}"
        )
        state.status = "rolled_back"
        return f"{reason}; candidate back to 0%"

    # -- loops and actions -----------------------------------------------------------------

    def run(self, *, max_ticks: int | None = None, timeout_s: float | None = None) -> RolloutState:
        """Tick every `interval_s` until the rollout ends, `max_ticks` or `timeout_s`.

        Returns:
            The last saved state (check `status`; `progressing` means a bound stopped it).
        """
        with self._exclusive():
            return self._run(max_ticks, timeout_s)

    def _run(self, max_ticks: int | None, timeout_s: float | None) -> RolloutState:
        spec = self.spec
        bound = max_ticks or (len(spec.steps) + 1) * (spec.failed_checks + spec.progress_deadline) + 2
        tick_until_done(
            self.tick, interval_s=spec.interval_s, bound=bound, sleep=self.sleep, timeout_s=timeout_s
        )
        state = self.state()
        assert state is not None
        return state

    def abort(self, reason: str = "aborted by the operator") -> TickEvent:
        """Send the candidate's traffic back to the baseline and mark the rollout aborted.

        Raises:
            RolloutError: no saved state.
        """
        with self._exclusive():
            return self._abort(reason)

    def _abort(self, reason: str) -> TickEvent:
        state = self.state()
        if state is None:
            raise RolloutError(f"no rollout state at `{self.state_path}`")
        if state.done and state.status != "halted":
            return self._emit(state, Outcome.DONE, f"rollout already {state.status}")
        state.ticks += 1
        self._set(state, split_weights(state.weights, state.baseline, state.candidate, 0.0), reason)
        state.status = _STATUS_AFTER[Outcome.ABORT]
        state.last_outcome, state.last_reason = Outcome.ABORT.value, reason
        save_state(self.state_path, state)
        return self._emit(state, Outcome.ABORT, f"{reason}; candidate back to 0%")


def _same(a: dict[str, float], b: dict[str, float]) -> bool:
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a)


def _model_ref(model: str, version: int) -> str:
    return model if version == -1 else f"{model}:{version}"
