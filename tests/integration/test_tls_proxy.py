"""The TLS proxy `tritonab deploy render` ships (its nginx.conf, built by `nginx_config`)
run for real: Debian's nginx, a non-daemon child on a free loopback port with development
certificates, in front of the session Triton's HTTP port. The kubelet's way (HTTPS, no
client certificate) reaches the health endpoints; everything else needs the client
certificate under mutual TLS; tritonclient (through `_transport`) infers through it."""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tritonab._transport import Connection, Endpoint, TLSFiles
from tritonab.deploy.k8s import TLS, nginx_config
from tritonab.deploy.server import TritonServer, free_port
from tritonab.security import DevCerts, write_dev_certs

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not os.access("/usr/sbin/nginx", os.X_OK), reason="Debian's nginx is not installed"),
]


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> tuple[DevCerts, Path]:
    """Dev certificates, and the same laid out as the `kubernetes.io/tls` Secret."""
    dev = write_dev_certs(tmp_path_factory.mktemp("dev") / "certs")
    secret = tmp_path_factory.mktemp("secret")
    for source, name in ((dev.server_cert, "tls.crt"), (dev.server_key, "tls.key"), (dev.ca, "ca.crt")):
        (secret / name).write_bytes(source.read_bytes())
    return dev, secret


@contextlib.contextmanager
def proxy(tls: TLS, server: TritonServer, secret: Path, work: Path) -> Iterator[int]:
    """nginx with the rendered config in front of `server`'s HTTP port; always stopped."""
    port = free_port()
    conf = work / "nginx.conf"
    conf.write_text(
        nginx_config(
            tls, listen_port=port, upstream_port=server.http_port, tls_dir=str(secret), temp_dir=str(work)
        )
    )
    log = open(work / "stderr.log", "wb")  # noqa: SIM115 (the child keeps it open)
    process = subprocess.Popen(
        ["/usr/sbin/nginx", "-c", str(conf), "-p", str(work), "-e", "stderr"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    try:
        deadline = time.monotonic() + 15
        while not _answers(port):
            assert process.poll() is None, (work / "stderr.log").read_text(errors="replace")
            assert time.monotonic() < deadline, "nginx did not listen in time"
            time.sleep(0.05)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGQUIT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


def _answers(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
        return True
    return False


def _status(url: str, context: ssl.SSLContext | None = None) -> int:
    """The HTTP(S) status of a GET (errors are statuses too)."""
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _get(port: int, path: str, context: ssl.SSLContext) -> int:
    """The HTTPS status of a GET through the proxy."""
    return _status(f"https://127.0.0.1:{port}{path}", context)


def _context(dev: DevCerts, *, client: bool) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(dev.ca))
    if client:
        context.load_cert_chain(str(dev.client_cert), str(dev.client_key))
    return context


def test_mutual_tls_proxy_in_front_of_triton(server, certs, features, tmp_path):
    dev, secret = certs
    with proxy(TLS(secret="s", mutual=True), server, secret, tmp_path) as port:
        kubelet = ssl.create_default_context()
        kubelet.check_hostname, kubelet.verify_mode = False, ssl.CERT_NONE  # kubelet does not verify
        # Readiness is Triton's own answer, passed through (the session server may hold a
        # model that failed to load, and strict readiness then says 400).
        ready = _status(f"http://{server.urls.http}/v2/health/ready")  # straight to Triton
        assert _get(port, "/v2/health/ready", kubelet) == ready
        assert _get(port, "/v2/health/live", kubelet) == 200
        assert _get(port, "/tritonab/proxy/live", kubelet) == 200
        anonymous = _context(dev, client=False)
        assert _get(port, "/v2/health/ready", anonymous) == ready
        assert _get(port, "/v2", anonymous) == 403
        assert _get(port, "/v2/models/demo_ab/ready", anonymous) == 403
        assert _get(port, "/v2", _context(dev, client=True)) == 200
        files = TLSFiles(str(dev.ca), str(dev.client_cert), str(dev.client_key))
        connection = Connection(Endpoint(f"127.0.0.1:{port}", "http", tls=files))
        try:
            assert connection.is_model_ready("demo_ab")
            batch = {"input": features[:4]}
            routed = connection.infer("demo_ab", batch, parameters={"unit_id": "tls-proxy"})
            direct = Connection(Endpoint(server.urls.http, "http"))
            try:  # the same request to Triton's own HTTP port: the same unit, the same answer
                expected = direct.infer("demo_ab", batch, parameters={"unit_id": "tls-proxy"})
            finally:
                direct.close()
            assert set(routed) == set(expected) and "AB_VARIANT" in routed
            for name, value in expected.items():
                np.testing.assert_array_equal(routed[name], value)
        finally:
            connection.close()
        # Without the client certificate, tritonclient gets the 403 too (readiness: False).
        unsigned = Connection(Endpoint(f"127.0.0.1:{port}", "http", tls=TLSFiles(str(dev.ca))))
        try:
            assert unsigned.is_model_ready("demo_ab") is False
        finally:
            unsigned.close()


def test_one_way_tls_proxy_needs_no_client_certificate(server, certs, tmp_path):
    dev, secret = certs
    with proxy(TLS(secret="s"), server, secret, tmp_path) as port:
        assert _get(port, "/v2", _context(dev, client=False)) == 200
        # A client that does not trust the CA is refused by its own TLS check.
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(port, "/v2/health/ready", ssl.create_default_context())
