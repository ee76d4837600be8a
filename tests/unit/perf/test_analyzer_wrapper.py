"""The perf_analyzer wrapper, driven by a fake `perf_analyzer` script placed on PATH."""

from __future__ import annotations

import json
import os
import sys

import pytest

from tritonab.cli import main
from tritonab.errors import PerfError
from tritonab.perf import LoadOptions, MeasureSettings, find_perf_analyzer, read_perf_analyzer_csv, run_perf
from tritonab.perf._analyzer import run_perf_analyzer
from tritonab.perf._server_stats import ServerStats

HEADER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency\n"
)
# The row perf_analyzer writes for each level it is asked for (by its first cell).
ROWS = {
    "1": "1,900.5,30,400,50,10,250,20,4,800,1000,1100,1500\n",
    "2": "2,1400,30,500,100,10,255,20,4,1100,1400,1600,2000\n",
    "3": "3,1800.25,31,700,300,11,260,21,4,1500,1900,2100,2900\n",
    "50": "50,50,30,400,50,10,250,20,4,800,1000,1100,1500\n",
    "100": "100,100,30,400,50,10,250,20,4,800,1000,1100,1500\n",
}

# One JSON line of argv per run; the CSV holds the row of the level asked for.
FAKE = """#!{python}
import json, sys
argv = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(argv) + "\\n")
if "--fail" in {fail!r}:
    print("error: failed to get model metadata", file=sys.stderr)
    sys.exit(1)
flag = "--concurrency-range" if "--concurrency-range" in argv else "--request-rate-range"
level = argv[argv.index(flag) + 1].split(":")[0]
path = argv[argv.index("-f") + 1]
open(path, "w").write({header!r} + {rows!r}[level])
open(argv[argv.index("--profile-export-file") + 1], "w").write("{{}}")
"""


def runs(log):
    """argv of every perf_analyzer run, in order."""
    return [json.loads(line) for line in log.read_text().splitlines()]


@pytest.fixture
def fake_pa(tmp_path, monkeypatch):
    def install(fail: bool = False):
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir(exist_ok=True)
        script = bin_dir / "perf_analyzer"
        log = tmp_path / "argv.json"
        script.write_text(
            FAKE.format(
                python=sys.executable, log=str(log), header=HEADER, rows=ROWS, fail="--fail" if fail else ""
            ),
            encoding="utf-8",
        )
        script.chmod(0o755)
        monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
        return log

    return install


def test_placeholder_and_non_executables_are_ignored(tmp_path):
    bin_dir = tmp_path / "b"
    bin_dir.mkdir()
    fake = bin_dir / "perf_analyzer"
    fake.write_text("import perf_analyzer\n", encoding="utf-8")  # no #!, not ELF: placeholder-like
    fake.chmod(0o755)
    assert find_perf_analyzer(str(bin_dir)) is None
    fake.write_text("#!/bin/sh\n", encoding="utf-8")
    fake.chmod(0o644)
    assert find_perf_analyzer(str(bin_dir)) is None
    fake.chmod(0o755)
    assert find_perf_analyzer(str(bin_dir)) == fake.resolve()


def test_run_uses_perf_analyzer_and_parses_its_csv(fake_pa, tmp_path):
    log = fake_pa()
    options = LoadOptions(
        url="127.0.0.1:9",
        levels=(1, 2, 3),
        input_data="zero",
        shapes={"in": (1, 30)},
        batch_size=2,
        parameters={"unit_id": "u1"},
        settings=MeasureSettings(500, 15, 4, percentile=99),
    )
    run = run_perf("model:2", options, work_dir=tmp_path / "work")
    assert run.backend == "perf_analyzer"
    assert [r.concurrency for r in run.records] == [1, 2, 3]
    assert run.records[2].queue_us == 300 and run.records[2].p99_us == 2900
    # No server answers on port 9: failures are unknown, and the run says so.
    assert [r.errors for r in run.records] == [None, None, None]
    assert "a gate on the error rate will fail" in run.warnings[0]
    argvs = runs(log)
    assert [a[a.index("--concurrency-range") + 1] for a in argvs] == ["1:1:1", "2:2:1", "3:3:1"]
    argv = argvs[-1]
    assert argv[:6] == ["-m", "model", "-u", "127.0.0.1:9", "-i", "grpc"]
    for flag, value in (
        ("-x", "2"),
        ("-b", "2"),
        ("--input-data", "zero"),
        ("--measurement-interval", "500"),
        ("--stability-percentage", "15"),
        ("--max-trials", "4"),
        ("--percentile", "99"),
        ("--shape", "in:1,30"),
        ("--request-parameter", "unit_id:u1:string"),
        ("-f", str(tmp_path / "work" / "perf_analyzer-3.csv")),
    ):
        assert argv[argv.index(flag) + 1] == value
    assert "--profile-export-file" in argv


def test_request_rate_flags(fake_pa):
    log = fake_pa()
    options = LoadOptions(
        url="h:1",
        protocol="http",
        mode="request_rate",
        levels=(50.0, 100.0),
        settings=MeasureSettings(schedule="constant"),
    )
    run_perf("m", options)
    argvs = runs(log)
    assert [a[a.index("--request-rate-range") + 1] for a in argvs] == ["50:50:1", "100:100:1"]
    assert all(a[a.index("--request-distribution") + 1] == "constant" for a in argvs)


def test_failure_is_a_perf_error(fake_pa):
    fake_pa(fail=True)
    with pytest.raises(PerfError, match="perf_analyzer exited with 1: error: failed to get model metadata"):
        run_perf("m", LoadOptions(url="h:1"))


def test_unit_ids_need_builtin_when_forced(fake_pa):
    fake_pa()
    with pytest.raises(PerfError, match="--unit-ids needs the built-in generator"):
        run_perf("m", LoadOptions(url="h:1", unit_ids=10), backend="perf_analyzer")


def test_forced_perf_analyzer_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PerfError, match="`perf_analyzer` is not on PATH"):
        run_perf("m", LoadOptions(url="h:1"), backend="perf_analyzer")


def test_failures_come_from_the_servers_statistics_around_each_level(fake_pa, tmp_path):
    fake_pa()
    snapshots = iter(
        [
            ServerStats(success_count=100, fail_count=1),
            ServerStats(success_count=1100, fail_count=1),  # level 1: 1000 requests, no failure
            ServerStats(success_count=1100, fail_count=1),
            ServerStats(success_count=2090, fail_count=11),  # level 3: 1000 requests, 10 failed
        ]
    )
    options = LoadOptions(url="h:1", levels=(1, 3))
    records = run_perf_analyzer(find_perf_analyzer(), "m", options, server_stats=lambda: next(snapshots))
    assert [(r.count, r.errors, r.error_rate) for r in records] == [(1000, 0, 0.0), (1000, 10, 0.01)]
    unknown = run_perf_analyzer(find_perf_analyzer(), "m", options, server_stats=lambda: None)
    assert [r.error_rate for r in unknown] == [None, None]


def test_cli_run_writes_csv_and_json(fake_pa, tmp_path, capsys):
    fake_pa()
    out = tmp_path / "out"
    assert main(["perf", "run", "m", "--url", "h:1", "--concurrency", "1:3:2", "--out", str(out)]) == 0
    assert [r.throughput for r in read_perf_analyzer_csv(out / "perf.csv")] == [900.5, 1800.25]
    document = json.loads((out / "perf.json").read_text())
    assert document["backend"] == "perf_analyzer" and document["records"][0]["concurrency"] == 1
    assert "perf_analyzer" in capsys.readouterr().out
