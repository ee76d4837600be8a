"""Exposure and payload logging through the real Triton router.

On the session server: `log_ab`, the demo router rebuilt with payload sampling at 1.0
and small segments, logging to the session's log folder. The crash test runs its own
server and kills its whole process group; the residency test loads a router that must
refuse its sink.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from tritonab.deploy.control import ModelControl
from tritonab.ensembles import build_router
from tritonab.ensembles.config import read_config, set_parameter, write_config
from tritonab.errors import ClientError, SpecError
from tritonab.monitoring import audit
from tritonab.monitoring.metrics import log_metrics, router_metrics
from tritonab.monitoring.router_log import LOG_DIR_ENV
from tritonab.monitoring.segments import read_records, recover, segment_files
from tritonab.splitter import load_spec, load_spec_dict

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
N = 60
EXPERIMENT = "log_ab"
VARIANT_MODELS = ("demo_scaler", "demo_logreg", "demo_logreg_pipeline", "demo_gbt")


def _logged_router(repo: Path, **logging) -> None:
    """`log_ab`: the demo experiment with these logging settings."""
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump(mode="json")
    data["logging"] = {**data["logging"], **logging}
    data["name"] = EXPERIMENT
    build_router(load_spec_dict(data), repo)


def _repository(tmp: Path, **logging) -> Path:
    """A repository of the demo's variants and `log_ab` (for a server of its own)."""
    repo = tmp / "repo"
    for name in VARIANT_MODELS:
        shutil.copytree(ROOT / "model_repository" / name, repo / name)
    _logged_router(repo, **logging)
    return repo


def _features(n: int = 1) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 30)).astype(np.float32)


def _infer(client, i: int):
    tensor = grpcclient.InferInput("input", [1, 30], "FP32")
    tensor.set_data_from_numpy(_features())
    return client.infer(EXPERIMENT, [tensor], request_id=f"req-{i}", parameters={"unit_id": f"user-{i % 17}"})


def _wait(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def served(server, repository, log_dir, loaded):
    _logged_router(repository, sample_rate=1.0, rotate_records=25, redact=["input"])
    with loaded(EXPERIMENT):
        client = grpcclient.InferenceServerClient(server.urls.grpc)
        try:
            yield server, client, log_dir
        finally:
            client.close()


def test_every_request_is_one_exposure_and_one_payload_matching_the_metrics(served):
    server, client, logs = served
    for i in range(N):
        _infer(client, i)
    folder = logs / EXPERIMENT
    seen = []

    def settled():
        rows = sum(
            m.rows
            for (_, v), m in router_metrics(server.urls.metrics, EXPERIMENT).items()
            if not v.startswith("_")
        )
        logged = log_metrics(server.urls.metrics, EXPERIMENT)
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
    assert all(m.dropped == 0 for m in log_metrics(server.urls.metrics, EXPERIMENT).values())
    assert json.loads((folder / "spec.json").read_text())["name"] == EXPERIMENT


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
    folder = logs / EXPERIMENT / "exposures"
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


def test_sink_outside_allowed_regions_is_rejected_and_audited(server, repository, log_dir):
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump(mode="json")
    data["logging"]["sink"] = {"region": "us-east-1", "path": None}
    with pytest.raises(
        SpecError, match=r"logging\.sink\.region: region `us-east-1` is not in allowed_regions"
    ):
        load_spec_dict(data)
    # A router config that bypassed `build`: the router itself refuses to load, and audits.
    shutil.copytree(repository / "demo_ab", repository / "bad_sink")
    config = read_config(repository / "bad_sink" / "config.pbtxt")
    config.name = "bad_sink"
    set_parameter(config, "experiment", json.dumps({**data, "name": "bad_sink"}))
    write_config(repository / "bad_sink" / "config.pbtxt", config)
    with ModelControl(server.urls.grpc) as control:
        with pytest.raises(ClientError, match=r"bad_sink.*logging\.sink\.region"):
            control.load("bad_sink")
        assert not control.is_ready("bad_sink")
    records = audit.read(audit.audit_path(log_dir))
    assert records[-1]["event"] == "sink.rejected" and "us-east-1" in records[-1]["reason"]
    assert audit.verify(audit.audit_path(log_dir)).ok


def test_payloads_hold_the_outputs_each_client_received(served):
    """Requests sent together share batches (the router's whole-request path cuts each
    response from its variant call's outputs); every payload holds its own request's."""
    server, client, logs = served
    ids = [f"pay-{i}" for i in range(24)]

    def call(i: int):
        tensor = grpcclient.InferInput("input", [1, 30], "FP32")
        tensor.set_data_from_numpy(_features(i + 1)[-1:])
        return client.infer(EXPERIMENT, [tensor], request_id=ids[i], parameters={"unit_id": f"payer-{i}"})

    with ThreadPoolExecutor(8) as pool:
        answers = dict(zip(ids, pool.map(call, range(len(ids)))))

    def logged():
        payloads, _ = read_records(logs / EXPERIMENT / "payloads")
        mine = {p["request_id"]: p for p in payloads if p["request_id"] in answers}
        return mine if len(mine) == len(ids) else None

    mine = _wait(logged, 30)
    assert mine, "the payloads of the concurrent requests never all reached the log"
    for request_id, answer in answers.items():
        record = mine[request_id]
        assert record["variants"] == [answer.as_numpy("AB_VARIANT").reshape(-1)[0].decode()]
        np.testing.assert_allclose(record["outputs"]["probabilities"], answer.as_numpy("probabilities"))
        assert record["outputs"]["label"] == answer.as_numpy("label").tolist()
