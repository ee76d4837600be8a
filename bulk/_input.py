"""The input table: one Parquet or CSV file, or a folder of them, read as a pyarrow dataset.

Each file is a fragment; fragments are ordered by their path relative to the input, so
a row's global index (`_row`) is the same on every run and on every engine. Each
fragment carries its row count, its first row and the sha256 of its bytes, which
identify the input of the output part it becomes. Batches are streamed: a scan holds a
few batches of `batch_size` rows (a Parquet row group at most), never the file.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from tritonab.errors import BulkError

Format = Literal["parquet", "csv"]
FORMATS: tuple[Format, ...] = ("parquet", "csv")
ROW = "_row"

_SUFFIXES: dict[str, Format] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".parq": "parquet",
    ".csv": "csv",
}
_HASH_CHUNK = 8 << 20
_PARQUET_BUFFER = 1 << 20  # bytes read at a time from a column chunk
_CSV_BLOCK = 1 << 20  # bytes of CSV parsed at a time


@dataclass(frozen=True)
class Fragment:
    """One input file.

    Attributes:
        index: its position in the input (the output part's number).
        path: where pyarrow opens it.
        name: its path relative to the input (`.` for a single file's own name).
        rows, first_row: its row count and the global index of its first row.
        size, sha256: its size in bytes and the sha256 of those bytes.
    """

    index: int
    path: str
    name: str
    rows: int
    first_row: int
    size: int
    sha256: str

    def describe(self) -> dict[str, Any]:
        """JSON form for the output manifest."""
        return {
            "name": self.name,
            "rows": self.rows,
            "first_row": self.first_row,
            "bytes": self.size,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class InputSet:
    """The input: its format, the schema every fragment is read with, the fragments."""

    root: str
    format: Format
    schema: pa.Schema
    fragments: tuple[Fragment, ...]

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.fragments)

    @property
    def fingerprint(self) -> str:
        """sha256 over each fragment's relative path, size and sha256: the same files
        (wherever the folder lies) give the same fingerprint."""
        lines = "".join(f"{f.name}\t{f.size}\t{f.sha256}\n" for f in self.fragments)
        return hashlib.sha256(lines.encode()).hexdigest()

    def describe(self) -> dict[str, Any]:
        """JSON form for the output manifest."""
        return {
            "path": self.root,
            "format": self.format,
            "rows": self.rows,
            "sha256": self.fingerprint,
            "fragments": [f.describe() for f in self.fragments],
        }


def open_input(path: str | os.PathLike[str], format: Format | None = None) -> InputSet:
    """Open a file or folder of Parquet or CSV files: list, count and fingerprint them.

    Args:
        path: a file, or a folder (searched recursively; names starting with `.` or `_`
            are skipped, as pyarrow does).
        format: `parquet` or `csv`; from the file suffixes when omitted.

    Raises:
        BulkError: no such path, no data files, mixed or unknown formats, an unreadable
            file.
    """
    root = Path(path)
    files = _data_files(root)
    fmt = format or _detect_format(root, files)
    if fmt not in FORMATS:
        raise BulkError(f"input format `{fmt}` is not one of {list(FORMATS)}")
    try:
        dataset = ds.dataset([str(f) for f in files], format=fmt)
        schema = dataset.schema
    except (pa.ArrowException, OSError) as exc:
        raise BulkError(f"input `{root}`: cannot read it as {fmt}: {exc}") from exc
    with ThreadPoolExecutor(max_workers=min(8, len(files))) as pool:
        counts = list(pool.map(lambda f: _count_rows(f, fmt, schema), files))
        digests = list(pool.map(_file_sha256, files))
    fragments = []
    first = 0
    for index, (file, rows, (size, digest)) in enumerate(zip(files, counts, digests)):
        name = file.name if file == root else file.relative_to(root).as_posix()
        fragments.append(Fragment(index, str(file), name, rows, first, size, digest))
        first += rows
    return InputSet(str(root), fmt, schema, tuple(fragments))


def _data_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise BulkError(f"input `{root}` does not exist")
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        found += [Path(dirpath) / n for n in filenames if not n.startswith((".", "_"))]
    if not found:
        raise BulkError(f"input folder `{root}` holds no data files")
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _detect_format(root: Path, files: Sequence[Path]) -> Format:
    kinds = {f: _SUFFIXES.get(f.suffix.lower()) for f in files}
    unknown = sorted(str(f) for f, k in kinds.items() if k is None)
    if unknown:
        raise BulkError(
            f"input `{root}`: cannot tell the format of {unknown[:3]} (suffixes "
            f"{sorted(_SUFFIXES)}); pass the format (`--format parquet|csv`)"
        )
    found = sorted({k for k in kinds.values() if k is not None})
    if len(found) > 1:
        raise BulkError(f"input `{root}` mixes formats {found}: score each format apart")
    return found[0]


def _count_rows(path: Path, fmt: Format, schema: pa.Schema) -> int:
    try:
        if fmt == "parquet":
            return int(pq.ParquetFile(path).metadata.num_rows)
        return sum(b.num_rows for b in _csv_batches(str(path), schema, schema.names[:1]))
    except (pa.ArrowException, OSError) as exc:
        raise BulkError(f"input file `{path}`: cannot read it as {fmt}: {exc}") from exc


def _csv_batches(path: str, schema: pa.Schema, columns: Sequence[str]) -> Iterator[pa.RecordBatch]:
    """A CSV file streamed in blocks, every column typed as `schema` says (the types the
    first file gave), so every file reads alike."""
    reader = pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=_CSV_BLOCK, use_threads=False),
        convert_options=pacsv.ConvertOptions(
            column_types={f.name: f.type for f in schema}, include_columns=list(columns)
        ),
    )
    yield from reader


def _file_sha256(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise BulkError(f"input file `{path}`: cannot read: {exc.strerror}") from exc
    return size, digest.hexdigest()


def read_batches(
    fragment: Fragment, fmt: Format, schema: pa.Schema, columns: Sequence[str], batch_size: int
) -> Iterator[pa.RecordBatch]:
    """The fragment's rows in batches of at most `batch_size`, each led by `_row` (int64,
    the global row index) and then `columns`, typed as in `schema`.

    Parquet is read page by page through a small buffer (not a row group at a time), CSV
    block by block: memory follows the batch size, not the file's layout.

    Raises:
        BulkError: the file cannot be read or parsed, naming it.
    """
    target = pa.schema([schema.field(c) for c in columns])
    first = fragment.first_row
    try:
        if fmt == "parquet":
            source = pq.ParquetFile(fragment.path, pre_buffer=False, buffer_size=_PARQUET_BUFFER)
            batches = source.iter_batches(batch_size=batch_size, columns=list(columns), use_threads=False)
        else:
            batches = _csv_batches(fragment.path, schema, columns)
        for whole in batches:
            for start in range(0, whole.num_rows, batch_size):
                batch = whole.slice(start, batch_size)
                if not batch.schema.equals(target):
                    batch = batch.select(list(columns)).cast(target)
                rows = pa.array(np.arange(first, first + batch.num_rows, dtype=np.int64))
                first += batch.num_rows
                yield pa.RecordBatch.from_arrays([rows, *batch.columns], names=[ROW, *target.names])
    except (pa.ArrowException, OSError) as exc:
        raise BulkError(f"input file `{fragment.name}`: {exc}") from exc
    if first != fragment.first_row + fragment.rows:
        raise BulkError(
            f"input file `{fragment.name}` changed while it was read: "
            f"{first - fragment.first_row} rows, {fragment.rows} counted"
        )
