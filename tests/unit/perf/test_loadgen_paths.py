"""Several paths measured over the same span of time, on a fake client: the request-by-
request interleaving (concurrency 1) and the alternating slices (closed loop)."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from tritonclient.utils import InferenceServerException

from tritonab.perf._loadgen import run_alternating, run_interleaved

DELAY_S = {"fast": 0.001, "slow": 0.005, "bad": 0.001}


class _Client:
    """Answers each model after its delay; `bad` always fails; records what it was sent."""

    def __init__(self):
        self.sent: list[str] = []

    async def infer(self, model, inputs, model_version="", parameters=None, headers=None):
        self.sent.append(model)
        await asyncio.sleep(DELAY_S[model])
        if model == "bad":
            raise InferenceServerException("boom")


class _Connection:
    def __init__(self):
        self.client = _Client()

    def call_kwargs(self):
        return {"headers": None}


def _path(model):
    return lambda i: (model, "", [], {"i": i})


def test_interleaved_paths_take_turns_and_keep_their_own_figures():
    connection = _Connection()
    fast, slow, bad = asyncio.run(
        run_interleaved(connection, [_path("fast"), _path("slow"), _path("bad")], duration_s=0.6, seed=3)
    )
    sent = connection.client.sent
    assert all(a != b for a, b in zip(sent, sent[1:]))  # a request never follows its own path
    counts = {m: sent.count(m) for m in DELAY_S}
    assert max(counts.values()) - min(counts.values()) <= 1  # cycles: each path once per cycle
    assert fast.errors == slow.errors == 0 and bad.errors == bad.count > 0
    assert bad.latencies_us.size == 0
    assert np.percentile(slow.latencies_us, 50) > 2 * np.percentile(fast.latencies_us, 50)
    assert fast.concurrency == slow.concurrency == 1 and fast.duration_s == 0.6


def test_interleaved_order_depends_on_the_seed():
    orders = []
    for seed in (0, 1):
        connection = _Connection()
        asyncio.run(
            run_interleaved(
                connection, [_path(m) for m in ("fast", "slow", "bad")], duration_s=0.1, seed=seed
            )
        )
        orders.append(connection.client.sent[:12])
    assert orders[0] != orders[1]


def test_alternating_slices_count_each_paths_own_completions():
    connection = _Connection()
    fast, slow, bad = asyncio.run(
        run_alternating(
            connection,
            [_path("fast"), _path("slow"), _path("bad")],
            concurrency=4,
            slice_s=0.1,
            slices=3,
            settle_s=0.02,
        )
    )
    for window in (fast, slow, bad):
        assert window.concurrency == 4
        assert window.duration_s == pytest.approx(3 * 0.08, abs=0.05)
    assert fast.errors == slow.errors == 0 and bad.errors == bad.count > 0
    assert fast.throughput > 2 * slow.throughput > 0
    # every counted request of a path was sent to it: the slow path's latencies are its own
    assert slow.latencies_us.min() >= 0.9 * DELAY_S["slow"] * 1e6


def test_alternating_settle_must_be_shorter_than_a_slice():
    with pytest.raises(ValueError, match="settle_s"):
        asyncio.run(
            run_alternating(
                _Connection(), [_path("fast")], concurrency=1, slice_s=0.1, slices=1, settle_s=0.1
            )
        )
