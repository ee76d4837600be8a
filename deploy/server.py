"""The embedded Triton: the real `tritonserver` shipped in the `nvidia-pytriton` wheel.

`TritonServer` starts the binary on loopback ports, waits until it is ready,
and stops it (and every Python-backend stub under it) on exit. Failures name
the model and Triton's own reason, read from its log.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Literal, TextIO

from tritonab.deploy._runtime import TritonRuntime, find_runtime
from tritonab.errors import ServerError

if TYPE_CHECKING:
    from tritonab.security import ServerAccess, ServerTLS

ControlMode = Literal["none", "explicit", "poll"]

_START_ATTEMPTS = 2
_FAILED_LOAD = re.compile(r"failed to load '(?P<model>[^']+)'(?: version \d+)?: (?P<reason>.+)$")
_TABLE_ROW = re.compile(r"^\|\s*(?P<model>\S+)\s*\|\s*\d+\s*\|\s*UNAVAILABLE: (?P<reason>.+?)\s*\|$")
_PORT_IN_USE = re.compile(r"Socket '(?P<addr>[^']+)' already in use")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (bind to 0, read it back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _port_busy(host: str, port: int) -> bool:
    """Whether a server could not listen on `host:port` now. Like Triton, the probe sets
    SO_REUSEADDR, so connections of a stopped server still in TIME_WAIT (a replica
    restarted on its own ports) do not count, while a listener does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


@dataclass(frozen=True)
class ServerURLs:
    """Where a running server listens."""

    http: str
    grpc: str
    metrics: str


class TritonServer:
    """A real `tritonserver` process, as a context manager.

    Example:
        >>> with TritonServer("model_repository") as server:  # doctest: +SKIP
        ...     print(server.urls.grpc)

    Args:
        repository: the model repository folder.
        host: address every endpoint binds to (loopback by default).
        http_port, grpc_port, metrics_port: ports; 0 picks a free one.
        model_control_mode: `none` (load all at start), `explicit` (load/unload via
            the API; `load_models` are loaded at start) or `poll`.
        load_models: in explicit mode, the models loaded at start (default: all, `*`);
            the others wait for a `load` through the API.
        backend_directory: a backend folder of your own, holding `python/` (a link to
            `find_runtime().backend_dir / "python"`) beside any other backend; default:
            the wheel's Python backend alone.
        log_dir: where `tritonserver.log` goes (a temporary folder by default).
        env: extra environment for the server and its Python-backend stubs.
        startup_timeout: seconds to wait for readiness.
        extra_args: passed to `tritonserver` as they are.
        tls: TLS (or mutual TLS) on the gRPC endpoint. Triton's HTTP endpoint has no
            TLS, so with `tls` HTTP and metrics bind to loopback whatever `host` is.
        access: keys Triton asks for (restricted protocols on gRPC and HTTP). The
            keys go on Triton's command line: see `docs/security.md`.
        http: serve HTTP at all (without it, readiness is read from the metrics
            endpoint, which Triton starts after its other endpoints).
    """

    def __init__(
        self,
        repository: str | os.PathLike[str],
        *,
        host: str = "127.0.0.1",
        http_port: int = 0,
        grpc_port: int = 0,
        metrics_port: int = 0,
        model_control_mode: ControlMode = "none",
        log_dir: str | os.PathLike[str] | None = None,
        env: dict[str, str] | None = None,
        startup_timeout: float = 120.0,
        extra_args: tuple[str, ...] = (),
        load_models: Sequence[str] = ("*",),
        backend_directory: str | os.PathLike[str] | None = None,
        tls: ServerTLS | None = None,
        access: ServerAccess | None = None,
        http: bool = True,
    ) -> None:
        self.repository = Path(repository).resolve()
        self.host = host
        self.http_port = http_port or free_port(host)
        self.grpc_port = grpc_port or free_port(host)
        self.metrics_port = metrics_port or free_port(host)
        self.model_control_mode = model_control_mode
        self._log_dir = Path(log_dir) if log_dir else None
        self._env = dict(env or {})
        self.startup_timeout = startup_timeout
        self.extra_args = tuple(extra_args)
        self.load_models = tuple(load_models)
        self.backend_directory = Path(backend_directory) if backend_directory else None
        self._process: subprocess.Popen[bytes] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self.log_path: Path | None = None
        self._shm_prefix = f"tritonab_{os.getpid()}_{self.grpc_port}_"
        self.tls = tls
        self.access = access
        self.http = http
        # Plaintext endpoints never face the network beside a TLS one.
        self.local_host = "127.0.0.1" if tls is not None else host

    @property
    def urls(self) -> ServerURLs:
        """`host:port` for gRPC (tritonclient style) and `http://` URLs for HTTP and metrics."""
        return ServerURLs(
            http=f"{self.local_host}:{self.http_port}" if self.http else "",
            grpc=f"{self.host}:{self.grpc_port}",
            metrics=f"http://{self.local_host}:{self.metrics_port}/metrics",
        )

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process else None

    def __enter__(self) -> TritonServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def command(self, runtime: TritonRuntime) -> list[str]:
        """The `tritonserver` command line (with `access`, it holds the keys: never log it)."""
        args = [
            str(runtime.binary),
            f"--model-repository={self.repository}",
            f"--backend-directory={self.backend_directory or runtime.backend_dir}",
            f"--cache-directory={runtime.cache_dir}",
            f"--allow-http={str(self.http).lower()}",
            f"--http-address={self.local_host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.local_host}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            "--exit-on-error=true",
            "--strict-readiness=true",
            "--exit-timeout-secs=5",
            "--log-verbose=0",
            # Python-backend shared-memory regions are named from this prefix, so the
            # regions a killed server leaves in /dev/shm can be found and removed.
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
        ]
        if self.model_control_mode == "explicit":
            args += ["--model-control-mode=explicit", *(f"--load-model={m}" for m in self.load_models)]
        elif self.model_control_mode == "poll":
            args += ["--model-control-mode=poll", "--repository-poll-secs=2"]
        if self.tls is not None:
            args += self.tls.triton_args()
        if self.access is not None:
            args += self.access.triton_args(http=self.http)
        return args + list(self.extra_args)

    def start(self) -> None:
        """Start the server and wait until it is ready.

        Raises:
            ServerError: a port is busy, a model failed to load (named, with Triton's
                reason), the repository is missing, or readiness timed out.
        """
        if not self.repository.is_dir():
            raise ServerError(f"model repository `{self.repository}` is not a folder")
        for label, host, port in (
            ("HTTP", self.local_host, self.http_port if self.http else 0),
            ("gRPC", self.host, self.grpc_port),
            ("metrics", self.local_host, self.metrics_port),
        ):
            if port and _port_busy(host, port):
                raise ServerError(f"{label} port `{host}:{port}` is already in use")
        runtime = find_runtime()
        if self._log_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="tritonab-server-")
            log_dir = Path(self._tmp.name)
        else:
            log_dir = self._log_dir
            log_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = log_dir / "tritonserver.log"
        env = runtime.environment(os.environ)
        env.update(self._env)
        try:
            for attempt in range(1, _START_ATTEMPTS + 1):
                self._launch(runtime, env)
                try:
                    self._wait_ready()
                    return
                except ServerError:
                    assert self._process is not None
                    # Killed by a signal while starting (seen: an abort in the Python
                    # backend's shared-memory setup on an overloaded machine) is retried
                    # once; a model that fails to load exits with a code and is not.
                    if (self._process.poll() or 0) >= 0 or attempt == _START_ATTEMPTS:
                        raise
                    self._kill()
        except BaseException:
            self.stop()
            raise

    def _launch(self, runtime: TritonRuntime, env: dict[str, str]) -> None:
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            # A new session, so the whole tree (server + stubs) can be signalled at once.
            self._process = subprocess.Popen(
                self.command(runtime),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def _wait_ready(self) -> None:
        assert self._process is not None
        # Without HTTP, the metrics endpoint answering means every endpoint is up:
        # Triton loads the startup models (exiting on an error), then starts gRPC,
        # HTTP and metrics in that order.
        probe = (
            f"http://{self.local_host}:{self.http_port}/v2/health/ready"
            if self.http
            else f"http://{self.local_host}:{self.metrics_port}/metrics"
        )
        wait_until_ready(
            probe,
            self._process,
            self.startup_timeout,
            self._failure_message,
            f"tritonserver was not ready after {self.startup_timeout:.0f} s; log: `{self.log_path}`",
        )

    @property
    def exit_code(self) -> int | None:
        """The server's exit status once it has exited by itself (negative: killed by that
        signal); None while it runs or after `stop`."""
        return None if self._process is None else self._process.poll()

    def log_text(self) -> str:
        """Everything the server has logged so far."""
        if self.log_path is None or not self.log_path.exists():
            return ""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _failure_message(self, code: int) -> str:
        log = self.log_text()
        failures: dict[str, str] = {}
        for line in log.splitlines():
            match = _FAILED_LOAD.search(line) or _TABLE_ROW.match(line.strip())
            if match:
                failures.setdefault(match["model"], match["reason"].strip())
        if failures:
            detail = "; ".join(f"model `{m}` failed to load: {r}" for m, r in failures.items())
            return f"tritonserver exited ({code}): {detail}"
        busy = _PORT_IN_USE.search(log)
        if busy:
            return f"tritonserver exited ({code}): address `{busy['addr']}` is already in use"
        tail = "\n".join(log.strip().splitlines()[-5:])
        return f"tritonserver exited ({code}); last log lines:\n{tail}"

    def stop(self, timeout: float = 8.0) -> None:
        """Stop the server and its stubs: SIGINT, then SIGKILL to the process group."""
        self._kill(timeout)
        if self._tmp is not None and self._log_dir is None:
            # Keep the log readable for error messages until the very end.
            self._tmp.cleanup()
            self._tmp = None

    def _kill(self, timeout: float = 8.0) -> None:
        """Stop the process group and remove shared-memory regions it left behind."""
        process, self._process = self._process, None
        if process is not None:
            stop_process_group(process, timeout)
        for region in Path("/dev/shm").glob(f"{self._shm_prefix}*"):
            with contextlib.suppress(OSError):
                region.unlink()

    def wait(self) -> int:
        """Block until the server exits by itself; returns its exit code."""
        assert self._process is not None
        return self._process.wait()


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float, on_exit: Callable[[int], str], on_timeout: str
) -> None:
    """Poll `url` until it answers 200; a process that exits first raises with
    `on_exit(code)`, a timeout with `on_timeout`.

    Raises:
        ServerError: the process exited, or never became ready.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = process.poll()
        if code is not None:
            raise ServerError(on_exit(code))
        with contextlib.suppress(urllib.error.URLError, OSError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.1)
    raise ServerError(on_timeout)


def stop_process_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Graceful SIGINT to the server, then SIGKILL to whatever of its group remains."""
    pgid = process.pid
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    # Stubs outlive a killed server; the group kill takes them too.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


def main_loop(server: TritonServer, *, out: TextIO = sys.stdout) -> int:
    """Run `server` until SIGINT/SIGTERM or until it exits; used by `tritonab serve`."""
    stop: dict[str, int | None] = {"signal": None}

    def _handler(signum: int, _frame: FrameType | None) -> None:
        stop["signal"] = signum

    previous = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with server:
            urls = server.urls
            http = f"http://{urls.http}" if urls.http else "off"
            grpc = f"{urls.grpc} (TLS)" if server.tls is not None else urls.grpc
            print(
                f"Triton ready  http: {http}  grpc: {grpc}  metrics: {urls.metrics}",
                file=out,
                flush=True,
            )
            assert server._process is not None
            while stop["signal"] is None and server._process.poll() is None:
                time.sleep(0.2)
            if stop["signal"] is None:
                print(f"tritonserver exited ({server._process.returncode})", file=out)
                return 1
            print("stopping tritonserver ...", file=out, flush=True)
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
