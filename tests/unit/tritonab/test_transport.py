"""The tritonclient boundary: endpoints, TLS settings, and errors translated with their cause."""

from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from tritonab._transport import (
    AsyncConnection,
    Connection,
    Endpoint,
    Retry,
    TLSFiles,
    client_module,
    create_client,
    error_text,
    infer_inputs,
    is_unavailable,
    translated,
    wire_datatype,
)
from tritonab.errors import ClientError, PerfError


def _closed_port() -> str:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def test_endpoint_drops_schemes_and_checks_the_protocol():
    assert Endpoint("grpc://h:1").url == "h:1"
    assert Endpoint("http://h:2", "http").url == "h:2"
    assert Endpoint("h:3").with_url("h:4").url == "h:4"
    with pytest.raises(ClientError, match="protocol `udp` is not one of"):
        Endpoint("h:1", "udp")  # type: ignore[arg-type]
    with pytest.raises(ClientError, match="URL"):
        Endpoint("grpc://")


def test_endpoint_headers_are_copied():
    headers = {"x-key": "a"}
    endpoint = Endpoint("h:1", headers=headers)
    headers["x-key"] = "b"
    assert endpoint.headers == {"x-key": "a"}


def test_tls_files_must_exist_and_come_in_pairs(tmp_path):
    ca = tmp_path / "ca.crt"
    ca.write_text("pem")
    assert TLSFiles(ca=str(ca)).read("ca") == b"pem"
    with pytest.raises(ClientError, match="both a client certificate and its key"):
        TLSFiles(ca=str(ca), cert=str(ca))
    with pytest.raises(ClientError, match="TLS key file `.*nope` does not exist"):
        TLSFiles(cert=str(ca), key=str(tmp_path / "nope"))


def test_translated_keeps_the_cause_and_names_the_operation():
    with pytest.raises(PerfError, match=r"model `m`: \[StatusCode.NOT_FOUND\] gone") as info:
        with translated(PerfError, "model `m`"):
            raise InferenceServerException("gone", status="StatusCode.NOT_FOUND")
    assert isinstance(info.value.__cause__, InferenceServerException)
    with pytest.raises(ClientError, match="refused") as info:
        with translated():
            raise ConnectionRefusedError(111, "refused")
    assert isinstance(info.value.__cause__, ConnectionRefusedError)


def test_translated_lets_programming_errors_through():
    with pytest.raises(KeyError):
        with translated():
            raise KeyError("a bug is not a server error")


def test_error_text_is_one_line():
    assert error_text(RuntimeError("first\nsecond")) == "first"
    assert error_text(InferenceServerException("x", status="400")) == "[400] x"


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_unreachable_server_is_a_client_error_with_its_cause(protocol):
    with Connection(Endpoint(_closed_port(), protocol, timeout_s=2)) as connection:
        assert connection.is_live() is False
        assert connection.is_model_ready("m") is False
        with pytest.raises(ClientError, match="model `m`") as info:
            connection.model_config("m")
        assert info.value.__cause__ is not None
        with pytest.raises(ClientError, match="loading model `m` failed"):
            connection.load("m")


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_async_unreachable_server_is_the_callers_error(protocol):
    async def check() -> None:
        connection = AsyncConnection(Endpoint(_closed_port(), protocol), error=PerfError)
        try:
            with pytest.raises(PerfError, match="is unreachable") as info:
                await connection.check_live(timeout_s=2)
            assert info.value.__cause__ is not None
        finally:
            await connection.close()
            await connection.close()  # idempotent

    asyncio.run(check())


# tritonclient's HTTP client raises from its own __del__ after a failed __init__.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_bad_url_is_refused_when_the_client_is_created():
    with pytest.raises(PerfError, match="cannot create a http client for `not a url::`"):
        create_client(Endpoint("not a url::", "http"), error=PerfError)


def test_tls_settings_reach_each_client():
    from tritonab._transport import _client_kwargs

    tls = TLSFiles(ca=__file__, cert=__file__, key=__file__)
    grpc = _client_kwargs(Endpoint("h:1", tls=tls), asyncio=False)
    assert grpc == {
        "ssl": True,
        "root_certificates": __file__,
        "private_key": __file__,
        "certificate_chain": __file__,
    }
    http = _client_kwargs(Endpoint("h:1", "http", timeout_s=7, tls=TLSFiles(ca=__file__)), asyncio=False)
    assert http["ssl"] is True and http["ssl_options"] == {"ca_certs": __file__}
    assert http["network_timeout"] == 7 and http["insecure"] is False
    assert _client_kwargs(Endpoint("h:1"), asyncio=True) == {}


def test_inputs_carry_triton_datatypes():
    module = client_module("grpc")
    tensors = infer_inputs(
        module, {"x": np.zeros((2, 3), np.float32), "u": np.array([b"a", b"b"], dtype=object)}
    )
    assert [(t.name(), t.datatype(), t.shape()) for t in tensors] == [
        ("x", "FP32", [2, 3]),
        ("u", "BYTES", [2]),
    ]
    assert wire_datatype(np.array(["a"])) == "BYTES"
    assert wire_datatype(np.zeros(1, np.int64)) == "INT64"


# -- retries of idempotent calls ------------------------------------------------------------


def test_retry_waits_grow_with_jitter_up_to_the_cap():
    retry = Retry(attempts=6, backoff_s=0.1, max_backoff_s=0.5)
    for attempt, cap in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.5), (5, 0.5)]:
        waits = [retry.delay(attempt) for _ in range(200)]
        assert cap / 2 <= min(waits) and max(waits) <= cap
        assert max(waits) - min(waits) > cap / 10  # jittered, not a constant
    with pytest.raises(ClientError, match="attempts must be at least 1"):
        Retry(attempts=0)
    with pytest.raises(ClientError, match="backoff_s <= max_backoff_s"):
        Retry(backoff_s=2.0, max_backoff_s=1.0)


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (InferenceServerException("gone", status="StatusCode.UNAVAILABLE"), True),
        (
            InferenceServerException(
                "Received http2 header with status: 502", status="StatusCode.UNAVAILABLE"
            ),
            True,
        ),
        (InferenceServerException("bad gateway", status="503"), True),
        (ConnectionRefusedError(111, "refused"), True),
        (ConnectionResetError(104, "reset"), True),
        (InferenceServerException("no such model", status="StatusCode.NOT_FOUND"), False),
        (InferenceServerException("bad input", status="400"), False),
        (TimeoutError("slow"), False),
        # Triton answers a call without its access key with UNAVAILABLE: retrying cannot help.
        (
            InferenceServerException(
                "This protocol is restricted, expecting header 'triton-grpc-protocol-x-key'",
                status="StatusCode.UNAVAILABLE",
            ),
            False,
        ),
    ],
)
def test_unavailable_means_no_server_answered(error, unavailable):
    assert is_unavailable(error) is unavailable


class _Flaky:
    """A call failing `failures` times with `error`, then answering."""

    def __init__(self, failures: int, error: BaseException) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "answer"


UNAVAILABLE = InferenceServerException("upstream gone", status="StatusCode.UNAVAILABLE")


def test_idempotent_calls_retry_when_unavailable_and_reconnect_each_time():
    endpoint = Endpoint(_closed_port(), retry=Retry(attempts=4, backoff_s=0.001, max_backoff_s=0.002))
    with Connection(endpoint) as connection:
        clients = [connection.client]
        flaky = _Flaky(3, UNAVAILABLE)

        def call() -> str:
            clients.append(connection.client)
            return flaky()

        assert connection.call(call) == "answer"
        assert flaky.calls == 4
        # Each failure replaced the client: a fresh channel, not one waiting out its back-off.
        assert len({id(c) for c in clients[1:]}) == 4


def test_retries_stop_at_the_attempts_and_raise_the_last_error_with_its_cause():
    endpoint = Endpoint(_closed_port(), retry=Retry(attempts=3, backoff_s=0.001, max_backoff_s=0.002))
    with Connection(endpoint) as connection:
        flaky = _Flaky(10, UNAVAILABLE)
        with pytest.raises(ClientError, match=r"reading: \[StatusCode.UNAVAILABLE\] upstream gone") as info:
            connection.call(flaky, "reading")
        assert flaky.calls == 3
        assert info.value.__cause__ is UNAVAILABLE


def test_no_retry_for_other_errors_non_idempotent_calls_or_without_a_policy():
    retry = Retry(attempts=5, backoff_s=0.001, max_backoff_s=0.002)
    with Connection(Endpoint(_closed_port(), retry=retry)) as connection:
        not_found = _Flaky(1, InferenceServerException("no model", status="StatusCode.NOT_FOUND"))
        with pytest.raises(ClientError, match="no model"):
            connection.call(not_found)
        assert not_found.calls == 1
        load = _Flaky(1, UNAVAILABLE)
        with pytest.raises(ClientError):
            connection.call(load, idempotent=False)
        assert load.calls == 1
    with Connection(Endpoint(_closed_port())) as connection:
        plain = _Flaky(1, UNAVAILABLE)
        with pytest.raises(ClientError):
            connection.call(plain)
        assert plain.calls == 1


def test_a_real_refused_connection_is_retried_then_reported():
    retry = Retry(attempts=3, backoff_s=0.001, max_backoff_s=0.002)
    with Connection(Endpoint(_closed_port(), "http", retry=retry)) as connection:
        with pytest.raises(ClientError, match="Connection refused"):
            connection.model_config("m")
    assert Endpoint("h:1", retry=retry).with_url("h:2").retry is retry


def test_transient_failures_are_told_from_bad_requests():
    from tritonab._transport import is_transient

    for status in ("StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED", "503", "429"):
        assert is_transient(InferenceServerException("x", status=status))
    for status in ("StatusCode.INVALID_ARGUMENT", "StatusCode.INTERNAL", "400", None):
        assert not is_transient(InferenceServerException("x", status=status))
    assert is_transient(ConnectionRefusedError())
    assert is_transient(TimeoutError())
    assert not is_transient(ValueError("bad"))
    try:
        with translated(ClientError, "model `m`"):
            raise InferenceServerException("failed to connect", status="StatusCode.UNAVAILABLE")
    except ClientError as exc:
        assert is_transient(exc)  # judged by its cause
