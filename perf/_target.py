"""The server under test: an asyncio connection (`tritonab._transport`), model info, statistics.

Errors met while connecting or reading model info are `PerfError` (exit 2), naming the
URL or the model; failures of individual inference requests are counted, not raised.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tritonab._transport import AsyncConnection, Endpoint, WireProtocol, as_endpoint
from tritonab.errors import PerfError
from tritonab.perf._inputs import ModelInfo, TensorInfo
from tritonab.perf._server_stats import ServerStats, stats_from_json

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


class Target(AsyncConnection):
    """An asyncio connection to one server, with model info and statistics for perf.

    Args:
        endpoint: the server (`host:port` for plaintext gRPC, or an `Endpoint`).
        protocol: `grpc` or `http`, with a `host:port` string.
    """

    def __init__(self, endpoint: Endpoint | str, protocol: WireProtocol = "grpc") -> None:
        super().__init__(as_endpoint(endpoint, protocol), error=PerfError)

    async def model_info(self, name: str, version: str = "") -> ModelInfo:
        """Inputs, outputs and batching of a model, read from the server's config.

        Raises:
            PerfError: the model is unknown or not ready.
        """
        config = await self.model_config(name, version, _CONNECT_TIMEOUT_S)

        def tensors(items: Sequence[dict[str, Any]]) -> tuple[TensorInfo, ...]:
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
        """A snapshot of the model's cumulative statistics (None if the server gives none:
        perf_analyzer then drops the server columns too)."""
        try:
            top = await self._stats_of(model.name, model.version)
            if not model.composing:
                return top
            parts = ServerStats()
            for name in model.composing:
                parts = parts + await self._stats_of(name, "")
            return top.with_parts_of(parts)
        except PerfError:
            return None

    async def _stats_of(self, name: str, version: str) -> ServerStats:
        return stats_from_json(await self.statistics(name, version), name)


async def open_model(url: Endpoint | str, protocol: WireProtocol, spec: str) -> tuple[Target, ModelInfo]:
    """Connect, check the server is live and read the model's info.

    Raises:
        PerfError: unreachable server or unknown model (the connection is closed then).
    """
    name, version = split_model_spec(spec)
    connection = Target(url, protocol)
    try:
        await connection.check_live(_CONNECT_TIMEOUT_S)
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
