"""The perf harness against a real Triton: generator, CSV columns, compare, gate, errors.

One server for the module on a tmp repository: `identity` (cheap Python model),
`slow` (the same with `delay_ms` 20, the candidate that must fail a p99 gate) and
the demo router `demo_ab` with its variants copied from `model_repository/`.
Windows are short (300 ms) and trials few: the module takes well under 90 s.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path

import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.cli import main
from tritonab.deploy.server import TritonServer, free_port
from tritonab.ensembles.config import ModelConfig, TensorSpec, add_tensor, set_parameter, write_config
from tritonab.perf import read_perf_analyzer_csv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HEADER = (
    "Concurrency,Inferences/Second,Client Send,Network+Server Send/Recv,Server Queue,"
    "Server Compute Input,Server Compute Infer,Server Compute Output,Client Recv,"
    "p50 latency,p90 latency,p95 latency,p99 latency"
)
FAST = ["--measurement-interval", "300", "--max-trials", "4", "--stability-percentage", "50"]

# Test-only model: echoes INPUT0 as OUTPUT0 after sleeping `delay_ms` (config parameter).
MODEL_PY = textwrap.dedent("""
    import json
    import time

    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def initialize(self, args):
            params = json.loads(args["model_config"]).get("parameters", {})
            self.delay = float(params.get("delay_ms", {}).get("string_value", "0")) / 1000.0

        def execute(self, requests):
            if self.delay:
                time.sleep(self.delay)
            responses = []
            for request in requests:
                data = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                out = pb_utils.Tensor("OUTPUT0", data)
                responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            return responses
""")


def _write_model(repo: Path, name: str, delay_ms: float) -> None:
    config = ModelConfig(name=name, backend="python", max_batch_size=8)
    add_tensor(config.input, TensorSpec("INPUT0", mc.TYPE_FP32, (4,)))
    add_tensor(config.output, TensorSpec("OUTPUT0", mc.TYPE_FP32, (4,)))
    config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
    set_parameter(config, "delay_ms", str(delay_ms))
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "1" / "model.py").write_text(MODEL_PY, encoding="utf-8")
    write_config(repo / name / "config.pbtxt", config)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    repo = tmp_path_factory.mktemp("perf_repo")
    _write_model(repo, "identity", 0)
    _write_model(repo, "slow", 20)
    for name in ("demo_ab", "demo_gbt", "demo_logreg", "demo_logreg_pipeline", "demo_scaler"):
        shutil.copytree(ROOT / "model_repository" / name, repo / name)
    with TritonServer(repo, startup_timeout=180) as running:
        yield running


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
