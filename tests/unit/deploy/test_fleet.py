"""The fleet without servers: discovery through the real `kubernetes` client (against a
local stand-in for the API server), what `status` calls differing, what a fleet does
when its replicas cannot be reached (nothing changes; the repository is put back), and,
on in-memory replicas, the undo of a change one replica refuses or misses, convergence
of a stale replica, and a canary that holds until every replica takes its step.
The fleet on real replicas is in tests/integration/test_fleet.py."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from kubernetes import client

from tritonab.cli import main
from tritonab.deploy.control import read_router_spec
from tritonab.deploy.discovery import ready_addresses, service_endpoints
from tritonab.deploy.fleet import Fleet, FleetStatus, ReplicaState
from tritonab.ensembles.config import ModelConfig, read_config, set_parameter
from tritonab.ensembles.repository import ROUTER_PARAMETER
from tritonab.errors import ClientError, DeployError, FleetError
from tritonab.rollout import CanaryStrategy, Controller, TickOutcome, load_rollout_dict
from tritonab.splitter import load_spec

ROOT = Path(__file__).resolve().parents[3]
SPEC = load_spec(ROOT / "examples" / "experiment.yaml")


def _closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _slice(ports, endpoints):
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": "tritonab-abc", "labels": {"kubernetes.io/service-name": "tritonab"}},
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }


SLICES = {
    "apiVersion": "discovery.k8s.io/v1",
    "kind": "EndpointSliceList",
    "metadata": {"resourceVersion": "7"},
    "items": [
        _slice(
            [
                {"name": "http", "port": 8000, "protocol": "TCP"},
                {"name": "grpc", "port": 8001, "protocol": "TCP"},
            ],
            [
                {"addresses": ["10.0.0.2"], "conditions": {"ready": True}},
                {"addresses": ["10.0.0.1"], "conditions": {"ready": True, "serving": True}},
                {"addresses": ["10.0.0.3"], "conditions": {"ready": False, "terminating": True}},
                {"addresses": ["10.0.0.4"]},  # no conditions: unknown reads as ready
            ],
        ),
        # A second slice while the service changes: an address seen twice counts once.
        _slice(
            [{"name": "grpc", "port": 8001}], [{"addresses": ["10.0.0.1"], "conditions": {"ready": True}}]
        ),
        _slice(
            [{"name": "metrics", "port": 8002}], [{"addresses": ["10.0.0.9"], "conditions": {"ready": True}}]
        ),
    ],
}


@pytest.fixture
def kube_api():
    """A local HTTP server answering EndpointSlice lists as the API server does."""
    seen: list[str] = []
    answer = {"status": 200, "body": SLICES}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            seen.append(self.path)
            body = json.dumps(answer["body"]).encode()
            self.send_response(answer["status"])
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    configuration = client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}")
    api = client.DiscoveryV1Api(client.ApiClient(configuration))
    try:
        yield api, seen, answer
    finally:
        server.shutdown()
        server.server_close()


def test_ready_endpoints_of_the_named_port_come_from_every_slice(kube_api):
    api, seen, _ = kube_api
    assert service_endpoints("tritonab", "ml-serving", api=api) == [
        "10.0.0.1:8001",
        "10.0.0.2:8001",
        "10.0.0.4:8001",
    ]
    path, _, query = seen[0].partition("?")
    assert path == "/apis/discovery.k8s.io/v1/namespaces/ml-serving/endpointslices"
    assert urllib.parse.parse_qs(query)["labelSelector"] == ["kubernetes.io/service-name=tritonab"]
    assert service_endpoints("tritonab", "ml-serving", port="http", api=api) == [
        "10.0.0.1:8000",
        "10.0.0.2:8000",
        "10.0.0.4:8000",
    ]


def test_an_api_refusal_is_a_deploy_error(kube_api):
    api, _, answer = kube_api
    answer.update(
        status=403, body={"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403}
    )
    with pytest.raises(DeployError, match="EndpointSlices of service `ml-serving/tritonab`: 403"):
        service_endpoints("tritonab", "ml-serving", api=api)


def test_ipv6_addresses_are_bracketed():
    item = client.V1EndpointSlice(
        address_type="IPv6",
        endpoints=[client.V1Endpoint(addresses=["fd00::1"])],
        ports=[client.DiscoveryV1EndpointPort(name="grpc", port=8001)],
    )
    assert ready_addresses([item], "grpc") == ["[fd00::1]:8001"]


def test_a_fleet_follows_its_discovery_and_needs_replicas():
    found = [[_closed_port(), _closed_port()]]
    fleet = Fleet(lambda: found[0])
    try:
        first = list(fleet._controls)
        found[0] = [found[0][1], _closed_port()]
        assert fleet.urls() == found[0]
        assert first[0] not in fleet._controls and set(fleet._controls) == set(found[0])
        found[0] = []
        with pytest.raises(FleetError, match="the fleet has no replicas"):
            fleet.urls()
    finally:
        fleet.close()


def test_status_names_replicas_that_differ_or_cannot_be_read():
    desired = SPEC.with_weights({"control": 0.2, "treatment": 0.8})
    old = SPEC
    status = FleetStatus(
        "demo_ab",
        desired,
        "repository `r`",
        (
            ReplicaState("a:1", desired),
            ReplicaState("b:1", old),
            ReplicaState("c:1", None, "unreachable"),
        ),
    )
    assert [r.url for r in status.differing] == ["b:1", "c:1"] and not status.consistent
    agreeing = FleetStatus(
        "demo_ab", None, "the replicas", (ReplicaState("a:1", old), ReplicaState("b:1", old))
    )
    assert agreeing.consistent and agreeing.differing == ()
    split = FleetStatus(
        "demo_ab", None, "the replicas", (ReplicaState("a:1", old), ReplicaState("b:1", desired))
    )
    assert [r.url for r in split.differing] == ["b:1"]


def test_unreachable_replicas_change_nothing_and_the_repository_is_put_back(tmp_path):
    repo = tmp_path / "repo"
    shutil.copytree(ROOT / "model_repository" / "demo_ab", repo / "demo_ab")
    before = (repo / "demo_ab" / "config.pbtxt").read_bytes()
    with Fleet.connect([_closed_port(), _closed_port()], repository=repo) as fleet:
        with pytest.raises(FleetError, match=r"router `demo_ab` was not changed: 2 of 2 replicas failed"):
            fleet.set_weights("demo_ab", {"control": 0.2, "treatment": 0.8})
        assert (repo / "demo_ab" / "config.pbtxt").read_bytes() == before
        status = fleet.status("demo_ab")
        assert status.desired == read_router_spec(repo, "demo_ab") and status.source.startswith("repository")
        assert [r.spec for r in status.replicas] == [None, None] and not status.consistent
        with pytest.raises(FleetError, match="could not be read on 2 replicas"):
            fleet.experiment("demo_ab")


def test_without_a_repository_the_replicas_must_be_readable():
    with Fleet.connect([_closed_port()]) as fleet:
        with pytest.raises(FleetError, match="could not be read"):
            fleet.desired("demo_ab")
        assert fleet.is_ready("demo_ab") is False


def test_cli_needs_replicas_and_reports_unreadable_ones(capsys):
    assert main(["experiment", "set-weights", "demo_ab", "control=1,treatment=0"]) == 2
    assert "give the server with --url" in capsys.readouterr().err
    both = ["experiment", "status", "demo_ab", "--url", "a:1", "--service", "ns/tritonab"]
    assert main(both) == 2
    assert "either with --url or with --service" in capsys.readouterr().err
    assert main(["experiment", "status", "demo_ab", "--url", _closed_port(), "--url", _closed_port()]) == 1
    out = capsys.readouterr().out
    assert out.count("unreadable") == 2 and "2 of 2 replicas differ" in out


# -- changes on replicas that answer: in-memory stand-ins for ModelControl ----------------------
# (The real replicas, reloading for real, are in tests/integration/test_fleet.py; these
# isolate the fleet's rules: undo on a partial failure, convergence, the rollout's hold.)


class MemoryReplica:
    """A replica's router in memory, with ModelControl's surface that the fleet uses.

    `refuse` makes reloads fail as Triton refuses a protected API; `ignore` makes them
    succeed without changing what it serves (a reload that did not take)."""

    registry: dict[str, MemoryReplica] = {}

    def __init__(self, endpoint) -> None:
        self.url = endpoint.url
        self.served = SPEC
        self.refuse = False
        self.ignore = False
        self.reloads: list[dict[str, float]] = []
        self.loads: list[tuple[str, object]] = []
        self._config = read_config(ROOT / "model_repository" / "demo_ab" / "config.pbtxt")
        MemoryReplica.registry[self.url] = self

    def experiment(self, name):
        assert name == "demo_ab"
        return self.served, self.config(name)

    def config(self, model):
        config = ModelConfig()
        config.CopyFrom(self._config)
        set_parameter(config, ROUTER_PARAMETER, self.served.to_json())
        return config

    def apply_spec(self, spec, config=None):
        if self.refuse:
            raise ClientError(f"loading model `{spec.name}` failed: This API is restricted")
        self.reloads.append(dict(spec.weights))
        if not self.ignore:
            self.served = spec

    def load(self, model, config=None):
        if self.refuse:
            raise ClientError(f"loading model `{model}` failed: This API is restricted")
        self.loads.append((model, config))

    def is_ready(self, model, version=-1):
        return True

    def close(self):
        pass


@pytest.fixture
def memory_fleet(monkeypatch, tmp_path):
    """A fleet of three in-memory replicas over a copy of the demo router's repository."""
    monkeypatch.setattr("tritonab.deploy.fleet.ModelControl", MemoryReplica)
    MemoryReplica.registry = {}
    repo = tmp_path / "repo"
    for name in ("demo_ab", "demo_gbt"):
        shutil.copytree(ROOT / "model_repository" / name, repo / name)
    with Fleet(["a:8001", "b:8001", "c:8001"], repository=repo) as fleet:
        yield fleet, MemoryReplica.registry


NEW = {"control": 0.2, "treatment": 0.8}


def test_a_change_reaches_every_replica_after_the_repository(memory_fleet):
    fleet, replicas = memory_fleet
    fleet.set_weights("demo_ab", NEW)
    assert read_router_spec(fleet.repository, "demo_ab").weights == NEW
    assert [r.served.weights for r in replicas.values()] == [NEW] * 3
    assert fleet.status("demo_ab").consistent


@pytest.mark.parametrize("failure", ["refuse", "ignore"])
def test_a_replica_that_refuses_or_misses_a_reload_undoes_the_change_everywhere(memory_fleet, failure):
    fleet, replicas = memory_fleet
    before = (fleet.repository / "demo_ab" / "config.pbtxt").read_bytes()
    setattr(replicas["b:8001"], failure, True)
    with pytest.raises(FleetError, match=r"`demo_ab` was not changed: 1 of 3 replicas failed \(`b:8001`"):
        fleet.set_weights("demo_ab", NEW)
    assert (fleet.repository / "demo_ab" / "config.pbtxt").read_bytes() == before
    assert [r.served.weights for r in replicas.values()] == [SPEC.weights] * 3
    # The replicas that took the change were reloaded back to what they served.
    assert replicas["a:8001"].reloads == [NEW, SPEC.weights]
    assert fleet.status("demo_ab").consistent


def test_reading_the_fleet_brings_a_stale_replica_back_and_status_only_reads(memory_fleet):
    fleet, replicas = memory_fleet
    fleet.set_weights("demo_ab", NEW)
    replicas["c:8001"].served = SPEC  # restarted from an older copy of the repository
    status = fleet.status("demo_ab")
    assert [r.url for r in status.differing] == ["c:8001"] and replicas["c:8001"].served.weights != NEW
    spec, _ = fleet.experiment("demo_ab")
    assert spec.weights == NEW and replicas["c:8001"].served.weights == NEW
    assert replicas["a:8001"].reloads == [NEW]  # the others were left alone


def test_a_canary_holds_while_a_replica_refuses_and_advances_when_it_takes_the_change(memory_fleet, tmp_path):
    class Metrics:
        def rows(self, experiment, variant, window=None):
            return 100.0

    fleet, replicas = memory_fleet
    fleet.set_weights("demo_ab", {"control": 1.0, "treatment": 0.0})
    spec = load_rollout_dict(
        {
            "experiment": "demo_ab",
            "candidate": "treatment",
            "steps": [10, 100],
            "checks": [{"metric": "rows", "min": 1}],
        }
    )
    controller = Controller(
        CanaryStrategy(spec, fleet, metrics=Metrics()),
        state_path=tmp_path / "state.json",
        audit_path=tmp_path / "audit.jsonl",
    )
    replicas["c:8001"].refuse = True
    held = [controller.tick(), controller.tick()]
    assert [e.outcome for e in held] == [TickOutcome.HOLD, TickOutcome.HOLD]
    assert "c:8001" in held[0].reason
    assert read_router_spec(fleet.repository, "demo_ab").weights["treatment"] == 0.0
    assert {r.served.weights["treatment"] for r in replicas.values()} == {0.0}

    replicas["c:8001"].refuse = False
    assert controller.tick().outcome is TickOutcome.ADVANCE
    assert {r.served.weights["treatment"] for r in replicas.values()} == {0.1}
    assert read_router_spec(fleet.repository, "demo_ab").weights["treatment"] == 0.1


def test_a_version_switch_is_written_to_the_repository_then_loaded_on_every_replica(memory_fleet):
    fleet, replicas = memory_fleet
    config = read_config(fleet.repository / "demo_gbt" / "config.pbtxt")
    config.version_policy.specific.versions[:] = [1, 2]  # blue-green: the new version beside the old
    fleet.load("demo_gbt", config)
    stored = read_config(fleet.repository / "demo_gbt" / "config.pbtxt")
    assert list(stored.version_policy.specific.versions) == [1, 2]  # a restarted replica loads both
    assert [[m for m, _ in r.loads] for r in replicas.values()] == [["demo_gbt"]] * 3

    replicas["a:8001"].refuse = True
    with pytest.raises(FleetError, match=r"loading `demo_gbt` failed on 1 of 3 replicas \(`a:8001`"):
        fleet.load("demo_gbt", config)
    assert fleet.is_ready("demo_gbt")


def test_a_router_config_loaded_on_a_fleet_is_a_spec_change(memory_fleet):
    fleet, replicas = memory_fleet
    config = replicas["a:8001"].config("demo_ab")
    set_parameter(config, ROUTER_PARAMETER, SPEC.with_weights(NEW).to_json())
    fleet.load("demo_ab", config)
    assert read_router_spec(fleet.repository, "demo_ab").weights == NEW
    assert [r.served.weights for r in replicas.values()] == [NEW] * 3
    assert all(r.loads == [] for r in replicas.values())  # through the checked reload, not a bare load
