"""The triton engine's retries, against a real client and a port nothing listens on (the
scoring itself runs against a live server in tests/integration/test_bulk_triton.py)."""

from __future__ import annotations

import socket
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tritonab._transport import Endpoint
from tritonab.bulk import _remote, pin_model, repository_models, score
from tritonab.errors import BulkError


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The backoff waits, recorded instead of slept."""
    recorded: list[float] = []
    monkeypatch.setattr(_remote.time, "sleep", recorded.append)
    return recorded


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_an_unreachable_server_is_retried_with_backoff_then_named(kit, waits, protocol):
    model = pin_model(repository_models(kit.REPOSITORY), "demo_gbt")
    url = _closed_port()
    connections = _remote._Connections(Endpoint(url, protocol, timeout_s=2.0))
    retry = _remote.RetryPolicy(retries=3, backoff_s=0.25, max_s=0.6)
    with ThreadPoolExecutor(2) as pool:
        remote = _remote.RemoteModel(connections, pool, model, retry)
        with pytest.raises(
            BulkError, match=rf"model `demo_gbt` version 1 on `{url}` failed after 4 attempts"
        ):
            remote.run({"input": np.zeros((3, 30), np.float32)})
    connections.close()
    assert waits == [0.25, 0.5, 0.6]


def test_scoring_through_an_unreachable_server_exits_2(kit, input_folder, tmp_path, waits):
    with pytest.raises(BulkError, match=r"server `127.0.0.1:\d+` is not reachable \(tried 3 times\)") as err:
        score(
            kit.REPOSITORY,
            "demo_gbt",
            input=input_folder,
            output=tmp_path / "out",
            engine="triton",
            url=_closed_port(),
            retries=2,
        )
    assert err.value.exit_code == 2
    assert len(waits) == 2
    assert not list((tmp_path / "out").glob("part-*"))
