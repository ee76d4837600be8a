"""The local engine end to end: outputs equal onnxruntime on the model file, in input order;
parts are atomic, keyed, skipped on a rerun, rewritten alone when deleted, and
byte-identical across runs."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tritonab._io import exclusive_lock
from tritonab.backends import load_transform
from tritonab.bulk import MANIFEST, score
from tritonab.errors import BulkError


def test_outputs_equal_onnxruntime_on_the_model_file_in_row_order(kit, input_folder, features, tmp_path):
    out = tmp_path / "out"
    result = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out, keep=["id"], batch_size=64)
    assert (result.rows, result.rows_scored, result.parts_written, result.parts_skipped) == (569, 569, 3, 0)
    assert sorted(p.name for p in out.iterdir()) == [
        ".tritonab-score.lock",
        MANIFEST,
        "part-00000.parquet",
        "part-00001.parquet",
        "part-00002.parquet",
    ]
    table = kit.read_output(out)
    assert table.column_names == ["_row", "id", "label", "probabilities", "_model", "_version", "_sha256"]
    np.testing.assert_array_equal(table.column("_row").to_numpy(), np.arange(569))
    np.testing.assert_array_equal(table.column("id").to_numpy(), np.arange(569))
    label, probabilities = kit.run_onnx("demo_gbt", features)
    np.testing.assert_array_equal(table.column("label").to_numpy(), label)
    np.testing.assert_array_equal(kit.probabilities(table), probabilities)
    manifest_sha = json.loads((kit.REPOSITORY / "demo_gbt" / "1" / "manifest.json").read_text())["artifact"]
    assert set(table.column("_model").to_pylist()) == {"demo_gbt"}
    assert set(table.column("_version").to_pylist()) == {1}
    assert set(table.column("_sha256").to_pylist()) == {manifest_sha["sha256"]}
    # one row group per 64 rows, whatever the input's row groups were
    assert [pq.ParquetFile(out / f"part-0000{i}.parquet").metadata.num_row_groups for i in range(3)] == [
        4,
        1,
        6,
    ]


def test_the_manifest_records_input_model_rows_and_timings(kit, input_folder, tmp_path):
    result = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=tmp_path / "out")
    manifest = json.loads(result.manifest.read_text())
    assert manifest["tritonab"] and manifest["format"] == 1
    assert manifest["model"]["name"] == "demo_gbt" and manifest["model"]["version"] == 1
    assert manifest["model"]["artifacts"][0]["verified"] is True
    assert manifest["model"]["sha256"] == result.models[0].sha256
    assert [f["rows"] for f in manifest["input"]["fragments"]] == [200, 1, 368]
    assert [f["name"] for f in manifest["input"]["fragments"]] == [
        "part-a.parquet",
        "part-b.parquet",
        "part-c.parquet",
    ]
    assert len(manifest["input"]["sha256"]) == 64
    assert manifest["rows"] == 569
    assert [p["first_row"] for p in manifest["parts"]] == [0, 200, 201]
    assert manifest["parts"][2]["sha256"] == result.parts[2].sha256
    assert manifest["run"]["rows_scored"] == 569 and manifest["run"]["seconds"] > 0
    assert manifest["engine"]["name"] == "local"


def test_a_second_run_rewrites_nothing(kit, input_folder, tmp_path):
    out = tmp_path / "out"
    score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    before = kit.stamps(out)
    again = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    assert (again.parts_written, again.parts_skipped, again.rows_scored) == (0, 3, 0)
    assert kit.stamps(out) == before


def test_deleting_one_part_rewrites_only_that_part(kit, input_folder, tmp_path):
    out = tmp_path / "out"
    first = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    before = kit.stamps(out)
    (out / "part-00002.parquet").unlink()
    again = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    after = kit.stamps(out)
    assert (again.parts_written, again.parts_skipped, again.rows_scored) == (1, 2, 368)
    assert [p.written for p in again.parts] == [False, False, True]
    for name in ("part-00000.parquet", "part-00001.parquet"):
        assert after[name] == before[name]
    assert after["part-00002.parquet"] != before["part-00002.parquet"]
    assert [p.sha256 for p in again.parts] == [p.sha256 for p in first.parts]


def test_the_same_input_and_version_give_byte_identical_parts(kit, input_folder, tmp_path):
    a = score(kit.REPOSITORY, "demo_logreg_pipeline", input=input_folder, output=tmp_path / "a", workers=1)
    b = score(kit.REPOSITORY, "demo_logreg_pipeline", input=input_folder, output=tmp_path / "b", workers=2)
    for x, y in zip(a.parts, b.parts):
        assert (tmp_path / "a" / x.file).read_bytes() == (tmp_path / "b" / y.file).read_bytes()


def test_an_ensemble_runs_its_transform_then_its_model(kit, input_folder, features, tmp_path):
    out = tmp_path / "out"
    score(kit.REPOSITORY, "demo_logreg_pipeline", input=input_folder, output=out, batch_size=100)
    table = kit.read_output(out)
    scaled = load_transform(kit.REPOSITORY / "demo_scaler" / "1" / "transform.json").apply(features)
    label, probabilities = kit.run_onnx("demo_logreg", scaled)
    np.testing.assert_array_equal(table.column("label").to_numpy(), label)
    np.testing.assert_array_equal(kit.probabilities(table), probabilities)
    assert set(table.column("_model").to_pylist()) == {"demo_logreg_pipeline"}


def test_a_modified_artifact_is_refused_and_nothing_is_written(kit, repo_copy, input_folder, tmp_path):
    model = repo_copy / "demo_gbt" / "1" / "model.onnx"
    model.write_bytes(model.read_bytes() + b"\0")
    out = tmp_path / "out"
    with pytest.raises(
        BulkError, match=r"demo_gbt` version 1 is not the version its manifest pins.*sha256"
    ) as err:
        score(repo_copy, "demo_gbt", input=input_folder, output=out)
    assert err.value.exit_code == 2
    assert not out.exists()


def test_a_modified_step_of_an_ensemble_is_refused(kit, repo_copy, input_folder, tmp_path):
    model = repo_copy / "demo_logreg" / "1" / "model.onnx"
    data = bytearray(model.read_bytes())
    data[-1] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(BulkError, match=r"`demo_logreg` version 1 is not the version its manifest pins"):
        score(repo_copy, "demo_logreg_pipeline", input=input_folder, output=tmp_path / "out")


def test_parts_of_another_run_are_refused_unless_overwritten(kit, input_folder, tmp_path):
    out = tmp_path / "out"
    score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    with pytest.raises(BulkError, match=r"part-00000.parquet` was written by another run.*--overwrite"):
        score(kit.REPOSITORY, "demo_logreg_pipeline", input=input_folder, output=out)
    with pytest.raises(BulkError, match="another run"):
        score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out, batch_size=100)
    replaced = score(kit.REPOSITORY, "demo_logreg_pipeline", input=input_folder, output=out, overwrite=True)
    assert replaced.parts_written == 3
    assert set(kit.read_output(out).column("_model").to_pylist()) == {"demo_logreg_pipeline"}


def test_extra_parts_from_a_bigger_input_are_refused(kit, input_folder, features, tmp_path):
    out = tmp_path / "out"
    score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    smaller = kit.write_parts(tmp_path / "small", features[:200], [])
    with pytest.raises(BulkError, match=r"holds parts \['part-00001.parquet', 'part-00002.parquet'\] beyond"):
        score(kit.REPOSITORY, "demo_gbt", input=smaller, output=out)


def test_a_failing_batch_names_its_part_and_rows_and_keeps_finished_parts(kit, features, tmp_path):
    folder = tmp_path / "input"
    folder.mkdir()
    schema = pa.schema([("id", pa.int64()), ("input", pa.list_(pa.float32()))])

    def write(name: str, first: int, last: int, nulls: tuple[int, ...] = ()) -> None:
        rows = [{"id": i, "input": None if i in nulls else features[i].tolist()} for i in range(first, last)]
        pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / name)

    write("part-a.parquet", 0, 200)
    write("part-b.parquet", 200, 400)
    write("part-c.parquet", 400, 569, nulls=(410, 420))
    out = tmp_path / "out"
    with pytest.raises(
        BulkError,
        match=r"part `part-00002.parquet` \(input `part-c.parquet`\), rows 400..463: .*null.*rows 410, 420",
    ):
        score(kit.REPOSITORY, "demo_gbt", input=folder, output=out, batch_size=64)
    assert sorted(p.name for p in out.glob("*part*")) == ["part-00000.parquet", "part-00001.parquet"]
    assert not (out / MANIFEST).exists()
    write("part-c.parquet", 400, 569)
    resumed = score(kit.REPOSITORY, "demo_gbt", input=folder, output=out, batch_size=64)
    assert [p.written for p in resumed.parts] == [False, False, True]


def test_a_killed_run_leaves_only_complete_parts_and_its_temporary_file_is_cleared(
    kit, input_folder, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".part-00001.parquet.abc123.tmp"
    stale.write_bytes(b"half a part")
    result = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)
    assert result.parts_written == 3
    assert not stale.exists()


def test_a_second_scorer_on_the_same_folder_is_refused(kit, input_folder, tmp_path):
    out = tmp_path / "out"
    with exclusive_lock(out / ".tritonab-score.lock", BulkError, "held"):
        with pytest.raises(BulkError, match="another `tritonab score` is writing into"):
            score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out)


def test_feature_columns_of_a_csv_folder_give_the_same_predictions(kit, features, tmp_path):
    from pyarrow import csv

    folder = tmp_path / "csv"
    folder.mkdir()
    names = [f"f{i:02d}" for i in range(30)]
    for i, (a, b) in enumerate(((0, 300), (300, 569))):
        table = pa.table({"key": np.arange(a, b), **{n: features[a:b, j] for j, n in enumerate(names)}})
        csv.write_csv(table, folder / f"{i}.csv")
    out = tmp_path / "out"
    result = score(
        kit.REPOSITORY, "demo_gbt", input=folder, output=out, features=names, keep=["key"], batch_size=128
    )
    assert result.parts_written == 2
    table = kit.read_output(out)
    label, probabilities = kit.run_onnx("demo_gbt", features)
    np.testing.assert_array_equal(table.column("key").to_numpy(), np.arange(569))
    np.testing.assert_array_equal(table.column("label").to_numpy(), label)
    # CSV holds decimal text: float32 values come back exactly, so do the predictions
    np.testing.assert_array_equal(kit.probabilities(table), probabilities)


def test_memory_follows_the_batch_size_not_the_file(kit, features, tmp_path):
    """A 200,000-row file in a single row group, scored in batches of 512: pyarrow's peak
    allocation stays a few MB, far below the file's 24 MB of values (measured in a fresh
    process, so nothing else this session allocated counts)."""
    import subprocess
    import sys

    big = tmp_path / "big.parquet"
    x = np.tile(features, (352, 1))[:200_000]
    pq.write_table(kit.feature_table(x), big, row_group_size=200_000)
    code = (
        "import pyarrow as pa, sys\n"
        "from tritonab.bulk import score\n"
        f"score({str(kit.REPOSITORY)!r}, 'demo_gbt', input={str(big)!r}, output={str(tmp_path / 'out')!r}, "
        "batch_size=512)\n"
        "print(pa.default_memory_pool().max_memory())\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(kit.REPOSITORY.parent), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    peak = int(done.stdout.strip().splitlines()[-1])
    assert peak < 8 << 20, f"pyarrow peak {peak / 1e6:.1f} MB for batches of 512 rows"


def test_bad_arguments_are_refused_before_any_work(kit, input_folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(BulkError, match="either a model or an experiment"):
        score(kit.REPOSITORY, input=input_folder, output=out)
    with pytest.raises(BulkError, match="engine `spark` is not one of"):
        score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out, engine="spark")  # type: ignore[arg-type]
    with pytest.raises(BulkError, match="needs the server's URL"):
        score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out, engine="triton")
    with pytest.raises(BulkError, match="unknown model `nope`"):
        score(kit.REPOSITORY, "nope", input=input_folder, output=out)
    with pytest.raises(BulkError, match="has no version 7"):
        score(kit.REPOSITORY, "demo_gbt", version=7, input=input_folder, output=out)
    with pytest.raises(BulkError, match=r"column `nope` \(to keep\) is not in the input"):
        score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=out, keep=["nope"])
    with pytest.raises(BulkError, match=r"output columns would clash: \['label'\]"):
        shutil.copy(input_folder / "part-a.parquet", tmp_path / "x.parquet")
        table = pq.read_table(tmp_path / "x.parquet").append_column("label", pa.array(np.zeros(200)))
        pq.write_table(table, tmp_path / "x.parquet")
        score(kit.REPOSITORY, "demo_gbt", input=tmp_path / "x.parquet", output=out, keep=["label"])
    with pytest.raises(BulkError, match="does not exist"):
        score(kit.REPOSITORY, "demo_gbt", input=tmp_path / "missing", output=out)
    assert not out.exists()


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cuts=st.lists(st.integers(1, 149), max_size=3, unique=True).map(sorted),
    batch_size=st.integers(1, 200),
)
def test_any_split_into_files_and_batches_gives_the_same_rows_in_order(
    kit, features, tmp_path_factory, cuts, batch_size
):
    """However the rows are cut into files and batches, the parts hold every row once, in
    order, with the predictions of one onnxruntime run over all of them."""
    x = features[:150]
    folder = kit.write_parts(tmp_path_factory.mktemp("split"), x, cuts, row_group_size=7)
    out = tmp_path_factory.mktemp("out")
    result = score(kit.REPOSITORY, "demo_gbt", input=folder, output=out, batch_size=batch_size, keep=["id"])
    assert [p.rows for p in result.parts] == np.diff([0, *cuts, 150]).tolist()
    table = kit.read_output(out)
    np.testing.assert_array_equal(table.column("_row").to_numpy(), np.arange(150))
    np.testing.assert_array_equal(table.column("id").to_numpy(), np.arange(150))
    label, probabilities = kit.run_onnx("demo_gbt", x)
    np.testing.assert_array_equal(table.column("label").to_numpy(), label)
    np.testing.assert_array_equal(kit.probabilities(table), probabilities)
