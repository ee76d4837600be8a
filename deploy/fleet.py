"""A fleet: model control over every Triton replica of one deployment, kept consistent.

A change to an experiment (weights, a pinned version) is one desired spec for the whole
fleet. With a repository, its router `config.pbtxt` is the source of truth: it is
written first (atomically), then every replica reloads the router with that spec (a
config override, as `ModelControl.set_weights` does: no restart, no failed request),
and each reload is read back. A replica that restarts loads the repository, so it
comes up serving the current spec. If any replica refuses or cannot be reached, the
change is undone where it was made (the repository and the replicas that took it go
back to what they served) and `FleetError` names the replicas: a rollout tick then
holds and tries again, it never advances on part of the fleet.

Reading the fleet's spec (`experiment`, what a rollout asks every tick) converges it:
a replica serving anything but the desired spec (it missed a reload, or restarted from
an older copy of the repository) is reloaded with it; `status` only reads.

Replicas come from a static list of URLs or, in a cluster, from the EndpointSlices of
the deployment's Service (`Fleet.from_kubernetes`), read again on every operation so
that pods the autoscaler adds or removes are followed.

    with Fleet(["10.0.0.1:8001", "10.0.0.2:8001"], repository="/models") as fleet:
        fleet.set_weights("demo_ab", {"control": 0.2, "treatment": 0.8})
        print(fleet.status("demo_ab").consistent)
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from tritonab._transport import Endpoint, Retry, WireProtocol
from tritonab.deploy._fleet_state import (
    FleetStatus,
    Outcome,
    ReplicaState,
    describe,
    errors,
    raise_unreachable,
)
from tritonab.deploy.control import ModelControl, read_router_spec, write_weights
from tritonab.ensembles.config import ModelConfig, get_parameter, read_config, write_config
from tritonab.ensembles.repository import ROUTER_PARAMETER
from tritonab.errors import ClientError, FleetError, TritonABError
from tritonab.splitter.spec import Experiment, spec_from_json

__all__ = ["CONTROL_RETRY", "Fleet", "FleetStatus", "Outcome", "ReplicaSource", "ReplicaState"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

CONTROL_RETRY = Retry(attempts=3, backoff_s=0.1, max_backoff_s=0.5, infer=False)
"""Model-control reads retry briefly when a replica is unavailable (reloads never do)."""

ReplicaSource = Sequence[str | Endpoint] | Callable[[], Sequence[str]]
"""URLs or endpoints of the replicas, or a function giving the URLs now (discovery)."""


class Fleet:
    """Model control over N replicas, implementing what rollouts ask of a server
    (`tritonab.rollout.ServerControl`: `experiment`, `set_weights`, `config`, `load`,
    `is_ready`).

    Args:
        replicas: `host:port` URLs (or `Endpoint`s) of the replicas' gRPC (or HTTP)
            endpoints, or a function returning the URLs now (`kubernetes_endpoints`).
        repository: the model repository the replicas load from (a shared volume): the
            source of truth, written before any replica reloads. None: the fleet's last
            change, or what every replica serves, is the desired spec.
        template: settings for every replica given as a URL (protocol, timeout, TLS,
            headers, retry); its own URL is not used. Default: gRPC, `CONTROL_RETRY`.
        parallel: how many replicas reload at once.

    Raises:
        FleetError: no replicas.
    """

    def __init__(
        self,
        replicas: ReplicaSource,
        *,
        repository: str | os.PathLike[str] | None = None,
        template: Endpoint | None = None,
        parallel: int = 4,
    ) -> None:
        self._source = replicas
        self.repository = None if repository is None else Path(repository)
        self.template = template or Endpoint("replica:0", "grpc", retry=CONTROL_RETRY)
        self.parallel = max(1, parallel)
        self._controls: dict[str, ModelControl] = {}
        self._applied: dict[str, Experiment] = {}
        self.urls()

    @classmethod
    def connect(
        cls,
        urls: Sequence[str],
        *,
        repository: str | os.PathLike[str] | None = None,
        protocol: WireProtocol = "grpc",
    ) -> Fleet:
        """A fleet over static `host:port` URLs with default settings for `protocol`."""
        return cls(urls, repository=repository, template=Endpoint("replica:0", protocol, retry=CONTROL_RETRY))

    @classmethod
    def from_kubernetes(
        cls,
        service: str,
        namespace: str = "default",
        *,
        port: str = "grpc",
        repository: str | os.PathLike[str] | None = None,
        template: Endpoint | None = None,
        parallel: int = 4,
    ) -> Fleet:
        """A fleet over the ready endpoints of a Kubernetes Service, found again on every
        operation (in the cluster, or through the local kubeconfig).

        Raises:
            DeployError: no cluster configuration, or the API refused.
            FleetError: the Service has no ready endpoint.
        """
        from tritonab.deploy.discovery import kubernetes_endpoints

        source = kubernetes_endpoints(service, namespace, port=port)
        return cls(source, repository=repository, template=template, parallel=parallel)

    # -- replicas --------------------------------------------------------------------------

    def urls(self) -> list[str]:
        """The replicas now (discovery is asked again); connections to gone ones are closed.

        Raises:
            FleetError: there are none.
        """
        found = self._source() if callable(self._source) else self._source
        endpoints = [e if isinstance(e, Endpoint) else self.template.with_url(e) for e in found]
        if not endpoints:
            raise FleetError("the fleet has no replicas (no URL given, or no ready endpoint found)")
        urls = [e.url for e in endpoints]
        for url in set(self._controls) - set(urls):
            self._controls.pop(url).close()
        for endpoint in endpoints:
            if endpoint.url not in self._controls:
                self._controls[endpoint.url] = ModelControl(endpoint)
        return urls

    def close(self) -> None:
        """Close every connection."""
        for control in self._controls.values():
            control.close()
        self._controls.clear()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _each(self, fn: Callable[[ModelControl], T], urls: Sequence[str] | None = None) -> list[Outcome[T]]:
        """`fn` on every replica (or those of `urls`), `parallel` at a time; errors kept."""
        targets = list(urls) if urls is not None else self.urls()

        def one(url: str) -> Outcome[T]:
            """One replica's answer or error."""
            try:
                return Outcome(url, fn(self._controls[url]))
            except TritonABError as exc:
                return Outcome(url, error=exc)

        if len(targets) <= 1:
            return [one(url) for url in targets]
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(targets))) as pool:
            return list(pool.map(one, targets))

    # -- the desired spec --------------------------------------------------------------------

    def _repository_spec(self, name: str) -> Experiment | None:
        """The repository's spec of router `name` (None without a repository)."""
        if self.repository is None:
            return None
        try:
            return read_router_spec(self.repository, name)
        except TritonABError as exc:
            raise FleetError(f"the fleet's repository: {exc}") from exc

    def _known(self, name: str) -> tuple[Experiment | None, str]:
        """The desired spec if the repository or the fleet's last change says it."""
        if self.repository is not None:
            return self._repository_spec(name), f"repository `{self.repository}`"
        if name in self._applied:
            return self._applied[name], "the last change"
        return None, "the replicas"

    def _served(self, name: str) -> list[Outcome[Experiment]]:
        """Every replica's served spec of router `name`."""
        return self._each(lambda control: control.experiment(name)[0])

    def desired(self, name: str) -> Experiment:
        """The spec every replica of the fleet should serve for router `name`.

        Raises:
            FleetError: no repository and no change of this fleet names it, and the
                replicas do not all serve the same spec (or cannot be read).
        """
        known, _ = self._known(name)
        if known is not None:
            return known
        served = self._served(name)
        raise_unreachable(name, served, "read")
        specs = {o.value.to_json(): o.value for o in served if o.value is not None}
        if len(specs) > 1:
            raise FleetError(
                f"replicas serve different specs of `{name}` ({describe(served)}) and no repository "
                "says which is right: give the repository, or set the weights"
            )
        return next(iter(specs.values()))

    # -- reads -------------------------------------------------------------------------------

    def status(self, name: str) -> FleetStatus:
        """What every replica serves for router `name`, against the desired spec (reads only).

        Raises:
            FleetError: the repository's router cannot be read.
        """
        desired, source = self._known(name)
        served = self._served(name)
        if desired is None:
            specs = {o.value.to_json() for o in served if o.value is not None}
            readable = [o.value for o in served if o.value is not None]
            if len(specs) == 1 and len(readable) == len(served):
                desired = readable[0]
        states = tuple(
            ReplicaState(
                o.url,
                o.value,
                None if o.error is None else str(o.error),
                None if desired is None or o.value is None else o.value.to_json() == desired.to_json(),
            )
            for o in served
        )
        return FleetStatus(name, desired, source, states)

    # -- RouterControl -------------------------------------------------------------------------

    def experiment(self, name: str) -> tuple[Experiment, ModelConfig]:
        """The fleet's spec of router `name`, after bringing every replica to it.

        Returns:
            The desired spec, and the first replica's config (which now serves it).

        Raises:
            FleetError: the desired spec is unknown, or a replica could not be read or
                brought to it (it is named).
        """
        desired = self.desired(name)
        served = self._served(name)
        raise_unreachable(name, served, "read")
        stale = [o.url for o in served if o.value is not None and o.value.to_json() != desired.to_json()]
        if stale:
            for url in stale:
                logger.warning("replica `%s` served another spec of `%s`: reloading it", url, name)
            repaired = self._each(lambda control: _apply_one(control, desired), stale)
            raise_unreachable(name, repaired, "brought back to the fleet's spec")
        first = self.urls()[0]
        return desired, self._controls[first].config(name)

    def set_weights(self, name: str, weights: dict[str, float]) -> Experiment:
        """New weights for router `name` on every replica (the repository first).

        Returns:
            The new spec.

        Raises:
            SpecError: unknown variants, or weights not summing to 1.
            FleetError: a replica refused or could not be reached (the change was undone).
        """
        updated = self._base(name).with_weights(weights)
        self.apply(updated)
        return updated

    def apply(self, spec: Experiment) -> None:
        """Make every replica serve `spec` (its router `spec.name`): the repository is
        written first, then each replica reloads and is read back.

        Raises:
            FleetError: a replica refused, could not be reached, or serves another spec
                after its reload; the repository and the replicas that took the change
                are put back as they were (a replica that could not be put back is named).
        """
        before = self._repository_spec(spec.name)
        if self.repository is not None:
            write_weights(self.repository, spec)
        outcomes = self._each(lambda control: _apply_one(control, spec))
        failed = [o for o in outcomes if o.error is not None]
        if not failed:
            self._applied[spec.name] = spec
            return
        if before is not None and self.repository is not None:
            write_weights(self.repository, before)
        undo = {o.url: o.value for o in outcomes if o.error is None and o.value is not None}
        restored = self._each(lambda control: _apply_one(control, undo[control.url]), list(undo))
        stuck = [o.url for o in restored if o.error is not None]
        detail = "; ".join(f"`{o.url}`: {o.error}" for o in failed)
        message = f"router `{spec.name}` was not changed: {len(failed)} of {len(outcomes)} replicas failed"
        message += f" ({detail})"
        if stuck:
            message += (
                f"; could not put back {', '.join(f'`{u}`' for u in stuck)} (the next change or read will)"
            )
        raise FleetError(message)

    def _base(self, name: str) -> Experiment:
        """What a change of weights starts from: the desired spec, or, when the replicas
        disagree only on weights, their common spec."""
        known, _ = self._known(name)
        if known is not None:
            return known
        served = self._served(name)
        readable = [o.value for o in served if o.value is not None]
        if not readable:
            raise_unreachable(name, served, "read")
        shapes = {_without_weights(s) for s in readable}
        if len(shapes) > 1:
            raise FleetError(
                f"replicas serve specs of `{name}` that differ in more than weights ({describe(served)}): "
                "give the repository, the source of truth"
            )
        return readable[0]

    # -- VersionControl --------------------------------------------------------------------------

    def config(self, model: str) -> ModelConfig:
        """The config `model` runs with (the first replica that answers).

        Raises:
            FleetError: no replica answered.
        """
        outcomes = self._each(lambda control: control.config(model))
        for outcome in outcomes:
            if outcome.value is not None:
                return outcome.value
        raise FleetError(f"no replica gave the config of `{model}` ({errors(outcomes)})")

    def load(self, model: str, config: ModelConfig | None = None) -> None:
        """Load (or reload) `model` on every replica.

        A router config (one with the `experiment` parameter) is a spec change and goes
        through `apply`. Another model's version policy is written to the repository
        first, so a restarted replica loads the same versions.

        Raises:
            FleetError: a replica refused (the others keep the change; loading again is safe).
        """
        if config is not None:
            raw = get_parameter(config, ROUTER_PARAMETER)
            if raw:
                self.apply(spec_from_json(raw))
                return
            self._persist_versions(model, config)
        outcomes = self._each(lambda control: control.load(model, config))
        failed = [o for o in outcomes if o.error is not None]
        if failed:
            raise FleetError(
                f"loading `{model}` failed on {len(failed)} of {len(outcomes)} replicas ({errors(failed)})"
            )

    def require_explicit_mode(self) -> None:
        """Fail at once when a replica is not in explicit model-control mode (naming it).

        Raises:
            ClientError: a replica in mode `none` or `poll`.
        """
        for outcome in self._each(lambda control: control.require_explicit_mode()):
            if outcome.error is not None:
                raise ClientError(f"replica `{outcome.url}`: {outcome.error}") from outcome.error

    def is_ready(self, model: str, version: int = -1) -> bool:
        """Whether `model` (at `version`) is ready on every replica."""
        return all(o.value for o in self._each(lambda control: control.is_ready(model, version)))

    def _persist_versions(self, model: str, config: ModelConfig) -> None:
        """Carry a reload's version policy into the repository's `config.pbtxt`."""
        if self.repository is None:
            return
        path = self.repository / model / "config.pbtxt"
        try:
            stored = read_config(path)
        except TritonABError as exc:
            raise FleetError(f"the fleet's repository: {exc}") from exc
        stored.version_policy.CopyFrom(config.version_policy)
        write_config(path, stored)


def _apply_one(control: ModelControl, spec: Experiment) -> Experiment:
    """Reload one replica's router with `spec` and read it back; returns what it served before.

    Raises:
        FleetError: the replica serves another spec after the reload.
        TritonABError: it could not be read or refused the reload.
    """
    previous, config = control.experiment(spec.name)
    if previous.to_json() != spec.to_json():
        control.apply_spec(spec, config)
    served, _ = control.experiment(spec.name)
    if served.to_json() != spec.to_json():
        raise FleetError(f"replica `{control.url}` serves other weights than it was given after its reload")
    return previous


def _without_weights(spec: Experiment) -> str:
    """The spec's JSON with every weight set to 0 (to compare everything but weights)."""
    data = spec.model_dump(mode="json")
    for variant in data["variants"]:
        variant["weight"] = 0.0
    return json.dumps(data, sort_keys=True)
