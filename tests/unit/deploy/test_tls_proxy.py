"""`tritonab deploy render` with `tls`: Triton's HTTP binds loopback and an nginx sidecar
terminates TLS on the Service's `http` port (mutual with `tls.mutual`); its config, from a
ConfigMap, passes Debian's real `nginx -t` with development certificates."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tritonab.deploy.k8s import (
    PROXY_PORT,
    load_deploy_dict,
    nginx_config,
    render_manifests,
    validate_manifests,
)
from tritonab.errors import DeployError
from tritonab.security import write_dev_certs

ROOT = Path(__file__).resolve().parents[3]
NGINX = "/usr/sbin/nginx"
GPU = yaml.safe_load((ROOT / "examples" / "deploy.yaml").read_text())


def _render(**changes: object) -> list[dict]:
    data = copy.deepcopy(GPU)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return render_manifests(load_deploy_dict(data))


def _pod(manifests: list[dict]) -> dict:
    [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
    return deployment["spec"]["template"]["spec"]


def _container(manifests: list[dict], name: str) -> dict:
    [container] = [c for c in _pod(manifests)["containers"] if c["name"] == name]
    return container


def _proxy_map(manifests: list[dict]) -> dict:
    [config] = [m for m in manifests if m["metadata"]["name"] == "tritonab-tls-proxy"]
    return config


@pytest.fixture(scope="module")
def mutual() -> list[dict]:
    return _render()  # examples/deploy.yaml: tls with mutual


@pytest.fixture(scope="module")
def plain() -> list[dict]:
    return _render(tls=None)


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A `kubernetes.io/tls` Secret's files (`tls.crt`, `tls.key`, `ca.crt`) from dev certs."""
    dev = write_dev_certs(tmp_path_factory.mktemp("dev") / "certs")
    folder = tmp_path_factory.mktemp("secret")
    for source, name in ((dev.server_cert, "tls.crt"), (dev.server_key, "tls.key"), (dev.ca, "ca.crt")):
        shutil.copy(source, folder / name)
    return folder


def test_the_sidecar_and_its_config_exist_only_with_tls(mutual, plain):
    assert [c["name"] for c in _pod(mutual)["containers"]] == ["triton", "tls-proxy"]
    assert [c["name"] for c in _pod(plain)["containers"]] == ["triton"]
    assert not [m for m in plain if m["metadata"]["name"].endswith("tls-proxy")]
    assert (
        "annotations"
        not in [m for m in plain if m["kind"] == "Deployment"][0]["spec"]["template"]["metadata"]
    )
    # Applied before the Deployment that mounts it, and valid for Kubernetes.
    kinds = [m["kind"] for m in mutual]
    assert kinds.index("ConfigMap") < kinds.index("Deployment")
    assert validate_manifests([("m", m) for m in mutual]) == []


def test_triton_http_binds_loopback_and_metrics_stay_on_every_address(mutual, plain):
    args = _container(mutual, "triton")["args"]
    assert "--http-address=127.0.0.1" in args
    # Triton's metrics follow --http-address unless told otherwise: the scrape needs them.
    assert "--metrics-address=0.0.0.0" in args
    assert not [a for a in _container(plain, "triton")["args"] if "address" in a]
    assert [p["name"] for p in _container(mutual, "triton")["ports"]] == ["grpc", "metrics"]


def test_the_services_http_port_targets_the_sidecar(mutual):
    [service] = [m for m in mutual if m["kind"] == "Service"]
    http = next(p for p in service["spec"]["ports"] if p["name"] == "http")
    assert (http["port"], http["targetPort"]) == (8000, "http")
    named = {
        p["name"]: (c["name"], p["containerPort"]) for c in _pod(mutual)["containers"] for p in c["ports"]
    }
    assert named == {"http": ("tls-proxy", PROXY_PORT), "grpc": ("triton", 8001), "metrics": ("triton", 8002)}
    # The NetworkPolicy's `http` and the PodMonitor's `metrics` resolve to those ports.
    policies = [m for m in mutual if m["kind"] == "NetworkPolicy"]
    opened = {p["port"] for m in policies for r in m["spec"].get("ingress", []) for p in r["ports"]}
    assert opened == {"http", "grpc", "metrics"} == set(named)
    [monitor] = [m for m in mutual if m["kind"] == "PodMonitor"]
    assert monitor["spec"]["podMetricsEndpoints"][0]["port"] == "metrics"


def test_the_sidecar_runs_restricted_with_the_secret_and_a_read_only_config(mutual):
    proxy = _container(mutual, "tls-proxy")
    assert proxy["image"] == "nginxinc/nginx-unprivileged:1.27-alpine"
    context = proxy["securityContext"]
    assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True
    assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert proxy["resources"]["requests"] and proxy["resources"]["limits"]
    mounts = {m["name"]: m for m in proxy["volumeMounts"]}
    assert mounts["proxy-config"]["readOnly"] and mounts["tls"]["readOnly"]
    assert mounts["proxy-tmp"]["mountPath"] == "/tmp" and "readOnly" not in mounts["proxy-tmp"]
    volumes = {v["name"]: v for v in _pod(mutual)["volumes"]}
    assert volumes["proxy-config"]["configMap"]["name"] == "tritonab-tls-proxy"
    assert volumes["tls"]["secret"]["secretName"] == "tritonab-grpc-tls"
    assert "emptyDir" in volumes["proxy-tmp"]
    assert proxy["command"][:3] == ["nginx", "-c", "/etc/tritonab/proxy/nginx.conf"]


def test_probes_go_through_the_proxy_and_liveness_does_not_depend_on_it(mutual):
    triton = _container(mutual, "triton")
    for probe in ("startupProbe", "readinessProbe"):
        assert triton[probe]["httpGet"] == {"path": "/v2/health/ready", "port": "http", "scheme": "HTTPS"}
    assert triton["livenessProbe"]["httpGet"] == {"path": "/metrics", "port": "metrics"}
    proxy = _container(mutual, "tls-proxy")
    assert proxy["livenessProbe"]["httpGet"] == {
        "path": "/tritonab/proxy/live",
        "port": "http",
        "scheme": "HTTPS",
    }


def test_mutual_tls_verifies_client_certificates_but_not_the_probes(mutual):
    text = _proxy_map(mutual)["data"]["nginx.conf"]
    assert "ssl_client_certificate /etc/tritonab/tls/ca.crt;" in text
    assert "ssl_verify_client optional;" in text
    assert "if ($ssl_client_verify != SUCCESS) { return 403; }" in text
    one_way = _proxy_map(_render(tls={"secret": "tritonab-grpc-tls"}))["data"]["nginx.conf"]
    assert "ssl_verify_client" not in one_way and "ssl_client_verify" not in one_way
    assert "ssl_certificate /etc/tritonab/tls/tls.crt;" in one_way


def test_a_changed_proxy_config_rolls_the_pods():
    def checksum(manifests: list[dict]) -> str:
        [deployment] = [m for m in manifests if m["kind"] == "Deployment"]
        return deployment["spec"]["template"]["metadata"]["annotations"]["tritonab.io/tls-proxy-config"]

    tls = {"secret": "tritonab-grpc-tls", "mutual": True}
    assert checksum(_render(tls=tls)) == checksum(_render(tls=tls))
    assert checksum(_render(tls={**tls, "proxy": {"workers": 4}})) != checksum(_render(tls=tls))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"extra_args": ["--http-address=0.0.0.0"]},
            r"extra_args: .*`--http-address=0.0.0.0` conflicts with `tls`",
        ),
        ({"extra_args": ["--metrics-port=9000"]}, r"conflicts with `tls`"),
        ({"tls": {"secret": "s", "proxy": {"image": "nginx"}}}, r"tls\.proxy\.image: .*must be pinned"),
        (
            {"tls": {"secret": "s", "proxy": {"resources": {"limits": {"cpu": "50m", "memory": "1Gi"}}}}},
            r"tls\.proxy\.resources: .*limits\.cpu \(50m\) is below requests\.cpu \(100m\)",
        ),
    ],
)
def test_spec_errors_about_the_proxy_name_the_field(change, message):
    data = {**copy.deepcopy(GPU), **change}
    with pytest.raises(DeployError, match=message):
        load_deploy_dict(data, source="`deploy.yaml`")
    if "extra_args" in change:  # the same flags are the user's own without tls
        load_deploy_dict({**data, "tls": None})


@pytest.mark.skipif(not os.access(NGINX, os.X_OK), reason="Debian's nginx is not installed")
@pytest.mark.parametrize("tls", [{"secret": "s", "mutual": True}, {"secret": "s"}], ids=["mutual", "one-way"])
def test_the_rendered_config_passes_nginx_t(tls, certs, tmp_path):
    spec_tls = load_deploy_dict({**copy.deepcopy(GPU), "tls": tls}).tls
    assert spec_tls is not None
    shipped = _proxy_map(_render(tls=tls))["data"]["nginx.conf"]
    # The ConfigMap is this function with the pod's paths; here the same with local ones.
    assert shipped == nginx_config(spec_tls, tls_dir="/etc/tritonab/tls")
    local = nginx_config(spec_tls, tls_dir=str(certs), temp_dir=str(tmp_path))
    assert local.replace(str(certs), "/etc/tritonab/tls").replace(str(tmp_path), "/tmp") == shipped
    conf = tmp_path / "nginx.conf"
    conf.write_text(local)
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path), "-e", "stderr"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    assert "test is successful" in checked.stderr
    # And nginx does check: a Secret without the key fails.
    (certs / "tls.key").rename(certs / "tls.key.away")
    try:
        broken = subprocess.run(
            [NGINX, "-t", "-c", str(conf), "-p", str(tmp_path), "-e", "stderr"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        (certs / "tls.key.away").rename(certs / "tls.key")
    assert broken.returncode != 0 and "tls.key" in broken.stderr
