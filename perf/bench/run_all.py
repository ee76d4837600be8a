"""Run every benchmark in `perf/bench/` one after the other and print one table.

    .venv/bin/python perf/bench/run_all.py [--only NAME ...]   (what `make bench` runs)

Each script measures its comparison side by side in one run and exits 1 below its
floor; this runner exits 1 when any script missed a floor or failed. Run it on a
machine doing nothing else: a floor is met when two consecutive runs meet it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
BENCHES = (
    "stats_throughput",
    "stats_aggregate",
    "analysis_scale",
    "router_overhead",
    "logging_overhead",
    "loadgen_ceiling",
    "fleet_scaling",
    "bulk_scoring",
    "log_encryption",
    "bandit_regret",
    "autoscale_policies",
)


def _run(name: str, record_file: Path) -> tuple[int, float]:
    started = time.perf_counter()
    env = {**os.environ, "TRITONAB_BENCH_JSON": str(record_file)}
    print(f"== {name}", flush=True)
    done = subprocess.run([sys.executable, str(HERE / f"{name}.py")], env=env, cwd=HERE.parents[1])
    return done.returncode, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=BENCHES, help="run only these benchmarks")
    args = parser.parse_args()
    names = args.only or list(BENCHES)
    table = Table(title="perf/bench: floors measured side by side")
    for column in ("bench", "floor", "value", "limit", "status", "time"):
        table.add_column(column, justify="right" if column in ("value", "limit", "time") else "left")
    failed = False
    with tempfile.TemporaryDirectory(prefix="tritonab-bench-") as tmp:
        for name in names:
            record_file = Path(tmp) / f"{name}.jsonl"
            code, seconds = _run(name, record_file)
            lines = record_file.read_text().splitlines() if record_file.exists() else []
            records = [json.loads(line) for line in lines]
            floors = [f for r in records for f in r["floors"]]
            if code != 0 and not any(not f["passed"] for f in floors):
                table.add_row(name, "(the script failed)", "-", "-", "[red]ERROR[/]", f"{seconds:.0f} s")
            for f in floors:
                bound = ">=" if f["higher_is_better"] else "<="
                status = "[green]PASS[/]" if f["passed"] else "[red]BELOW[/]"
                unit = f.get("unit", "x")
                value, limit = f"{f['value']:.3g}{unit}", f"{bound} {f['limit']:g}{unit}"
                table.add_row(name, f["name"], value, limit, status, f"{seconds:.0f} s")
            failed = failed or code != 0
    Console(width=150).print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
