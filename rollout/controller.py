"""The controller skeleton every strategy shares, Flagger's way: each tick takes the
lock, reads the saved state, lets the strategy take one step, writes the state back,
appends an audit record and tells the event.

A strategy (`CanaryStrategy`, `BlueGreenStrategy`) says only how a rollout starts,
what one step decides, what an abort does, and how its state reads in one line; the
lock, the state file, the tick loop, the audit log and the events are here, once.
"""

from __future__ import annotations

import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from tritonab.errors import RolloutError, TritonABError
from tritonab.monitoring import audit as audit_log
from tritonab.rollout.spec import StrategySpec
from tritonab.rollout.state import SavedState, load_state, save_state, state_lock
from tritonab.rollout.tick import STATUS_AFTER, StepResult, TickEvent, TickOutcome

SpecT = TypeVar("SpecT", bound=StrategySpec)
StateT = TypeVar("StateT", bound=SavedState)


class Record(Protocol):
    """Appends one record about the rollout to its audit log, as `<prefix>.<name>`."""

    def __call__(self, name: str, /, **fields: Any) -> None: ...


class Strategy(ABC, Generic[SpecT, StateT]):
    """What one rollout strategy adds to the skeleton.

    Subclasses set `state_type` (their saved state), `audit_prefix` (their audit
    events are `<prefix>.start`, `<prefix>.<outcome>`, ...) and `resume_keys` (the spec
    fields a saved state must share to continue), and keep their spec in `spec`.
    """

    state_type: type[StateT]
    audit_prefix: ClassVar[str]
    resume_keys: ClassVar[tuple[str, ...]] = ("experiment",)
    spec: SpecT

    @abstractmethod
    def start(self) -> StateT:
        """The first tick's state, built from the live router.

        Raises:
            RolloutError: the router cannot be read, or the spec's names do not fit it.
        """

    @abstractmethod
    def step(self, state: StateT, record: Record) -> StepResult:
        """One tick's decision and its action; updates `state` in place.

        Raises:
            TritonABError: a source or the server failed (the tick becomes a hold).
        """

    @abstractmethod
    def abort(self, state: StateT, reason: str, record: Record) -> str:
        """Send the traffic back now; returns the reason, completed with what was done."""

    @abstractmethod
    def summary(self, state: StateT) -> str:
        """Where the rollout stands, in a few words (`step 2/5 5%`)."""

    @abstractmethod
    def identity(self, state: StateT) -> dict[str, Any]:
        """The fields that name this rollout in every audit record."""

    @abstractmethod
    def max_ticks(self) -> int:
        """How many ticks `run` takes at most when not told (a rollout never hangs)."""

    def weights(self, state: StateT) -> Mapping[str, float] | None:
        """The router weights the rollout has set (None: it does not move weights)."""
        return None

    def tick_fields(self, state: StateT, result: StepResult) -> dict[str, Any]:
        """Fields the strategy adds to each tick's audit record."""
        return {}


class Controller(Generic[SpecT, StateT]):
    """Runs a rollout one tick at a time, with its state in a JSON file.

    Args:
        strategy: the strategy, holding its spec and its sources (router, metrics...).
        state_path: the state file (created on the first tick; `<state>.lock` beside it).
        audit_path: the hash-chained audit log (None: no audit).
        actor: who acts, for the audit log.
        on_event: called with every `TickEvent`.
        sleep: how `run` waits between ticks (tests pass a fake).
    """

    def __init__(
        self,
        strategy: Strategy[SpecT, StateT],
        *,
        state_path: str | os.PathLike[str],
        audit_path: str | os.PathLike[str] | None = None,
        actor: str = "tritonab-rollout",
        on_event: Callable[[TickEvent], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.strategy, self.state_path, self.audit_path = strategy, state_path, audit_path
        self.actor, self.on_event, self.sleep = actor, on_event, sleep
        self._held = False

    @property
    def spec(self) -> SpecT:
        """The strategy's spec."""
        return self.strategy.spec

    def state(self) -> StateT | None:
        """The saved state (None before the first tick).

        Raises:
            RolloutError: the file is unreadable or holds another kind of rollout.
        """
        return load_state(self.state_path, self.strategy.state_type)

    def tick(self) -> TickEvent:
        """Read the state (or start), take one step, write the state back, record the event.

        Returns:
            The tick's event.

        Raises:
            RolloutError: the first tick cannot start (router unreadable, bad names), the
                saved state belongs to another rollout, or another controller holds it.
        """
        with self._exclusive():
            return self._tick()

    def run(self, *, max_ticks: int | None = None, timeout_s: float | None = None) -> StateT:
        """Tick every `interval_s` until the rollout ends, `max_ticks` or `timeout_s`.

        Args:
            max_ticks: stop after this many ticks (default: the strategy's bound).
            timeout_s: stop after the first tick that ends past this many seconds.

        Returns:
            The last saved state (check `status`; `progressing` means a bound stopped it).

        Raises:
            RolloutError: as for `tick`.
        """
        with self._exclusive():
            bound = max_ticks or self.strategy.max_ticks()
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            for i in range(bound):
                started = time.monotonic()
                event = self._tick()
                if event.status != "progressing" or i == bound - 1:
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    break
                self.sleep(max(0.0, self.spec.interval_s - (time.monotonic() - started)))
            state = self.state()
        if state is None:  # every tick saves or found a state: only a vanished file gets here
            raise RolloutError(f"rollout state `{self.state_path}` disappeared while running")
        return state

    def abort(self, reason: str = "aborted by the operator") -> TickEvent:
        """Send the traffic back now and mark the rollout aborted (a halted one too).

        Args:
            reason: why, for the audit log.

        Returns:
            The abort's event (`done` when the rollout had already ended).

        Raises:
            RolloutError: no saved state, or another controller holds it.
            TritonABError: the server refused (the state is left as it was).
        """
        with self._exclusive():
            state = self.state()
            if state is None:
                raise RolloutError(f"no rollout state at `{self.state_path}`")
            if state.done and state.status != "halted":
                return self._emit(state, StepResult(TickOutcome.DONE, f"rollout already {state.status}"))
            state.ticks += 1
            reason = self.strategy.abort(state, reason, self._recorder(state))
            return self._finish_tick(state, StepResult(TickOutcome.ABORT, reason))

    # -- the tick ---------------------------------------------------------------------------

    def _tick(self) -> TickEvent:
        """One tick under the lock."""
        state = self.state()
        if state is None:
            state = self.strategy.start()
            weights = self.strategy.weights(state)
            extra = {} if weights is None else {"weights": dict(weights)}
            self._record(state, "start", spec=state.spec, **extra)
        else:
            self._check_resume(state)
        if state.done:
            return self._emit(state, StepResult(TickOutcome.DONE, f"rollout already {state.status}"))
        state.ticks += 1
        try:
            result = self.strategy.step(state, self._recorder(state))
        except TritonABError as exc:
            # The router or a source failed mid-tick: nothing moved that the state does not
            # know about; the next tick tries again.
            result = StepResult(TickOutcome.HOLD, f"could not complete the tick: {exc}")
        return self._finish_tick(state, result)

    def _finish_tick(self, state: StateT, result: StepResult) -> TickEvent:
        """Set the status the outcome leads to, save the state, record and tell the event."""
        state.status = STATUS_AFTER.get(result.outcome, state.status)
        state.last_outcome, state.last_reason = result.outcome.value, result.reason
        save_state(self.state_path, state)
        return self._emit(state, result)

    def _check_resume(self, state: StateT) -> None:
        """A saved state continues only under the same rollout (thresholds and checks may
        change between restarts; what is rolled out may not)."""
        given = self.spec.model_dump(mode="json")
        for key in self.strategy.resume_keys:
            saved = state.spec.get(key)
            if saved != given[key]:
                raise RolloutError(
                    f"rollout state `{self.state_path}` was started with {key} "
                    f"{saved!r}, the spec says {given[key]!r}: use another --state file"
                )

    def _emit(self, state: StateT, result: StepResult) -> TickEvent:
        """Record the tick in the audit log and tell `on_event`."""
        weights = self.strategy.weights(state)
        event = TickEvent(
            tick=state.ticks,
            outcome=result.outcome,
            status=state.status,
            reason=result.reason,
            summary=self.strategy.summary(state),
            checks=result.checks,
            weights=None if weights is None else dict(weights),
            details=result.details,
        )
        self._record(
            state,
            result.outcome.value,
            status=state.status,
            reason=result.reason,
            checks=[c.to_dict() for c in result.checks],
            **({} if event.weights is None else {"weights": event.weights}),
            **self.strategy.tick_fields(state, result),
        )
        if self.on_event is not None:
            self.on_event(event)
        return event

    # -- records and the lock -----------------------------------------------------------------

    def _record(self, state: StateT, name: str, **fields: Any) -> None:
        """Append `<prefix>.<name>` with the rollout's identity and tick."""
        if self.audit_path is None:
            return
        record = {**self.strategy.identity(state), "tick": state.ticks, **fields}
        audit_log.append(self.audit_path, f"{self.strategy.audit_prefix}.{name}", actor=self.actor, **record)

    def _recorder(self, state: StateT) -> Record:
        """A `Record` bound to this rollout's state, for the strategy's own records."""

        def record(name: str, /, **fields: Any) -> None:
            """Append `<prefix>.<name>` for this state."""
            self._record(state, name, **fields)

        return record

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        """Take the state lock once, however deeply calls nest (`run` ticks under it)."""
        if self._held:
            yield
            return
        with state_lock(self.state_path):
            self._held = True
            try:
                yield
            finally:
                self._held = False
