"""Engines: where batches are scored. Each gives the scored tables of the pending
fragments in row order; `_score` writes them into parts the same way for all.

- `LocalEngine` (the embedded default): pyarrow and onnxruntime in this process. A
  producer thread reads and scores while the caller writes (both release the GIL), with
  at most `depth` scored batches waiting.
- `RayEngine` (`_ray`): Ray Data reads the fragments, scores them in actors
  (`map_batches` with a callable class, one model load per actor) and streams the
  scored blocks back in order.
- `TritonEngine` (`_remote`): the same batches, scored by a live server, with retries.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

import pyarrow as pa

from tritonab.bulk._input import Fragment, InputSet, read_batches
from tritonab.bulk._scorer import BatchScorer, Job

EngineName = Literal["local", "ray", "triton"]
ENGINES: tuple[EngineName, ...] = ("local", "ray", "triton")
T = TypeVar("T")


class Engine(Protocol):
    """Scores the pending fragments of a job."""

    name: EngineName

    def stream(
        self, job: Job, inputs: InputSet, pending: Sequence[Fragment], columns: Sequence[str]
    ) -> Iterator[pa.Table]:
        """Scored tables of `pending`, in row order (each within one fragment)."""
        ...

    def describe(self) -> dict[str, Any]:
        """The engine's settings, for the output manifest."""
        ...


def scored_batches(
    score: Callable[[pa.RecordBatch], pa.Table],
    inputs: InputSet,
    pending: Sequence[Fragment],
    columns: Sequence[str],
    batch_size: int,
    workers: int = 1,
) -> Iterator[pa.Table]:
    """Read each pending fragment in batches and score them, in order; with `workers` > 1,
    that many batches are scored at once (onnxruntime and pyarrow release the GIL)."""
    batches = (
        batch
        for fragment in pending
        for batch in read_batches(fragment, inputs.format, inputs.schema, columns, batch_size)
    )
    if workers <= 1:
        yield from map(score, batches)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tritonab-bulk-score") as pool:
        running: deque[Future[pa.Table]] = deque()
        try:
            for batch in batches:
                running.append(pool.submit(score, batch))
                if len(running) > workers:
                    yield running.popleft().result()
            while running:
                yield running.popleft().result()
        finally:
            for future in running:
                future.cancel()


def cpu_count() -> int:
    """The CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class LocalEngine:
    """pyarrow and onnxruntime in-process.

    Each model runs with the threads its config gives the ONNX runner (1 by default, so
    outputs equal the server's bit for bit) and `workers` batches are scored at once; on
    a few cores that also beats onnxruntime's intra-op threads, which spin against the
    reader and the writer. A producer thread reads and scores while the caller writes.

    Args:
        workers: batches scored at once (default: the CPUs this process may use).
    """

    workers: int | None = None
    name: EngineName = "local"

    def stream(
        self, job: Job, inputs: InputSet, pending: Sequence[Fragment], columns: Sequence[str]
    ) -> Iterator[pa.Table]:
        scorer = BatchScorer(job, [target.load() for target in job.targets])
        workers = self.workers or cpu_count()
        return prefetched(lambda: scored_batches(scorer, inputs, pending, columns, job.batch_size, workers))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "workers": self.workers or cpu_count()}


_DONE = object()


def prefetched(produce: Callable[[], Iterator[T]], depth: int = 2) -> Iterator[T]:
    """Run `produce()` in a thread, `depth` items ahead of the consumer; its exception is
    raised in the consumer. Closing the generator early stops the producer."""
    items: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def run() -> None:
        try:
            for item in produce():
                while not stop.is_set():
                    try:
                        items.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            items.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which raises it
            items.put(exc)

    thread = threading.Thread(target=run, name="tritonab-bulk-producer", daemon=True)
    thread.start()
    try:
        while True:
            item = items.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
