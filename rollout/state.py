"""The saved state of a rollout: one JSON file, written atomically after every tick.

A restarted controller reads it and continues where the last one stopped. The state
carries the spec it was started with, so `status` and `abort` need nothing else.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tritonab._io import atomic_write_text
from tritonab.errors import RolloutError

Status = Literal["progressing", "promoted", "rolled_back", "aborted", "halted"]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted", "halted"})
M = TypeVar("M", bound=BaseModel)


class RolloutState(BaseModel):
    """Where a rollout stands.

    Attributes:
        step: index into the spec's steps of the weight now set; -1 before the first.
        weights: the weights the controller last set (what the router should serve).
        initial_weights: the router's weights when the rollout started.
        gate: the perf gate: `pending`, `passed`, `failed` or `skipped` (none configured).
        failed_checks: failed intervals so far (the rollout rolls back at the threshold).
        holds: intervals in a row without a verdict.
    """

    model_config = ConfigDict(extra="forbid")

    kind: Literal["canary"] = "canary"
    experiment: str
    baseline: str
    candidate: str
    spec: dict[str, Any]
    status: Status = "progressing"
    step: int = -1
    weights: dict[str, float]
    initial_weights: dict[str, float]
    gate: Literal["pending", "passed", "failed", "skipped"] = "pending"
    failed_checks: int = 0
    holds: int = 0
    ticks: int = 0
    last_outcome: str | None = None
    last_reason: str = ""
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def done(self) -> bool:
        """Whether the rollout has ended (nothing more to do)."""
        return self.status in TERMINAL

    @property
    def candidate_weight(self) -> float:
        return self.weights.get(self.candidate, 0.0)


def read_state_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved state as a dict (any kind), or None when the file does not exist.

    Raises:
        RolloutError: the file is unreadable or not JSON.
    """
    target = Path(path)
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RolloutError(f"rollout state `{target}`: cannot read: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RolloutError(f"rollout state `{target}` is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise RolloutError(f"rollout state `{target}` is not a rollout state")
    return data


@overload
def load_state(path: str | os.PathLike[str]) -> RolloutState | None: ...


@overload
def load_state(path: str | os.PathLike[str], model: type[M]) -> M | None: ...


def load_state(path: str | os.PathLike[str], model: type[BaseModel] = RolloutState) -> BaseModel | None:
    """The saved state as `model` (a canary `RolloutState` by default), or None when the
    file does not exist.

    Raises:
        RolloutError: the file is unreadable or not a state of that kind.
    """
    data = read_state_json(path)
    if data is None:
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RolloutError(
            f"rollout state `{path}` is not a {model.__name__}: {exc.errors()[0]['msg']}"
        ) from None


def save_state(path: str | os.PathLike[str], state: Any) -> None:
    """Write a state model atomically (a crash leaves the old or the new file, never half)."""
    state.updated_at = time.time()
    atomic_write_text(path, json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def state_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on `<state>.lock` so only one controller drives a rollout.

    Raises:
        RolloutError: another process holds it.
    """
    target = Path(f"{os.fspath(path)}.lock")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RolloutError(f"another controller is driving the rollout in `{path}`") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class Exclusive:
    """Mixin: `_exclusive()` takes the state lock once, however deeply calls nest."""

    state_path: str | os.PathLike[str]
    _held: bool = False

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[None]:
        if self._held:
            yield
            return
        with state_lock(self.state_path):
            self._held = True
            try:
                yield
            finally:
                self._held = False


def tick_until_done(
    tick: Callable[[], Any],
    *,
    interval_s: float,
    bound: int,
    sleep: Callable[[float], None],
    timeout_s: float | None = None,
) -> None:
    """Call `tick()` every `interval_s` until its event is no longer `progressing`, or
    `bound` ticks, or `timeout_s` seconds (the caller then reads the saved state)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    for i in range(bound):
        started = time.monotonic()
        event = tick()
        if event.status != "progressing" or i == bound - 1:
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        sleep(max(0.0, interval_s - (time.monotonic() - started)))
