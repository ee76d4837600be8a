"""The one boundary to tritonclient: every Triton client is created here, and every
tritonclient or transport error is translated here.

`Endpoint` says where a server listens and how to reach it (protocol, timeout, TLS
files, extra headers such as an access key, and a `Retry` policy for idempotent calls
that find the server unavailable). `Connection` (synchronous) and
`AsyncConnection` (asyncio) wrap tritonclient's four clients behind one API that is
the same over gRPC and HTTP. `translated` maps `InferenceServerException` and the
transport errors (refused connections, timeouts, aiohttp and gRPC errors) to a tritonab
error, keeping the original as the cause.
"""

from __future__ import annotations

import contextlib
import importlib
import random
import ssl
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

import numpy as np
import numpy.typing as npt

from tritonab.errors import ClientError, TritonABError

WireProtocol = Literal["grpc", "http"]
PROTOCOLS: tuple[WireProtocol, ...] = ("grpc", "http")
T = TypeVar("T")

# What a call that never reached a server answers with: gRPC's UNAVAILABLE (also what a
# gRPC load balancer sends when its upstream is gone), and a proxy's 502/503/504.
_UNAVAILABLE = frozenset({"StatusCode.UNAVAILABLE", "UNAVAILABLE", "502", "503", "504"})


@dataclass(frozen=True)
class Retry:
    """How idempotent calls are retried when the server is unavailable.

    A call is retried only when it failed because no server answered it (gRPC
    UNAVAILABLE, a proxy's 502/503/504, a refused or reset connection): a replica that
    restarts, or a load balancer whose upstream just went away. Waits grow exponentially
    from `backoff_s` up to `max_backoff_s`, each drawn between half and all of its cap
    ("equal jitter"), so clients that failed together do not retry together.

    Args:
        attempts: tries in all (1 means no retry).
        backoff_s: the cap of the first wait.
        max_backoff_s: the largest cap.
        infer: whether inference is retried too (right for stateless models; a request
            whose response was lost may then run twice).
    """

    attempts: int = 5
    backoff_s: float = 0.05
    max_backoff_s: float = 1.0
    infer: bool = True

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ClientError(f"retry: attempts must be at least 1, got {self.attempts}")
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ClientError(
                f"retry: need 0 <= backoff_s <= max_backoff_s, got {self.backoff_s} and {self.max_backoff_s}"
            )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed try number `attempt` (1 for the first)."""
        cap = min(self.max_backoff_s, self.backoff_s * 2.0 ** (attempt - 1))
        return random.uniform(cap / 2, cap)


def is_unavailable(exc: BaseException) -> bool:
    """Whether a tritonclient or transport error says that no server answered the call."""
    if isinstance(exc, (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)):
        return True
    status = getattr(exc, "status", None)
    code = status() if callable(status) else None
    if code is None:
        with contextlib.suppress(Exception):  # grpc.RpcError carries `code()`
            code = exc.code()  # type: ignore[attr-defined]
    if "restricted" in error_text(exc):  # Triton refuses a call without its access key as UNAVAILABLE
        return False
    return str(code) in _UNAVAILABLE or getattr(code, "name", None) == "UNAVAILABLE"


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for TLS: the CA that signed the server, and a client certificate and key
    for mutual TLS (both or neither)."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise ClientError("TLS: give both a client certificate and its key, or neither")
        for name in ("ca", "cert", "key"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ClientError(f"TLS {name} file `{path}` does not exist")

    def read(self, name: Literal["ca", "cert", "key"]) -> bytes | None:
        """The bytes of one file (None when not given)."""
        path = getattr(self, name)
        return None if path is None else Path(path).read_bytes()

    def ssl_context(self) -> ssl.SSLContext:
        """A client-side `SSLContext` verifying the server against `ca` (or the system CAs)."""
        context = ssl.create_default_context(cafile=self.ca)
        if self.cert is not None:
            context.load_cert_chain(self.cert, self.key)
        return context


@dataclass(frozen=True)
class Endpoint:
    """Where a Triton server listens and how to talk to it.

    Args:
        url: `host:port` (a leading `grpc://`, `http://` or `https://` is dropped).
        protocol: `grpc` or `http`.
        timeout_s: seconds for each call (network and server).
        tls: TLS files; None for plaintext.
        headers: sent with every call (an access key, a tenant id).
        retry: how idempotent calls retry when the server is unavailable (None: never).
    """

    url: str
    protocol: WireProtocol = "grpc"
    timeout_s: float = 30.0
    tls: TLSFiles | None = None
    # Headers may hold an access key: never in a repr.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    retry: Retry | None = None

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ClientError(f"protocol `{self.protocol}` is not one of `grpc`, `http`")
        url = self.url
        for scheme in ("grpc://", "http://", "https://"):
            url = url.removeprefix(scheme)
        if not url:
            raise ClientError("a server URL (`host:port`) is required")
        object.__setattr__(self, "url", url)
        object.__setattr__(self, "headers", dict(self.headers))

    def with_url(self, url: str) -> Endpoint:
        """The same settings for another server."""
        return Endpoint(url, self.protocol, self.timeout_s, self.tls, self.headers, self.retry)


def as_endpoint(target: Endpoint | str, protocol: WireProtocol = "grpc") -> Endpoint:
    """An `Endpoint` as it is, or one for a `host:port` string."""
    return target if isinstance(target, Endpoint) else Endpoint(target, protocol)


def error_text(exc: BaseException) -> str:
    """tritonclient's message with its status, e.g. `[StatusCode.INVALID_ARGUMENT] ...`."""
    message = getattr(exc, "message", None)
    text = message() if callable(message) else str(exc)
    status = getattr(exc, "status", None)
    code = status() if callable(status) else None
    if code and str(code) not in (text or ""):
        return f"[{code}] {text}"
    return (text or type(exc).__name__).strip().splitlines()[0][:500]


def transport_errors() -> tuple[type[BaseException], ...]:
    """The exception types a tritonclient call raises for a server or network failure."""
    from tritonclient.utils import InferenceServerException

    found: list[type[BaseException]] = [InferenceServerException, OSError, TimeoutError]
    with contextlib.suppress(ImportError):
        import grpc

        found.append(grpc.RpcError)
    with contextlib.suppress(ImportError):
        import aiohttp

        found.append(aiohttp.ClientError)
    with contextlib.suppress(ImportError):
        import gevent

        found.append(gevent.Timeout)
    return tuple(found)


# Statuses of a call that may succeed when tried again: the server unreachable, restarting,
# overloaded or too slow. Not a bad request, an unknown model or a model's own error.
_TRANSIENT_STATUSES = frozenset(
    {
        "StatusCode.UNAVAILABLE",
        "StatusCode.DEADLINE_EXCEEDED",
        "StatusCode.RESOURCE_EXHAUSTED",
        "StatusCode.ABORTED",
        "429",
        "502",
        "503",
        "504",
    }
)


def is_transient(error: BaseException) -> bool:
    """Whether a failed call may succeed if tried again (for retries with backoff).

    True for gRPC UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and ABORTED, HTTP 429,
    502, 503 and 504, refused or reset connections and timeouts; False for a bad request
    or a model's own error. A translated tritonab error is judged by its cause.
    """
    from tritonclient.utils import InferenceServerException

    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, InferenceServerException):
            return str(seen.status()) in _TRANSIENT_STATUSES
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        code = getattr(seen, "code", None)  # a raw grpc.RpcError
        if callable(code) and type(seen).__module__.startswith("grpc"):
            return str(code()) in _TRANSIENT_STATUSES
        name = type(seen).__name__  # aiohttp's and gevent's connection failures and timeouts
        if type(seen).__module__.split(".")[0] in ("aiohttp", "gevent") and (
            "Connect" in name or "Timeout" in name
        ):
            return True
        seen = seen.__cause__
    return False


@contextlib.contextmanager
def translated(error: type[TritonABError] = ClientError, what: str = "") -> Iterator[None]:
    """Turn tritonclient and transport errors raised inside into `error`.

    Args:
        error: the tritonab error type to raise.
        what: a prefix naming the operation and its object (`model \\`m\\``).

    Raises:
        `error`: with `what: <tritonclient's message>`, the original as `__cause__`.
    """
    try:
        yield
    except transport_errors() as exc:
        text = error_text(exc)
        raise error(f"{what}: {text}" if what else text) from exc


_MODULES: dict[tuple[WireProtocol, bool], str] = {
    ("grpc", False): "tritonclient.grpc",
    ("grpc", True): "tritonclient.grpc.aio",
    ("http", False): "tritonclient.http",
    ("http", True): "tritonclient.http.aio",
}


def client_module(protocol: WireProtocol, *, asyncio: bool = False) -> ModuleType:
    """tritonclient's module for a protocol (`tritonclient.grpc`, `tritonclient.http.aio`, ...)."""
    return importlib.import_module(_MODULES[(protocol, asyncio)])


def _client_kwargs(endpoint: Endpoint, asyncio: bool) -> dict[str, Any]:
    """Constructor arguments for TLS and timeouts, in each client's own spelling."""
    tls = endpoint.tls
    if endpoint.protocol == "grpc":
        if tls is None:
            return {}
        return {
            "ssl": True,
            "root_certificates": tls.ca,
            "private_key": tls.key,
            "certificate_chain": tls.cert,
        }
    if asyncio:
        kwargs: dict[str, Any] = {"conn_timeout": endpoint.timeout_s, "conn_limit": 1024}
        if tls is not None:
            kwargs.update(ssl=True, ssl_context=tls.ssl_context())
        return kwargs
    kwargs = {"connection_timeout": endpoint.timeout_s, "network_timeout": endpoint.timeout_s}
    if tls is not None:
        options = {"ca_certs": tls.ca, "certfile": tls.cert, "keyfile": tls.key}
        kwargs.update(ssl=True, insecure=False, ssl_options={k: v for k, v in options.items() if v})
    return kwargs


def create_client(
    endpoint: Endpoint, *, asyncio: bool = False, error: type[TritonABError] = ClientError
) -> Any:
    """A tritonclient `InferenceServerClient` for `endpoint` (sync or asyncio).

    Raises:
        `error`: the URL or the TLS settings are refused.
    """
    module = client_module(endpoint.protocol, asyncio=asyncio)
    refused: tuple[type[BaseException], ...] = (ValueError, *transport_errors())
    try:
        return module.InferenceServerClient(endpoint.url, **_client_kwargs(endpoint, asyncio))
    except refused as exc:
        raise error(
            f"cannot create a {endpoint.protocol} client for `{endpoint.url}`: {error_text(exc)}"
        ) from exc


def wire_datatype(array: npt.NDArray[Any]) -> str:
    """Triton's datatype name for a numpy array (`BYTES` for strings and objects)."""
    from tritonclient.utils import np_to_triton_dtype

    if array.dtype.kind in "OSU":
        return "BYTES"
    return str(np_to_triton_dtype(array.dtype))


def infer_inputs(module: ModuleType, arrays: Mapping[str, Any]) -> list[Any]:
    """tritonclient `InferInput`s for `arrays` (batch axis first when the model batches)."""
    tensors = []
    for name, value in arrays.items():
        array = np.asarray(value)
        tensor = module.InferInput(name, list(array.shape), wire_datatype(array))
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


def _version(version: int | str) -> str:
    """tritonclient's version string: `""` for the server's choice."""
    return "" if version in (-1, "", None) else str(version)


def _output_names(response: Any, protocol: WireProtocol) -> list[str]:
    if protocol == "grpc":
        return [o.name for o in response.get_response().outputs]
    return [o["name"] for o in response.get_response()["outputs"]]


class Connection:
    """A synchronous client for one endpoint: the calls tritonab makes, the same over gRPC
    and HTTP, with errors translated into `error`.

    Args:
        endpoint: the server (or a `host:port` string for plaintext gRPC).
        error: the tritonab error type raised on failure (the caller's room).
    """

    def __init__(self, endpoint: Endpoint | str, *, error: type[TritonABError] = ClientError) -> None:
        self.endpoint = as_endpoint(endpoint)
        self.error = error
        self.module = client_module(self.endpoint.protocol)
        self.client = create_client(self.endpoint, error=error)

    @property
    def url(self) -> str:
        return self.endpoint.url

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"headers": self.endpoint.headers or None}
        if self.endpoint.protocol == "grpc":
            kwargs["client_timeout"] = self.endpoint.timeout_s
        return kwargs

    def close(self) -> None:
        """Close the client (idempotent)."""
        client, self.client = self.client, None
        if client is not None:
            client.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def call(self, fn: Callable[[], T], what: str = "", *, idempotent: bool = True) -> T:
        """Run one tritonclient call with its errors translated; an idempotent call that
        found the server unavailable is tried again under the endpoint's `Retry`.

        Args:
            fn: the call (no arguments; it uses `self.client`).
            what: the error messages' prefix, naming the operation and its object.
            idempotent: whether running it twice is harmless.

        Raises:
            `self.error`: the last try's error, translated, its cause kept.
        """
        retry = self.endpoint.retry
        attempt = 1
        while True:
            try:
                with translated(self.error, what):
                    return fn()
            except self.error as exc:
                cause = exc.__cause__
                if cause is None or not is_unavailable(cause):
                    raise
                # A gRPC channel that lost its server waits out a growing reconnect
                # back-off (seconds) before it tries again: a fresh client connects at
                # once, so a restarted server is reached on the next call.
                self.reconnect()
                if retry is None or not idempotent or attempt >= retry.attempts:
                    raise
                time.sleep(retry.delay(attempt))
                attempt += 1

    def reconnect(self) -> None:
        """Replace the client with a new one (the old one is closed)."""
        old, self.client = self.client, create_client(self.endpoint, error=self.error)
        if old is not None:
            with contextlib.suppress(Exception):  # closing a broken channel may raise anything
                old.close()

    def is_live(self) -> bool:
        """Whether the server answers and is live (False when unreachable)."""
        try:
            return self.call(lambda: bool(self.client.is_server_live(**self._kwargs())))
        except TritonABError:
            return False

    def is_model_ready(self, model: str, version: int | str = -1) -> bool:
        """Whether `model` (at `version`, or any) is ready (False when unknown or unreachable)."""
        try:
            return self.call(
                lambda: bool(self.client.is_model_ready(model, _version(version), **self._kwargs()))
            )
        except TritonABError:
            return False

    def model_config(self, model: str, version: int | str = -1) -> dict[str, Any]:
        """A model's config as a JSON dict (the same over both protocols)."""

        def read() -> dict[str, Any]:
            if self.endpoint.protocol == "grpc":
                document = self.client.get_model_config(
                    model, _version(version), as_json=True, **self._kwargs()
                )
                return dict(document.get("config", {}))
            return dict(self.client.get_model_config(model, _version(version), **self._kwargs()))

        return self.call(read, f"model `{model}`")

    def model_metadata(self, model: str, version: int | str = -1) -> dict[str, Any]:
        """A model's metadata (`inputs`/`outputs` with `datatype` and `shape`) as a JSON dict."""

        def read() -> dict[str, Any]:
            if self.endpoint.protocol == "grpc":
                return dict(
                    self.client.get_model_metadata(model, _version(version), as_json=True, **self._kwargs())
                )
            return dict(self.client.get_model_metadata(model, _version(version), **self._kwargs()))

        return self.call(read, f"model `{model}`")

    def statistics(self, model: str = "", version: int | str = -1) -> dict[str, Any]:
        """Triton's inference statistics as a JSON dict (`model_stats`: one entry per version)."""

        def read() -> dict[str, Any]:
            if self.endpoint.protocol == "grpc":
                return dict(
                    self.client.get_inference_statistics(
                        model, _version(version), as_json=True, **self._kwargs()
                    )
                )
            return dict(self.client.get_inference_statistics(model, _version(version), **self._kwargs()))

        return self.call(read, f"statistics of `{model or 'all models'}`")

    def load(self, model: str, config_json: str | None = None) -> None:
        """Load (or reload) `model`, optionally with a config override (JSON)."""
        with translated(self.error, f"loading model `{model}` failed"):
            self.client.load_model(model, config=config_json, **self._kwargs())

    def unload(self, model: str) -> None:
        """Unload `model` (requests in flight finish first)."""
        with translated(self.error, f"unloading model `{model}` failed"):
            self.client.unload_model(model, **self._kwargs())

    def infer(
        self,
        model: str,
        inputs: Mapping[str, Any],
        *,
        version: int | str = -1,
        outputs: Sequence[str] | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> dict[str, npt.NDArray[Any]]:
        """One inference; every output (or those asked for) as numpy."""
        requested = [self.module.InferRequestedOutput(n) for n in outputs] if outputs else None
        tensors = infer_inputs(self.module, inputs)
        retry = self.endpoint.retry
        response = self.call(
            lambda: self.client.infer(
                model,
                tensors,
                model_version=_version(version),
                outputs=requested,
                parameters=dict(parameters) if parameters else None,
                **self._kwargs(),
            ),
            idempotent=retry is not None and retry.infer,
        )
        names = outputs or _output_names(response, self.endpoint.protocol)
        return {n: response.as_numpy(n) for n in names}


class AsyncConnection:
    """An asyncio client for one endpoint (the load generator's), errors translated into `error`.

    The load generator calls `client.infer` itself, with `headers` from `call_kwargs`, and
    counts failures instead of raising them.
    """

    def __init__(self, endpoint: Endpoint | str, *, error: type[TritonABError] = ClientError) -> None:
        self.endpoint = as_endpoint(endpoint)
        self.error = error
        self.module = client_module(self.endpoint.protocol, asyncio=True)
        self.client: Any = create_client(self.endpoint, asyncio=True, error=error)

    @property
    def url(self) -> str:
        return self.endpoint.url

    def call_kwargs(self, timeout_s: float | None = None) -> dict[str, Any]:
        """Keyword arguments every call takes: the extra headers (and a gRPC timeout)."""
        kwargs: dict[str, Any] = {"headers": self.endpoint.headers or None}
        if timeout_s is not None and self.endpoint.protocol == "grpc":
            kwargs["client_timeout"] = timeout_s
        return kwargs

    async def close(self) -> None:
        """Close the client (idempotent)."""
        client, self.client = self.client, None
        if client is not None:
            await client.close()

    async def check_live(self, timeout_s: float = 10.0) -> None:
        """Raise unless the server answers and is live."""
        with translated(self.error, f"server `{self.url}` ({self.endpoint.protocol}) is unreachable"):
            live = await self.client.is_server_live(**self.call_kwargs(timeout_s))
        if not live:
            raise self.error(f"server `{self.url}` answered but is not live")

    async def model_config(
        self, model: str, version: int | str = -1, timeout_s: float = 10.0
    ) -> dict[str, Any]:
        """A model's config as a JSON dict (the same over both protocols)."""
        label = f"{model}:{version}" if _version(version) else model
        with translated(self.error, f"model `{label}` is not available on `{self.url}`"):
            if self.endpoint.protocol == "grpc":
                document = await self.client.get_model_config(
                    model, _version(version), as_json=True, **self.call_kwargs(timeout_s)
                )
                return dict(document.get("config", {}))
            return dict(await self.client.get_model_config(model, _version(version), **self.call_kwargs()))

    async def statistics(self, model: str, version: int | str = -1) -> dict[str, Any]:
        """Triton's inference statistics of one model as a JSON dict."""
        with translated(self.error, f"statistics of `{model}`"):
            if self.endpoint.protocol == "grpc":
                return dict(
                    await self.client.get_inference_statistics(
                        model, _version(version), as_json=True, **self.call_kwargs()
                    )
                )
            return dict(
                await self.client.get_inference_statistics(model, _version(version), **self.call_kwargs())
            )

    def inputs(self, arrays: Mapping[str, Any]) -> list[Any]:
        """Prebuilt `InferInput`s for one request."""
        return infer_inputs(self.module, arrays)
