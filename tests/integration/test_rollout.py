"""Rollouts on a real explicit-mode Triton scraped by a real Prometheus, under load.

The session's server and Prometheus. Test-only models (a candidate that fails a share
of its requests, a slow one, one with two versions) are written into the session
repository and loaded for this module; each test has its own router so their weights
and metrics do not mix.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.deploy.control import ModelControl
from tritonab.ensembles import build_router, load_model
from tritonab.ensembles.config import write_config
from tritonab.errors import ClientError
from tritonab.monitoring import audit
from tritonab.monitoring.promql import RouterQueries
from tritonab.monitoring.segments import read_records
from tritonab.rollout import BlueGreenStrategy, Controller, load_rollout_dict, load_state, server_infer
from tritonab.splitter import load_spec_dict

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UNITS = [f"user-{i}" for i in range(1000)]

# A demo-signature model: `error_rate` of its requests fail (deterministically spread),
# each batch takes `delay_ms` longer.
TEST_MODEL = """
import json
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        params = json.loads(args["model_config"]).get("parameters", {})
        self.error_rate = float(params.get("error_rate", {}).get("string_value", "0"))
        self.delay = float(params.get("delay_ms", {}).get("string_value", "0")) / 1e3
        self.seen = 0

    def execute(self, requests):
        if self.delay:
            time.sleep(self.delay)
        responses = []
        for request in requests:
            self.seen += 1
            if int(self.seen * self.error_rate) != int((self.seen - 1) * self.error_rate):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError("flaky")))
                continue
            x = pb_utils.get_input_tensor_by_name(request, "input").as_numpy()
            n = x.shape[0]
            label = (x.sum(axis=1, keepdims=True) > 0).astype(np.int64)
            probs = np.full((n, 2), 0.5, dtype=np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("label", label),
                                                         pb_utils.Tensor("probabilities", probs)]))
        return responses
"""


def _test_model(repo: Path, name: str, versions=(1,), specific=None, **params: float) -> None:
    config = mc.ModelConfig()
    config.CopyFrom(load_model(repo / "demo_gbt").config)
    config.name = name
    del config.parameters["onnx_file"]
    config.ClearField("model_warmup")
    for key, value in params.items():
        config.parameters[key].string_value = str(value)
    if specific:
        config.version_policy.specific.versions.extend(specific)
    write_config(repo / name / "config.pbtxt", config)
    for version in versions:
        (repo / name / str(version)).mkdir(parents=True)
        (repo / name / str(version) / "model.py").write_text(TEST_MODEL)


def _router(repo: Path, name: str, candidate: str | None) -> None:
    variants = [{"name": "control", "model": "demo_gbt", "version": 1, "weight": 1.0}]
    if candidate:
        variants.append({"name": "treatment", "model": candidate, "version": 1, "weight": 0.0})
    else:
        variants = [{"name": "main", "model": "bg_model", "version": 1, "weight": 1.0}]
    build_router(load_spec_dict({"name": name, "variants": variants}), repo)


ROLLOUT_MODELS = ("healthy_model", "flaky_model", "slow_model", "bg_model")
ROLLOUT_ROUTERS = ("ro_healthy", "ro_flaky", "ro_slow", "ro_bg", "ro_kpi")


@pytest.fixture(scope="module")
def server(server, repository, log_dir, loaded):
    """The session server (explicit mode, logging to `log_dir`) with this module's
    candidates and routers loaded."""
    repo = repository
    _test_model(repo, "healthy_model")
    _test_model(repo, "flaky_model", error_rate=0.5)
    _test_model(repo, "slow_model", delay_ms=40)
    _test_model(repo, "bg_model", versions=(1, 2), specific=[1])
    _router(repo, "ro_healthy", "healthy_model")
    _router(repo, "ro_flaky", "flaky_model")
    _router(repo, "ro_slow", "slow_model")
    _router(repo, "ro_bg", None)
    build_router(
        load_spec_dict(
            {
                "name": "ro_kpi",
                "variants": [
                    {"name": "control", "model": "demo_gbt", "version": 1, "weight": 1.0},
                    {"name": "treatment", "model": "healthy_model", "version": 1, "weight": 0.0},
                ],
                "success": {"primary": {"name": "converted.any", "direction": "increase"}, "method": "fixed"},
            }
        ),
        repo,
    )
    with loaded(*ROLLOUT_MODELS, *ROLLOUT_ROUTERS):
        server.experiment_logs = log_dir
        yield server


class Load:
    """Background requests through a router from two threads, bounded in count and time."""

    def __init__(self, url: str, experiment: str, threads: int = 2, limit: int = 40_000) -> None:
        self.url, self.experiment, self.limit = url, experiment, limit
        self.stop = threading.Event()
        self.served = 0
        self.failures: list[str] = []
        self.workers = [threading.Thread(target=self._send, args=(i,)) for i in range(threads)]

    def _send(self, offset: int) -> None:
        x = np.ones((1, 30), dtype=np.float32)
        with ExperimentClient(self.url) as client:
            for i in range(offset, self.limit, len(self.workers)):
                if self.stop.is_set():
                    return
                try:
                    client.infer(self.experiment, {"input": x}, unit_id=UNITS[i % len(UNITS)])
                    self.served += 1
                except ClientError as exc:
                    self.failures.append(str(exc))
                time.sleep(0.002)

    def __enter__(self) -> Load:
        for w in self.workers:
            w.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop.set()
        for w in self.workers:
            w.join(timeout=30)


def _spec(tmp_path: Path, experiment: str, **overrides) -> Path:
    data = {
        "experiment": experiment,
        "candidate": "treatment",
        "steps": [10, 50, 100],
        "interval_s": 1.5,
        "window": "5s",
        "failed_checks": 2,
        "progress_deadline": 15,
        "checks": [
            {"metric": "rows", "min": 5},
            {"metric": "error_rate", "max": 0.01},
            {"metric": "latency", "quantile": 0.99, "max": 20, "relative": True},
        ],
    }
    data.update(overrides)
    path = tmp_path / "rollout.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def _run(spec: Path, server, prometheus, tmp_path: Path, *extra: str) -> int:
    return main(
        [
            "rollout",
            "run",
            str(spec),
            "--triton",
            server.urls.grpc,
            "--prometheus",
            prometheus.url,
            "--state",
            str(tmp_path / "state.json"),
            "--audit",
            str(tmp_path / "audit.jsonl"),
            *extra,
        ]
    )


def _weights(tmp_path: Path) -> list[float]:
    return [
        r["after"]["treatment"]
        for r in audit.read(tmp_path / "audit.jsonl")
        if r["event"] == "rollout.weights"
    ]


def test_healthy_candidate_is_promoted_and_a_restarted_controller_resumes(
    server, prometheus, tmp_path, capsys
):
    spec = _spec(
        tmp_path,
        "ro_healthy",
        perf_gate={
            "thresholds": {"max_error_rate": 0.0, "max_p99_ratio": 20},
            "rounds": 2,
            "window_ms": 300,
            "warmup_s": 0.1,
        },
    )
    with Load(server.urls.grpc, "ro_healthy") as load:
        # The first controller stops after two ticks (as if killed): gate + 10%, then 50%
        # or a hold; the second, a fresh process's worth of objects, picks up the state.
        assert _run(spec, server, prometheus, tmp_path, "--max-ticks", "2") == 2
        first = load_state(tmp_path / "state.json")
        assert first.status == "progressing" and first.step >= 0 and first.gate == "passed"
        assert _run(spec, server, prometheus, tmp_path) == 0
    out = capsys.readouterr().out
    assert "-> promote" in out and "error rate=0 (<= 0.01) PASS" in out
    assert load.served > 100 and load.failures == []
    assert load_state(tmp_path / "state.json").status == "promoted"
    assert _weights(tmp_path) == [0.1, 0.5, 1.0]
    events = [r["event"] for r in audit.read(tmp_path / "audit.jsonl")]
    assert events.count("rollout.start") == 1 and events[-1] == "rollout.promote"
    with ModelControl(server.urls.grpc) as control:
        assert control.experiment("ro_healthy")[0].weights == {"control": 0.0, "treatment": 1.0}
    # The chain verifies; an edited record is caught and named.
    assert main(["audit", "verify", str(tmp_path / "audit.jsonl")]) == 0
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    lines[2] = lines[2].replace('"rollout.', '"forged.', 1)
    (tmp_path / "audit.jsonl").write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert main(["audit", "verify", str(tmp_path / "audit.jsonl")]) == 1
    assert "first bad record at line 3" in capsys.readouterr().out


def test_failing_candidate_is_rolled_back_within_the_threshold(server, prometheus, tmp_path):
    spec = _spec(tmp_path, "ro_flaky")
    with Load(server.urls.grpc, "ro_flaky"):
        assert _run(spec, server, prometheus, tmp_path) == 1
    state = load_state(tmp_path / "state.json")
    assert (state.status, state.failed_checks) == ("rolled_back", 2)
    assert _weights(tmp_path) == [0.1, 0.0]
    records = audit.read(tmp_path / "audit.jsonl")
    judged = [r for r in records if r["event"] in ("rollout.failed_check", "rollout.rollback")]
    assert [r["event"] for r in judged] == ["rollout.failed_check", "rollout.rollback"]
    assert judged[1]["tick"] - judged[0]["tick"] == 1  # consecutive intervals
    error = {c["name"]: c for c in judged[0]["checks"]}["error rate"]
    assert error["status"] == "fail" and error["value"] > 0.2
    with ModelControl(server.urls.grpc) as control:
        assert control.experiment("ro_flaky")[0].weights == {"control": 1.0, "treatment": 0.0}
    assert main(["audit", "verify", str(tmp_path / "audit.jsonl")]) == 0


def test_slow_candidate_fails_the_perf_gate_before_any_traffic_moves(server, prometheus, tmp_path):
    spec = _spec(
        tmp_path,
        "ro_slow",
        perf_gate={"thresholds": {"max_p99_ratio": 3.0}, "rounds": 2, "window_ms": 400, "warmup_s": 0.1},
    )
    assert _run(spec, server, prometheus, tmp_path) == 1
    state = load_state(tmp_path / "state.json")
    assert (state.status, state.gate, state.step) == ("rolled_back", "failed", -1)
    assert _weights(tmp_path) == []
    gate = [r for r in audit.read(tmp_path / "audit.jsonl") if r["event"] == "rollout.rollback"][0]
    assert not gate["gate"]["passed"]
    assert [c["status"] for c in gate["gate"]["checks"]] == ["FAIL"]
    queries = RouterQueries(prometheus.url, window="30s")
    assert not queries.rows("ro_slow", "treatment")  # no request ever reached it


def test_blue_green_keeps_the_old_version_while_baking_then_unloads_it(server, prometheus, tmp_path):
    spec = load_rollout_dict(
        {
            "strategy": "bluegreen",
            "experiment": "ro_bg",
            "variant": "main",
            "version": 2,
            "warmup": 3,
            "smoke": {"requests": 10, "max_latency_ratio": 20},
            "bake_s": 3,
            "interval_s": 0.5,
            "window": "5s",
            "checks": [{"metric": "error_rate", "max": 0.0}],
        }
    )
    both_loaded: list[bool] = []
    with ModelControl(server.urls.grpc) as control, Load(server.urls.grpc, "ro_bg") as load:

        def watch(event) -> None:
            if controller.state().phase == "bake":
                both_loaded.append(control.is_ready("bg_model", 1) and control.is_ready("bg_model", 2))

        strategy = BlueGreenStrategy(
            spec, control, server_infer(server.urls.grpc), metrics=RouterQueries(prometheus.url)
        )
        controller = Controller(
            strategy, state_path=tmp_path / "bg.json", audit_path=tmp_path / "audit.jsonl", on_event=watch
        )
        state = controller.run(max_ticks=60)
        time.sleep(0.5)  # requests after the unload still succeed
    assert state.status == "promoted"
    assert both_loaded and all(both_loaded)
    assert load.served > 100 and load.failures == []
    with ModelControl(server.urls.grpc) as control:
        assert control.experiment("ro_bg")[0].variant("main").version == 2
        assert control.is_ready("bg_model", 2) and not control.is_ready("bg_model", 1)
    events = [r["event"] for r in audit.read(tmp_path / "audit.jsonl")]
    assert (
        events.index("bluegreen.load") < events.index("bluegreen.switch") < events.index("bluegreen.unload")
    )
    assert audit.verify(tmp_path / "audit.jsonl").ok


def test_abort_sends_traffic_back(server, prometheus, tmp_path, capsys):
    spec = _spec(tmp_path, "ro_healthy", checks=[])  # whatever weights it has: none go to 0
    assert _run(spec, server, prometheus, tmp_path, "--max-ticks", "1") == 2
    assert main(["rollout", "status", "--state", str(tmp_path / "state.json")]) == 0
    assert "1/3 (10%)" in capsys.readouterr().out
    assert (
        main(
            [
                "rollout",
                "abort",
                "--triton",
                server.urls.grpc,
                "--state",
                str(tmp_path / "state.json"),
                "--audit",
                str(tmp_path / "audit.jsonl"),
            ]
        )
        == 0
    )
    assert load_state(tmp_path / "state.json").status == "aborted"
    with ModelControl(server.urls.grpc) as control:
        assert control.experiment("ro_healthy")[0].weights == {"control": 1.0, "treatment": 0.0}


def _settled_exposures(folder: Path, timeout: float = 30.0) -> list[dict]:
    """Exposure records once their count stops growing (the writers flush off-path)."""
    deadline, last = time.monotonic() + timeout, -1
    while True:
        records, _ = read_records(folder)
        if len(records) == last or time.monotonic() > deadline:
            return records
        last = len(records)
        time.sleep(1.0)


def test_a_significantly_worse_kpi_rolls_back_on_the_real_logs(server, prometheus, tmp_path):
    logs = server.experiment_logs
    spec = _spec(tmp_path, "ro_kpi", steps=[50, 100], checks=[], stats={"log_dir": str(logs)})
    assert _run(spec, server, prometheus, tmp_path, "--max-ticks", "1") == 2  # now at 50%
    with Load(server.urls.grpc, "ro_kpi", limit=3000):
        time.sleep(4)
    exposures = _settled_exposures(logs / "ro_kpi" / "exposures")
    variant_of = {r["unit_id"]: r["variant"] for r in exposures}
    assert set(variant_of.values()) == {"control", "treatment"}
    # The candidate converts far less often: 20% of its users against 60%.
    rng = np.random.default_rng(3)
    rows = ["unit_id,metric,value,time"]
    now = time.time() + 1
    for unit, variant in sorted(variant_of.items()):
        rate = 0.6 if variant == "control" else 0.2
        rows.append(f"{unit},converted,{int(rng.random() < rate)},{now}")
    (tmp_path / "outcomes.csv").write_text("\n".join(rows) + "\n")
    assert main(["outcomes", "add", str(tmp_path / "outcomes.csv"), "--log-dir", str(logs)]) == 0
    assert _run(spec, server, prometheus, tmp_path) == 1
    state = load_state(tmp_path / "state.json")
    assert state.status == "rolled_back"
    rollback = [r for r in audit.read(tmp_path / "audit.jsonl") if r["event"] == "rollout.rollback"][0]
    assert "significantly worse" in json.dumps(rollback)
    with ModelControl(server.urls.grpc) as control:
        assert control.experiment("ro_kpi")[0].weights == {"control": 1.0, "treatment": 0.0}
    assert audit.verify(tmp_path / "audit.jsonl").ok
