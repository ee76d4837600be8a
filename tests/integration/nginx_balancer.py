"""Debian's nginx (`/usr/sbin/nginx`) as a gRPC load balancer over Triton replicas, for
the fleet tests and the fleet benchmark.

It runs in the foreground (`daemon off`) as a child process in its own session, with a
generated config in a temporary folder, on a free loopback port, and is always stopped.
A request whose replica is gone (refused, reset, or a 502/503/504) is passed to the next
replica (`grpc_next_upstream ... non_idempotent`: Triton inference is safe to repeat);
a replica that failed is left out for `fail_timeout`.

nginx has no active health checks: like a Kubernetes Service, whose endpoints follow the
pods' readiness, the caller takes a replica out (`set_upstreams`) before it stops or
while it starts, and puts it back once it is ready. On a reload the old workers get one
second to finish their requests, then close their client connections; a gRPC client
whose call was cut retries it (UNAVAILABLE) on a new connection.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

NGINX = "/usr/sbin/nginx"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def nginx_config(work: Path, port: int, upstreams: Sequence[str]) -> str:
    """The whole nginx.conf: one gRPC upstream, one HTTP/2 listener."""
    servers = "\n".join(f"        server {u} max_fails=1 fail_timeout=2s;" for u in upstreams)
    user = "user root;" if os.geteuid() == 0 else ""
    return f"""
{user}
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
worker_shutdown_timeout 1s;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}/client_body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    upstream triton_grpc {{
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        location / {{
            grpc_pass grpc://triton_grpc;
            grpc_connect_timeout 1s;
            grpc_read_timeout 60s;
            grpc_next_upstream error timeout http_502 http_503 http_504 non_idempotent;
            grpc_next_upstream_tries {len(upstreams)};
        }}
    }}
}}
"""


class NginxBalancer:
    """`with NginxBalancer(["127.0.0.1:8001", ...]) as lb:` then call `lb.url` over gRPC."""

    def __init__(
        self, upstreams: Sequence[str], *, binary: str = NGINX, startup_timeout: float = 10.0
    ) -> None:
        self.upstreams = list(upstreams)
        self.binary = binary
        self.port = free_port()
        self.startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> NginxBalancer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def error_log(self) -> str:
        if self._tmp is None:
            return ""
        path = Path(self._tmp.name) / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def start(self) -> None:
        """Start nginx and wait until its port accepts connections."""
        assert os.access(self.binary, os.X_OK), f"{self.binary} is missing: apt-get install nginx (make does)"
        self._tmp = tempfile.TemporaryDirectory(prefix="tritonab-nginx-")
        work = Path(self._tmp.name)
        conf = work / "nginx.conf"
        conf.write_text(nginx_config(work, self.port, self.upstreams))
        log = open(work / "stderr.log", "wb")  # noqa: SIM115 (the child keeps it open)
        self._process = subprocess.Popen(
            [self.binary, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            code = self._process.poll()
            if code is not None:
                output = (work / "stderr.log").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"nginx exited ({code}): {output}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not listen in time")

    def _workers(self) -> set[int]:
        """The master's child processes (its workers)."""
        assert self._process is not None
        pid = self._process.pid
        path = Path(f"/proc/{pid}/task/{pid}/children")
        return {int(p) for p in path.read_text().split()} if path.exists() else set()

    def set_upstreams(self, upstreams: Sequence[str], timeout: float = 20.0) -> None:
        """Balance over `upstreams` from now on: rewrite the config, reload (SIGHUP) and wait
        until every old worker has finished its requests and exited."""
        assert self._process is not None and self._tmp is not None
        self.upstreams = list(upstreams)
        work = Path(self._tmp.name)
        (work / "nginx.conf").write_text(nginx_config(work, self.port, self.upstreams))
        old = self._workers()
        self._process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not old & self._workers() and self._workers():
                return
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not reload within {timeout:.0f} s: {self.error_log()[-500:]}")

    def stop(self) -> None:
        """Graceful stop (SIGQUIT), then SIGKILL to its process group; remove the folder."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGQUIT)
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
