"""Blue-green version switches of one router variant, as a ticked state machine.

Phases, one per tick (state in a JSON file, every action in the audit log):

1. `load`: reload the variant's model with `version_policy { specific { versions:
   [old, new] } }`, so the new version loads beside the old one;
2. `verify`: once the new version is ready, warm it up (a few inferences), then run
   the smoke set on both versions (same inputs) and compare success and median
   latency; a failure unloads the new version (rolled back, the router never moved);
3. `switch`: change the router's pinned version of the variant in one reload (a
   config override, as live weights do: no request fails);
4. `bake`: keep the old version loaded for an instant rollback while the Prometheus
   checks on the variant run for `bake_s`; a failed check switches back;
5. `finalize`: reload the model with only the new version (the old one unloads).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tritonab.errors import RolloutError, TritonABError
from tritonab.monitoring import audit as audit_log
from tritonab.rollout.canary import Outcome
from tritonab.rollout.checks import CheckResult, MetricSource, evaluate_checks
from tritonab.rollout.spec import BlueGreenSpec, SmokeSpec
from tritonab.rollout.state import TERMINAL, Exclusive, tick_until_done
from tritonab.rollout.versions import (
    Infer,
    grpc_infer,
    pin_version,
    run_smoke,
    set_versions,
    smoke_inputs,
    timed_infer,
)

__all__ = [
    "BlueGreenController",
    "BlueGreenEvent",
    "BlueGreenSpec",
    "BlueGreenState",
    "Infer",
    "SmokeSpec",
    "grpc_infer",
    "pin_version",
    "run_smoke",
    "set_versions",
    "smoke_inputs",
]

Phase = Literal["load", "verify", "switch", "bake", "finalize", "done"]


class BlueGreenState(BaseModel):
    """Where a blue-green switch stands (saved after every tick)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["bluegreen"] = "bluegreen"
    experiment: str
    variant: str
    model: str
    old_version: int
    new_version: int
    spec: dict[str, Any]
    phase: Phase = "load"
    status: Literal["progressing", "promoted", "rolled_back", "aborted"] = "progressing"
    ticks: int = 0
    waits: int = 0
    failed_checks: int = 0
    switched_at: float | None = None
    last_outcome: str | None = None
    last_reason: str = ""
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class BlueGreenEvent:
    """The readable record of one tick."""

    tick: int
    outcome: Outcome
    status: str
    phase: str
    versions: str
    reason: str
    checks: tuple[CheckResult, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        checks = "; ".join(c.text() for c in self.checks)
        parts = [
            f"tick {self.tick}",
            f"phase {self.phase}",
            self.versions,
            checks,
            f"-> {self.outcome.value}: {self.reason}",
        ]
        return "  ".join(p for p in parts if p)


class BlueGreenController(Exclusive):
    """Runs a blue-green switch one phase per tick.

    Args:
        spec: the blue-green spec.
        control: model control (a `ModelControl`).
        infer: one inference on a model version (`grpc_infer(url)`).
        state_path, audit_path: the state file and the hash-chained audit log.
        metrics: Prometheus queries for the bake checks (None: none).
        actor, on_event, sleep: as for the canary controller.
    """

    def __init__(
        self,
        spec: BlueGreenSpec,
        control: Any,
        infer: Infer,
        *,
        state_path: str | os.PathLike[str],
        audit_path: str | os.PathLike[str] | None = None,
        metrics: MetricSource | None = None,
        actor: str = "tritonab-rollout",
        on_event: Callable[[BlueGreenEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.spec, self.control, self.infer = spec, control, infer
        self.state_path, self.audit_path, self.metrics = state_path, audit_path, metrics
        self.actor, self.on_event, self.sleep = actor, on_event, sleep

    def _audit(self, event: str, state: BlueGreenState, **fields: Any) -> None:
        if self.audit_path is not None:
            audit_log.append(
                self.audit_path,
                event,
                actor=self.actor,
                experiment=state.experiment,
                variant=state.variant,
                model=state.model,
                old_version=state.old_version,
                new_version=state.new_version,
                tick=state.ticks,
                **fields,
            )

    def state(self) -> BlueGreenState | None:
        """The saved state (None before the first tick)."""
        from tritonab.rollout.state import load_state

        return load_state(self.state_path, BlueGreenState)

    def _save(self, state: BlueGreenState) -> None:
        from tritonab.rollout.state import save_state

        save_state(self.state_path, state)

    def _start(self) -> BlueGreenState:
        spec = self.spec
        try:
            experiment, _ = self.control.experiment(spec.experiment)
            variant = experiment.variant(spec.variant)
        except TritonABError as exc:
            raise RolloutError(f"blue-green on `{spec.experiment}`: {exc}") from None
        if variant.version == -1:
            raise RolloutError(f"variant `{spec.variant}` is not pinned to a version: pin it first")
        if variant.version == spec.version:
            raise RolloutError(f"variant `{spec.variant}` already serves version {spec.version}")
        state = BlueGreenState(
            experiment=spec.experiment,
            variant=spec.variant,
            model=variant.model,
            old_version=variant.version,
            new_version=spec.version,
            spec=spec.model_dump(mode="json"),
        )
        self._audit("bluegreen.start", state, spec=state.spec)
        return state

    def tick(self) -> BlueGreenEvent:
        """Read the state, take one phase step, write it back, record the event.

        Raises:
            RolloutError: the router or the variant cannot be read on the first tick, or
                another controller holds the state.
        """
        with self._exclusive():
            return self._tick()

    def _tick(self) -> BlueGreenEvent:
        state = self.state() or self._start()
        if state.done:
            return self._emit(state, Outcome.DONE, f"already {state.status}")
        state.ticks += 1
        try:
            outcome, reason, extra = getattr(self, f"_{state.phase}")(state)
        except TritonABError as exc:
            outcome, reason, extra = Outcome.HOLD, f"could not complete the tick: {exc}", {}
        state.last_outcome, state.last_reason = outcome.value, reason
        self._save(state)
        return self._emit(state, outcome, reason, **extra)

    def _emit(
        self,
        state: BlueGreenState,
        outcome: Outcome,
        reason: str,
        checks: tuple[CheckResult, ...] = (),
        details: dict[str, Any] | None = None,
    ) -> BlueGreenEvent:
        event = BlueGreenEvent(
            state.ticks,
            outcome,
            state.status,
            state.phase,
            f"{state.model} v{state.old_version} -> v{state.new_version}",
            reason,
            checks,
            details or {},
        )
        self._audit(
            f"bluegreen.{outcome.value}",
            state,
            phase=state.phase,
            status=state.status,
            reason=reason,
            checks=[c.to_dict() for c in checks],
            details=event.details,
        )
        if self.on_event is not None:
            self.on_event(event)
        return event

    # -- phases: each returns (outcome, reason, extra event fields) --------------------------

    def _load(self, state: BlueGreenState) -> tuple[Outcome, str, dict[str, Any]]:
        set_versions(self.control, state.model, [state.old_version, state.new_version])
        self._audit("bluegreen.load", state, versions=[state.old_version, state.new_version])
        state.phase = "verify"
        return Outcome.ADVANCE, f"loaded v{state.new_version} beside v{state.old_version}", {}

    def _verify(self, state: BlueGreenState) -> tuple[Outcome, str, dict[str, Any]]:
        if not self.control.is_ready(state.model, state.new_version):
            state.waits += 1
            if state.waits >= self.spec.load_deadline:
                return Outcome.ROLLBACK, self._rollback(state, "new version never became ready"), {}
            waited = f"{state.waits}/{self.spec.load_deadline}"
            return Outcome.HOLD, f"waiting for v{state.new_version} ({waited})", {}
        smoke = self.spec.smoke
        samples = smoke_inputs(
            self.control.config(state.model), smoke.input_data, max(smoke.requests, self.spec.warmup)
        )
        for sample in samples[: self.spec.warmup]:
            timed_infer(self.infer, state.model, state.new_version, sample)
        passed, figures = run_smoke(
            self.infer, state.model, state.old_version, state.new_version, samples[: smoke.requests], smoke
        )
        if not passed:
            return Outcome.ROLLBACK, self._rollback(state, "smoke set failed"), {"details": figures}
        state.phase = "switch"
        return Outcome.ADVANCE, "warmed up; smoke set passed", {"details": figures}

    def _switch(self, state: BlueGreenState) -> tuple[Outcome, str, dict[str, Any]]:
        pin_version(self.control, state.experiment, state.variant, state.new_version)
        state.switched_at, state.phase = time.time(), "bake"
        self._audit("bluegreen.switch", state, to_version=state.new_version)
        return Outcome.ADVANCE, f"router `{state.experiment}` switched to v{state.new_version}", {}

    def _bake(self, state: BlueGreenState) -> tuple[Outcome, str, dict[str, Any]]:
        checks = tuple(
            evaluate_checks(
                self.metrics,
                self.spec.checks,
                state.experiment,
                state.variant,
                state.variant,
                self.spec.window,
            )
        )
        failed = [c.name for c in checks if c.status == "fail"]
        if failed:
            state.failed_checks += 1
            reason = f"failed {', '.join(failed)} ({state.failed_checks}/{self.spec.failed_checks})"
            if state.failed_checks >= self.spec.failed_checks:
                return Outcome.ROLLBACK, self._rollback(state, reason), {"checks": checks}
            return Outcome.FAILED_CHECK, reason, {"checks": checks}
        waiting = [c.name for c in checks if c.status in ("hold", "nodata")]
        elapsed = time.time() - (state.switched_at or time.time())
        if waiting or elapsed < self.spec.bake_s:
            why = f"waiting for {', '.join(waiting)}" if waiting else "checks pass"
            return Outcome.HOLD, f"baking {elapsed:.1f}/{self.spec.bake_s:g} s; {why}", {"checks": checks}
        state.phase = "finalize"
        return Outcome.ADVANCE, "bake time over, checks pass", {"checks": checks}

    def _finalize(self, state: BlueGreenState) -> tuple[Outcome, str, dict[str, Any]]:
        set_versions(self.control, state.model, [state.new_version])
        self._audit("bluegreen.unload", state, versions=[state.new_version], unloaded=state.old_version)
        state.phase, state.status = "done", "promoted"
        return Outcome.PROMOTE, f"v{state.old_version} unloaded; v{state.new_version} serves alone", {}

    def _rollback(self, state: BlueGreenState, reason: str, status: str = "rolled_back") -> str:
        """Back to the old version: switch the router back if it moved, unload the new one."""
        if state.phase in ("bake", "finalize"):
            pin_version(self.control, state.experiment, state.variant, state.old_version)
            self._audit("bluegreen.switch", state, to_version=state.old_version, reason=reason)
        set_versions(self.control, state.model, [state.old_version])
        self._audit("bluegreen.unload", state, versions=[state.old_version], unloaded=state.new_version)
        state.phase, state.status = "done", status  # type: ignore[assignment]
        return f"{reason}; back on v{state.old_version}, v{state.new_version} unloaded"

    def run(self, *, max_ticks: int | None = None) -> BlueGreenState:
        """Tick every `interval_s` until the switch ends (or `max_ticks`)."""
        with self._exclusive():
            return self._run(max_ticks)

    def _run(self, max_ticks: int | None) -> BlueGreenState:
        spec = self.spec
        bound = max_ticks or (
            5 + spec.load_deadline + spec.failed_checks + int(spec.bake_s / spec.interval_s) + 20
        )
        tick_until_done(self.tick, interval_s=spec.interval_s, bound=bound, sleep=self.sleep)
        state = self.state()
        assert state is not None
        return state

    def abort(self, reason: str = "aborted by the operator") -> BlueGreenEvent:
        """Go back to the old version now (while it is still loaded).

        Raises:
            RolloutError: no saved state.
        """
        with self._exclusive():
            return self._abort(reason)

    def _abort(self, reason: str) -> BlueGreenEvent:
        state = self.state()
        if state is None:
            raise RolloutError(f"no rollout state at `{self.state_path}`")
        if state.done:
            return self._emit(state, Outcome.DONE, f"already {state.status}")
        state.ticks += 1
        reason = self._rollback(state, reason, status="aborted")
        state.last_outcome, state.last_reason = Outcome.ABORT.value, reason
        self._save(state)
        return self._emit(state, Outcome.ABORT, reason)
