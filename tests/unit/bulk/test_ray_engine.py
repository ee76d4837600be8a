"""The ray engine on a real in-process Ray (started once for the module by the engine's own
`ray_session`, bounded to this machine's CPUs): the same parts as the local engine, byte
for byte, for a model and for an offline experiment; a failing batch named through Ray."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tritonab.bulk import score
from tritonab.bulk._ray import actor_cpus, ray_session
from tritonab.errors import BulkError

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_started():
    with ray_session(None) as session:
        assert session["ray"] == "in-process"
        yield session
    assert not ray.is_initialized()


def _same_parts(a, b) -> None:
    assert [p.file for p in a.parts] == [p.file for p in b.parts]
    for x, y in zip(a.parts, b.parts):
        assert (a.output / x.file).read_bytes() == (b.output / y.file).read_bytes(), x.file


def test_ray_gives_the_local_engines_parts(ray_started, kit, input_folder, features, tmp_path):
    local = score(kit.REPOSITORY, "demo_gbt", input=input_folder, output=tmp_path / "local", batch_size=64)
    on_ray = score(
        kit.REPOSITORY, "demo_gbt", input=input_folder, output=tmp_path / "ray", batch_size=64, engine="ray"
    )
    _same_parts(local, on_ray)
    label, _ = kit.run_onnx("demo_gbt", features)
    assert kit.read_output(tmp_path / "ray").column("label").to_pylist() == label.tolist()
    manifest = on_ray.manifest.read_text()
    assert '"name": "ray"' in manifest and '"actors": 1' in manifest
    again = score(
        kit.REPOSITORY, "demo_gbt", input=input_folder, output=tmp_path / "ray", batch_size=64, engine="ray"
    )
    assert again.parts_skipped == 3


def test_an_experiment_on_ray_equals_the_local_one(ray_started, kit, input_folder, tmp_path):
    args = {"experiment": "demo_ab", "unit_column": "user", "keep": ["user"], "input": input_folder}
    local = score(kit.REPOSITORY, output=tmp_path / "local", **args)
    on_ray = score(kit.REPOSITORY, output=tmp_path / "ray", engine="ray", concurrency=2, **args)
    _same_parts(local, on_ray)


def test_a_failing_batch_in_an_actor_names_its_part_and_rows(ray_started, kit, features, tmp_path):
    schema = pa.schema([("input", pa.list_(pa.float32()))])
    rows = [{"input": None if i == 70 else features[i].tolist()} for i in range(100)]
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), tmp_path / "x.parquet")
    with pytest.raises(
        BulkError, match=r"part `part-00000.parquet` \(input `x.parquet`\), rows \d+..\d+: "
    ) as err:
        score(
            kit.REPOSITORY,
            "demo_gbt",
            input=tmp_path / "x.parquet",
            output=tmp_path / "o",
            batch_size=64,
            engine="ray",
        )
    # Ray may split a read block, so the batch is not the local engine's; it holds row 70.
    first, last = map(int, re.search(r"rows (\d+)\.\.(\d+)", str(err.value)).groups())
    assert first <= 70 <= last
    assert str(err.value).endswith("column `input` has null lists (rows 70)")
    assert not list((tmp_path / "o").glob("*.parquet"))


def test_actors_leave_room_for_the_reads_that_feed_them():
    """Actors holding every CPU would starve the read tasks: the pipeline would never end."""
    assert actor_cpus(2, 1) == 1.0
    assert actor_cpus(2, 2) == 0.875
    for cpus, actors in [(2, 2), (3, 7), (16, 16), (1, 1), (64, 3)]:
        assert actors * actor_cpus(cpus, actors) + 0.25 <= cpus
    assert actor_cpus(0, 4) == 1.0  # unknown (a cluster that reports none): Ray's default
