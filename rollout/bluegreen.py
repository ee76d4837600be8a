"""The blue-green step: one router variant switches to a new version of its model, one
phase per tick.

1. `load`: reload the variant's model with `version_policy { specific { versions:
   [old, new] } }`, so the new version loads beside the old one;
2. `verify`: once the new version is ready, warm it up (a few inferences), then run
   the smoke set on both versions (same inputs) and compare success and median
   latency; a failure unloads the new version (rolled back, the router never moved);
3. `switch`: change the router's pinned version of the variant in one reload (a
   config override, as live weights do: no request fails);
4. `bake`: keep the old version loaded for an instant rollback while the Prometheus
   checks on the variant run for `bake_s`; failed checks switch back;
5. `finalize`: reload the model with only the new version (the old one unloads).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tritonab.errors import RolloutError, TritonABError
from tritonab.rollout.checks import MetricSource, evaluate_checks
from tritonab.rollout.controller import Record, Strategy
from tritonab.rollout.spec import BlueGreenSpec, window_seconds
from tritonab.rollout.state import BlueGreenState
from tritonab.rollout.tick import StepResult, TickOutcome, judge_checks
from tritonab.rollout.versions import (
    Infer,
    VersionControl,
    pin_version,
    run_smoke,
    set_versions,
    smoke_inputs,
    timed_infer,
)


class BlueGreenStrategy(Strategy[BlueGreenSpec, BlueGreenState]):
    """A blue-green switch's start, phases and abort.

    Args:
        spec: the blue-green spec.
        control: model control (a `ModelControl`, or a fake in tests).
        infer: one inference on a model version (`server_infer(url)`).
        metrics: Prometheus queries for the bake checks (None: none).
        clock: the time (seconds since the epoch), for tests.
    """

    state_type = BlueGreenState
    audit_prefix = "bluegreen"
    resume_keys = ("experiment", "variant", "version")

    def __init__(
        self,
        spec: BlueGreenSpec,
        control: VersionControl,
        infer: Infer,
        *,
        metrics: MetricSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec, self.control, self.infer, self.metrics = spec, control, infer, metrics
        self.clock = clock

    # -- what the skeleton asks ---------------------------------------------------------------

    def start(self) -> BlueGreenState:
        """Read the router: the variant must be pinned, to another version than the spec's."""
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
        return BlueGreenState(
            experiment=spec.experiment,
            variant=spec.variant,
            model=variant.model,
            old_version=variant.version,
            new_version=spec.version,
            spec=spec.model_dump(mode="json"),
        )

    def step(self, state: BlueGreenState, record: Record) -> StepResult:
        """The current phase's step."""
        if state.phase == "load":
            return self._load(state, record)
        if state.phase == "verify":
            return self._verify(state, record)
        if state.phase == "switch":
            return self._switch(state, record)
        if state.phase == "bake":
            return self._bake(state, record)
        if state.phase == "finalize":
            return self._finalize(state, record)
        raise RolloutError(f"blue-green of `{state.experiment}` has nothing left to do (phase done)")

    def abort(self, state: BlueGreenState, reason: str, record: Record) -> str:
        """Back to the old version while it is still loaded."""
        return self._rollback(state, reason, record)

    def summary(self, state: BlueGreenState) -> str:
        """`phase verify  m v1 -> v2`."""
        return f"phase {state.phase}  {state.model} v{state.old_version} -> v{state.new_version}"

    def identity(self, state: BlueGreenState) -> dict[str, Any]:
        """The router, the variant, its model and the two versions."""
        return {
            "experiment": state.experiment,
            "variant": state.variant,
            "model": state.model,
            "old_version": state.old_version,
            "new_version": state.new_version,
        }

    def tick_fields(self, state: BlueGreenState, result: StepResult) -> dict[str, Any]:
        """The phase, and the figures behind the decision (the smoke set)."""
        return {"phase": state.phase, "details": dict(result.details)}

    def max_ticks(self) -> int:
        """Every phase once, the load deadline, the failed checks and the bake, with room."""
        spec = self.spec
        bake = max(spec.bake_s, window_seconds(spec.window))
        return 5 + spec.load_deadline + spec.failed_checks + int(bake / spec.interval_s) + 20

    # -- phases ----------------------------------------------------------------------------------

    def _load(self, state: BlueGreenState, record: Record) -> StepResult:
        """The new version loads beside the old one."""
        set_versions(self.control, state.model, [state.old_version, state.new_version])
        record("load", versions=[state.old_version, state.new_version])
        state.phase = "verify"
        return StepResult(TickOutcome.ADVANCE, f"loaded v{state.new_version} beside v{state.old_version}")

    def _verify(self, state: BlueGreenState, record: Record) -> StepResult:
        """Wait for the new version, warm it up, then the smoke set on both versions."""
        if not self.control.is_ready(state.model, state.new_version):
            state.waits += 1
            if state.waits >= self.spec.load_deadline:
                reason = self._rollback(state, "new version never became ready", record)
                return StepResult(TickOutcome.ROLLBACK, reason)
            waited = f"{state.waits}/{self.spec.load_deadline}"
            return StepResult(TickOutcome.HOLD, f"waiting for v{state.new_version} ({waited})")
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
            reason = self._rollback(state, "smoke set failed", record)
            return StepResult(TickOutcome.ROLLBACK, reason, details=figures)
        state.phase = "switch"
        return StepResult(TickOutcome.ADVANCE, "warmed up; smoke set passed", details=figures)

    def _switch(self, state: BlueGreenState, record: Record) -> StepResult:
        """The router's variant moves to the new version in one reload."""
        pin_version(self.control, state.experiment, state.variant, state.new_version)
        state.switched_at, state.phase = self.clock(), "bake"
        record("switch", to_version=state.new_version)
        reason = f"router `{state.experiment}` switched to v{state.new_version}"
        return StepResult(TickOutcome.ADVANCE, reason)

    def _bake(self, state: BlueGreenState, record: Record) -> StepResult:
        """The checks on the variant for `bake_s`, the old version still loaded; readings
        start at the switch (the variant's metrics before it are the old version's)."""
        now = self.clock()
        elapsed = now - (state.switched_at or now)
        needed = window_seconds(self.spec.window)
        if self.metrics is not None and self.spec.checks and elapsed < needed:
            reason = (
                f"baking {elapsed:.1f}/{self.spec.bake_s:g} s; the first {needed:g} s window is not served"
            )
            return StepResult(TickOutcome.HOLD, reason)
        checks = tuple(
            evaluate_checks(
                self.metrics,
                self.spec.checks,
                state.experiment,
                state.variant,
                state.variant,
                self.spec.window,
                elapsed,
            )
        )
        judged = judge_checks(checks, failed_checks=state.failed_checks, threshold=self.spec.failed_checks)
        state.failed_checks = judged.failed_checks
        if judged.outcome is TickOutcome.ROLLBACK:
            return StepResult(judged.outcome, self._rollback(state, judged.reason, record), checks)
        if judged.outcome is TickOutcome.FAILED_CHECK:
            return StepResult(judged.outcome, judged.reason, checks)
        if judged.outcome is TickOutcome.HOLD or elapsed < self.spec.bake_s:
            why = judged.reason if judged.outcome is TickOutcome.HOLD else "checks pass"
            return StepResult(TickOutcome.HOLD, f"baking {elapsed:.1f}/{self.spec.bake_s:g} s; {why}", checks)
        state.phase = "finalize"
        return StepResult(TickOutcome.ADVANCE, "bake time over, checks pass", checks)

    def _finalize(self, state: BlueGreenState, record: Record) -> StepResult:
        """The old version unloads."""
        set_versions(self.control, state.model, [state.new_version])
        record("unload", versions=[state.new_version], unloaded=state.old_version)
        state.phase = "done"
        reason = f"v{state.old_version} unloaded; v{state.new_version} serves alone"
        return StepResult(TickOutcome.PROMOTE, reason)

    def _rollback(self, state: BlueGreenState, reason: str, record: Record) -> str:
        """Back to the old version: switch the router back if it moved, unload the new one."""
        if state.phase in ("bake", "finalize"):
            pin_version(self.control, state.experiment, state.variant, state.old_version)
            record("switch", to_version=state.old_version, reason=reason)
        set_versions(self.control, state.model, [state.old_version])
        record("unload", versions=[state.old_version], unloaded=state.new_version)
        state.phase = "done"
        return f"{reason}; back on v{state.old_version}, v{state.new_version} unloaded"
