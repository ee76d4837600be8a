"""Triton's model-control API: load/unload, and live router weights.

Weights change by reloading the router with a config override (Triton's `load` with
a `config` JSON): Triton loads the new instance beside the old one and switches
traffic when it is ready, so requests in flight finish on the old one and no request
fails. The server must run with `--model-control-mode=explicit`.
"""

from __future__ import annotations

import os
from pathlib import Path

from google.protobuf import json_format

from tritonab._transport import Connection, Endpoint, WireProtocol
from tritonab.ensembles.config import ModelConfig, get_parameter, read_config, set_parameter, write_config
from tritonab.ensembles.repository import ROUTER_PARAMETER
from tritonab.errors import ClientError, SpecError
from tritonab.splitter.spec import Experiment, spec_from_json

# Triton's words when a client asks to load or unload and the server runs in mode `none`
# or `poll` (misleading in mode `none`, where nothing polls).
_NOT_EXPLICIT = "explicit model load / unload is not allowed"
# A model name no repository holds: loading it tells the modes apart without side effects.
_PROBE_MODEL = "__tritonab_mode_probe__"


def parse_weights(text: str) -> dict[str, float]:
    """`control=0.9,treatment=0.1` -> `{"control": 0.9, "treatment": 0.1}`.

    Raises:
        SpecError: an item is not `name=number`.
    """
    weights: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            weights[name.strip()] = float(value)
        except ValueError:
            raise SpecError(f"weights: `{item}` is not `variant=number`") from None
    if not weights:
        raise SpecError("weights: expected `variant=number,...`, got nothing")
    return weights


class ModelControl:
    """Model control and config reads over gRPC or HTTP.

    Args:
        url: `host:port` of the server's gRPC or HTTP endpoint, or an `Endpoint` (TLS,
            headers such as the operator key).
        protocol: `grpc` or `http` (with a `host:port` string).
    """

    def __init__(self, url: str | Endpoint, protocol: WireProtocol = "grpc") -> None:
        endpoint = url if isinstance(url, Endpoint) else Endpoint(url, protocol)
        self.connection = Connection(endpoint)
        self.url = endpoint.url

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> ModelControl:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def config(self, model: str) -> ModelConfig:
        """The config a loaded model runs with, as a ModelConfig message.

        Raises:
            ClientError: unknown model or unreachable server.
        """
        raw = self.connection.model_config(model)
        return json_format.ParseDict(raw, ModelConfig(), ignore_unknown_fields=True)

    def load(self, model: str, config: ModelConfig | None = None) -> None:
        """Load (or reload) `model`, optionally overriding its `config.pbtxt`.

        Raises:
            ClientError: Triton refused (not in explicit mode, or the load failed).
        """
        override = None
        if config is not None:
            override = json_format.MessageToJson(config, preserving_proto_field_name=True)
        try:
            self.connection.load(model, override)
        except ClientError as exc:
            if _NOT_EXPLICIT in str(exc):
                raise ClientError(
                    f"server `{self.url}` does not take model loads: it is not in explicit "
                    "model-control mode (start it with `--model-control-mode=explicit`, "
                    "`tritonab serve --model-control-mode explicit`); Triton said: "
                    f"{str(exc).partition(': ')[2] or exc}"
                ) from exc
            raise

    def require_explicit_mode(self) -> None:
        """Fail at once unless the server runs in explicit model-control mode (what live
        weights and rollouts need), by asking it to load a model that does not exist.

        Other failures (an unreachable server, a refused key) are left to the calls that
        follow, which name them in their own terms.

        Raises:
            ClientError: the server is in mode `none` or `poll`.
        """
        try:
            self.load(_PROBE_MODEL)
        except ClientError as exc:
            if "does not take model loads" in str(exc):
                raise

    def unload(self, model: str) -> None:
        """Unload `model` (requests in flight finish first).

        Raises:
            ClientError: Triton refused.
        """
        self.connection.unload(model)

    def is_ready(self, model: str, version: int = -1) -> bool:
        """Whether `model` (at `version`, or any) is ready to serve."""
        return self.connection.is_model_ready(model, version)

    def experiment(self, name: str) -> tuple[Experiment, ModelConfig]:
        """The spec a running router serves, and its config."""
        config = self.config(name)
        raw = get_parameter(config, ROUTER_PARAMETER)
        if not raw:
            raise ClientError(f"model `{name}` is not a tritonab router (no `experiment` parameter)")
        return spec_from_json(raw), config

    def set_weights(self, name: str, weights: dict[str, float]) -> Experiment:
        """Reload the router `name` with new variant weights; returns the new spec.

        Raises:
            SpecError: unknown variants, or weights not summing to 1.
            ClientError: the server refused the reload.
        """
        spec, config = self.experiment(name)
        updated = spec.with_weights(weights)
        set_parameter(config, ROUTER_PARAMETER, updated.to_json())
        self.load(name, config)
        return updated


def write_weights(repository: str | os.PathLike[str], spec: Experiment) -> Path:
    """Persist a router's new spec into its `config.pbtxt` (atomically), so that a
    restarted server keeps the weights a live reload set."""
    path = Path(repository) / spec.name / "config.pbtxt"
    config = read_config(path)
    set_parameter(config, ROUTER_PARAMETER, spec.to_json())
    write_config(path, config)
    return path
