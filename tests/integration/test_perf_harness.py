"""The perf harness against a real Triton: generator, CSV columns, compare, gate, errors.

On the session server: `identity` (cheap Python model), `slow` (the same with
`delay_ms` 20, the candidate that must fail a p99 gate) and the demo router `demo_ab`.
Windows are short (300 ms) and trials few: the module takes well under 90 s.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from tritonab._transport import AsyncConnection
from tritonab.cli import main
from tritonab.deploy.server import free_port
from tritonab.perf import read_perf_analyzer_csv
from tritonab.perf._loadgen import run_alternating, run_interleaved

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency"
)
FAST = ["--measurement-interval", "300", "--max-trials", "4", "--stability-percentage", "50"]


@pytest.fixture(scope="module")
def server(server, loaded):
    """The session server with the perf tests' echo models (`identity`, `slow`) loaded."""
    with loaded("identity", "slow"):
        yield server


def _run(*args: str) -> int:
    return main(["perf", *args])


def test_generator_writes_perf_analyzer_csv(server, tmp_path):
    out = tmp_path / "run"
    code = _run(
        "run",
        "identity",
        "--url",
        server.urls.grpc,
        "--concurrency",
        "1:2:1",
        "--backend",
        "builtin",
        "--out",
        str(out),
        *FAST,
    )
    assert code == 0
    assert (out / "perf.csv").read_text().splitlines()[0] == HEADER
    records = read_perf_analyzer_csv(out / "perf.csv")
    assert [r.concurrency for r in records] == [1, 2]
    for r in records:
        assert r.throughput > 0 and 0 < r.p50_us <= r.p90_us <= r.p95_us <= r.p99_us
        assert r.compute_infer_us > 0 and r.queue_us >= 0
    document = json.loads((out / "perf.json").read_text())
    assert all(rec["trials"] <= 4 and rec["errors"] == 0 for rec in document["records"])


def test_http_request_rate_and_router_with_unit_ids(server, tmp_path):
    from tritonab.perf import LoadOptions, MeasureSettings, run_perf

    settings = MeasureSettings(300, 50, 3)
    run = run_perf(
        "identity",
        LoadOptions(
            url=server.urls.http, protocol="http", mode="request_rate", levels=(100.0,), settings=settings
        ),
        backend="builtin",
    )
    (record,) = run.records
    assert record.request_rate == 100 and 40 < record.throughput < 160 and record.errors == 0
    routed = run_perf(
        "demo_ab",
        LoadOptions(url=server.urls.grpc, levels=(2,), unit_ids=50, settings=settings),
        backend="builtin",
    )
    assert routed.records[0].errors == 0 and routed.records[0].throughput > 0
    # Without unit ids the router rejects the request: a clear error, exit 2.
    assert _run("run", "demo_ab", "--url", server.urls.grpc, "--backend", "builtin", *FAST) == 2


def test_input_file_is_used(server, tmp_path):
    data = tmp_path / "data.json"
    data.write_text(
        json.dumps({"data": [{"INPUT0": [1, 2, 3, 4]}, {"INPUT0": {"content": [5, 6, 7, 8], "shape": [4]}}]})
    )
    assert (
        _run(
            "run",
            "identity",
            "--url",
            server.urls.grpc,
            "--input-data",
            str(data),
            "-b",
            "2",
            "--backend",
            "builtin",
            *FAST,
        )
        == 0
    )


def test_gate_passes_same_model_twice(server, tmp_path):
    code = _run(
        "gate",
        "--baseline",
        "identity",
        "--candidate",
        "identity",
        "--url",
        server.urls.grpc,
        "--concurrency",
        "2",
        "--rounds",
        "4",
        "-p",
        "300",
        "--min-throughput-ratio",
        "0.5",
        "--max-p99-ratio",
        "3",
        "--max-error-rate",
        "0",
        "--json",
        str(tmp_path / "gate.json"),
        "--out",
        str(tmp_path / "cmp.json"),
    )
    assert code == 0
    verdict = json.loads((tmp_path / "gate.json").read_text())
    assert verdict["verdict"] == "PASS" and len(verdict["checks"]) == 3
    assert json.loads((tmp_path / "cmp.json").read_text())["levels"][0]["ratios"]["p99"]["n"] == 4


def test_gate_fails_delayed_candidate(server, tmp_path):
    cmp_path, report = tmp_path / "cmp.json", tmp_path / "report"
    assert (
        _run(
            "compare",
            "--baseline",
            "identity",
            "--candidate",
            "slow",
            "--url",
            server.urls.grpc,
            "--rounds",
            "3",
            "-p",
            "300",
            "--out",
            str(cmp_path),
            "--report",
            str(report),
        )
        == 0
    )
    code = _run(
        "gate", "--result", str(cmp_path), "--max-p99-ratio", "1.5", "--json", str(tmp_path / "gate.json")
    )
    assert code == 1
    assert json.loads((tmp_path / "gate.json").read_text())["verdict"] == "FAIL"
    assert (report / "report.md").exists() and (report / "latency_vs_throughput.png").exists()


def test_unreachable_server_exits_2(capsys):
    assert _run("run", "identity", "--url", f"127.0.0.1:{free_port()}", "--backend", "builtin") == 2
    assert "is unreachable" in capsys.readouterr().err


def test_unknown_model_exits_2(server, capsys):
    assert _run("run", "nosuch", "--url", server.urls.grpc, "--backend", "builtin") == 2
    assert "model `nosuch` is not available" in capsys.readouterr().err
    assert (
        _run(
            "compare",
            "--baseline",
            "identity",
            "--candidate",
            "nosuch",
            "--url",
            server.urls.http,
            "-i",
            "http",
        )
        == 2
    )


def test_mismatching_input_file_exits_2(server, tmp_path, capsys):
    data = tmp_path / "bad.json"
    data.write_text(json.dumps({"data": [{"INPUT0": [1, 2, 3]}]}))
    assert (
        _run("run", "identity", "--url", server.urls.grpc, "--input-data", str(data), "--backend", "builtin")
        == 2
    )
    assert "has 3 values, but shape [4] needs 4" in capsys.readouterr().err


# perf_analyzer itself is not installable here (ENVIRONMENT.md): this stand-in sends real
# requests to the real server, then writes perf_analyzer's CSV, so what the wrapper reads
# from Triton's statistics around the run is real.
STAND_IN = """#!{python}
import sys
import numpy as np
import tritonclient.grpc as grpc

argv = sys.argv[1:]
model, url = argv[argv.index("-m") + 1], argv[argv.index("-u") + 1]
client = grpc.InferenceServerClient(url)
config = client.get_model_config(model, as_json=True)["config"]
inputs = []
for spec in config["input"]:
    tensor = grpc.InferInput(spec["name"], [1, *map(int, spec["dims"])], "FP32")
    tensor.set_data_from_numpy(np.zeros([1, *map(int, spec["dims"])], np.float32))
    inputs.append(tensor)
for _ in range(20):
    try:
        client.infer(model, inputs)
    except Exception:
        pass
level = argv[argv.index("--concurrency-range") + 1].split(":")[0]
header = ("Concurrency,Inferences/Second,Client Send,Client Recv,"
          "p50 latency,p90 latency,p95 latency,p99 latency")
open(argv[argv.index("-f") + 1], "w").write(header + "\\n" + level + ",100,1,1,900,950,980,990\\n")
"""


def test_perf_analyzer_runs_never_claim_failure_counts_they_cannot_see(server, tmp_path, monkeypatch):
    """Triton 2.51's statistics count a Python-backend model's error responses as successes
    (the stand-in's 20 failed requests to `always_fails` show up as 20 successes), so for
    such models the wrapper leaves failures unknown, and a gate on the error rate fails."""
    from tritonab.perf import LoadOptions, run_perf

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "perf_analyzer"
    script.write_text(STAND_IN.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    options = LoadOptions(url=server.urls.grpc, levels=(1, 2))
    failing = run_perf("always_fails", options, backend="perf_analyzer")
    assert [(r.count, r.errors, r.error_rate) for r in failing.records] == [(None, None, None)] * 2
    assert "Python backend counts error responses as successes" in failing.warnings[0]
    routed = run_perf("demo_logreg_pipeline", options, backend="perf_analyzer")
    assert "an ensemble's statistics" in routed.warnings[0]
    out = tmp_path / "run"
    argv = ["run", "always_fails", "--url", server.urls.grpc, "--backend", "perf_analyzer", "--out", str(out)]
    assert _run(*argv) == 0
    assert json.loads((out / "perf.json").read_text())["records"][0]["error_rate"] is None


def test_paths_measured_over_the_same_span_tell_a_slow_model_apart(server):
    """`run_interleaved` (concurrency 1) and `run_alternating` (closed loop) against the
    real server: `slow` answers 20 ms later than `identity`, in both."""

    async def measure():
        connection = AsyncConnection(server.urls.grpc)
        try:
            inputs = connection.inputs({"INPUT0": np.ones((1, 4), dtype=np.float32)})
            paths = [lambda i, m=m: (m, "", inputs, None) for m in ("identity", "slow")]
            single = await run_interleaved(connection, paths, duration_s=0.6, warmup_s=0.1)
            looped = await run_alternating(
                connection, paths, concurrency=2, slice_s=0.2, slices=2, settle_s=0.05
            )
            return single, looped
        finally:
            await connection.close()

    (fast, slow), (fast_loop, slow_loop) = asyncio.run(measure())
    assert fast.errors == slow.errors == fast_loop.errors == slow_loop.errors == 0
    assert slow.percentile(50) > fast.percentile(50) + 15_000
    assert 0 < slow_loop.throughput < fast_loop.throughput
    assert slow_loop.percentile(50) >= 20_000
