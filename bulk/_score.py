"""`score`: plan, resume, score with an engine, write parts, write the manifest."""

from __future__ import annotations

import bisect
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tritonab._io import atomic_write_text, exclusive_lock
from tritonab._transport import Endpoint, WireProtocol
from tritonab._version import __version__
from tritonab.bulk._engines import ENGINES, Engine, EngineName, LocalEngine
from tritonab.bulk._input import ROW, Format, Fragment, InputSet, open_input
from tritonab.bulk._model import PinnedModel
from tritonab.bulk._output import LOCK, MANIFEST, file_sha256, part_name, remove_stale, write_part
from tritonab.bulk._plan import (
    Features,
    digest,
    fragment_key,
    job_identity,
    load_experiment,
    make_job,
    pin_targets,
    plan_resume,
    repository_models,
)
from tritonab.bulk._progress import RowProgress
from tritonab.bulk._scorer import Job
from tritonab.errors import BulkError
from tritonab.splitter.spec import Experiment

DEFAULT_BATCH_SIZE = 65_536
MANIFEST_FORMAT = 1
# Manifest fields that describe the last run rather than the folder's content.
_RUN_FIELDS = ("created", "engine", "run")


@dataclass(frozen=True)
class PartResult:
    """One output part: its file, the input it scores, and whether this run wrote it."""

    file: str
    input: str
    rows: int
    first_row: int
    sha256: str
    written: bool

    def describe(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "input": self.input,
            "rows": self.rows,
            "first_row": self.first_row,
            "sha256": self.sha256,
            "written_by_last_run": self.written,
        }


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run did.

    Attributes:
        output, manifest: the output folder and its `_manifest.json`.
        engine: the engine's name.
        models: the pinned model, or one per experiment variant.
        rows: rows in the input (and in the parts).
        rows_scored: rows this run scored (the rest were in finished parts).
        parts: every part, in input order.
        seconds: the whole run; scoring_seconds: reading, scoring and writing the parts.
    """

    output: Path
    manifest: Path
    engine: EngineName
    models: tuple[PinnedModel, ...]
    rows: int
    rows_scored: int
    parts: tuple[PartResult, ...]
    seconds: float
    scoring_seconds: float

    @property
    def parts_written(self) -> int:
        return sum(p.written for p in self.parts)

    @property
    def parts_skipped(self) -> int:
        return len(self.parts) - self.parts_written

    @property
    def rows_per_second(self) -> float:
        """Rows scored per second of scoring (0 when nothing was scored)."""
        return self.rows_scored / self.scoring_seconds if self.scoring_seconds > 0 else 0.0


def score(
    repository: str | os.PathLike[str],
    model: str | None = None,
    *,
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    version: int = -1,
    engine: EngineName | Engine = "local",
    features: Features | None = None,
    keep: Sequence[str] = (),
    experiment: str | os.PathLike[str] | Experiment | None = None,
    unit_column: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    input_format: Format | None = None,
    url: str | None = None,
    protocol: WireProtocol = "grpc",
    ray_address: str | None = None,
    concurrency: int | None = None,
    workers: int | None = None,
    retries: int = 4,
    overwrite: bool = False,
    progress: bool = False,
) -> ScoreResult:
    """Score a Parquet or CSV table with a pinned model version (or an offline experiment)
    into Parquet parts, resumably.

    Args:
        repository: the model repository.
        model: the model to score with (not with `experiment`).
        input: a Parquet/CSV file or a folder of them; each file becomes one part.
        output: the output folder (created; parts of an earlier run of the same job are
            kept and skipped).
        version: the model version; -1 for the highest its version policy serves.
        engine: `local` (in-process onnxruntime), `ray` (Ray Data) or `triton` (a live
            server at `url`, which also scores models only a server runs: custom
            Python code, TensorRT plans), or an engine object.
        features: scalar columns filling the model's input, in order (a list for a
            one-input model, or input name -> columns); otherwise each input reads the
            list column of its own name.
        keep: input columns copied into the output.
        experiment: an experiment spec (file, `Experiment`, or the name of a router in
            the repository): each row is scored by the variant the router would give its
            unit, and the output gets a `variant` column.
        unit_column: the unit id column (with `experiment`).
        batch_size: rows per batch (memory is bounded by it) and per row group.
        input_format: `parquet` or `csv`; from the file suffixes when omitted.
        url, protocol: the server, for the `triton` engine.
        ray_address: a Ray cluster to join, for the `ray` engine.
        concurrency: Ray actors (default: the cluster's CPUs less one), or requests in
            flight to Triton (default 4).
        workers: batches the local engine scores at once (default: the CPUs this
            process may use); each model runs with the threads its config gives the
            ONNX runner, so outputs equal the server's.
        retries: retries with backoff of a failed request (`triton` engine).
        overwrite: replace parts written by another run instead of refusing.
        progress: show a progress bar with rows per second (stderr).

    Returns:
        A `ScoreResult`.

    Raises:
        BulkError: bad arguments, an unreadable input, columns that do not fit, a model
            that cannot run offline or whose artifact differs from its manifest, parts
            of another run in `output`, or a failing batch (naming its part and rows).
        SpecError: an invalid experiment spec.
    """
    started, clock = _now(), time.perf_counter()
    if (model is None) == (experiment is None):
        raise BulkError("name either a model or an experiment to score with")
    runner = _engine(engine, url, protocol, ray_address, concurrency, workers, retries)
    models = repository_models(repository)
    spec = load_experiment(experiment, models) if experiment is not None else None
    if spec is not None and version != -1:
        raise BulkError("`version` applies to a model; an experiment pins each variant's version")
    targets = pin_targets(models, model, version, spec, served=runner.name == "triton")
    inputs = open_input(input, input_format)
    job, columns = make_job(targets, spec, unit_column, inputs, features, keep, batch_size)
    job_digest = digest(job_identity(job, inputs.format))
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    message = f"another `tritonab score` is writing into `{folder}`"
    with exclusive_lock(folder / LOCK, BulkError, message):
        remove_stale(folder)
        plan = plan_resume(folder, inputs, job_digest, overwrite=overwrite)
        for path in plan.replaced:
            if path.name not in {part_name(f.index) for f in plan.pending}:
                path.unlink()
        scoring = time.perf_counter()
        written = _write_parts(runner, job, inputs, plan.pending, columns, folder, job_digest, progress)
        scoring_seconds = time.perf_counter() - scoring
        parts = tuple(_part_result(folder, f, f.index in written) for f in inputs.fragments)
        rows_scored = sum(f.rows for f in plan.pending)
        seconds = time.perf_counter() - clock
        manifest = {
            "format": MANIFEST_FORMAT,
            "tritonab": __version__,
            "created": started,
            "engine": runner.describe(),
            "job": job_digest,
            **_content(job.targets, spec, job.unit_column, inputs.describe(), job, parts),
            "run": {
                "parts_written": len(plan.pending),
                "parts_skipped": len(plan.done),
                "rows_scored": rows_scored,
                "seconds": round(seconds, 3),
                "scoring_seconds": round(scoring_seconds, 3),
                "rows_per_second": round(rows_scored / scoring_seconds, 1) if scoring_seconds > 0 else 0.0,
            },
        }
        _write_manifest(folder / MANIFEST, manifest, rewrite=bool(plan.pending))
    return ScoreResult(
        folder,
        folder / MANIFEST,
        runner.name,
        targets,
        inputs.rows,
        rows_scored,
        parts,
        seconds,
        scoring_seconds,
    )


def _engine(
    engine: EngineName | Engine,
    url: str | None,
    protocol: WireProtocol,
    ray_address: str | None,
    concurrency: int | None,
    workers: int | None,
    retries: int,
) -> Engine:
    if not isinstance(engine, str):
        return engine
    if engine not in ENGINES:
        raise BulkError(f"engine `{engine}` is not one of {list(ENGINES)}")
    if url is not None and engine != "triton":
        raise BulkError("a server URL is for the `triton` engine")
    if ray_address is not None and engine != "ray":
        raise BulkError("a Ray address is for the `ray` engine")
    if engine == "local":
        return LocalEngine(workers=workers)
    if engine == "ray":
        from tritonab.bulk._ray import RayEngine

        return RayEngine(ray_address, concurrency)
    if url is None:
        raise BulkError("the `triton` engine needs the server's URL (`--url host:port`)")
    from tritonab.bulk._remote import RetryPolicy, TritonEngine

    return TritonEngine(Endpoint(url, protocol), concurrency or 4, RetryPolicy(retries=max(0, retries)))


def _pieces(stream: Iterator[pa.Table], starts: Sequence[int]) -> Iterator[tuple[int, pa.Table]]:
    """(fragment index, table) pieces of a row-ordered stream, cut at fragment starts."""
    for table in stream:
        if table.num_rows == 0:
            continue
        rows = table.column(ROW).to_numpy()
        start = 0
        while start < table.num_rows:
            index = bisect.bisect_right(starts, int(rows[start])) - 1
            end = table.num_rows
            if index + 1 < len(starts):
                end = int(np.searchsorted(rows, starts[index + 1], side="left"))
            yield index, table.slice(start, end - start)
            start = end


class _Parts:
    """Hands out the pieces of each part in turn. A part ends when its rows are all there,
    without reading ahead: a failure in the next part cannot abort one already complete."""

    def __init__(self, pieces: Iterator[tuple[int, pa.Table]]) -> None:
        self.pieces = pieces
        self.held: tuple[int, pa.Table] | None = None

    def tables_of(self, fragment: Fragment) -> Iterator[pa.Table]:
        rows = 0
        while rows < fragment.rows:
            piece, self.held = self.held or next(self.pieces, None), None
            if piece is None:
                return
            if piece[0] != fragment.index:  # the engine skipped rows: the count check says so
                self.held = piece
                return
            rows += piece[1].num_rows
            yield piece[1]


def _write_parts(
    engine: Engine,
    job: Job,
    inputs: InputSet,
    pending: Sequence[Fragment],
    columns: Sequence[str],
    folder: Path,
    job_digest: str,
    progress: bool,
) -> set[int]:
    """Score the pending fragments and write their parts in order; returns their indexes."""
    written: set[int] = set()
    if not pending:
        return written
    starts = [f.first_row for f in inputs.fragments]
    with RowProgress(sum(f.rows for f in pending), enabled=progress) as bar:
        stream = bar.counted(engine.stream(job, inputs, pending, columns))
        try:
            parts = _Parts(_pieces(stream, starts))
            for fragment in pending:
                path = folder / part_name(fragment.index)
                key = fragment_key(job_digest, fragment)
                tables = parts.tables_of(fragment)
                write_part(path, tables, job.layout.schema, key, job.batch_size, rows=fragment.rows)
                written.add(fragment.index)
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
    return written


def _part_result(folder: Path, fragment: Fragment, written: bool) -> PartResult:
    path = folder / part_name(fragment.index)
    return PartResult(path.name, fragment.name, fragment.rows, fragment.first_row, file_sha256(path), written)


def _content(
    targets: tuple[PinnedModel, ...],
    spec: Experiment | None,
    unit_column: str | None,
    input_description: dict[str, Any],
    job: Job,
    parts: tuple[PartResult, ...],
) -> dict[str, Any]:
    """The manifest fields that describe the folder's content."""
    experiment = None
    if spec is not None:
        experiment = {
            "name": spec.name,
            "salt": spec.effective_salt,
            "unit_column": unit_column,
            "variants": [
                {"name": v.name, "weight": v.weight, "model": t.identity()}
                for v, t in zip(spec.variants, targets)
            ],
        }
    return {
        "model": targets[0].identity() if spec is None else None,
        "experiment": experiment,
        "input": input_description,
        "options": {
            "inputs": [b.describe() for b in job.bindings],
            "keep": [f.name for f in job.layout.keep],
            "batch_size": job.batch_size,
        },
        "columns": job.layout.schema.names,
        "rows": sum(p.rows for p in parts),
        "parts": [p.describe() for p in parts],
    }


def _write_manifest(path: Path, manifest: dict[str, Any], *, rewrite: bool) -> None:
    """Write the manifest, unless nothing was written and it already says the same."""
    if not rewrite and path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and _same_content(old, manifest):
            return
    atomic_write_text(path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _same_content(old: dict[str, Any], new: dict[str, Any]) -> bool:
    def strip(m: dict[str, Any]) -> dict[str, Any]:
        parts = [{k: v for k, v in p.items() if k != "written_by_last_run"} for p in m.get("parts", [])]
        return {k: v for k, v in m.items() if k not in _RUN_FIELDS} | {"parts": parts}

    return strip(old) == strip(json.loads(json.dumps(new)))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
