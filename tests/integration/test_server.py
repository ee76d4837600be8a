"""The embedded server: `tritonab serve`, clean shutdown, and start-up failures."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tritonab.deploy.control import ModelControl
from tritonab.deploy.server import TritonServer, free_port
from tritonab.errors import ClientError, ServerError

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


def stub_pids() -> set[int]:
    """Pids of every running Python-backend stub on this machine."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if "triton_python_backend_stub" in (entry / "cmdline").read_bytes().decode(errors="ignore"):
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


@pytest.fixture
def small_repo(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "model_repository" / "demo_scaler", repo / "demo_scaler")
    return repo


def test_serve_prints_urls_and_stops_cleanly_on_sigint(small_repo):
    ports = [str(free_port()) for _ in range(3)]
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tritonab",
            "serve",
            "--repository",
            str(small_repo),
            "--http-port",
            ports[0],
            "--grpc-port",
            ports[1],
            "--metrics-port",
            ports[2],
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert "Triton ready" in line and f"127.0.0.1:{ports[1]}" in line
        with socket.create_connection(("127.0.0.1", int(ports[0])), timeout=5):
            pass
        server_pids = children_of(process.pid)
        stubs = {s for pid in server_pids for s in children_of(pid)}
        assert stubs, "the model's Python-backend stub should be running"
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert time.monotonic() - started < 10
        time.sleep(0.2)
        assert not any(alive(p) for p in server_pids | stubs)
    finally:
        if process.poll() is None:
            process.kill()


def test_the_context_manager_leaves_no_process_behind(small_repo):
    with TritonServer(small_repo) as server:
        pid = server.pid
        stubs = children_of(pid) & stub_pids()
        assert stubs
        # Mode `none`: model control (and so live weights) needs explicit mode.
        with (
            ModelControl(server.urls.grpc) as control,
            pytest.raises(ClientError, match="loading model `demo_scaler` failed: .*(explicit|not allowed)"),
        ):
            control.load("demo_scaler")
    assert not alive(pid)
    assert not any(alive(p) for p in stubs)
    assert not list(Path("/dev/shm").glob(f"tritonab_{os.getpid()}_{server.grpc_port}_*"))


def test_a_busy_port_is_named(small_repo):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServerError, match=rf"gRPC port `127.0.0.1:{port}` is already in use"):
            TritonServer(small_repo, grpc_port=port).start()


def test_a_model_that_fails_to_load_is_named_with_tritons_reason(small_repo):
    (small_repo / "demo_scaler" / "1" / "transform.json").write_text("{broken")
    reason = r"model `demo_scaler` failed to load: .*transform.json`: not valid YAML"
    with pytest.raises(ServerError, match=reason):
        TritonServer(small_repo, startup_timeout=60).start()


def test_serve_exits_non_zero_on_a_bad_repository(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tritonab", "serve", "--repository", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "is not a folder" in result.stderr
