"""The bandit step: Thompson sampling moves every arm's weight, one interval at a time.

One tick, in order: put back weights the router lost (a restarted server); on the
first tick, an equal split (the burn-in; the first allocation period); then the
analysis by allocation period (`tritonab.monitoring.periods`: a sample ratio mismatch
in any period halts), the Prometheus checks of every arm against the baseline
(`failed_checks` failed intervals roll back), and with every arm at `min_units`
units, each arm's posterior probability of being best (`tritonab.splitter.bandit`).
When one arm's probability reaches `stop_probability`, the bandit ends: the baseline
being best rolls the candidates back; another arm is promoted once its
period-stratified comparison with the baseline is significant. Otherwise the weights
move toward the probabilities (at most `max_change` per arm, never below `floor`)
through a router reload, audited, and a new allocation period begins.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tritonab.errors import RolloutError, TritonABError
from tritonab.monitoring.periods import Period, PeriodAnalysis
from tritonab.rollout.checks import CheckResult, MetricSource, evaluate_checks
from tritonab.rollout.controller import Record, Strategy
from tritonab.rollout.spec import BanditSpec
from tritonab.rollout.state import AllocationPeriod, BanditState
from tritonab.rollout.tick import StepResult, TickOutcome, judge_checks
from tritonab.rollout.weights import RouterControl, apply_weights, reconcile_weights
from tritonab.splitter import bandit

PeriodSource = Callable[[str, Sequence[str], Sequence[Period]], "PeriodAnalysis | None"]
"""`(experiment, arms, periods) -> PeriodAnalysis` (the arms in that order, the first the
baseline), or None when there are no exposures yet."""


def log_periods(spec: BanditSpec) -> PeriodSource:
    """A `PeriodSource` over the router's logs (`monitoring.periods.analyze_periods`).

    Args:
        spec: the bandit spec (its reward metric, log folder and extra outcome files).

    Returns:
        The source; it gives None until the experiment has exposure files.
    """
    from tritonab.monitoring.periods import analyze_periods

    def read(experiment: str, arms: Sequence[str], periods: Sequence[Period]) -> PeriodAnalysis | None:
        """The reward metric by allocation period, or None without exposures."""
        assert spec.stats.log_dir is not None  # the spec's validator requires it
        folder = Path(spec.stats.log_dir) / experiment / "exposures"
        if not folder.is_dir() or not any(folder.iterdir()):
            return None
        return analyze_periods(
            experiment,
            spec.stats.log_dir,
            periods,
            metric=spec.reward.metric,
            kind=spec.reward.kind,
            variants=arms,
            outcomes=spec.stats.outcomes,
            alpha=spec.alpha,
        )

    return read


def _only(arms: Sequence[str], winner: str) -> dict[str, float]:
    """All traffic to `winner`."""
    return {arm: 1.0 if arm == winner else 0.0 for arm in arms}


class BanditStrategy(Strategy[BanditSpec, BanditState]):
    """A bandit's start, step and abort.

    Args:
        spec: the bandit spec.
        router: live weights (a `ModelControl`, or a fake in tests).
        periods: the reward by allocation period (`log_periods(spec)`, or a fake).
        metrics: Prometheus queries (None: no metric checks).
        clock: epoch seconds, for the periods' starts (tests pass a fake).
    """

    state_type = BanditState
    audit_prefix = "bandit"
    resume_keys = ("experiment", "reward")

    def __init__(
        self,
        spec: BanditSpec,
        router: RouterControl,
        periods: PeriodSource,
        *,
        metrics: MetricSource | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spec, self.router, self.periods = spec, router, periods
        self.metrics, self.clock = metrics, clock

    # -- what the skeleton asks ---------------------------------------------------------------

    def start(self) -> BanditState:
        """Read the router: at least two arms, and a floor every arm can have."""
        spec = self.spec
        try:
            experiment, _ = self.router.experiment(spec.experiment)
        except TritonABError as exc:
            raise RolloutError(f"bandit on `{spec.experiment}`: cannot read the router: {exc}") from None
        arms = [v.name for v in experiment.variants]
        if len(arms) < 2:
            raise RolloutError(f"experiment `{spec.experiment}` has one variant: a bandit needs two or more")
        if spec.floor * len(arms) > 1.0:
            raise RolloutError(
                f"floor {spec.floor:g} for {len(arms)} arms is more than all the traffic: "
                f"at most {1 / len(arms):.4g}"
            )
        return BanditState(
            experiment=spec.experiment,
            baseline=arms[0],
            arms=arms,
            spec=spec.model_dump(mode="json"),
            weights=experiment.weights,
            initial_weights=experiment.weights,
        )

    def step(self, state: BanditState, record: Record) -> StepResult:
        """Reconcile drifted weights, then the burn-in or one interval's update."""
        note = reconcile_weights(self.router, state, record) if state.periods else ""
        result = self._decide(state, record)
        return dataclasses.replace(result, reason=f"{result.reason} ({note})") if note else result

    def abort(self, state: BanditState, reason: str, record: Record) -> str:
        """All traffic back to the baseline."""
        apply_weights(self.router, state, _only(state.arms, state.baseline), reason, record)
        return f"{reason}; all traffic to the baseline `{state.baseline}`"

    def summary(self, state: BanditState) -> str:
        """`period 3  P(best) treatment=0.82`."""
        if not state.probabilities:
            return f"period {len(state.periods)}"
        best = max(state.probabilities, key=lambda arm: state.probabilities[arm])
        return f"period {len(state.periods)}  P(best) {best}={state.probabilities[best]:.3f}"

    def identity(self, state: BanditState) -> dict[str, Any]:
        """The experiment, its arms and the reward."""
        return {"experiment": state.experiment, "arms": state.arms, "reward": self.spec.reward.metric}

    def weights(self, state: BanditState) -> Mapping[str, float]:
        """The weights the bandit last set, in the arms' order."""
        return {arm: state.weights[arm] for arm in state.arms}

    def tick_fields(self, state: BanditState, result: StepResult) -> dict[str, Any]:
        """The period, the probabilities, the counters and the analysis behind the decision."""
        return {
            "period": len(state.periods),
            "probabilities": dict(state.probabilities),
            "failed_checks": state.failed_checks,
            "analysis": result.details.get("analysis"),
        }

    def max_ticks(self) -> int:
        """The spec's bound on intervals, plus the failed intervals it tolerates."""
        return self.spec.max_intervals + self.spec.failed_checks + 1

    # -- the step ------------------------------------------------------------------------------

    def _decide(self, state: BanditState, record: Record) -> StepResult:
        """The burn-in, or: the analysis, the checks, the stop rule, the next weights."""
        if not state.periods:
            equal = bandit.as_weights(state.arms, bandit.equal_split(len(state.arms)))
            self._new_period(state, equal, "burn-in: an equal split", record)
            return StepResult(TickOutcome.ADVANCE, "burn-in: an equal split (period 1)")
        periods = [Period(p.start, p.weights) for p in state.periods]
        analysis = self.periods(state.experiment, state.arms, periods)
        if analysis is None:
            return StepResult(TickOutcome.HOLD, "no exposures yet")
        details = {"analysis": _summary(analysis)}
        if analysis.mismatched:
            shown = ", ".join(str(i + 1) for i in analysis.mismatched)
            return StepResult(
                TickOutcome.HALT, f"sample ratio mismatch in period(s) {shown}", details=details
            )
        checks = self._checks(state)
        judged = judge_checks(checks, failed_checks=state.failed_checks, threshold=self.spec.failed_checks)
        state.failed_checks = judged.failed_checks
        if judged.outcome is TickOutcome.ROLLBACK:
            reason = self._end(state, state.baseline, judged.reason, record, winner=False)
            return StepResult(TickOutcome.ROLLBACK, reason, checks, details)
        if judged.outcome is not TickOutcome.ADVANCE:
            return StepResult(judged.outcome, judged.reason, checks, details)
        outcome, reason = self._update(state, analysis, record)
        details["analysis"]["probability_best"] = dict(state.probabilities)
        return StepResult(outcome, reason, checks, details)

    def _checks(self, state: BanditState) -> tuple[CheckResult, ...]:
        """Every arm's Prometheus checks against the baseline, named by arm, each reading's
        range cut at the current period's start (never traffic at earlier weights)."""
        served = self.clock() - state.periods[-1].start
        out: list[CheckResult] = []
        for arm in state.arms[1:]:
            found = evaluate_checks(
                self.metrics,
                self.spec.checks,
                state.experiment,
                state.baseline,
                arm,
                self.spec.window,
                served,
            )
            out += [dataclasses.replace(c, name=f"{arm}: {c.name}") for c in found]
        return tuple(out)

    def _update(
        self, state: BanditState, analysis: PeriodAnalysis, record: Record
    ) -> tuple[TickOutcome, str]:
        """Thompson sampling on the pooled posteriors; the stop rule; or the next period."""
        spec = self.spec
        pooled = analysis.pooled()
        units = np.asarray(pooled.n, dtype=np.float64)
        if (units < spec.min_units).any():
            have = ", ".join(f"{a}={int(n)}" for a, n in zip(state.arms, units))
            return TickOutcome.HOLD, f"waiting for {spec.min_units} units per arm ({have})"
        current = [state.weights[arm] for arm in state.arms]
        weights, best = bandit.thompson_weights(
            pooled,
            current,
            floor=spec.floor,
            max_change=spec.max_change,
            direction=spec.reward.direction,
            draws=spec.draws,
            rng=np.random.default_rng([spec.seed, state.ticks]),
            prior=spec.prior,
        )
        state.probabilities = bandit.as_weights(state.arms, best)
        leader = state.arms[int(np.argmax(best))]
        chance = float(best.max())
        if chance >= spec.stop_probability:
            if leader == state.baseline:
                why = f"the baseline is best (P = {chance:.3f})"
                return TickOutcome.ROLLBACK, self._end(state, leader, why, record)
            verdict = self._confirmed(analysis, leader)
            if verdict is None:
                return TickOutcome.PROMOTE, self._end(
                    state, leader, f"`{leader}` is best (P = {chance:.3f})", record
                )
            reason = f"`{leader}` leads (P = {chance:.3f}) but {verdict}"
        else:
            reason = f"`{leader}` leads (P = {chance:.3f})"
        target = bandit.as_weights(state.arms, weights)
        if not self._new_period(state, target, f"Thompson sampling: {reason}", record):
            return TickOutcome.ADVANCE, f"{reason}; weights kept (at the target within the bounds)"
        return TickOutcome.ADVANCE, f"{reason}; period {len(state.periods)} begins"

    def _confirmed(self, analysis: PeriodAnalysis, leader: str) -> str | None:
        """None when the leader's period-stratified comparison with the baseline is
        significant in the good direction; else why not."""
        result = analysis.comparisons[leader]
        if result.p_value is None:
            return f"its stratified comparison has no p-value ({result.reason})"
        better = (
            float(result.effect) > 0 if self.spec.reward.direction == "increase" else float(result.effect) < 0
        )
        if float(result.p_value) >= self.spec.alpha or not better:
            return f"its stratified comparison is not significant yet (p = {float(result.p_value):.3g})"
        return None

    def _end(self, state: BanditState, arm: str, reason: str, record: Record, *, winner: bool = True) -> str:
        """All traffic to `arm` (the winner, or the baseline on a rollback); the bandit is over."""
        if winner:
            state.winner = arm
        apply_weights(self.router, state, _only(state.arms, arm), reason, record)
        return f"{reason}; all traffic to `{arm}`"

    def _new_period(self, state: BanditState, weights: dict[str, float], why: str, record: Record) -> bool:
        """Set the weights; a change opens an allocation period from now."""
        changed = apply_weights(self.router, state, weights, why, record)
        if not changed and state.periods:
            return False
        state.periods.append(AllocationPeriod(start=self.clock(), weights=dict(state.weights)))
        return True


def _summary(analysis: PeriodAnalysis) -> dict[str, Any]:
    """The audit's view of an analysis: units and means per arm, the last period's SRM
    p-value, mismatched periods and the stratified comparisons."""
    full = analysis.to_dict()
    latest = full["srm_p_values"][-1] if full["srm_p_values"] else None
    pooled = np.asarray(analysis.pooled().n, dtype=np.float64)
    return {
        "units": dict(zip(analysis.variants, (int(x) for x in pooled))),
        "means": full["means"],
        "srm_p_latest": latest,
        "mismatched_periods": full["mismatched_periods"],
        "comparisons": full["comparisons"],
        "warnings": full["warnings"],
    }
