"""What a secured server is started with, and what perf_analyzer is (and is not) given."""

from __future__ import annotations

from pathlib import Path

import pytest

from tritonab._transport import TLSFiles
from tritonab.cli import build_parser
from tritonab.cli.serve import server_security
from tritonab.deploy._runtime import find_runtime
from tritonab.deploy.server import TritonServer
from tritonab.errors import PerfError, SecurityError
from tritonab.perf import LoadOptions
from tritonab.perf._analyzer import perf_analyzer_command
from tritonab.security import AccessKey, ServerAccess, ServerTLS, generate_access_key, write_dev_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return write_dev_certs(tmp_path_factory.mktemp("tls") / "certs")


def test_tls_binds_http_and_metrics_to_loopback(certs, tmp_path):
    tls = ServerTLS.from_files(certs.server_cert, certs.server_key, certs.ca, mutual=True)
    server = TritonServer(tmp_path, host="0.0.0.0", tls=tls, http=False)
    argv = server.command(find_runtime())
    assert "--grpc-address=0.0.0.0" in argv
    assert "--http-address=127.0.0.1" in argv and "--metrics-address=127.0.0.1" in argv
    assert "--allow-http=false" in argv and "--grpc-use-ssl-mutual=true" in argv
    assert f"--grpc-root-cert={certs.ca.resolve()}" in argv
    assert server.urls.http == "" and server.urls.metrics.startswith("http://127.0.0.1:")


def test_plaintext_keeps_the_host(tmp_path):
    key = AccessKey(generate_access_key(), "k")
    server = TritonServer(tmp_path, host="0.0.0.0", access=ServerAccess(key))
    argv = server.command(find_runtime())
    assert "--http-address=0.0.0.0" in argv
    assert sum(a.startswith(("--grpc-restricted-protocol=", "--http-restricted-api=")) for a in argv) == 2


def _serve_args(*extra: str):
    return build_parser().parse_args(["serve", "--repository", "r", *extra])


def test_serve_flags(certs, tmp_path, monkeypatch):
    monkeypatch.delenv("TRITONAB_AUTH_KEY", raising=False)
    monkeypatch.delenv("TRITONAB_CLIENT_KEY", raising=False)
    tls, access = server_security(
        _serve_args("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key))
    )
    assert tls is not None and not tls.mutual and access is None
    with pytest.raises(SecurityError, match="--mtls need the server's --tls-cert"):
        server_security(_serve_args("--mtls", "--tls-ca", str(certs.ca)))
    with pytest.raises(SecurityError, match="mutual TLS needs the CA"):
        server_security(
            _serve_args("--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key), "--mtls")
        )
    client = tmp_path / "client.key"
    client.write_text(generate_access_key())
    with pytest.raises(SecurityError, match="give --auth-key-file too"):
        server_security(_serve_args("--client-key-file", str(client)))


def test_perf_analyzer_gets_tls_files_but_never_a_key(certs):
    tls = TLSFiles(str(certs.ca), str(certs.client_cert), str(certs.client_key))
    argv = perf_analyzer_command("pa", "m", LoadOptions("h:1", tls=tls), Path("a.csv"), Path("b.json"))
    assert "--ssl-grpc-use-ssl" in argv
    assert f"--ssl-grpc-certificate-chain-file={certs.client_cert}" in argv
    keyed = LoadOptions("h:1", tls=tls, headers={"triton-grpc-protocol-tritonab-operator-key": "x" * 20})
    with pytest.raises(PerfError, match="access key on its command line"):
        perf_analyzer_command("pa", "m", keyed, Path("a.csv"), Path("b.json"))
    assert "x" * 20 not in repr(keyed)
