"""Inputs for the bulk scorer: the demo's 30 features as Parquet, and references computed
with onnxruntime directly on the repository's model files."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[3]
REPOSITORY = ROOT / "model_repository"


@pytest.fixture(scope="session")
def features() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().data.astype(np.float32)


def feature_table(x: np.ndarray, first: int = 0) -> pa.Table:
    """`id` (int), `user` (string), `input` (fixed-size list of 30 floats)."""
    ids = np.arange(first, first + len(x))
    return pa.table(
        {
            "id": pa.array(ids),
            "user": pa.array([f"user-{i % 97}" for i in ids]),
            "input": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), x.shape[1]),
        }
    )


def write_parts(folder: Path, x: np.ndarray, cuts: Sequence[int], *, row_group_size: int = 64) -> Path:
    """`x` split at `cuts` into `part-a.parquet`, `part-b.parquet`, ... in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    edges = [0, *cuts, len(x)]
    for i in range(len(edges) - 1):
        table = feature_table(x[edges[i] : edges[i + 1]], edges[i])
        pq.write_table(table, folder / f"part-{chr(97 + i)}.parquet", row_group_size=row_group_size)
    return folder


@pytest.fixture
def input_folder(tmp_path: Path, features: np.ndarray) -> Path:
    """The 569 demo rows in three files of 200, 1 and 368 rows."""
    return write_parts(tmp_path / "input", features, [200, 201])


def run_onnx(model: str, x: np.ndarray) -> list[np.ndarray]:
    """onnxruntime run directly on `model_repository/<model>/1/model.onnx`, with one
    intra-op thread as the ONNX runner serves it (threads change a tree ensemble's float
    summation order, so its last bits)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    path = str(REPOSITORY / model / "1" / "model.onnx")
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """A copy of the demo repository that a test may change."""
    target = tmp_path / "repo"
    shutil.copytree(REPOSITORY, target)
    return target


def read_output(folder: Path) -> pa.Table:
    """Every part of an output folder, in part order."""
    parts = sorted(folder.glob("part-*.parquet"))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def stamps(folder: Path) -> dict[str, tuple[int, int]]:
    """(inode, mtime_ns) of each file in `folder`: a rewrite changes them."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def probabilities(table: pa.Table, column: str = "probabilities") -> np.ndarray:
    """A fixed-size list column as a 2-D array."""
    values = table.column(column).combine_chunks()
    return values.flatten().to_numpy().reshape(len(values), -1)


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers above, for the test modules (conftest is not importable by name)."""
    return SimpleNamespace(
        REPOSITORY=REPOSITORY,
        feature_table=feature_table,
        write_parts=write_parts,
        run_onnx=run_onnx,
        read_output=read_output,
        stamps=stamps,
        probabilities=probabilities,
    )
