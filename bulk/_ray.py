"""The Ray engine: Ray Data reads, scores in actors, and streams the results back in order.

- **Read**: `FragmentDatasource`, one read task per pending input fragment, yielding
  the very batches the local engine reads (`_input.read_batches`, led by `_row`).
- **Score**: `map_batches` with the callable class `RayScorer` (`concurrency` actors,
  each loading the job's models once, from the verified bytes the job carries, so
  workers need no access to the repository), one block per call.
- **Write**: the scored blocks come back in input order (`preserve_order`) to the
  driver, which writes them into parts like every engine does. Ray's `write_parquet`
  would name files by block and write them non-atomically, so a rerun could neither
  tell which input a file came from nor skip it; this way a part is one fragment,
  atomic, keyed and byte-identical to the local engine's.

Without an address, Ray starts in this process, bounded to the CPUs this process may
use, without a dashboard, with its session files in a temporary folder, and is shut
down afterwards; a Ray session the caller already started is used as it is and left
running; `address` joins a cluster (workers must have `tritonab` installed and read the
input at the same path).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from tritonab.bulk._engines import EngineName
from tritonab.bulk._input import Format, Fragment, InputSet, read_batches
from tritonab.bulk._scorer import BatchScorer, Job
from tritonab.errors import BulkError

_OBJECT_STORE_BYTES = 512 << 20  # an in-process Ray on a shared machine: enough for streaming
# Logical CPUs a read task asks for. Reading is light next to scoring, and the actors'
# share is cut to leave it room: actors that hold every CPU would starve the reads that
# feed them, and the pipeline would wait forever (2 actors on 2 CPUs did).
_READ_CPUS = 0.25


def actor_cpus(cpus: float, actors: int) -> float:
    """Logical CPUs per scoring actor: one, or less so that the actors and a read task fit
    in the cluster's `cpus` together."""
    if cpus <= 0:
        return 1.0
    share = min(1.0, max(cpus - _READ_CPUS, 0.0) / actors)
    return max(math.floor(share * 10_000) / 10_000, 0.0001)  # Ray counts to 1e-4 CPU


def _ray() -> Any:
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise BulkError("the ray engine needs Ray Data: pip install 'tritonab[ray]' (ray[data])") from exc
    return ray


def _read_fragment(
    fragment: Fragment, fmt: Format, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.Table]:
    for batch in read_batches(fragment, fmt, schema, columns, batch_size):
        yield pa.Table.from_batches([batch])


def _datasource(
    inputs: InputSet, pending: Sequence[Fragment], columns: Sequence[str], batch_size: int
) -> Any:
    """A Ray `Datasource` with one read task per pending fragment."""
    _ray()
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class FragmentDatasource(Datasource):
        def __init__(self) -> None:
            super().__init__()  # type: ignore[no-untyped-call]

        def estimate_inmemory_data_size(self) -> int:
            return sum(f.size for f in pending)

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            tasks = []
            for fragment in pending:
                read = functools.partial(
                    _read_fragment, fragment, inputs.format, inputs.schema, tuple(columns), batch_size
                )
                metadata = BlockMetadata(
                    num_rows=fragment.rows,
                    size_bytes=fragment.size,
                    input_files=(fragment.path,),
                    exec_stats=None,
                )
                tasks.append(ReadTask(read, metadata, per_task_row_limit=per_task_row_limit))
            return tasks

    return FragmentDatasource()


class RayScorer:
    """The `map_batches` callable class: one job, its models loaded once per actor."""

    def __init__(self, job: Job) -> None:
        self.scorer = BatchScorer(job, [target.load() for target in job.targets])

    def __call__(self, table: pa.Table) -> pa.Table:
        batches = table.combine_chunks().to_batches()
        if len(batches) == 1:
            return self.scorer(batches[0])
        return pa.concat_tables([self.scorer(b) for b in batches])


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[dict[str, Any]]:
    """Ray for the length of the block: joined at `address`, the caller's own session, or
    started in this process (and shut down after); yields what it is, for the manifest."""
    ray = _ray()
    if ray.is_initialized():
        yield {"ray": "the caller's session", "cpus": ray.cluster_resources().get("CPU", 0)}
        return
    logging.getLogger("ray").setLevel(logging.WARNING)
    temp = None if address else tempfile.mkdtemp(prefix="tritonab-ray-")
    try:
        if address:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
        else:
            ray.init(
                num_cpus=len(os.sched_getaffinity(0)),
                include_dashboard=False,
                object_store_memory=_OBJECT_STORE_BYTES,
                log_to_driver=False,
                logging_level=logging.WARNING,
                _temp_dir=temp,
            )
    except Exception as exc:  # Ray's start-up errors are of many untyped kinds
        if temp:
            shutil.rmtree(temp, ignore_errors=True)
        raise BulkError(f"cannot start Ray{f' at `{address}`' if address else ''}: {exc}") from exc
    try:
        yield {"ray": address or "in-process", "cpus": ray.cluster_resources().get("CPU", 0)}
    finally:
        ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


def _bulk_cause(exc: BaseException) -> BulkError | None:
    """The BulkError a Ray task raised, through Ray's wrappers (a `RayTaskError` carries
    the task's own exception as `cause`; its own text is the remote traceback)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        nested = getattr(seen, "cause", None)
        if isinstance(nested, BaseException):
            seen = nested
            continue
        if isinstance(seen, BulkError):
            return seen
        seen = seen.__cause__
    return None


@dataclass
class RayEngine:
    """Ray Data.

    Args:
        address: a cluster to join (`ray://host:10001` or `host:6379`); None starts Ray
            in this process.
        concurrency: scoring actors; default: the cluster's CPUs less one for reading
            (at least 1).
    """

    address: str | None = None
    concurrency: int | None = None
    name: EngineName = "ray"

    def __post_init__(self) -> None:
        self._session: dict[str, Any] = {}

    def stream(
        self, job: Job, inputs: InputSet, pending: Sequence[Fragment], columns: Sequence[str]
    ) -> Iterator[pa.Table]:
        ray = _ray()
        from ray.data import DataContext

        with ray_session(self.address) as session:
            self._session = dict(session)
            context = DataContext.get_current()
            context.execution_options.preserve_order = True
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            # The actor's own BulkError (naming the part and rows), not "UDF failed".
            context.raise_original_map_exception = True
            logging.getLogger("ray.data").setLevel(logging.WARNING)
            cpus = float(session.get("cpus") or 0)
            actors = self.concurrency or max(1, int(cpus) - 1)
            self._session["actors"] = actors
            dataset = ray.data.read_datasource(
                _datasource(inputs, pending, columns, job.batch_size),
                num_cpus=_READ_CPUS,
            )
            scored = dataset.map_batches(
                RayScorer,
                fn_constructor_kwargs={"job": job},
                batch_size=None,
                batch_format="pyarrow",
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=actor_cpus(cpus, actors),
            )
            try:
                yield from scored.iter_batches(batch_size=None, batch_format="pyarrow", prefetch_batches=2)
            except Exception as exc:  # the boundary to Ray: its errors wrap the task's own
                cause = _bulk_cause(exc)
                if cause is exc:
                    raise
                if cause is not None:  # Ray appends lines of advice on retries to its text
                    raise BulkError(str(cause).split("\n", 1)[0]) from exc
                raise BulkError(f"the ray engine failed: {exc}") from exc

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, **self._session}
