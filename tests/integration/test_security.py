"""TLS, mutual TLS and keyed access on a real tritonserver (its own: started with TLS flags).

One module-scoped server: mutual TLS on gRPC, the operator key on every control API and
a client key on inference, HTTP on loopback only. Certificates come from `certs dev`.
"""

from __future__ import annotations

import http.client
import json
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tritonab._transport import Connection, Endpoint, TLSFiles
from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.deploy.control import ModelControl
from tritonab.deploy.server import TritonServer
from tritonab.errors import ClientError
from tritonab.security import (
    ClientAccess,
    ServerAccess,
    ServerTLS,
    client_access,
    read_access_key,
    write_access_key,
    write_dev_certs,
)

from .conftest import demo_router

pytestmark = pytest.mark.integration
EXPERIMENT = "sec_ab"
X = np.zeros((2, 30), dtype=np.float32)


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    folder = tmp_path_factory.mktemp("security")
    certs = write_dev_certs(folder / "certs")
    write_access_key(folder / "operator.key")
    write_access_key(folder / "client.key")
    return certs, folder / "operator.key", folder / "client.key"


@pytest.fixture(scope="module")
def secure(repository, material):
    certs, operator, client = material
    demo_router(
        repository,
        name=EXPERIMENT,
        variants=[
            {"name": "control", "model": "demo_gbt", "version": 1, "weight": 0.5},
            {"name": "treatment", "model": "demo_logreg", "version": 1, "weight": 0.5},
        ],
    )
    with TritonServer(
        repository,
        host="127.0.0.1",
        model_control_mode="explicit",
        load_models=("demo_gbt", "demo_logreg", EXPERIMENT),
        tls=ServerTLS.from_files(certs.server_cert, certs.server_key, certs.ca, mutual=True),
        access=ServerAccess(read_access_key(operator), read_access_key(client)),
        startup_timeout=180,
    ) as server:
        yield server


def _access(material, *, cert: bool = True, operator: bool = False, client: bool = True) -> ClientAccess:
    certs, operator_key, client_key = material
    return client_access(
        tls_ca=certs.ca,
        tls_cert=certs.client_cert if cert else None,
        tls_key=certs.client_key if cert else None,
        auth_key_file=operator_key if operator else None,
        client_key_file=client_key if client else None,
        environ={},
    )


def test_a_plaintext_grpc_client_fails(secure, material):
    endpoint = Endpoint(secure.urls.grpc, headers=_access(material, operator=True).headers("grpc"))
    with Connection(endpoint) as connection:
        assert not connection.is_live()
        with pytest.raises(ClientError, match="UNAVAILABLE"):
            connection.infer(EXPERIMENT, {"input": X}, parameters={"unit_id": "u"})


def test_a_tls_client_without_a_client_certificate_fails(secure, material):
    endpoint = _access(material, cert=False, operator=True).endpoint(secure.urls.grpc)
    with Connection(endpoint) as connection:
        assert not connection.is_live()
        with pytest.raises(ClientError, match="UNAVAILABLE"):
            connection.infer(EXPERIMENT, {"input": X}, parameters={"unit_id": "u"})


def test_a_client_with_its_certificate_and_key_infers(secure, material):
    with ExperimentClient(_access(material).endpoint(secure.urls.grpc)) as client:
        result = client.infer(EXPERIMENT, {"input": X}, unit_id="user-1")
    assert result.outputs["label"].shape[0] == 2 and result.variant in ("control", "treatment")


def test_inference_without_the_client_key_is_refused(secure, material):
    with ExperimentClient(_access(material, client=False, operator=True).endpoint(secure.urls.grpc)) as c:
        with pytest.raises(ClientError, match="restricted"):
            c.infer(EXPERIMENT, {"input": X}, unit_id="user-1")


def test_model_control_without_the_operator_key_is_refused(secure, material):
    with ModelControl(_access(material).endpoint(secure.urls.grpc)) as control:
        for action in (control.unload, control.load, control.config):
            with pytest.raises(ClientError, match="restricted"):
                action("demo_gbt")
        assert control.is_ready("demo_gbt")  # health stays open, to mTLS clients


def test_set_weights_from_the_command_line(secure, material, monkeypatch, capsys):
    certs, operator, client = material
    monkeypatch.delenv("TRITONAB_AUTH_KEY", raising=False)
    argv = ["experiment", "set-weights", EXPERIMENT, "control=0.8,treatment=0.2", "--url", secure.urls.grpc]
    tls = [
        "--tls-ca",
        str(certs.ca),
        "--tls-cert",
        str(certs.client_cert),
        "--tls-key",
        str(certs.client_key),
    ]
    assert main([*argv, *tls]) != 0  # no operator key
    assert "restricted" in capsys.readouterr().err
    assert main([*argv, *tls, "--auth-key-file", str(operator)]) == 0
    out = capsys.readouterr()
    assert "reloaded with weights control=0.8, treatment=0.2" in out.out
    with ModelControl(_access(material, operator=True).endpoint(secure.urls.grpc)) as control:
        spec, _ = control.experiment(EXPERIMENT)
    assert spec.weights == {"control": 0.8, "treatment": 0.2}
    keys = [read_access_key(p).reveal() for p in (operator, client)]
    for text in (out.out, out.err, secure.log_text()):
        assert not any(key in text for key in keys)


def test_experiment_infer_needs_only_the_client_key(secure, material, capsys):
    certs, _, client = material
    code = main(
        [
            "experiment",
            "infer",
            EXPERIMENT,
            "--url",
            secure.urls.grpc,
            "--unit-id",
            "user-7",
            "--input",
            f"input={json.dumps(X[:1].tolist())}",
            "--tls-ca",
            str(certs.ca),
            "--tls-cert",
            str(certs.client_cert),
            "--tls-key",
            str(certs.client_key),
            "--client-key-file",
            str(client),
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["variants"][0] in ("control", "treatment")


def test_http_listens_on_loopback_and_needs_the_keys_too(secure, material):
    assert secure.urls.http.startswith("127.0.0.1:")
    with urllib.request.urlopen(f"http://{secure.urls.http}/v2/health/ready", timeout=10) as response:
        assert response.status == 200
    with ModelControl(Endpoint(secure.urls.http, "http")) as control:
        with pytest.raises(ClientError, match="403"):
            control.unload("demo_gbt")
    http_access = _access(material, cert=False)
    endpoint = Endpoint(secure.urls.http, "http", headers=http_access.headers("http"))
    with ExperimentClient(endpoint) as client:
        assert client.infer(EXPERIMENT, {"input": X}, unit_id="user-2").variant


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


class PeakRSS(threading.Thread):
    """Samples a process's resident memory every 20 ms (a freed buffer leaves no trace after)."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, _rss_mb(pid), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, _rss_mb(self.pid))

    def __enter__(self) -> PeakRSS:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.done.set()
        self.join()


def test_the_client_key_keeps_oversized_json_off_the_server(secure):
    """Triton 2.51's HTTP frontend allocates a JSON input's declared shape before reading
    its data (2**27 FP32: +512 MiB); without the client key the request is refused first."""
    host, port = secure.urls.http.split(":")
    body = json.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 1 << 27], "data": [0.0] * 30}]}
    ).encode()
    before = _rss_mb(secure.pid)
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        with PeakRSS(secure.pid) as watch:
            connection.request("POST", f"/v2/models/{EXPERIMENT}/infer", body=body)
            response = connection.getresponse()
            assert response.status == 403 and b"tritonab-client-key" in response.read()
    finally:
        connection.close()
    assert watch.peak - before < 128, f"peak {watch.peak:.0f} MiB, before {before:.0f} MiB"


def test_without_http_readiness_comes_from_metrics(repository, material):
    """`--no-http`: no HTTP socket at all, and the server is still found ready."""
    certs, _, _ = material
    tls = ServerTLS.from_files(certs.server_cert, certs.server_key)
    with TritonServer(
        repository, model_control_mode="explicit", load_models=("identity",), tls=tls, http=False
    ) as server:
        assert server.urls.http == ""
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{server.http_port}/v2/health/ready", timeout=5)
        endpoint = Endpoint(server.urls.grpc, tls=TLSFiles(str(certs.ca)))
        with Connection(endpoint) as connection:
            out = connection.infer("identity", {"INPUT0": np.ones((1, 4), np.float32)})
        assert out["OUTPUT0"].tolist() == [[1.0] * 4]


def test_perf_measures_over_mutual_tls_with_both_keys(secure, material, tmp_path, capsys):
    """The asyncio gRPC client (the load generator) over mutual TLS; statistics need the
    operator key, inference the client key."""
    certs, operator, client = material
    argv = ["perf", "run", "demo_gbt", "--url", secure.urls.grpc, "--backend", "builtin"]
    argv += ["--concurrency", "1", "-p", "300", "-r", "3", "--out", str(tmp_path)]
    argv += [
        "--tls-ca",
        str(certs.ca),
        "--tls-cert",
        str(certs.client_cert),
        "--tls-key",
        str(certs.client_key),
    ]
    assert main([*argv, "--client-key-file", str(client)]) == 2  # statistics refused
    assert "restricted" in capsys.readouterr().err
    assert main([*argv, "--client-key-file", str(client), "--auth-key-file", str(operator)]) == 0
    record = json.loads((tmp_path / "perf.json").read_text())["records"][0]
    assert record["count"] > 0 and not record["errors"]


def test_serve_with_mutual_tls_and_keys(repository, material, tmp_path):
    """`tritonab serve --tls-cert ... --tls-ca ... --mtls --auth-key-file K --host 0.0.0.0`:
    gRPC on every interface behind mutual TLS, HTTP and metrics on loopback only."""
    import shutil
    import signal
    import subprocess
    import sys

    from tritonab.deploy.server import free_port

    certs, operator, client = material
    repo = tmp_path / "repo"
    shutil.copytree(repository / "identity", repo / "identity")
    ports = [str(free_port()) for _ in range(3)]
    argv = [sys.executable, "-m", "tritonab", "serve", "--repository", str(repo), "--host", "0.0.0.0"]
    argv += ["--http-port", ports[0], "--grpc-port", ports[1], "--metrics-port", ports[2]]
    argv += ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    argv += ["--tls-ca", str(certs.ca), "--mtls", "--auth-key-file", str(operator)]
    argv += ["--client-key-file", str(client)]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = process.stdout.readline()
        assert f"http: http://127.0.0.1:{ports[0]}" in line and f"0.0.0.0:{ports[1]} (TLS)" in line, line
        listening = Path("/proc/net/tcp").read_text() + Path("/proc/net/tcp6").read_text()
        for port in (ports[0], ports[2]):  # HTTP and metrics on 127.0.0.1 only
            assert f"0100007F:{int(port):04X}" in listening
            assert f"00000000:{int(port):04X}" not in listening
        wildcard = (f"00000000:{int(ports[1]):04X}", f"{'0' * 32}:{int(ports[1]):04X}")
        assert any(w in listening for w in wildcard)  # gRPC on every interface (IPv4 or dual stack)
        endpoint = _access(material).endpoint(f"localhost:{ports[1]}")
        with Connection(endpoint) as connection:
            out = connection.infer("identity", {"INPUT0": np.ones((1, 4), np.float32)})
        assert out["OUTPUT0"].tolist() == [[1.0] * 4]
        keys = [read_access_key(p).reveal() for p in (operator, client)]
        process.send_signal(signal.SIGINT)
        output = line + process.communicate(timeout=15)[0]
        assert process.returncode == 0 and not any(key in output for key in keys)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
