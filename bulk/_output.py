"""The output folder: one Parquet part per input fragment, and `_manifest.json`.

Every part has the same columns, in this order: `_row` (the row's global index in
the input), the kept columns, one column per model output (a scalar column for dims
`[1]`, fixed-size lists for more, nested for more than one dim), `variant` (offline
experiments), then `_model`, `_version`, `_sha256`.

A part is written by `write_part` (the one place output data is written) under a
temporary name, fsynced, and renamed: a part that exists is complete. Its Parquet
footer carries the key of what produced it (model identity, input fragment, options),
so a rerun skips a part whose key matches and refuses one whose key does not. Row
groups hold exactly `row_group_rows` rows whatever the batches that arrive, so the
bytes of a part depend only on its content: the same input and model give
byte-identical parts on every run and every engine.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from tritonab._io import atomic_file
from tritonab.bulk._input import ROW
from tritonab.ensembles.config import TensorSpec, to_numpy_dtype
from tritonab.errors import BulkError

MODEL, VERSION, SHA256, VARIANT = "_model", "_version", "_sha256", "variant"
MANIFEST = "_manifest.json"
LOCK = ".tritonab-score.lock"
PART = re.compile(r"^part-(\d{5,})\.parquet$")
_STALE = re.compile(r"^\.part-\d{5,}\.parquet\..*\.tmp$")
_KEY = b"tritonab.bulk"


def part_name(index: int) -> str:
    """`part-00003.parquet` for the fragment of index 3."""
    return f"part-{index:05d}.parquet"


@dataclass(frozen=True)
class Layout:
    """The columns of every part."""

    keep: tuple[pa.Field, ...]
    outputs: tuple[TensorSpec, ...]
    variant: bool

    @property
    def schema(self) -> pa.Schema:
        fields = [pa.field(ROW, pa.int64(), nullable=False), *self.keep]
        fields += [pa.field(t.name, _arrow_type(t)) for t in self.outputs]
        if self.variant:
            fields.append(pa.field(VARIANT, pa.string()))
        fields += [pa.field(MODEL, pa.string()), pa.field(VERSION, pa.int64()), pa.field(SHA256, pa.string())]
        return pa.schema(fields)


def make_layout(keep: Sequence[pa.Field], outputs: Sequence[TensorSpec], variant: bool) -> Layout:
    """The layout, refusing columns whose names clash.

    Raises:
        BulkError: a kept column or an output named like another column.
    """
    layout = Layout(tuple(keep), tuple(outputs), variant)
    names = layout.schema.names
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise BulkError(f"output columns would clash: {clashes} (rename the kept columns)")
    return layout


def _arrow_type(tensor: TensorSpec) -> pa.DataType:
    dtype = to_numpy_dtype(tensor.data_type)
    kind = pa.binary() if dtype == np.dtype(np.object_) else pa.from_numpy_dtype(dtype)
    dims = tensor.dims if tensor.dims not in ((), (1,)) else ()
    for size in reversed(dims):
        kind = pa.list_(kind, size) if size > 0 else pa.list_(kind)
    return kind


def _output_array(value: NDArray[Any], tensor: TensorSpec) -> pa.Array:
    """`[rows, *dims]` as a scalar column (dims [1]) or (nested) lists."""
    rows = value.shape[0]
    if tensor.dims in ((), (1,)):
        flat = value.reshape(rows)
        return pa.array(flat.tolist() if flat.dtype == object else flat, type=_arrow_type(tensor))
    array: pa.Array = pa.array(
        value.ravel().tolist() if value.dtype == object else value.ravel(),
        type=_arrow_type(TensorSpec(tensor.name, tensor.data_type, ())),
    )
    for size in reversed(value.shape[1:]):
        array = pa.FixedSizeListArray.from_arrays(array, int(size))
    return array.cast(_arrow_type(tensor)) if array.type != _arrow_type(tensor) else array


@dataclass(frozen=True)
class Identity:
    """The `_model`, `_version`, `_sha256` (and `variant`) values, one entry per target."""

    variants: tuple[str, ...]
    models: tuple[str, ...]
    versions: tuple[int, ...]
    digests: tuple[str, ...]


def output_table(
    layout: Layout,
    batch: pa.RecordBatch,
    outputs: dict[str, NDArray[Any]],
    identity: Identity,
    target: NDArray[np.integer[Any]],
) -> pa.Table:
    """One scored batch as a table of the layout's schema.

    Args:
        layout: the part columns.
        batch: the input batch (`_row` and the kept columns are taken from it).
        outputs: the model outputs, `[rows, *dims]` each.
        identity: per-target identity values.
        target: per row, the index of the target (variant) that scored it.
    """
    take = pa.array(target)
    columns: list[pa.Array] = [batch.column(ROW), *(batch.column(f.name) for f in layout.keep)]
    columns += [_output_array(outputs[t.name], t) for t in layout.outputs]
    if layout.variant:
        columns.append(pa.array(identity.variants, pa.string()).take(take))
    columns += [
        pa.array(identity.models, pa.string()).take(take),
        pa.array(identity.versions, pa.int64()).take(take),
        pa.array(identity.digests, pa.string()).take(take),
    ]
    return pa.Table.from_arrays(columns, schema=layout.schema)


def write_part(
    path: Path,
    tables: Iterable[pa.Table],
    schema: pa.Schema,
    key: dict[str, Any],
    row_group_rows: int,
    *,
    rows: int,
) -> None:
    """Write one part atomically from scored tables in row order.

    Row groups are cut at exactly `row_group_rows` rows. The footer carries `key`.
    On any failure nothing is left at `path` (nor its temporary file).

    Raises:
        BulkError: the tables held other than `rows` rows (the part is not written).
    """
    schema = schema.with_metadata({_KEY: json.dumps(key, sort_keys=True).encode()})
    # Dictionary encoding only where values repeat by construction: hashing every float
    # and row index into a dictionary it then drops costs more than the rest of the write.
    repeated = [n for n in (VARIANT, MODEL, VERSION, SHA256) if n in schema.names]
    got = 0
    with (
        atomic_file(path) as handle,
        pq.ParquetWriter(handle, schema, compression="zstd", use_dictionary=repeated) as writer,
    ):
        pending: list[pa.Table] = []
        held = 0
        for table in tables:
            pending.append(table)
            held += table.num_rows
            got += table.num_rows
            if held >= row_group_rows:
                held = _flush(writer, pending, row_group_rows, final=False)
        if got != rows:
            raise BulkError(f"part `{path.name}` got {got} scored rows for its {rows} input rows")
        _flush(writer, pending, row_group_rows, final=True)


def _flush(writer: pq.ParquetWriter, pending: list[pa.Table], size: int, *, final: bool) -> int:
    """Write whole row groups of `size` rows from `pending` (the rest too when `final`);
    keeps what is left in `pending` and returns its row count."""
    if not pending:
        return 0
    table = pa.concat_tables(pending) if len(pending) > 1 else pending[0]
    start = 0
    while table.num_rows - start >= size or (final and start < table.num_rows):
        writer.write_table(table.slice(start, size), row_group_size=size)
        start += size
    pending.clear()
    if start < table.num_rows:
        pending.append(table.slice(start))
    return max(0, int(table.num_rows) - start)


def part_key(path: Path) -> dict[str, Any] | None:
    """The key in a part's footer, or None when the part has none (not ours).

    Raises:
        BulkError: the file is not readable Parquet.
    """
    try:
        metadata = pq.read_metadata(path).metadata or {}
    except (pa.ArrowException, OSError) as exc:
        raise BulkError(f"`{path}` is not a readable Parquet part: {exc}") from exc
    raw = metadata.get(_KEY)
    try:
        value = json.loads(raw) if raw else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def existing_parts(folder: Path) -> dict[int, Path]:
    """The parts in an output folder, by index."""
    found = {}
    for child in folder.iterdir():
        match = PART.match(child.name)
        if match and child.is_file():
            found[int(match.group(1))] = child
    return found


def remove_stale(folder: Path) -> int:
    """Remove temporary part files a killed run left (`.part-N.parquet.*.tmp`)."""
    removed = 0
    for child in folder.iterdir():
        if _STALE.match(child.name) and child.is_file():
            child.unlink()
            removed += 1
    return removed


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(8 << 20):
            digest.update(chunk)
    return digest.hexdigest()
