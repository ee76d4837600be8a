"""What a fleet's replicas answered: one outcome per replica, and the fleet's status (the
spec every replica serves against the desired one)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from tritonab.errors import FleetError, TritonABError
from tritonab.splitter.spec import Experiment

T = TypeVar("T")


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """What one replica answered: a value, or the error it raised."""

    url: str
    value: T | None = None
    error: TritonABError | None = None


@dataclass(frozen=True)
class ReplicaState:
    """What one replica serves for an experiment.

    Attributes:
        url: the replica's `host:port`.
        spec: the spec its router serves (None when it could not be read).
        error: why it could not be read.
        matches: whether it serves the fleet's desired spec (None: no desired spec known).
    """

    url: str
    spec: Experiment | None
    error: str | None = None
    matches: bool | None = None

    @property
    def weights(self) -> dict[str, float] | None:
        """The weights it serves (None when unreadable)."""
        return None if self.spec is None else self.spec.weights


@dataclass(frozen=True)
class FleetStatus:
    """Every replica's view of one experiment, against the fleet's desired spec.

    Attributes:
        experiment: the router's name.
        desired: the spec every replica should serve (None when nothing says which).
        source: where `desired` comes from (`repository ...`, `the last change`, `the replicas`).
        replicas: one state per replica, in the fleet's order.
    """

    experiment: str
    desired: Experiment | None
    source: str
    replicas: tuple[ReplicaState, ...]

    @property
    def differing(self) -> tuple[ReplicaState, ...]:
        """Replicas that could not be read or serve another spec than the desired one
        (without a desired spec: than the first readable replica)."""
        reference = self.desired
        if reference is None:
            reference = next((r.spec for r in self.replicas if r.spec is not None), None)
        return tuple(
            r
            for r in self.replicas
            if r.spec is None or reference is None or r.spec.to_json() != reference.to_json()
        )

    @property
    def consistent(self) -> bool:
        """Every replica was read and serves the same, desired spec."""
        return bool(self.replicas) and not self.differing


def raise_unreachable(name: str, outcomes: Sequence[Outcome[T]], what: str) -> None:
    """FleetError naming every replica whose call failed."""
    failed = [o for o in outcomes if o.error is not None]
    if failed:
        raise FleetError(f"router `{name}` could not be {what} on {len(failed)} replicas ({errors(failed)})")


def errors(outcomes: Sequence[Outcome[T]]) -> str:
    """`` `url`: error; ... `` for the failed outcomes."""
    return "; ".join(f"`{o.url}`: {o.error}" for o in outcomes if o.error is not None) or "no answer"


def describe(outcomes: Sequence[Outcome[Experiment]]) -> str:
    """`` `url` control=0.5 treatment=0.5; ... `` for every replica."""
    parts = []
    for o in outcomes:
        if o.value is None:
            parts.append(f"`{o.url}`: {o.error}")
        else:
            parts.append(f"`{o.url}` " + " ".join(f"{k}={v:g}" for k, v in o.value.weights.items()))
    return "; ".join(parts)
