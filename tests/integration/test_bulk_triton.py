"""Bulk scoring against the session tritonserver: the triton engine writes the local
engine's parts byte for byte, offline assignment equals the live router's row by row, a
model only the server runs is scored there, and a failing model names its part and rows.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tritonab.bulk import score
from tritonab.client import ExperimentClient
from tritonab.errors import BulkError

pytestmark = pytest.mark.integration


def _write_input(folder: Path, x: np.ndarray) -> Path:
    """The rows in two files (`a.parquet`: 300 rows, `b.parquet`: the rest), with a list
    column `input` and a unit column `user`."""
    folder.mkdir()
    for name, rows in (("a", range(0, 300)), ("b", range(300, len(x)))):
        chunk = x[rows.start : rows.stop]
        table = pa.table(
            {
                "user": [f"user-{i}" for i in rows],
                "input": pa.FixedSizeListArray.from_arrays(pa.array(chunk.ravel()), chunk.shape[1]),
            }
        )
        pq.write_table(table, folder / f"{name}.parquet")
    return folder


@pytest.fixture
def table(tmp_path, features) -> Path:
    return _write_input(tmp_path / "input", features)


@pytest.mark.parametrize(("model", "protocol"), [("demo_gbt", "grpc"), ("demo_logreg_pipeline", "http")])
def test_the_triton_engine_writes_the_local_engines_parts(
    server, repository, table, tmp_path, model, protocol
):
    url = server.urls.grpc if protocol == "grpc" else server.urls.http
    local = score(repository, model, input=table, output=tmp_path / "local")
    remote = score(
        repository,
        model,
        input=table,
        output=tmp_path / "remote",
        engine="triton",
        url=url,
        protocol=protocol,
    )
    assert remote.rows_scored == 569 and remote.parts_written == 2
    for ours, theirs in zip(local.parts, remote.parts):
        assert (local.output / ours.file).read_bytes() == (remote.output / theirs.file).read_bytes()
    again = score(repository, model, input=table, output=tmp_path / "remote", engine="triton", url=url)
    assert (again.rows_scored, again.parts_skipped) == (0, 2)


def test_offline_assignment_equals_the_live_routers_row_by_row(server, repository, table, features, tmp_path):
    """`ab_rows` reads one unit per row (`unit_input`): the server's own assignment."""
    result = score(repository, experiment="ab_rows", unit_column="user", input=table, output=tmp_path / "o")
    offline = pa.concat_tables([pq.read_table(result.output / p.file) for p in result.parts])
    variants, labels = [], []
    with ExperimentClient(server.urls.grpc, "grpc") as client:
        for start in range(0, len(features), 64):
            units = np.array([f"user-{i}".encode() for i in range(start, min(start + 64, len(features)))])
            routed = client.infer(
                "ab_rows",
                {"input": features[start : start + 64], "unit": units.astype(object).reshape(-1, 1)},
            )
            variants += routed.variants
            labels += routed.outputs["label"].ravel().tolist()
    assert offline.column("variant").to_pylist() == variants
    assert len(set(variants)) == 2
    assert offline.column("label").to_pylist() == labels


def test_a_model_only_the_server_runs_is_scored_there(server, repository, loaded, tmp_path):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((100, 4)).astype(np.float32)
    pq.write_table(
        pa.table({"INPUT0": pa.FixedSizeListArray.from_arrays(pa.array(x.ravel()), 4)}),
        tmp_path / "e.parquet",
    )
    with pytest.raises(BulkError, match=r"`identity` is Python-backend code of its own.*--engine triton"):
        score(repository, "identity", input=tmp_path / "e.parquet", output=tmp_path / "offline")
    with loaded("identity"):
        result = score(
            repository,
            "identity",
            input=tmp_path / "e.parquet",
            output=tmp_path / "o",
            engine="triton",
            url=server.urls.grpc,
            batch_size=32,
        )
    out = pq.read_table(result.output / result.parts[0].file)
    echoed = out.column("OUTPUT0").combine_chunks().flatten().to_numpy().reshape(-1, 4)
    assert np.array_equal(echoed, x)
    code = (repository / "identity" / "1" / "model.py").read_bytes()
    assert set(out.column("_sha256").to_pylist()) == {hashlib.sha256(code).hexdigest()}
    assert out.column("_row").to_pylist() == list(range(100))


def test_a_failing_model_names_its_part_and_rows_and_is_not_retried(server, repository, table, tmp_path):
    url = server.urls.grpc
    with pytest.raises(BulkError) as err:
        score(repository, "always_fails", input=table, output=tmp_path / "o", engine="triton", url=url)
    message = str(err.value)
    assert message.startswith("part `part-00000.parquet` (input `a.parquet`), rows 0..299: ")
    assert f"model `always_fails` version 1 on `{url}` failed: " in message
    assert "model exploded" in message and "attempts" not in message  # a model's error is final
    assert not list((tmp_path / "o").glob("*.parquet"))
