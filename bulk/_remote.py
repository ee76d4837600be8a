"""The Triton engine: the same batches, scored by a live server.

For models that only a server runs (TensorRT plans, backends of their own) or to check
a deployment against the repository. Before scoring, the server must serve the pinned
version with the repository's signature (inputs, outputs, dtypes, dims). Each batch is
cut into requests of the model's `max_batch_size`, sent `concurrency` at a time (one
connection per thread, so the HTTP client, which is not thread-safe, works too), and
each request is retried with exponential backoff while the failure is transient
(`_transport.is_transient`: unreachable, restarting, overloaded, too slow).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
from google.protobuf import json_format
from numpy.typing import NDArray
from tritonclient.grpc import model_config_pb2 as mc

from tritonab._transport import Connection, Endpoint, is_transient
from tritonab.bulk._engines import EngineName, prefetched, scored_batches
from tritonab.bulk._input import Fragment, InputSet
from tritonab.bulk._model import Arrays, PinnedModel
from tritonab.bulk._scorer import BatchScorer, Job
from tritonab.ensembles.config import io_specs
from tritonab.errors import BulkError


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts after the first, and the first wait (doubled each time, at most `max_s`)."""

    retries: int = 4
    backoff_s: float = 0.5
    max_s: float = 10.0

    def wait(self, attempt: int) -> float:
        return float(min(self.max_s, self.backoff_s * 2**attempt))


class _Connections:
    """One `Connection` per thread, all closed together."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.local = threading.local()
        self.opened: list[Connection] = []
        self.lock = threading.Lock()

    def get(self) -> Connection:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = Connection(self.endpoint, error=BulkError)
            self.local.connection = connection
            with self.lock:
                self.opened.append(connection)
        return connection

    def close(self) -> None:
        with self.lock:
            opened, self.opened = self.opened, []
        for connection in opened:
            connection.close()


class RemoteModel:
    """A runner that scores through the server (implements `_model.Runner`)."""

    def __init__(
        self, connections: _Connections, pool: ThreadPoolExecutor, model: PinnedModel, retry: RetryPolicy
    ) -> None:
        self.connections = connections
        self.pool = pool
        self.model = model
        self.retry = retry
        self.outputs = [t.name for t in model.outputs]

    def run(self, inputs: Mapping[str, NDArray[Any]]) -> Arrays:
        rows = len(next(iter(inputs.values())))
        size = self.model.max_batch_size
        chunks = [{k: v[i : i + size] for k, v in inputs.items()} for i in range(0, rows, size)]
        results = list(self.pool.map(self._call, chunks))
        return {n: np.concatenate([r[n] for r in results], axis=0) for n in self.outputs}

    def _call(self, chunk: dict[str, NDArray[Any]]) -> Arrays:
        model = self.model
        attempt = 0
        while True:
            try:
                return self.connections.get().infer(
                    model.name, chunk, version=model.version, outputs=self.outputs
                )
            except BulkError as exc:
                if not is_transient(exc) or attempt >= self.retry.retries:
                    tries = f" after {attempt + 1} attempts" if attempt else ""
                    raise BulkError(
                        f"model `{model.name}` version {model.version} on "
                        f"`{self.connections.endpoint.url}` failed{tries}: {exc}"
                    ) from exc
                time.sleep(self.retry.wait(attempt))
                attempt += 1


def check_served(connection: Connection, model: PinnedModel, retry: RetryPolicy) -> None:
    """The server must serve the pinned version, with the repository's signature.

    Raises:
        BulkError: unreachable (after the retries), the version not ready, or a signature
            that differs from the repository's.
    """
    url = connection.url
    for attempt in range(retry.retries + 1):
        if connection.is_live():
            break
        if attempt == retry.retries:
            raise BulkError(f"server `{url}` is not reachable (tried {retry.retries + 1} times)")
        time.sleep(retry.wait(attempt))
    if not connection.is_model_ready(model.name, model.version):
        raise BulkError(
            f"server `{url}` does not serve model `{model.name}` version {model.version} (not ready); "
            "load that version first"
        )
    config = json_format.ParseDict(
        connection.model_config(model.name, model.version), mc.ModelConfig(), ignore_unknown_fields=True
    )
    served = {"input": io_specs(config.input), "output": io_specs(config.output)}
    pinned = {"input": model.inputs, "output": model.outputs}
    for what in ("input", "output"):
        if set(served[what]) != set(pinned[what]):
            raise BulkError(
                f"server `{url}` serves `{model.name}` version {model.version} with {what}s "
                f"{sorted(t.describe() for t in served[what])}, but the repository pins "
                f"{sorted(t.describe() for t in pinned[what])}"
            )
    if config.max_batch_size < 1:
        raise BulkError(f"server `{url}` serves `{model.name}` without batching (max_batch_size 0)")


@dataclass
class TritonEngine:
    """Scores through a live server.

    Args:
        endpoint: the server.
        concurrency: requests in flight.
        retry: retries with backoff on transient failures.
    """

    endpoint: Endpoint
    concurrency: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    name: EngineName = "triton"

    def stream(
        self, job: Job, inputs: InputSet, pending: Sequence[Fragment], columns: Sequence[str]
    ) -> Iterator[pa.Table]:
        connections = _Connections(self.endpoint)
        pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tritonab-bulk-infer")
        try:
            for target in job.targets:
                check_served(connections.get(), target, self.retry)
            runners = [RemoteModel(connections, pool, target, self.retry) for target in job.targets]
            scorer = BatchScorer(job, runners)
            yield from prefetched(lambda: scored_batches(scorer, inputs, pending, columns, job.batch_size))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            connections.close()

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.endpoint.url,
            "protocol": self.endpoint.protocol,
            "concurrency": self.concurrency,
            "retries": self.retry.retries,
        }
