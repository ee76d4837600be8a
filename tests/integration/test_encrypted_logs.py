"""Logs encrypted at rest and residency, through the real Triton router.

A server of its own (the session server's environment has no keys or policy): the demo
variants and two routers. `enc_ab` logs exposures and payloads with `logging.encrypt`
under `TRITONAB_LOG_KEY_FILE`; `far_ab` declares a sink region whose storage is not
where the log folder really is, so its load is refused and the refusal is audited in
the keyed audit chain.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from tritonab.deploy.control import ModelControl
from tritonab.deploy.server import TritonServer
from tritonab.ensembles import build_router
from tritonab.errors import ClientError
from tritonab.monitoring import audit
from tritonab.monitoring.router_log import LOG_DIR_ENV
from tritonab.monitoring.segments import read_records
from tritonab.security import AUDIT_KEY_ENV, LOG_KEY_ENV, POLICY_ENV, generate_key
from tritonab.splitter import load_spec, load_spec_dict

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VARIANTS = ("demo_scaler", "demo_logreg", "demo_logreg_pipeline", "demo_gbt")
N = 12


def _router(repo: Path, name: str, region: str) -> None:
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump(mode="json")
    data["name"] = name
    data["logging"] = {**data["logging"], "encrypt": True, "sample_rate": 1.0, "sink": {"region": region}}
    build_router(load_spec_dict(data), repo)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("at-rest")
    repo = root / "repo"
    for name in VARIANTS:
        shutil.copytree(ROOT / "model_repository" / name, repo / name)
    _router(repo, "enc_ab", "local")
    _router(repo, "far_ab", "eu-west-1")
    (root / "local").mkdir()
    (root / "eu").mkdir()
    policy = root / "regions.yaml"
    policy.write_text("regions:\n  local: {roots: [local]}\n  eu-west-1: {roots: [eu]}\n")
    log_key = generate_key(root / "logs.key")
    audit_key = generate_key(root / "audit.key", purpose="audit")
    logs = root / "local" / "logs"
    env = {
        LOG_DIR_ENV: str(logs),
        LOG_KEY_ENV: str(root / "logs.key"),
        AUDIT_KEY_ENV: str(root / "audit.key"),
        POLICY_ENV: str(policy),
    }
    server = TritonServer(
        repo, model_control_mode="explicit", load_models=(*VARIANTS, "enc_ab"), env=env, startup_timeout=180
    )
    with server:
        client = grpcclient.InferenceServerClient(server.urls.grpc)
        try:
            features = np.random.default_rng(1).normal(size=(1, 30)).astype(np.float32)
            for i in range(N):
                tensor = grpcclient.InferInput("input", [1, 30], "FP32")
                tensor.set_data_from_numpy(features)
                client.infer("enc_ab", [tensor], request_id=f"req-{i}", parameters={"unit_id": f"secret-{i}"})
            with ModelControl(server.urls.grpc) as control:
                try:
                    control.load("far_ab")
                    refused = ""
                except ClientError as exc:
                    refused = str(exc)
        finally:
            client.close()
    yield logs, log_key, audit_key, refused  # the server stopped: every segment sealed


def test_router_logs_are_encrypted_and_read_back_in_memory(served):
    logs, log_key, _audit_key, _refused = served
    folder = logs / "enc_ab"
    files = [p for p in folder.rglob("*") if p.is_file() and p.name != "spec.json"]
    assert files and all(p.name.endswith(".jsonl.enc") for p in files if "_drops" not in p.parts)
    assert not any(b"secret-" in p.read_bytes() for p in files)
    exposures, report = read_records(folder / "exposures", key=log_key)
    payloads, _ = read_records(folder / "payloads", key=log_key)
    assert sorted(r["unit_id"] for r in exposures) == sorted(f"secret-{i}" for i in range(N))
    assert len(payloads) == N and not report.torn


def test_a_sink_outside_its_region_is_refused_and_audited_under_the_key(served):
    logs, _log_key, audit_key, refused = served
    assert "far_ab" in refused and "region `eu-west-1` may write only under" in refused
    assert not (logs / "far_ab").exists()
    records = audit.read(audit.audit_path(logs))
    refusal = [r for r in records if r["event"] == "residency.refused"]
    assert refusal and refusal[-1]["region"] == "eu-west-1" and refusal[-1]["key_id"] == audit_key.id
    assert audit.verify(audit.audit_path(logs), key=audit_key).ok
