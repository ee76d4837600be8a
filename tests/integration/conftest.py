"""One real tritonserver for the whole integration session, in explicit model-control mode.

The session repository is a copy of `model_repository/` plus every test-only model the
modules need (written here or by a module's fixture); the server starts with the demo
models and the shared routers loaded, and each module loads what else it needs through
the model-control API (`models_loaded`) and unloads it when it is done. Every router
logs to the session's log folder (`TRITONAB_LOG_DIR`), one folder per experiment.

Servers of their own are started only where a test must break or kill one
(`test_server.py`, the crash test of `test_logging.py`).
"""

from __future__ import annotations

import contextlib
import shutil
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tritonclient.grpc import model_config_pb2 as mc

from tritonab.deploy.control import ModelControl
from tritonab.deploy.prometheus_server import PrometheusServer
from tritonab.deploy.server import TritonServer
from tritonab.ensembles import build_router, load_model
from tritonab.ensembles.config import ModelConfig, TensorSpec, add_tensor, set_parameter, write_config
from tritonab.errors import ClientError
from tritonab.monitoring.router_log import LOG_DIR_ENV
from tritonab.splitter import load_spec, load_spec_dict

ROOT = Path(__file__).resolve().parents[2]
DEMO = ("demo_scaler", "demo_logreg", "demo_logreg_pipeline", "demo_gbt", "demo_ab")
SHARED_ROUTERS = ("ab_rows", "ab_shadow", "ab_failing")

FAILING_MODEL = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        return [pb_utils.InferenceResponse(error=pb_utils.TritonError("model exploded"))
                for _ in requests]
"""

# Echoes INPUT0 as OUTPUT0 after sleeping `delay_ms` (config parameter): the perf tests'
# cheapest model (`identity`) and a candidate that must fail a latency gate (`slow`).
ECHO_MODEL = textwrap.dedent("""
    import json
    import time

    import triton_python_backend_utils as pb_utils


    class TritonPythonModel:
        def initialize(self, args):
            params = json.loads(args["model_config"]).get("parameters", {})
            self.delay = float(params.get("delay_ms", {}).get("string_value", "0")) / 1000.0

        def execute(self, requests):
            if self.delay:
                time.sleep(self.delay)
            responses = []
            for request in requests:
                data = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
                out = pb_utils.Tensor("OUTPUT0", data)
                responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
            return responses
""")


def _add_failing_model(repo: Path) -> None:
    """`always_fails`: the demo signature, an error for every request."""
    config = mc.ModelConfig()
    config.CopyFrom(load_model(repo / "demo_gbt").config)
    config.name = "always_fails"
    del config.parameters["onnx_file"]
    config.ClearField("model_warmup")
    write_config(repo / "always_fails" / "config.pbtxt", config)
    (repo / "always_fails" / "1").mkdir(parents=True)
    (repo / "always_fails" / "1" / "model.py").write_text(FAILING_MODEL)


def _add_echo_model(repo: Path, name: str, delay_ms: float) -> None:
    config = ModelConfig(name=name, backend="python", max_batch_size=8)
    add_tensor(config.input, TensorSpec("INPUT0", mc.TYPE_FP32, (4,)))
    add_tensor(config.output, TensorSpec("OUTPUT0", mc.TYPE_FP32, (4,)))
    config.instance_group.add(count=1, kind=mc.ModelInstanceGroup.KIND_CPU)
    set_parameter(config, "delay_ms", str(delay_ms))
    (repo / name / "1").mkdir(parents=True)
    (repo / name / "1" / "model.py").write_text(ECHO_MODEL, encoding="utf-8")
    write_config(repo / name / "config.pbtxt", config)


def demo_router(repo: Path, **overrides: object) -> None:
    """A router built from `examples/experiment.yaml` with top-level overrides."""
    data = load_spec(ROOT / "examples" / "experiment.yaml").model_dump()
    data.update(overrides)
    build_router(load_spec_dict(data), repo)


@pytest.fixture(scope="session")
def repository(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("integration") / "model_repository"
    shutil.copytree(ROOT / "model_repository", repo)
    _add_failing_model(repo)
    _add_echo_model(repo, "identity", 0)
    _add_echo_model(repo, "slow", 20)
    demo_router(repo, name="ab_rows", unit_input="unit")
    demo_router(
        repo,
        name="ab_shadow",
        shadow=[
            {"model": "always_fails", "sample_rate": 1.0},
            {"model": "demo_logreg_pipeline", "version": 1},
        ],
    )
    demo_router(
        repo,
        name="ab_failing",
        variants=[
            {"name": "control", "model": "demo_gbt", "version": 1, "weight": 0.5},
            {"name": "treatment", "model": "always_fails", "version": 1, "weight": 0.5},
        ],
    )
    return repo


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory) -> Path:
    """The session server's log folder (`tritonab serve --log-dir`)."""
    return tmp_path_factory.mktemp("logs")


_SESSION: list[TritonServer] = []


@pytest.fixture(scope="session")
def session_server(repository, log_dir, tmp_path_factory):
    """The one explicit-mode server of the session (modules may wrap `server`). Its log
    stays in the session's temporary folder; a failing test whose server has died says
    how it died (`pytest_runtest_makereport`)."""
    start = (*DEMO, "always_fails", *SHARED_ROUTERS)
    with TritonServer(
        repository,
        model_control_mode="explicit",
        load_models=start,
        env={LOG_DIR_ENV: str(log_dir)},
        startup_timeout=180,
        log_dir=tmp_path_factory.mktemp("tritonserver"),
    ) as running:
        _SESSION.append(running)
        try:
            yield running
        finally:
            _SESSION.remove(running)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure, if the session server has exited, report its exit status (a negative
    one is the signal that killed it) and the end of its log."""
    outcome = yield
    report = outcome.get_result()
    if not report.failed or not _SESSION:
        return
    server = _SESSION[0]
    code = server.exit_code
    if code is None:
        return
    tail = "\n".join(server.log_text().splitlines()[-60:])
    shm = shutil.disk_usage("/dev/shm")
    report.sections.append(
        (
            "session tritonserver",
            f"exited with status {code}; /dev/shm {shm.used >> 20} of {shm.total >> 20} MiB used; "
            f"log `{server.log_path}` ends:\n{tail}",
        )
    )


@pytest.fixture(scope="session")
def server(session_server):
    """The session server; a module may override this name to load models of its own."""
    return session_server


@contextlib.contextmanager
def models_loaded(server: TritonServer, *names: str) -> Iterator[ModelControl]:
    """Load `names` on the session server, all at once (each load starts a Python-backend
    stub: seconds of CPU), and unload them afterwards, so the server stays small."""
    with ModelControl(server.urls.grpc) as control:
        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            results = list(pool.map(_load_quietly(server), names))
        try:
            problems = [f"{name}: {problem}" for name, problem in zip(names, results) if problem]
            assert not problems, f"models failed to load: {problems}"
            yield control
        finally:
            for name in reversed(names):
                with contextlib.suppress(ClientError):
                    control.unload(name)


def _load_quietly(server: TritonServer):
    """`load(name)` on its own connection, giving the error text (None when loaded)."""

    def load(name: str) -> str | None:
        with ModelControl(server.urls.grpc) as control:
            try:
                control.load(name)
            except ClientError as exc:
                return str(exc)
        return None

    return load


@pytest.fixture(scope="session")
def loaded(session_server):
    """`with loaded("a", "b"):` loads models on the session server for a while."""
    return lambda *names: models_loaded(session_server, *names)


@pytest.fixture(scope="session")
def router(repository):
    """`router(name=..., **overrides)` writes a demo router into the session repository."""
    return lambda **overrides: demo_router(repository, **overrides)


@pytest.fixture(scope="session")
def prometheus(session_server):
    """A real Prometheus scraping the session server every half second."""
    with PrometheusServer([session_server.urls.metrics], interval_s=0.5) as running:
        yield running


@pytest.fixture(scope="session")
def features() -> np.ndarray:
    from sklearn.datasets import load_breast_cancer

    return load_breast_cancer().data.astype(np.float32)
