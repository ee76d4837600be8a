"""Bulk scoring throughput: the local engine against bare onnxruntime and a per-row
tritonclient loop, and the ray engine, on 1M rows of the demo's 30 features.

    .venv/bin/python perf/bench/bulk_scoring.py [--rows 1000000] [--files 4] [--repeats 3]

The rows are the breast-cancer features with 5% multiplicative noise, written in a
temporary folder as `--files` Parquet files with a list column `input` (not in the
repository). The model is `demo_gbt` (gradient-boosted trees, `model_repository/`).

- **local engine**: `tritonab.bulk.score(...)` end to end, into a fresh output folder each
  time: input scan and sha256, artifact verification, reading, scoring, writing the
  parts and the manifest. Rows per second of the whole call.
- **bare onnxruntime**: the same job written by hand with nothing but pyarrow and
  onnxruntime: an `InferenceSession` on the same `model.onnx` (onnxruntime's default
  threads: every core), each file read in batches of the same size, its predictions
  written to a Parquet file beside it. Floor 0.8x, goal 0.95x: what tritonab's
  machinery (pinning, checks, keyed atomic parts, manifest) costs over a bare loop.
- **onnxruntime in memory**: the same session over the same rows already in memory as
  one numpy array (not timed: loading them): the model's own speed, reported. On a few
  cores decoding the Parquet list column and encoding the output take a good share of
  the CPU, which no scorer that reads and writes files avoids.
- Local and bare runs alternate `--repeats` times; the best of each is compared.
- **per-row tritonclient loop**: one gRPC request per row to `demo_gbt` on the embedded
  tritonserver (`--per-row` rows, after a warm-up), as a naive client scores a table;
  the local engine must be at least 20x faster.
- **ray engine**: the same `score(...)` with `engine="ray"` (Ray started in-process on
  this machine's cores, its start-up included), reported.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pyarrow as pa
import pyarrow.parquet as pq
from _floors import Floor, finish

from tritonab.bulk import score

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = ROOT / "model_repository"
MODEL = "demo_gbt"
BATCH = 65_536
SCHEMA = pa.schema([("label", pa.int64()), ("probabilities", pa.list_(pa.float32(), 2))])


def _rows(count: int, seed: int) -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    rng = np.random.default_rng(seed)
    base = load_breast_cancer().data
    picked = base[rng.integers(0, len(base), count)]
    return (picked * (1 + 0.05 * rng.standard_normal(picked.shape))).astype(np.float32)


def _write_input(x: np.ndarray, folder: Path, files: int) -> None:
    for i, chunk in enumerate(np.array_split(x, files)):
        column = pa.FixedSizeListArray.from_arrays(pa.array(chunk.ravel()), x.shape[1])
        pq.write_table(pa.table({"input": column}), folder / f"features-{i:02d}.parquet")


def _in_memory(session: ort.InferenceSession, x: np.ndarray) -> float:
    name = session.get_inputs()[0].name
    start = time.perf_counter()
    for i in range(0, len(x), BATCH):
        session.run(None, {name: x[i : i + BATCH]})
    return len(x) / (time.perf_counter() - start)


def _bare(session: ort.InferenceSession, folder: Path, out: Path) -> float:
    """The job by hand: read each file in batches, score, write the predictions."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    name = session.get_inputs()[0].name
    rows = 0
    start = time.perf_counter()
    for path in sorted(folder.iterdir()):
        with pq.ParquetWriter(out / path.name, SCHEMA) as writer:
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH, columns=["input"]):
                x = batch.column(0).flatten().to_numpy().reshape(batch.num_rows, -1)
                label, probabilities = session.run(None, {name: x})
                columns = [
                    pa.array(label),
                    pa.FixedSizeListArray.from_arrays(pa.array(probabilities.ravel()), 2),
                ]
                writer.write_table(pa.Table.from_arrays(columns, schema=SCHEMA))
                rows += batch.num_rows
    return rows / (time.perf_counter() - start)


def _engine(inputs: Path, out: Path, engine: str) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    result = score(REPOSITORY, MODEL, input=inputs, output=out, engine=engine, batch_size=BATCH)  # type: ignore[arg-type]
    return result.rows / (time.perf_counter() - start)


def _per_row(x: np.ndarray, count: int) -> float:
    import tritonclient.grpc as grpcclient

    from tritonab.deploy.server import TritonServer

    with TritonServer(REPOSITORY, model_control_mode="explicit", load_models=[MODEL]) as server:
        client = grpcclient.InferenceServerClient(server.urls.grpc)
        try:

            def one(row: np.ndarray) -> None:
                tensor = grpcclient.InferInput("input", [1, row.shape[0]], "FP32")
                tensor.set_data_from_numpy(row[None, :])
                client.infer(MODEL, [tensor])

            for row in x[:200]:  # warm-up
                one(row)
            start = time.perf_counter()
            for row in x[:count]:
                one(row)
            return count / (time.perf_counter() - start)
        finally:
            client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--per-row", type=int, default=2_000)
    parser.add_argument("--no-ray", action="store_true", help="skip the ray engine")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    x = _rows(args.rows, args.seed)
    session = ort.InferenceSession(
        str(REPOSITORY / MODEL / "1" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    with tempfile.TemporaryDirectory(prefix="tritonab-bench-bulk-") as tmp:
        folder = Path(tmp) / "input"
        folder.mkdir()
        _write_input(x, folder, args.files)
        bare, local, memory = 0.0, 0.0, 0.0
        for _ in range(args.repeats):
            memory = max(memory, _in_memory(session, x))
            bare = max(bare, _bare(session, folder, Path(tmp) / "out-bare"))
            local = max(local, _engine(folder, Path(tmp) / "out-local", "local"))
        per_row = _per_row(x, args.per_row)
        ray = 0.0 if args.no_ray else _engine(folder, Path(tmp) / "out-ray", "ray")
    print(f"{args.rows:,} rows x {x.shape[1]} features in {args.files} Parquet files, `{MODEL}`")
    print(f"local engine (end to end):       {local:12,.0f} rows/s  (best of {args.repeats})")
    print(f"bare pyarrow + onnxruntime loop: {bare:12,.0f} rows/s  (best of {args.repeats})")
    print(f"onnxruntime in memory:           {memory:12,.0f} rows/s  (best of {args.repeats}, reported)")
    print(f"per-row tritonclient loop:       {per_row:12,.0f} rows/s  ({args.per_row:,} requests, gRPC)")
    if not args.no_ray:
        print(f"ray engine (start-up included):  {ray:12,.0f} rows/s  (reported)")
    print(f"local engine / onnxruntime in memory: {local / memory:.3g}x (reported)")
    floors = [
        Floor("local engine / bare onnxruntime", local / bare, 0.8),
        Floor("local engine / per-row tritonclient", local / per_row, 20.0),
    ]
    info = {
        "local_rows_per_s": local,
        "bare_rows_per_s": bare,
        "in_memory_rows_per_s": memory,
        "per_row_rows_per_s": per_row,
        "ray_rows_per_s": ray,
    }
    return finish("bulk_scoring", floors, info)


if __name__ == "__main__":
    sys.exit(main())
