"""A fleet of three embedded Triton replicas behind Debian's nginx (a gRPC load balancer),
under continuous load through nginx, scraped by one real Prometheus.

- `experiment set-weights --url A --url B --url C --repository R` changes every replica
  with zero failed requests, each unit gets the same variant on every replica, and a
  replica restarted afterwards serves the new weights;
- a canary rollout goes to 100% on every replica while one replica is SIGKILLed and
  restarted mid-rollout: the rollout holds while it is gone (never advances), the
  restarted replica loads the repository and so serves the weights the fleet set while
  it was gone, and no client request fails (the client retries UNAVAILABLE, nginx passes
  a request to the next replica);
- Prometheus checks see the sum over the replicas.

The replicas share one repository folder (as pods share a volume), each on its own ports;
this module starts and stops its own servers because it kills one.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tritonab._transport import Retry
from tritonab.cli import main
from tritonab.client import ExperimentClient
from tritonab.deploy.control import ModelControl, read_router_spec
from tritonab.deploy.fleet import Fleet
from tritonab.deploy.prometheus_server import PrometheusServer
from tritonab.deploy.server import TritonServer
from tritonab.errors import ClientError
from tritonab.monitoring.metrics import router_metrics
from tritonab.monitoring.promql import RouterQueries
from tritonab.rollout import CanaryStrategy, Controller, TickOutcome, load_rollout_dict
from tritonab.splitter import Allocation

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nginx_balancer import NginxBalancer  # noqa: E402

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MODELS = ("demo_scaler", "demo_logreg", "demo_logreg_pipeline", "demo_gbt", "demo_ab")
EXPERIMENT = "demo_ab"
UNITS = [f"fleet-{i}" for i in range(100)]
X = np.zeros((1, 30), dtype=np.float32)
CLIENT_RETRY = Retry(attempts=8, backoff_s=0.05, max_backoff_s=1.0)


class Replicas:
    """Three explicit-mode servers on one repository, each restartable on its own ports.

    With a balancer attached, a replica leaves it before it stops and rejoins once it is
    ready again, as a Kubernetes Service's endpoints follow its pods' readiness; a replica
    killed outright stays in until it restarts (nginx passes its requests on).
    """

    def __init__(self, repository: Path, count: int = 3) -> None:
        self.repository = repository
        self.servers = [
            TritonServer(repository, model_control_mode="explicit", load_models=MODELS, startup_timeout=180)
            for _ in range(count)
        ]
        self.balancer: NginxBalancer | None = None

    @property
    def urls(self) -> list[str]:
        return [s.urls.grpc for s in self.servers]

    def _route(self, without: int | None = None) -> None:
        if self.balancer is not None:
            self.balancer.set_upstreams([u for i, u in enumerate(self.urls) if i != without])

    def kill(self, index: int) -> None:
        """SIGKILL the server and its stubs, as a node failure would."""
        server = self.servers[index]
        assert server.pid is not None
        os.killpg(server.pid, signal.SIGKILL)
        server.stop()  # reaps it and removes its shared memory

    def restart(self, index: int) -> None:
        """Out of the balancer, stopped, started on the same ports, back in once ready."""
        self._route(without=index)
        self.servers[index].stop()
        self.servers[index].start()
        self._route()


class Load:
    """Client threads calling the experiment through the balancer until stopped, each
    pausing `pause_s` between calls (continuous, not saturating: on 2 cores a saturating
    load starves the restarting replica's model loads)."""

    def __init__(self, url: str, threads: int = 2, pause_s: float = 0.01) -> None:
        self.url, self.ok, self.failures, self.pause_s = url, [0] * threads, [], pause_s
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, index: int) -> None:
        with ExperimentClient(self.url, retry=CLIENT_RETRY, timeout=30) as client:
            i = index
            while not self._stop.is_set():
                try:
                    client.infer(EXPERIMENT, {"input": X}, unit_id=UNITS[i % len(UNITS)])
                    self.ok[index] += 1
                except ClientError as exc:
                    self.failures.append(str(exc))
                i += len(self.ok)
                self._stop.wait(self.pause_s)

    @property
    def served(self) -> int:
        return sum(self.ok)

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for(self, requests: int, timeout: float = 30.0) -> None:
        """Until `requests` more have been served."""
        target, deadline = self.served + requests, time.monotonic() + timeout
        while self.served < target and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.served >= target, f"the load stalled at {self.served} requests: {self.failures[-3:]}"


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("fleet") / "model_repository"
    for name in MODELS:
        shutil.copytree(ROOT / "model_repository" / name, repo / name)
    return repo


@pytest.fixture(scope="module")
def replicas(repository):
    fleet = Replicas(repository)
    try:
        with ThreadPoolExecutor(len(fleet.servers)) as pool:
            list(pool.map(TritonServer.start, fleet.servers))
        yield fleet
    finally:
        with ThreadPoolExecutor(len(fleet.servers)) as pool:
            list(pool.map(TritonServer.stop, fleet.servers))


@pytest.fixture(scope="module")
def balancer(replicas):
    with NginxBalancer(replicas.urls) as running:
        replicas.balancer = running
        yield running
        replicas.balancer = None


@pytest.fixture(scope="module")
def prometheus(replicas):
    with PrometheusServer([s.urls.metrics for s in replicas.servers], interval_s=0.5) as running:
        yield running


def served_weights(url: str) -> dict[str, float]:
    with ModelControl(url) as control:
        return control.experiment(EXPERIMENT)[0].weights


def variants_on(url: str) -> list[str]:
    with ExperimentClient(url) as client:
        return [client.infer(EXPERIMENT, {"input": X}, unit_id=u).variant for u in UNITS]


def test_set_weights_reaches_every_replica_under_load(replicas, balancer, capsys):
    urls = replicas.urls
    with Load(balancer.url) as load:
        load.wait_for(20)
        args = ["experiment", "set-weights", EXPERIMENT, "control=0.2,treatment=0.8"]
        args += [flag for url in urls for flag in ("--url", url)] + ["--repository", str(replicas.repository)]
        assert main(args) == 0
        assert "reloaded on 3 replicas with weights control=0.2, treatment=0.8" in capsys.readouterr().out
        load.wait_for(20)
        for url in urls:
            assert served_weights(url) == {"control": 0.2, "treatment": 0.8}
        assert read_router_spec(replicas.repository, EXPERIMENT).weights == {"control": 0.2, "treatment": 0.8}

        # Each unit gets the same variant on every replica, the one the contract computes.
        spec = read_router_spec(replicas.repository, EXPERIMENT)
        expected = Allocation(("control", "treatment"), (0.2, 0.8)).assign_names(spec.effective_salt, UNITS)
        for url in urls:
            assert variants_on(url) == list(expected)

        status = ["experiment", "status", EXPERIMENT, "--repository", str(replicas.repository)]
        assert main(status + [flag for url in urls for flag in ("--url", url)]) == 0
        assert capsys.readouterr().out.count(" ok ") >= 3

        # A replica restarted afterwards (a rolling restart: out of the balancer, stopped,
        # started) loads the repository: it serves the new weights.
        replicas.restart(2)
        assert served_weights(urls[2]) == {"control": 0.2, "treatment": 0.8}
        assert variants_on(urls[2]) == list(expected)
        load.wait_for(20)
    assert load.failures == []
    assert load.served > 60


def test_a_canary_reaches_every_replica_while_one_is_killed_and_restarted(
    replicas, balancer, prometheus, tmp_path
):
    urls = replicas.urls
    with Fleet.connect(urls, repository=replicas.repository) as fleet:
        fleet.set_weights(EXPERIMENT, {"control": 1.0, "treatment": 0.0})
        spec = load_rollout_dict(
            {
                "experiment": EXPERIMENT,
                "candidate": "treatment",
                "steps": [10, 50, 100],
                "interval_s": 0.5,
                "window": "4s",
                "checks": [{"metric": "rows", "min": 1}, {"metric": "error_rate", "max": 0.0}],
                "progress_deadline": 60,
            }
        )
        events = []
        strategy = CanaryStrategy(spec, fleet, metrics=RouterQueries(prometheus.url, window="4s"))
        controller = Controller(
            strategy,
            state_path=tmp_path / "state.json",
            audit_path=tmp_path / "audit.jsonl",
            on_event=events.append,
        )
        with Load(balancer.url) as load:
            load.wait_for(20)
            first = controller.tick()
            assert first.outcome is TickOutcome.ADVANCE and first.weights == {
                "control": 0.9,
                "treatment": 0.1,
            }

            replicas.kill(1)
            while_down = [controller.tick(), controller.tick()]
            assert [e.outcome for e in while_down] == [TickOutcome.HOLD, TickOutcome.HOLD]
            assert urls[1] in while_down[0].reason
            assert read_router_spec(replicas.repository, EXPERIMENT).weights == {
                "control": 0.9,
                "treatment": 0.1,
            }
            load.wait_for(20)  # the balancer sends everything to the two replicas left

            # Restarted (out of the balancer until ready, as a Service's endpoints follow
            # readiness), it loads the repository: the weights the fleet set while it was gone.
            replicas.restart(1)
            assert served_weights(urls[1]) == {"control": 0.9, "treatment": 0.1}

            for _ in range(40):
                event = controller.tick()
                if event.status != "progressing":
                    break
                time.sleep(spec.interval_s)
            load.wait_for(20)
        assert event.outcome is TickOutcome.PROMOTE, [e.line() for e in events]
        advances = [e for e in events if e.outcome in (TickOutcome.ADVANCE, TickOutcome.PROMOTE)]
        assert [e.weights["treatment"] for e in advances] == [0.1, 0.5, 1.0]
        status = fleet.status(EXPERIMENT)
        assert status.consistent, [(r.url, r.weights, r.error) for r in status.replicas]
        assert {tuple(sorted(r.weights.items())) for r in status.replicas} == {
            (("control", 0.0), ("treatment", 1.0))
        }
    assert load.failures == []
    for url in urls:
        assert set(variants_on(url)) == {"treatment"}

    # Prometheus sums over the replicas: its total equals the sum of the replicas' own
    # counters (read after the load stopped and two more scrapes).
    time.sleep(1.5)
    counters = [router_metrics(s.urls.metrics, EXPERIMENT) for s in replicas.servers]
    total = sum(
        m.rows
        for metrics in counters
        for (_, variant), m in metrics.items()
        if variant in ("control", "treatment")
    )
    queries = RouterQueries(prometheus.url)
    selector = f'experiment="{EXPERIMENT}",variant=~"control|treatment"'
    assert queries.instant(f"sum(tritonab_requests_total{{{selector}}})") == total
    assert (
        queries.instant(
            f'count(tritonab_variant_weight{{experiment="{EXPERIMENT}",variant="treatment"}} == 1)'
        )
        == 3
    )
