"""Exposure and payload logging through the real Triton router.

One server for the module (a copy of `model_repository/` whose router is rebuilt with
payload sampling at 1.0 and small segments); the crash test runs its own server and
kills its whole process group; the residency test starts a server that must refuse
the router.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from tritonab.ensembles import build_router
from tritonab.ensembles.config import read_config, set_parameter, write_config
from tritonab.errors import ServerError, SpecError
from tritonab.monitoring import audit
from tritonab.monitoring.metrics import log_metrics, router_metrics
from tritonab.monitoring.router_log import LOG_DIR_ENV
from tritonab.monitoring.segments import read_records, recover, segment_files
from tritonab.splitter import load_spec, load_spec_dict

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 60


def _repository(tmp: Path, **logging) -> Path:
    repo = tmp / "repo"
    shutil.copytree(ROOT / "model_repository", repo)
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump(mode="json")
    data["logging"] = {**data["logging"], **logging}
    build_router(load_spec_dict(data), repo)
    return repo


def _features(n: int = 1) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 30)).astype(np.float32)


def _infer(client, i: int):
    tensor = grpcclient.InferInput("input", [1, 30], "FP32")
    tensor.set_data_from_numpy(_features())
    return client.infer("demo_ab", [tensor], request_id=f"req-{i}", parameters={"unit_id": f"user-{i % 17}"})


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from tritonab.deploy.server import TritonServer

    tmp = tmp_path_factory.mktemp("logging")
    repo = _repository(tmp, sample_rate=1.0, rotate_records=25, redact=["input"])
    logs = tmp / "logs"
    with TritonServer(repo, env={LOG_DIR_ENV: str(logs)}, startup_timeout=180) as server:
        client = grpcclient.InferenceServerClient(server.urls.grpc)
        try:
            yield server, client, logs
        finally:
            client.close()


def test_every_request_is_one_exposure_and_one_payload_matching_the_metrics(served):
    server, client, logs = served
    for i in range(N):
        _infer(client, i)
    folder = logs / "demo_ab"
    seen = []

    def settled():
        rows = sum(
            m.rows
            for (_, v), m in router_metrics(server.urls.metrics, "demo_ab").items()
            if not v.startswith("_")
        )
        logged = log_metrics(server.urls.metrics, "demo_ab")
        counts = {s: m.records for (_, s), m in logged.items()}
        exposures, _ = read_records(folder / "exposures")
        payloads, _ = read_records(folder / "payloads")
        state = (rows, counts.get("exposures"), counts.get("payloads"), len(exposures), len(payloads))
        seen.append(state)
        return state if state == (N, N, N, N, N) else None

    assert _wait(settled, 60), (
        f"(routed rows, exposure/payload records in the metrics, on disk) never all equalled "
        f"{N}: last seen {seen[-1]}"
    )
    exposures, report = read_records(folder / "exposures")
    assert len(report.sealed) >= 2  # rotated every 25 records
    assert sorted(r["request_id"] for r in exposures) == sorted(f"req-{i}" for i in range(N))
    assert {r["variant"] for r in exposures} <= {"control", "treatment"}
    assert all(r["region"] == "local" and r["latency_us"] > 0 and r["ok"] for r in exposures)
    payloads, _ = read_records(folder / "payloads")
    assert all(p["inputs"]["input"] == "[REDACTED]" for p in payloads)
    raw = b"".join(p.read_bytes() for p in (folder / "payloads").glob("*.jsonl"))
    assert str(float(_features()[0, 0]))[:8].encode() not in raw
    assert all(m.dropped == 0 for m in log_metrics(server.urls.metrics, "demo_ab").values())
    assert json.loads((folder / "spec.json").read_text())["name"] == "demo_ab"


def test_sigkill_keeps_finished_segments_and_loses_at_most_the_unflushed_tail(tmp_path):
    from tritonab.deploy.server import TritonServer

    repo = _repository(tmp_path, sample_rate=0.0, rotate_records=20)
    logs = tmp_path / "logs"
    server = TritonServer(repo, env={LOG_DIR_ENV: str(logs)}, startup_timeout=180)
    server.start()
    done, stop = [], threading.Event()
    try:
        client = grpcclient.InferenceServerClient(server.urls.grpc)

        def load():
            for i in range(2000):  # bounded; stopped by the kill
                if stop.is_set():
                    return
                try:
                    _infer(client, i)
                    done.append(i)
                except Exception:
                    return

        worker = threading.Thread(target=load)
        worker.start()
        assert _wait(lambda: len(done) >= 90, 60)
        os.killpg(server.pid, signal.SIGKILL)
        stop.set()
        worker.join(30)
    finally:
        server.stop()
    folder = logs / "demo_ab" / "exposures"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = segment_files(folder)
    assert found.sealed and not (set(found.torn) & set(found.sealed))
    for path in found.sealed:  # every finished segment is whole
        assert len([json.loads(line) for line in path.read_text().splitlines()]) == 20

    def recovered():  # the killed stubs may take a moment to die (pids are in the names)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            recover(folder)
            return not segment_files(folder).unsealed

    assert _wait(recovered)
    records, report = read_records(folder)
    assert not report.unsealed and not report.torn
    got = {r["request_id"] for r in records}
    lost = {f"req-{i}" for i in done} - got
    print(f"answered {len(done)}, logged {len(got)}, lost (unflushed tail) {len(lost)}")
    assert len(lost) <= 5
    assert got <= {f"req-{i}" for i in range(len(done) + 2)}


def test_sink_outside_allowed_regions_is_rejected_and_audited(tmp_path):
    from tritonab.deploy.server import TritonServer

    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump(mode="json")
    data["logging"]["sink"] = {"region": "us-east-1", "path": None}
    with pytest.raises(
        SpecError, match=r"logging\.sink\.region: region `us-east-1` is not in allowed_regions"
    ):
        load_spec_dict(data)
    # A router config that bypassed `build`: the router itself refuses to load, and audits.
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "model_repository", repo)
    config = read_config(repo / "demo_ab" / "config.pbtxt")
    set_parameter(config, "experiment", json.dumps(data))
    write_config(repo / "demo_ab" / "config.pbtxt", config)
    logs = tmp_path / "logs"
    with pytest.raises(ServerError, match=r"demo_ab.*logging\.sink\.region"):
        TritonServer(repo, env={LOG_DIR_ENV: str(logs)}, startup_timeout=120).start()
    records = audit.read(audit.audit_path(logs))
    assert [r["event"] for r in records] == ["sink.rejected"]
    assert "us-east-1" in records[0]["reason"] and audit.verify(audit.audit_path(logs)).ok
