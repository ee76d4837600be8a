"""Wiring: the strategies there are, each built on the real sources (Triton, Prometheus,
the perf tools, the statistics engine), and what the command line does with them.

    spec = load_rollout_spec("rollout.yaml")
    final = run_rollout(spec, triton_url="127.0.0.1:8001", prometheus="http://127.0.0.1:9090",
                        state_path="rollout.state.json", audit_path="audit.jsonl")
    sys.exit(exit_code(final))

A new strategy is a spec class (`spec.py`), a state class (`state.py`), a `Strategy`
subclass and one entry in `STRATEGIES`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, NamedTuple, Protocol

from tritonab._transport import Endpoint
from tritonab.errors import RolloutError, TritonABError
from tritonab.rollout.bandit import BanditStrategy, log_periods
from tritonab.rollout.bluegreen import BlueGreenStrategy
from tritonab.rollout.canary import CanaryStrategy, RouterControl
from tritonab.rollout.checks import MetricSource, analysis_stats, perf_gate_runner
from tritonab.rollout.controller import Controller, SpecT, StateT, Strategy
from tritonab.rollout.spec import (
    DEFAULT_STRATEGY,
    BanditSpec,
    BlueGreenSpec,
    CanarySpec,
    RolloutSpec,
    StrategySpec,
    load_rollout_dict,
)
from tritonab.rollout.state import BanditState, BlueGreenState, CanaryState, SavedState, read_state_json
from tritonab.rollout.tick import TickEvent
from tritonab.rollout.versions import VersionControl, server_infer

DEFAULT_ACTOR = "tritonab-rollout"


class ServerControl(RouterControl, VersionControl, Protocol):
    """Everything a strategy asks of the server (`tritonab.deploy.control.ModelControl`)."""


@dataclass(frozen=True)
class Sources:
    """What strategies are built on.

    Attributes:
        control: model control on the server.
        triton_url: its gRPC `host:port`, or an `Endpoint` (TLS, access keys) for the
            perf gate and smoke inferences.
        prometheus: Prometheus base URL (None: no metric checks).
    """

    control: ServerControl
    triton_url: Endpoint | str
    prometheus: str | None = None


@dataclass(frozen=True)
class StrategyEntry(Generic[SpecT, StateT]):
    """One strategy: its spec and state classes, and how its `Strategy` is built."""

    spec_type: type[SpecT]
    state_type: type[StateT]
    build: Callable[[SpecT, Sources], Strategy[SpecT, StateT]]


def _metrics(spec: StrategySpec, sources: Sources) -> MetricSource | None:
    """Prometheus queries when the spec has checks and a Prometheus is given."""
    if not spec.checks or sources.prometheus is None:
        return None
    from tritonab.monitoring.promql import RouterQueries

    return RouterQueries(sources.prometheus, window=spec.window)


def _canary(spec: CanarySpec, sources: Sources) -> CanaryStrategy:
    """A canary on the router, Prometheus, `perf.compare` and `monitoring.analysis`."""
    return CanaryStrategy(
        spec,
        sources.control,
        metrics=_metrics(spec, sources),
        perf_gate=None if spec.perf_gate is None else perf_gate_runner(sources.triton_url, spec.perf_gate),
        stats=None if spec.stats is None else analysis_stats(spec.stats),
    )


def _bluegreen(spec: BlueGreenSpec, sources: Sources) -> BlueGreenStrategy:
    """A blue-green switch on model control, gRPC inferences and Prometheus."""
    return BlueGreenStrategy(
        spec, sources.control, server_infer(sources.triton_url), metrics=_metrics(spec, sources)
    )


def _bandit(spec: BanditSpec, sources: Sources) -> BanditStrategy:
    """A bandit on the router, its logs (by allocation period) and Prometheus."""
    return BanditStrategy(spec, sources.control, log_periods(spec), metrics=_metrics(spec, sources))


STRATEGIES: Mapping[str, StrategyEntry[Any, Any]] = {
    "canary": StrategyEntry(CanarySpec, CanaryState, _canary),
    "bluegreen": StrategyEntry(BlueGreenSpec, BlueGreenState, _bluegreen),
    "bandit": StrategyEntry(BanditSpec, BanditState, _bandit),
}
"""Every strategy by name (the spec's `strategy`, the state's `kind`)."""


def build_controller(
    spec: RolloutSpec,
    control: ServerControl,
    *,
    triton_url: Endpoint | str,
    prometheus: str | None = None,
    state_path: str | os.PathLike[str],
    audit_path: str | os.PathLike[str] | None = None,
    actor: str = DEFAULT_ACTOR,
    on_event: Callable[[TickEvent], None] | None = None,
) -> Controller[Any, Any]:
    """A controller for the spec's strategy, wired to the real sources.

    Args:
        spec: a `CanarySpec` or a `BlueGreenSpec`.
        control: model control on the server (a `ModelControl`).
        triton_url: the server's gRPC `host:port`, or an `Endpoint` (TLS, access keys).
        prometheus: Prometheus base URL (needed when the spec has checks).
        state_path, audit_path: the state file and the audit log.
        actor: who acts, for the audit log.
        on_event: called with every tick's event.

    Returns:
        The controller; nothing has been read or moved yet.

    Raises:
        RolloutError: the spec has checks and no Prometheus URL is given.
    """
    if spec.checks and not prometheus:
        raise RolloutError("the rollout spec has checks: give the Prometheus URL (--prometheus)")
    strategy = STRATEGIES[spec.strategy].build(spec, Sources(control, triton_url, prometheus))
    return Controller(strategy, state_path=state_path, audit_path=audit_path, actor=actor, on_event=on_event)


def run_rollout(
    spec: RolloutSpec,
    *,
    triton_url: Endpoint | str,
    prometheus: str | None = None,
    state_path: str | os.PathLike[str],
    audit_path: str | os.PathLike[str] | None = None,
    actor: str = DEFAULT_ACTOR,
    on_event: Callable[[TickEvent], None] | None = None,
    max_ticks: int | None = None,
    control: ServerControl | None = None,
) -> SavedState:
    """Run a rollout on a live server until it ends (or `max_ticks`).

    Args:
        spec, triton_url, prometheus, state_path, audit_path, actor, on_event: as for
            `build_controller`.
        max_ticks: stop after this many ticks (the state stays `progressing`).
        control: the server control to move (a `tritonab.deploy.fleet.Fleet` for every
            replica of a deployment); default: `ModelControl(triton_url)`. `triton_url`
            still serves the perf gate and the smoke inferences.

    Returns:
        The last saved state.

    Raises:
        RolloutError: the rollout could not run (a bad spec or state, an unreachable
            server on the first tick).
    """
    try:
        with _control(triton_url, control) as control:
            controller = build_controller(
                spec,
                control,
                triton_url=triton_url,
                prometheus=prometheus,
                state_path=state_path,
                audit_path=audit_path,
                actor=actor,
                on_event=on_event,
            )
            state: SavedState = controller.run(max_ticks=max_ticks)
            return state
    except RolloutError:
        raise
    except TritonABError as exc:
        raise RolloutError(f"rollout could not run: {exc}") from None


@contextlib.contextmanager
def _control(triton_url: str | Endpoint, given: ServerControl | None) -> Iterator[ServerControl]:
    """The control given (left open: its owner closes it), or a `ModelControl` on `triton_url`."""
    if given is not None:
        probe = getattr(given, "require_explicit_mode", None)  # a fleet probes every replica
        if probe is not None:
            probe()
        yield given
        return
    from tritonab.deploy.control import ModelControl

    with ModelControl(triton_url) as control:
        control.require_explicit_mode()
        yield control


def state_json(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The saved state of any strategy, as JSON.

    Raises:
        RolloutError: no state at `path`, or not a JSON object.
    """
    data = read_state_json(path)
    if data is None:
        raise RolloutError(f"no rollout state at `{path}`")
    return data


def abort_rollout(
    state_path: str | os.PathLike[str],
    *,
    triton_url: Endpoint | str,
    audit_path: str | os.PathLike[str] | None = None,
    actor: str = "operator",
    reason: str = "aborted by the operator",
    control: ServerControl | None = None,
) -> TickEvent:
    """Send a rollout's traffic back now, whatever its strategy (the state holds its spec).

    Args:
        state_path: the rollout's state file.
        triton_url: the server's gRPC `host:port`, or an `Endpoint` (TLS, access keys).
        audit_path: the audit log.
        actor: who acts, for the audit log.
        reason: why, for the audit log.
        control: the server control to move (a `Fleet`); default: `ModelControl(triton_url)`.

    Returns:
        The abort's event (`done` when the rollout had already ended).

    Raises:
        RolloutError: no state, or a state of an unknown kind or with a bad spec.
        TritonABError: the server refused.
    """
    data = state_json(state_path)
    kind = data.get("kind", DEFAULT_STRATEGY)
    entry = STRATEGIES.get(kind) if isinstance(kind, str) else None
    if entry is None:
        raise RolloutError(f"rollout state `{state_path}` is of an unknown kind `{kind}`")
    spec = load_rollout_dict(data.get("spec"), source=f"`{state_path}`")
    if not isinstance(spec, entry.spec_type):
        raise RolloutError(
            f"rollout state `{state_path}` is a `{kind}` rollout with a `{spec.strategy}` spec"
        )
    with _control(triton_url, control) as control:
        strategy = entry.build(spec, Sources(control, triton_url))
        controller = Controller(strategy, state_path=state_path, audit_path=audit_path, actor=actor)
        return controller.abort(reason)


def exit_code(state: SavedState) -> int:
    """0 promoted, 1 rolled back or aborted, 2 anything else (halted, not finished)."""
    if state.status == "promoted":
        return 0
    if state.status in ("rolled_back", "aborted"):
        return 1
    return 2


class StatusTable(NamedTuple):
    """A saved state as a titled two-column table."""

    title: str
    rows: tuple[tuple[str, str], ...]


_STATUS_FIELDS = (
    "status",
    "baseline",
    "candidate",
    "step",
    "weights",
    "gate",
    "failed_checks",
    "holds",
    "variant",
    "model",
    "old_version",
    "new_version",
    "phase",
    "arms",
    "probabilities",
    "winner",
    "ticks",
    "last_outcome",
    "last_reason",
)


def status_table(data: Mapping[str, Any]) -> StatusTable:
    """The fields of a saved state (any kind) worth showing, with the step spelled out.

    Args:
        data: the state as JSON (`state_json`).

    Returns:
        The title and the rows.
    """
    rows = []
    for key in _STATUS_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if key == "step" and "spec" in data:
            steps = data["spec"].get("steps", [])
            value = (
                f"{value + 1}/{len(steps)} ({steps[value]:g}%)"
                if value >= 0
                else f"0/{len(steps)} (not started)"
            )
        rows.append((key, str(value)))
    return StatusTable(
        f"rollout of `{data.get('experiment')}` ({data.get('kind', DEFAULT_STRATEGY)})", tuple(rows)
    )
