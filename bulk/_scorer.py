"""One scoring job, and the batch scorer every engine runs.

A `Job` is plain data (pinned models with their artifact bytes, the experiment spec,
column bindings, the output layout): the local engine scores with it in-process, the
Ray engine ships it to each actor, the Triton engine scores with runners that call a
server. `BatchScorer` turns one input batch (led by `_row`) into one output table: it
reads the model inputs from the columns, assigns each row its variant with the
router's hash contract (`splitter.assign`) when there is an experiment, runs each
target on its rows, and scatters the outputs back into row order.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import NDArray

from tritonab.bulk._columns import InputBinding, tensors, unit_ids
from tritonab.bulk._model import PinnedModel, Runner
from tritonab.bulk._output import Identity, Layout, output_table
from tritonab.ensembles.config import to_numpy_dtype
from tritonab.errors import BulkError
from tritonab.splitter.spec import Experiment


@dataclass(frozen=True)
class Job:
    """What scoring a batch needs.

    Attributes:
        targets: the model, or one pinned model per experiment variant (spec order).
        experiment: the offline experiment, or None.
        unit_column: the column of unit ids (with an experiment).
        bindings: where each model input comes from (every target shares the signature).
        layout: the output columns.
        batch_size: rows per batch (and per row group of a part).
        part_starts, part_labels: the first global row of each input fragment, and how
            messages name its part, so a failure names its part and rows.
    """

    targets: tuple[PinnedModel, ...]
    experiment: Experiment | None
    unit_column: str | None
    bindings: tuple[InputBinding, ...]
    layout: Layout
    batch_size: int
    part_starts: tuple[int, ...]
    part_labels: tuple[str, ...]

    @property
    def identity(self) -> Identity:
        variants = tuple(v.name for v in self.experiment.variants) if self.experiment else ("",)
        return Identity(
            variants,
            tuple(t.name for t in self.targets),
            tuple(t.version for t in self.targets),
            tuple(t.sha256 for t in self.targets),
        )

    def where(self, first_row: int, last_row: int) -> str:
        """``part `part-00003.parquet` (input `b.parquet`), rows 120..183`` for messages."""
        index = max(0, bisect.bisect_right(self.part_starts, first_row) - 1)
        return f"{self.part_labels[index]}, rows {first_row}..{last_row}"


class BatchScorer:
    """Scores batches of a job with one runner per target.

    Args:
        job: the job.
        runners: `job.targets[i]`'s runner at index i.
    """

    def __init__(self, job: Job, runners: Sequence[Runner]) -> None:
        self.job = job
        self.runners = list(runners)
        self.identity = job.identity
        self.allocation = job.experiment.allocation() if job.experiment else None
        self.salt = job.experiment.effective_salt if job.experiment else ""
        self.empty = {
            t.name: (to_numpy_dtype(t.data_type), tuple(max(d, 0) for d in t.dims))
            for t in job.layout.outputs
        }

    def __call__(self, batch: pa.RecordBatch) -> pa.Table:
        """Score one batch (first column `_row`).

        Raises:
            BulkError: bad column values or a failing model, naming the part and rows.
        """
        rows = batch.column(0)
        first, last = int(rows[0].as_py()), int(rows[len(rows) - 1].as_py())
        try:
            inputs = tensors(batch, self.job.bindings)
            target = self._assign(batch)
            outputs = self._run(inputs, target)
            return output_table(self.job.layout, batch, outputs, self.identity, target)
        except BulkError as exc:
            raise BulkError(f"{self.job.where(first, last)}: {exc}") from exc

    def _assign(self, batch: pa.RecordBatch) -> NDArray[np.integer[Any]]:
        if self.allocation is None:
            return np.zeros(batch.num_rows, dtype=np.int16)
        column = self.job.unit_column
        assert column is not None
        units = unit_ids(batch.column(column), column, batch.column(0))
        return self.allocation.assign(self.salt, units)

    def _run(
        self, inputs: dict[str, NDArray[Any]], target: NDArray[np.integer[Any]]
    ) -> dict[str, NDArray[Any]]:
        if len(self.runners) == 1:
            return self.runners[0].run(inputs)
        rows = len(target)
        outputs: dict[str, NDArray[Any]] = {}
        for index in np.unique(target).tolist():
            chosen = np.flatnonzero(target == index)
            part = self.runners[index].run({k: v[chosen] for k, v in inputs.items()})
            for name, (dtype, dims) in self.empty.items():
                if name not in outputs:
                    outputs[name] = np.zeros((rows, *dims), dtype=dtype)
                outputs[name][chosen] = part[name].reshape((len(chosen), *dims))
        return outputs
