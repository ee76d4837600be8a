"""`ExperimentClient`: call an experiment's router, or its variants directly (fast path).

Both paths give identical outputs: the fast path reads the spec from the router's
config once, computes the assignment with the same code the router runs
(`tritonab.backends._routing.Router`), and calls the pinned variant models itself.
Calls go through `tritonab._transport.Connection`, the one tritonclient boundary.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tritonab._transport import Connection, Endpoint, Retry, TLSFiles, WireProtocol
from tritonab.backends._routing import VARIANT_OUTPUT, RequestError, Router
from tritonab.errors import ClientError
from tritonab.splitter.spec import Experiment, spec_from_json

__all__ = ["ExperimentClient", "InferResult", "Retry", "TLSFiles"]


@dataclass(frozen=True)
class InferResult:
    """Outputs of one request and the variant of each row."""

    outputs: dict[str, NDArray[Any]]
    variants: list[str]

    @property
    def variant(self) -> str:
        """The variant of the request (the first row's when rows differ)."""
        return self.variants[0] if self.variants else ""


class ExperimentClient:
    """A Triton client that speaks experiments.

    Args:
        url: `host:port` of the server's gRPC or HTTP endpoint, or an `Endpoint`
            (then the other arguments are not used).
        protocol: `grpc` or `http`.
        timeout: seconds for each call (network and server).
        tls: TLS files (the server's CA; a client certificate and key for mutual TLS).
        headers: sent with every call (an access key).
        retry: retry calls that find the server unavailable (a restarting replica, a load
            balancer whose upstream went away), inference included: `Retry()` waits at
            most about 1.5 s over 5 tries. None: fail at once.

    Example:
        >>> client = ExperimentClient("127.0.0.1:8001")  # doctest: +SKIP
        >>> result = client.infer("demo_ab", {"features": x}, unit_id="user-42")  # doctest: +SKIP
        >>> result.variant, result.outputs["label"]  # doctest: +SKIP
    """

    def __init__(
        self,
        url: str | Endpoint,
        protocol: WireProtocol = "grpc",
        *,
        timeout: float = 30.0,
        tls: TLSFiles | None = None,
        headers: Mapping[str, str] | None = None,
        retry: Retry | None = None,
    ) -> None:
        endpoint = (
            url if isinstance(url, Endpoint) else Endpoint(url, protocol, timeout, tls, headers or {}, retry)
        )
        self._connection = Connection(endpoint)
        self.endpoint = endpoint
        self._specs: dict[str, Experiment] = {}
        self._routers: dict[str, Router] = {}

    @property
    def url(self) -> str:
        return self.endpoint.url

    @property
    def protocol(self) -> WireProtocol:
        return self.endpoint.protocol

    def close(self) -> None:
        """Close the connection (idempotent)."""
        self._connection.close()

    def __enter__(self) -> ExperimentClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def infer(
        self,
        experiment: str,
        inputs: Mapping[str, Any],
        *,
        unit_id: str | int | None = None,
        variant: str | None = None,
        outputs: Sequence[str] | None = None,
        fast_path: bool = False,
    ) -> InferResult:
        """Run one request through an experiment.

        Args:
            experiment: the router model's name.
            inputs: input name -> array with the batch as first axis.
            unit_id: the unit (user, session, ...) all rows belong to.
            variant: force a variant (the spec must `allow_override`).
            outputs: output names to return (default: all).
            fast_path: compute the assignment here and call the variant directly.

        Raises:
            ClientError: the server refused or failed the request, with its message.
        """
        params: dict[str, Any] = {}
        if unit_id is not None:
            params["unit_id"] = str(unit_id)
        if variant is not None:
            params["variant"] = variant
        if fast_path:
            return self._infer_direct(experiment, dict(inputs), params, outputs)
        result = self._call(experiment, -1, dict(inputs), params, outputs and [*outputs, VARIANT_OUTPUT])
        labels = result.pop(VARIANT_OUTPUT, np.zeros((0, 1), dtype=object))
        return InferResult(result, [_text(v) for v in labels.reshape(-1)])

    def report_outcome(
        self,
        metric: str,
        value: float = 1.0,
        *,
        unit_id: str | int | None = None,
        request_id: str | None = None,
        experiment: str | None = None,
        time: float | None = None,
        log_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        """Record an outcome (a label, a conversion, revenue) for `tritonab analyze`.

        Client-side: the record is appended (locked, flushed) to
        `<log_dir>/outcomes/client-<pid>.jsonl`; nothing goes to the server. The
        analysis joins it to the unit's exposures (or the request's, by `request_id`).

        Args:
            metric: the outcome's name (e.g. `correct`, `purchase`).
            value: its value (1 for an event; 0/1 for a label; an amount).
            unit_id: the unit it belongs to (as passed to `infer`), or
            request_id: the Triton request id it belongs to.
            experiment: limit the outcome to one experiment (default: any).
            time: epoch seconds (default: now).
            log_dir: the log folder (default: `$TRITONAB_LOG_DIR`).

        Raises:
            ClientError: no log folder, or an invalid record.
        """
        import time as _time

        from pydantic import ValidationError

        from tritonab.monitoring.outcomes import OutcomeRecord, append_outcome

        folder = log_dir or os.environ.get("TRITONAB_LOG_DIR")
        if not folder:
            raise ClientError("report_outcome needs `log_dir` or $TRITONAB_LOG_DIR")
        try:
            record = OutcomeRecord(
                unit_id=unit_id,
                request_id=request_id,
                metric=metric,
                value=value,
                experiment=experiment,
                time=_time.time() if time is None else time,
            )
        except ValidationError as exc:
            raise ClientError(f"outcome `{metric}`: {exc.errors()[0]['msg']}") from exc
        append_outcome(folder, record)

    def spec(self, experiment: str, *, refresh: bool = False) -> Experiment:
        """The experiment spec held by the router's config (cached)."""
        if refresh or experiment not in self._specs:
            config = self.model_config(experiment)
            raw = config.get("parameters", {}).get("experiment", {}).get("string_value")
            if not raw:
                raise ClientError(f"model `{experiment}` is not a tritonab router")
            self._specs[experiment] = spec_from_json(raw)
            inputs = [i["name"] for i in config.get("input", [])]
            spec = self._specs[experiment]
            forward = [n for n in inputs if n != spec.unit_input]
            batch = int(config.get("max_batch_size", 0))  # absent over gRPC JSON when 0
            self._routers[experiment] = Router(spec, forward, batch or 1, batching=batch > 0)
        return self._specs[experiment]

    def model_config(self, model: str) -> dict[str, Any]:
        """A model's config as a dict (as JSON over either protocol).

        Raises:
            ClientError: unknown model or unreachable server.
        """
        return self._connection.model_config(model)

    def input_dtypes(self, model: str) -> dict[str, np.dtype[Any]]:
        """Each input's numpy dtype, from the model's metadata (open to inference clients,
        where the config may need the operator key).

        Raises:
            ClientError: unknown model or unreachable server.
        """
        from tritonclient.utils import triton_to_np_dtype

        metadata = self._connection.model_metadata(model)
        return {i["name"]: np.dtype(triton_to_np_dtype(i["datatype"])) for i in metadata.get("inputs", [])}

    def _infer_direct(
        self,
        experiment: str,
        inputs: dict[str, Any],
        params: dict[str, Any],
        outputs: Sequence[str] | None,
    ) -> InferResult:
        spec = self.spec(experiment)
        router = self._routers[experiment]
        plan = router.plan([inputs], [params])
        if plan.errors[0] is not None:
            raise ClientError(plan.errors[0].message)
        results: list[dict[str, NDArray[Any]] | RequestError] = []
        for call in plan.calls:
            target = spec.variants[call.variant]
            try:
                results.append(self._call(target.model, target.version, call.inputs, {}, outputs))
            except ClientError as exc:
                results.append(RequestError(f"variant `{target.name}` (model `{target.model}`): {exc}"))
        outcome = router.scatter(plan, results)[0]
        if isinstance(outcome, RequestError):
            raise ClientError(outcome.message)
        labels = outcome.pop(VARIANT_OUTPUT)
        return InferResult(outcome, [_text(v) for v in labels.reshape(-1)])

    def _call(
        self,
        model: str,
        version: int,
        inputs: Mapping[str, Any],
        params: Mapping[str, Any],
        outputs: Sequence[str] | None,
    ) -> dict[str, NDArray[Any]]:
        """One call; returns every (or the requested) output as numpy."""
        return self._connection.infer(model, inputs, version=version, outputs=outputs, parameters=params)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
