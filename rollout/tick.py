"""What one tick decides and how it is told, the same for every strategy.

Outcomes of a tick (Flagger's four, plus the ends):
- `advance`: every check passed (or a phase completed): the rollout moves one step;
- `hold`: a check has no data yet, or a source or reload failed: nothing moves;
- `failed_check`: a check failed, below the spec's threshold of failed intervals;
- `rollback`: the threshold was reached (or the perf gate, the smoke set or the
  statistics said no): the traffic goes back;
- `promote`: the last step passed: the rollout has ended well;
- `halt`: the statistics found a sample ratio mismatch: nothing moves until a person
  looks (`tritonab rollout abort` sends the traffic back);
- `abort`: an operator sent the traffic back;
- `done`: the rollout had already ended.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from tritonab.rollout.checks import CheckResult
from tritonab.rollout.state import Status


class TickOutcome(str, enum.Enum):
    """What one tick did."""

    ADVANCE = "advance"
    HOLD = "hold"
    FAILED_CHECK = "failed_check"
    ROLLBACK = "rollback"
    PROMOTE = "promote"
    HALT = "halt"
    ABORT = "abort"
    DONE = "done"


STATUS_AFTER: Mapping[TickOutcome, Status] = {
    TickOutcome.ROLLBACK: "rolled_back",
    TickOutcome.PROMOTE: "promoted",
    TickOutcome.HALT: "halted",
    TickOutcome.ABORT: "aborted",
}
"""The status a rollout ends in after each ending outcome (the others leave it progressing)."""


@dataclass(frozen=True)
class StepResult:
    """What a strategy's step decided.

    Attributes:
        outcome: the tick's outcome; an ending one also sets the rollout's status.
        reason: why, in words.
        checks: the Prometheus readings the decision rests on.
        details: other figures worth keeping (the perf gate, the statistics, the smoke
            set), JSON-ready.
    """

    outcome: TickOutcome
    reason: str
    checks: tuple[CheckResult, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TickEvent:
    """The readable record of one tick (also what the terminal shows).

    Attributes:
        tick: the tick number (1 for the first).
        outcome: what the tick did.
        status: the rollout's status after it.
        reason: why.
        summary: where the rollout stands, by its strategy (`step 2/5 5%`,
            `phase verify  m v1 -> v2`).
        checks: the Prometheus readings.
        weights: the router's weights, for strategies that move them.
        details: other figures (perf gate, statistics, smoke set).
    """

    tick: int
    outcome: TickOutcome
    status: str
    reason: str
    summary: str
    checks: tuple[CheckResult, ...] = ()
    weights: Mapping[str, float] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One line: tick, where it stands, weights, check values, outcome and why."""
        weights = " ".join(f"{k}={v:.4g}" for k, v in (self.weights or {}).items())
        checks = "; ".join(c.text() for c in self.checks)
        parts = [
            f"tick {self.tick}",
            self.summary,
            weights,
            checks,
            f"-> {self.outcome.value}: {self.reason}",
        ]
        return "  ".join(p for p in parts if p)


class Judgement(NamedTuple):
    """An interval's checks, judged: the outcome, why, and the failed intervals so far."""

    outcome: TickOutcome
    reason: str
    failed_checks: int


def judge_checks(checks: Sequence[CheckResult], *, failed_checks: int, threshold: int) -> Judgement:
    """Judge one interval's checks, the same way for every strategy.

    A failed check counts one failed interval: `rollback` at `threshold`, else
    `failed_check`. Otherwise a check without data (or on hold) means `hold`: nothing
    is known yet. Otherwise `advance`.

    Args:
        checks: the interval's readings.
        failed_checks: failed intervals before this one.
        threshold: failed intervals that roll back.

    Returns:
        The outcome, the reason, and the failed intervals counting this one.
    """
    failed = [c.name for c in checks if c.status == "fail"]
    if failed:
        failed_checks += 1
        reason = f"failed {', '.join(failed)} ({failed_checks}/{threshold})"
        outcome = TickOutcome.ROLLBACK if failed_checks >= threshold else TickOutcome.FAILED_CHECK
        return Judgement(outcome, reason, failed_checks)
    waiting = [c.name for c in checks if c.status in ("hold", "nodata")]
    if waiting:
        return Judgement(TickOutcome.HOLD, f"waiting for {', '.join(waiting)}", failed_checks)
    reason = "all checks passed" if checks else "no checks configured"
    return Judgement(TickOutcome.ADVANCE, reason, failed_checks)
