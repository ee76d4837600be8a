"""Log encryption at rest: the segment writer's and reader's throughput with envelope
encryption (`logging.encrypt`) against plain JSON Lines, side by side in one run.

The writer thread expands, serialises and writes the same batches of exposure-like
records into a fresh folder, plain or encrypted (one AES-GCM chunk per drain of the
queue); rounds alternate the order. The request path (`submit`) does the same work in
both cases, so what encryption can cost is the writer's drain rate and the readers'
speed. Throughput is records per second of the process's CPU time (both threads), which
a busy shared machine disturbs far less than wall-clock time; wall-clock rates are
printed beside it. Floors: encrypted/plain writer and reader throughput >= 0.7x.

    .venv/bin/python perf/bench/log_encryption.py [--records 200000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from _floors import Floor, finish

from tritonab.monitoring.segments import SegmentWriter, read_records
from tritonab.security import Key, generate_key


def _batches(records: int, batch: int) -> list[list[dict]]:
    rows = [
        {
            "time": 1_700_000_000.0 + i,
            "experiment": "demo_ab",
            "variant": ("control", "treatment")[i % 2],
            "unit_id": f"user-{i % 5000}",
            "request_id": f"req-{i}",
            "row": 0,
            "model": "demo_gbt",
            "version": 1,
            "latency_us": 812.5,
            "ok": True,
            "region": "local",
        }
        for i in range(records)
    ]
    return [rows[i : i + batch] for i in range(0, records, batch)]


def _write(folder: Path, batches: list[list[dict]], key: Key | None) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to write every batch and seal the segments."""
    writer = SegmentWriter(folder, "exposures", key=key, queue_size=len(batches) + 1, max_records=50_000)
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        writer.submit(batch, count=len(batch))
    writer.close(timeout=600)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert writer.written == sum(len(b) for b in batches) and writer.dropped == 0
    return cpu, wall


def _read(folder: Path, key: Key | None, expected: int) -> tuple[float, float]:
    """(CPU seconds, wall seconds) to read every record back."""
    cpu, wall = time.process_time(), time.perf_counter()
    records, _ = read_records(folder, key=key)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert len(records) == expected
    return cpu, wall


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=100, help="records per submitted batch")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    batches = _batches(args.records, args.batch)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {
        (name, op): [] for name in ("plain", "enc") for op in ("write", "read")
    }
    with tempfile.TemporaryDirectory(prefix="tritonab-encbench-") as tmp:
        key = generate_key(Path(tmp) / "logs.key")
        for r in range(args.rounds):
            order = (("plain", None), ("enc", key)) if r % 2 == 0 else (("enc", key), ("plain", None))
            for name, k in order:
                folder = Path(tmp) / f"{name}-{r}"
                times[(name, "write")].append(_write(folder, batches, k))
                times[(name, "read")].append(_read(folder, k, args.records))

    def rate(name: str, op: str, which: int) -> float:
        return args.records / statistics.median(t[which] for t in times[(name, op)])

    print(f"records={args.records} batch={args.batch} rounds={args.rounds} (median over rounds)")
    heads = ("write rec/CPU-s", "read rec/CPU-s", "write rec/s", "read rec/s")
    print(f"{'segments':10} " + " ".join(f"{h:>16}" for h in heads))
    for name in ("plain", "enc"):
        cells = [rate(name, op, w) for w in (0, 1) for op in ("write", "read")]
        print(f"{name:10} " + " ".join(f"{c:16.0f}" for c in cells))
    floors = [
        Floor(
            "encrypted/plain writer throughput (CPU)",
            rate("enc", "write", 0) / rate("plain", "write", 0),
            0.7,
        ),
        Floor(
            "encrypted/plain reader throughput (CPU)", rate("enc", "read", 0) / rate("plain", "read", 0), 0.7
        ),
    ]
    return finish("log_encryption", floors)


if __name__ == "__main__":
    sys.exit(main())
