"""Router weights for the strategies that move them (canary, bandit): set through model
control (a router reload), recorded in the audit log, remembered in the saved state;
and put back when the router serves other weights than the state expects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tritonab.rollout.controller import Record
from tritonab.splitter.spec import Experiment


class RouterControl(Protocol):
    """Live router weights (`tritonab.deploy.control.ModelControl`)."""

    def experiment(self, name: str) -> tuple[Experiment, Any]: ...

    def set_weights(self, name: str, weights: dict[str, float]) -> Experiment: ...


class WeightedState(Protocol):
    """A saved state that remembers the weights it set on a router."""

    experiment: str
    weights: dict[str, float]


def same_weights(a: Mapping[str, float], b: Mapping[str, float]) -> bool:
    """Same variants, same weights (to 1e-6: weights are rounded and travel through JSON)."""
    return a.keys() == b.keys() and all(abs(a[k] - b[k]) < 1e-6 for k in a)


def apply_weights(
    router: RouterControl, state: WeightedState, weights: Mapping[str, float], why: str, record: Record
) -> bool:
    """Set router weights, record the change, then remember them in the state.

    Returns:
        Whether anything changed (equal weights are not set again).

    Raises:
        TritonABError: the reload failed (the state keeps the old weights).
    """
    before = dict(state.weights)
    if same_weights(before, weights):
        return False
    router.set_weights(state.experiment, dict(weights))
    state.weights = dict(weights)
    record("weights", before=before, after=dict(weights), reason=why)
    return True


def reconcile_weights(router: RouterControl, state: WeightedState, record: Record) -> str:
    """Put back the weights the state expects when the router serves others (a restarted
    server, a crash between the reload and the state write).

    Returns:
        A note for the tick's reason, or "" when the router already serves them.
    """
    experiment, _ = router.experiment(state.experiment)
    served = experiment.weights
    if same_weights(served, state.weights):
        return ""
    router.set_weights(state.experiment, state.weights)
    record(
        "weights",
        before=served,
        after=dict(state.weights),
        reason="reconcile: the router served other weights",
    )
    return "weights re-applied"
