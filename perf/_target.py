"""The boundary to the server: an async client for gRPC or HTTP, model info, statistics.

Every tritonclient / aiohttp / grpc exception met while connecting or reading
model info is translated here into a `PerfError` (exit 2) that names the URL
or the model; failures of individual inference requests are counted, not raised.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from tritonab.errors import PerfError
from tritonab.perf._inputs import ModelInfo, TensorInfo
from tritonab.perf._server_stats import ServerStats, stats_from_json

Protocol = Literal["grpc", "http"]
_CONNECT_TIMEOUT_S = 10.0


def split_model_spec(spec: str) -> tuple[str, str]:
    """`name[:version]` -> `(name, version)`; version `""` means the server's choice.

    Raises:
        PerfError: empty name or a version that is not a positive integer.
    """
    name, _, version = spec.partition(":")
    if not name or (version and not (version.isdigit() and int(version) > 0)):
        raise PerfError(f"model `{spec}`: expected NAME or NAME:VERSION (VERSION a positive integer)")
    return name, version


def client_module(protocol: Protocol):
    """tritonclient's asyncio module for `protocol`."""
    if protocol == "grpc":
        import tritonclient.grpc.aio as module
    elif protocol == "http":
        import tritonclient.http.aio as module
    else:
        raise PerfError(f"protocol `{protocol}`: expected grpc or http")
    return module


def make_inputs(module, arrays: Mapping[str, np.ndarray]) -> list:
    """tritonclient `InferInput`s for `arrays` (batch axis first when the model batches)."""
    from tritonclient.utils import np_to_triton_dtype

    tensors = []
    for name, array in arrays.items():
        dtype = "BYTES" if array.dtype.kind in "OSU" else np_to_triton_dtype(array.dtype)
        tensor = module.InferInput(name, list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


class Connection:
    """An asyncio tritonclient for one URL, with errors translated at this boundary.

    Args:
        url: `host:port` (a leading `http://` or `grpc://` is stripped).
        protocol: `grpc` or `http`.
    """

    def __init__(self, url: str, protocol: Protocol = "grpc") -> None:
        for scheme in ("http://", "grpc://"):
            url = url.removeprefix(scheme)
        self.url = url
        self.protocol = protocol
        self.module = client_module(protocol)
        try:
            if protocol == "http":
                self.client = self.module.InferenceServerClient(url, conn_limit=1024)
            else:
                self.client = self.module.InferenceServerClient(url)
        except Exception as exc:  # tritonclient validates the URL eagerly
            raise PerfError(f"server `{url}`: {exc}") from None

    async def close(self) -> None:
        """Close the client (idempotent)."""
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    async def check_live(self) -> None:
        """Raise unless the server answers and is live.

        Raises:
            PerfError: the server is unreachable or not live.
        """
        try:
            kwargs = {"client_timeout": _CONNECT_TIMEOUT_S} if self.protocol == "grpc" else {}
            live = await self.client.is_server_live(**kwargs)
        except Exception as exc:
            raise PerfError(f"server `{self.url}` ({self.protocol}) is unreachable: {_short(exc)}") from None
        if not live:
            raise PerfError(f"server `{self.url}` answered but is not live")

    async def _config(self, name: str, version: str) -> dict[str, Any]:
        """The model config as a dict (both protocols)."""
        try:
            if self.protocol == "grpc":
                document = await self.client.get_model_config(
                    name, version, as_json=True, client_timeout=_CONNECT_TIMEOUT_S
                )
                return document.get("config", {})
            return await self.client.get_model_config(name, version)
        except Exception as exc:
            label = f"{name}:{version}" if version else name
            raise PerfError(f"model `{label}` is not available on `{self.url}`: {_short(exc)}") from None

    async def model_info(self, name: str, version: str = "") -> ModelInfo:
        """Inputs, outputs and batching of a model, read from the server's config.

        Raises:
            PerfError: the model is unknown or not ready.
        """
        config = await self._config(name, version)

        def tensors(items: Sequence[dict]) -> tuple[TensorInfo, ...]:
            out = []
            for item in items:
                wire = str(item.get("data_type", "TYPE_INVALID")).removeprefix("TYPE_")
                out.append(
                    TensorInfo(
                        item["name"],
                        "BYTES" if wire == "STRING" else wire,
                        tuple(int(d) for d in item.get("dims", [])),
                    )
                )
            return tuple(out)

        steps = config.get("ensemble_scheduling", {}).get("step", [])
        return ModelInfo(
            name=name,
            version=version,
            max_batch_size=int(config.get("max_batch_size", 0) or 0),
            inputs=tensors(config.get("input", [])),
            outputs=tensors(config.get("output", [])),
            platform=str(config.get("platform", "") or config.get("backend", "")),
            composing=tuple(dict.fromkeys(s["model_name"] for s in steps)),
        )

    async def stats(self, model: ModelInfo) -> ServerStats | None:
        """A snapshot of the model's cumulative statistics (None if the server gives none)."""
        try:
            top = await self._stats_of(model.name, model.version)
            if not model.composing:
                return top
            parts = ServerStats()
            for name in model.composing:
                parts = parts + await self._stats_of(name, "")
            return top.with_parts_of(parts)
        except Exception:  # statistics are optional: perf_analyzer then drops the columns
            return None

    async def _stats_of(self, name: str, version: str) -> ServerStats:
        if self.protocol == "grpc":
            document = await self.client.get_inference_statistics(name, version, as_json=True)
        else:
            document = await self.client.get_inference_statistics(name, version)
        return stats_from_json(document, name)

    def inputs(self, arrays: Mapping[str, np.ndarray]) -> list:
        """Prebuilt `InferInput`s for one request."""
        return make_inputs(self.module, arrays)


async def open_model(url: str, protocol: Protocol, spec: str) -> tuple[Connection, ModelInfo]:
    """Connect, check the server is live and read the model's info.

    Raises:
        PerfError: unreachable server or unknown model (the connection is closed then).
    """
    name, version = split_model_spec(spec)
    connection = Connection(url, protocol)
    try:
        await connection.check_live()
        info = await connection.model_info(name, version)
    except BaseException:
        await connection.close()
        raise
    return connection, info


@dataclass(frozen=True)
class RequestPlan:
    """What to send: prebuilt inputs (cycled) and request parameters (cycled)."""

    model: str
    version: str
    inputs: tuple[list, ...]
    parameters: tuple[dict | None, ...] = (None,)

    def factory(self):
        """A `factory(i) -> (model, version, inputs, parameters)` for the load generator."""
        inputs, params = itertools.cycle(self.inputs), itertools.cycle(self.parameters)
        return lambda _i: (self.model, self.version, next(inputs), next(params))


def request_parameters(
    static: Mapping[str, str], unit_ids: int, *, seed: int = 0, draws: int = 4096
) -> tuple[dict | None, ...]:
    """Request parameters per request: `static` plus `unit_id` drawn from `unit_ids` users.

    Args:
        static: parameters sent with every request (`--parameter key=value`).
        unit_ids: number of synthetic users (0: send no `unit_id`).
        seed: random seed of the draw.
        draws: how many draws to precompute (then cycled).
    """
    if unit_ids <= 0:
        return (dict(static) or None,)
    rng = np.random.default_rng(seed)
    return tuple({**static, "unit_id": f"unit-{int(u)}"} for u in rng.integers(0, unit_ids, size=draws))


def _short(exc: BaseException) -> str:
    """The first line of an exception's message."""
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
