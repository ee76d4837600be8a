"""Development certificates: a real chain that OpenSSL accepts, over a real TLS handshake."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tritonab.cli import main
from tritonab.errors import SecurityError
from tritonab.security import DEV_FILES, write_dev_certs


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return write_dev_certs(tmp_path_factory.mktemp("tls") / "certs", ["triton.internal", "10.1.2.3"])


def _load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_files_and_modes(certs):
    assert sorted(p.name for p in certs.folder.iterdir()) == sorted(DEV_FILES)
    for key in (certs.server_key, certs.client_key):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE(certs.ca.stat().st_mode) == 0o644


def test_chain_and_names(certs):
    ca, server, client = _load(certs.ca), _load(certs.server_cert), _load(certs.client_cert)
    server.verify_directly_issued_by(ca)
    client.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost", "triton.internal"]
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1", "::1", "10.1.2.3"]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def _handshake(certs, client_cert: bool) -> str:
    """A mutual-TLS server on loopback (OpenSSL through `ssl`); returns what the client read."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(certs.server_cert, certs.server_key)
    server_ctx.load_verify_locations(certs.ca)
    server_ctx.verify_mode = ssl.CERT_REQUIRED
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with server_ctx.wrap_socket(conn, server_side=True) as tls:
                tls.sendall(tls.getpeercert()["subject"][-1][0][1].encode())
        except (ssl.SSLError, OSError):
            pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        client_ctx = ssl.create_default_context(cafile=str(certs.ca))
        if client_cert:
            client_ctx.load_cert_chain(certs.client_cert, certs.client_key)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with client_ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                return tls.recv(100).decode()
    finally:
        thread.join(timeout=10)
        listener.close()


def test_mutual_tls_handshake(certs):
    assert _handshake(certs, client_cert=True) == "tritonab-client"


def test_mutual_tls_refuses_a_client_without_certificate(certs):
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(certs, client_cert=False)


def test_refusals(tmp_path, certs):
    with pytest.raises(SecurityError, match="already exists"):
        write_dev_certs(certs.folder)
    with pytest.raises(SecurityError, match="neither an IP address nor a DNS name"):
        write_dev_certs(tmp_path / "x", ["bad host"])
    with pytest.raises(SecurityError, match="expected a positive number"):
        write_dev_certs(tmp_path / "y", days=0)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_cli(tmp_path, capsys):
    out = tmp_path / "certs"
    assert main(["certs", "dev", "--out", str(out), "--host", "gpu-1.example"]) == 0
    assert "gpu-1.example" in capsys.readouterr().out
    assert main(["certs", "dev", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert main(["certs", "access-key", str(tmp_path / "op.key")]) == 0
    assert stat.S_IMODE((tmp_path / "op.key").stat().st_mode) == 0o600
