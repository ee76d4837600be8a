"""The saved state of a rollout: one JSON file, written atomically after every tick.

A restarted controller reads it and continues where the last one stopped. The state
carries the spec it was started with, so `status` and `abort` need nothing else. Each
strategy has its own state class, told apart in the file by `kind`; `<state>.lock`
keeps a second controller off a rollout that one is driving.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias, TypeVar, overload

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from tritonab._io import atomic_write_text
from tritonab.errors import RolloutError
from tritonab.rollout.spec import DEFAULT_STRATEGY

Status = Literal["progressing", "promoted", "rolled_back", "aborted", "halted"]
TERMINAL: frozenset[str] = frozenset({"promoted", "rolled_back", "aborted", "halted"})
Phase = Literal["load", "verify", "switch", "bake", "finalize", "done"]


class SavedState(BaseModel):
    """What every strategy's state has.

    Attributes:
        kind: the strategy (`canary`, `bluegreen`).
        spec: the spec the rollout was started with (JSON).
        status: `progressing` until the rollout ends.
        failed_checks: failed intervals so far (the rollout rolls back at the threshold).
        ticks: ticks taken (an abort counts as one).
        last_outcome, last_reason: what the last tick did, and why.
    """

    model_config = ConfigDict(extra="forbid")

    kind: str
    experiment: str
    spec: dict[str, Any]
    status: Status = "progressing"
    failed_checks: int = 0
    ticks: int = 0
    last_outcome: str | None = None
    last_reason: str = ""
    started_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def done(self) -> bool:
        """Whether the rollout has ended (nothing more to do)."""
        return self.status in TERMINAL


class CanaryState(SavedState):
    """Where a canary stands.

    Attributes:
        step: index into the spec's steps of the weight now set; -1 before the first.
        weights: the weights the controller last set (what the router should serve).
        initial_weights: the router's weights when the rollout started.
        gate: the perf gate: `pending`, `passed`, `failed` or `skipped` (none configured).
        holds: intervals in a row without a verdict.
    """

    kind: Literal["canary"] = "canary"
    baseline: str
    candidate: str
    step: int = -1
    weights: dict[str, float]
    initial_weights: dict[str, float]
    gate: Literal["pending", "passed", "failed", "skipped"] = "pending"
    holds: int = 0

    @property
    def candidate_weight(self) -> float:
        """The candidate's share of all traffic now."""
        return self.weights.get(self.candidate, 0.0)


class BlueGreenState(SavedState):
    """Where a blue-green switch stands.

    Attributes:
        variant, model: the router's variant and the model it calls.
        old_version, new_version: the version served before, and the one switched to.
        phase: `load`, `verify`, `switch`, `bake`, `finalize`, then `done`.
        waits: ticks spent waiting for the new version to be ready.
        switched_at: when the router moved to the new version (the bake starts).
    """

    kind: Literal["bluegreen"] = "bluegreen"
    variant: str
    model: str
    old_version: int
    new_version: int
    phase: Phase = "load"
    waits: int = 0
    switched_at: float | None = None


# A new strategy adds its state class here.
RolloutState: TypeAlias = Annotated[CanaryState | BlueGreenState, Field(discriminator="kind")]
_ADAPTER: TypeAdapter[RolloutState] = TypeAdapter(RolloutState)
S = TypeVar("S", bound=SavedState)


def read_state_json(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The saved state as a dict (any kind).

    Args:
        path: the state file.

    Returns:
        The parsed JSON object, or None when the file does not exist.

    Raises:
        RolloutError: the file is unreadable or not a JSON object.
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
def load_state(path: str | os.PathLike[str], model: type[S]) -> S | None: ...


def load_state(path: str | os.PathLike[str], model: type[SavedState] | None = None) -> SavedState | None:
    """The saved state, as the class its `kind` names or as `model`.

    Args:
        path: the state file.
        model: the state class expected (None: whichever the file's `kind` names).

    Returns:
        The state, or None when the file does not exist.

    Raises:
        RolloutError: the file is unreadable, of another kind, or not a valid state.
    """
    data = read_state_json(path)
    if data is None:
        return None
    kind = data.get("kind", DEFAULT_STRATEGY)  # no `kind`: the default strategy, as for specs
    expected = None if model is None else model.model_fields["kind"].default
    if expected is not None and kind != expected:
        raise RolloutError(
            f"rollout state `{path}` is a `{kind}` rollout, not `{expected}`: use another --state file"
        )
    try:
        if model is not None:
            return model.model_validate({**data, "kind": kind})
        return _ADAPTER.validate_python({**data, "kind": kind})
    except ValidationError as exc:
        what = "rollout state" if model is None else model.__name__
        raise RolloutError(f"rollout state `{path}` is not a {what}: {exc.errors()[0]['msg']}") from None


def save_state(path: str | os.PathLike[str], state: SavedState) -> None:
    """Write a state atomically (a crash leaves the old or the new file, never half).

    Args:
        path: the state file.
        state: the state; its `updated_at` is set to now.
    """
    state.updated_at = time.time()
    atomic_write_text(path, json.dumps(state.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")


@contextlib.contextmanager
def state_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on `<state>.lock` so only one controller drives a rollout.

    Args:
        path: the state file (the lock file sits beside it).

    Raises:
        RolloutError: another process holds it.
    """
    target = Path(f"{os.fspath(path)}.lock")
    target.parent.mkdir(parents=True, exist_ok=True)
    # 0600: only the operator that runs the controllers may take (or block) the lock.
    with os.fdopen(os.open(target, os.O_RDWR | os.O_CREAT, 0o600), "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RolloutError(f"another controller is driving the rollout in `{path}`") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
