"""`tritonab deploy render`: the two example profiles rendered, validated offline against
Kubernetes 1.30's schemas (kubernetes-validate) and the custom resources' models, with
the security settings, placement, scaling and monitoring the issue asks for."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tritonab.cli import main
from tritonab.deploy.k8s import (
    KUBERNETES_VERSION,
    load_deploy_dict,
    load_deploy_spec,
    read_manifests,
    render_manifests,
    validate_document,
    validate_manifests,
    write_manifests,
)
from tritonab.errors import DeployError
from tritonab.monitoring.alerts import load_rule_groups, rule_files

ROOT = Path(__file__).resolve().parents[3]
GPU = ROOT / "examples" / "deploy.yaml"
SMALL = ROOT / "examples" / "deploy-small.yaml"
CASES = ROOT / "tests" / "unit" / "monitoring" / "rules" / "router.test.yaml"


def by_kind(manifests, kind):
    return [m for m in manifests if m["kind"] == kind]


def one(manifests, kind):
    found = by_kind(manifests, kind)
    assert len(found) == 1, f"{len(found)} {kind}"
    return found[0]


@pytest.fixture(scope="module")
def gpu():
    return render_manifests(load_deploy_spec(GPU))


@pytest.fixture(scope="module")
def small():
    return render_manifests(load_deploy_spec(SMALL))


@pytest.mark.parametrize("version", [KUBERNETES_VERSION, "1.37"])
@pytest.mark.parametrize("profile", [GPU, SMALL], ids=["deploy.yaml", "deploy-small.yaml"])
def test_every_manifest_of_both_profiles_is_valid(profile, version, tmp_path):
    write_manifests(load_deploy_spec(profile), tmp_path / "out")
    documents = read_manifests(tmp_path / "out")
    kinds = {d["kind"] for _, d in documents}
    assert {
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "PodMonitor",
        "PrometheusRule",
    } <= kinds
    assert validate_manifests(documents, version) == []


def test_the_pods_run_restricted(gpu):
    deployment = one(gpu, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True and context["runAsUser"] != 0
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["resources"]["requests"] and container["resources"]["limits"]
    account = next(
        m for m in by_kind(gpu, "ServiceAccount") if m["metadata"]["name"] == pod["serviceAccountName"]
    )
    assert account["automountServiceAccountToken"] is False


def test_probes_resources_and_gpus(gpu, small):
    plain = one(small, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert plain["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert plain["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    assert plain["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"
    triton = one(gpu, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert triton["resources"] == {
        "requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1},
        "limits": {"cpu": "8", "memory": "16Gi", "nvidia.com/gpu": 1},
    }
    cpu_only = one(small, "Deployment")["spec"]["template"]["spec"]
    assert "nvidia.com/gpu" not in cpu_only["containers"][0]["resources"]["limits"]
    assert "tolerations" not in cpu_only


def test_placement_keeps_the_regions_and_spreads_over_zones(gpu):
    pod = one(gpu, "Deployment")["spec"]["template"]["spec"]
    terms = pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][
        "nodeSelectorTerms"
    ]
    assert terms == [
        {
            "matchExpressions": [
                {
                    "key": "topology.kubernetes.io/region",
                    "operator": "In",
                    "values": ["eu-west-1", "eu-central-1"],
                }
            ]
        }
    ]
    zone = pod["topologySpreadConstraints"][0]
    assert zone["topologyKey"] == "topology.kubernetes.io/zone" and zone["maxSkew"] == 1
    assert zone["whenUnsatisfiable"] == "DoNotSchedule"  # deploy.yaml asks for `required`
    assert zone["labelSelector"]["matchLabels"] == one(gpu, "Deployment")["spec"]["selector"]["matchLabels"]


def test_service_ports_are_named_and_match_the_container(gpu, small):
    for manifests in (gpu, small):
        ports = {p["name"]: p["port"] for p in one(manifests, "Service")["spec"]["ports"]}
        assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
        assert all(p["targetPort"] == p["name"] for p in one(manifests, "Service")["spec"]["ports"])
    container = one(small, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {p["name"]: p["containerPort"] for p in container["ports"]} == ports


def test_network_policies_deny_by_default_and_open_only_clients_and_the_scrape(gpu, small):
    policies = {
        p["metadata"]["name"].removeprefix("tritonab-"): p["spec"] for p in by_kind(gpu, "NetworkPolicy")
    }
    assert policies["default-deny"] == {
        "podSelector": one(gpu, "Deployment")["spec"]["selector"],
        "policyTypes": ["Ingress", "Egress"],
    }
    [clients] = policies["allow-clients"]["ingress"]
    assert {p["port"] for p in clients["ports"]} == {"grpc", "http"}
    assert clients["from"] == [
        {"podSelector": {"matchLabels": {"tritonab.io/client": "true"}}},
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}}},
    ]
    [scrape] = policies["allow-prometheus"]["ingress"]
    assert scrape["ports"] == [{"protocol": "TCP", "port": "metrics"}]
    assert scrape["from"][0]["podSelector"] == {"matchLabels": {"app.kubernetes.io/name": "prometheus"}}
    ingress_ports = [p["port"] for s in policies.values() for r in s.get("ingress", []) for p in r["ports"]]
    assert sorted(ingress_ports) == ["grpc", "http", "metrics"]
    # Egress: DNS, plus HTTPS for the object-storage sync (deploy.yaml); DNS only on a PVC (small).
    assert [r.get("ports") for r in policies["allow-egress"]["egress"]][-1] == [
        {"protocol": "TCP", "port": 443}
    ]
    small_egress = next(
        p for p in by_kind(small, "NetworkPolicy") if p["metadata"]["name"].endswith("allow-egress")
    )
    assert len(small_egress["spec"]["egress"]) == 1


def test_a_single_replica_has_no_autoscaler_and_the_fleet_a_keda_trigger(gpu, small):
    assert not by_kind(small, "HorizontalPodAutoscaler") and not by_kind(small, "ScaledObject")
    assert one(small, "Deployment")["spec"]["replicas"] == 1
    scaled = one(gpu, "ScaledObject")["spec"]
    assert (scaled["minReplicaCount"], scaled["maxReplicaCount"]) == (2, 20)
    trigger = scaled["triggers"][0]
    assert trigger["type"] == "prometheus" and trigger["metadata"]["threshold"] == "400"
    assert 'namespace="ml-serving"' in trigger["metadata"]["query"]
    assert one(gpu, "PodDisruptionBudget")["spec"]["maxUnavailable"] == 1


def test_keda_can_follow_the_forecasters_gauge_and_hpa_scales_on_cpu_or_rows():
    data = yaml.safe_load(GPU.read_text())
    data["autoscaling"] = {
        "kind": "keda",
        "prometheus": "http://prometheus:9090",
        "query": 'max(tritonab_desired_replicas{deployment="tritonab"})',
        "threshold": 1,
    }
    scaled = one(render_manifests(load_deploy_dict(data)), "ScaledObject")
    assert (
        scaled["spec"]["triggers"][0]["metadata"]["query"]
        == 'max(tritonab_desired_replicas{deployment="tritonab"})'
    )
    for autoscaling, metric in (
        ({"kind": "hpa"}, {"type": "Resource"}),
        ({"kind": "hpa", "metric": "request_rate", "target_rows_per_second": 12.5}, {"type": "Pods"}),
    ):
        data["autoscaling"] = autoscaling
        hpa = one(render_manifests(load_deploy_dict(data)), "HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert metric.items() <= hpa["spec"]["metrics"][0].items()
        assert validate_document(hpa) == []
    assert hpa["spec"]["metrics"][0]["pods"]["target"]["averageValue"] == "12500m"


def test_tls_and_the_access_key_are_mounted_and_named_by_tritons_flags(gpu):
    pod = one(gpu, "Deployment")["spec"]["template"]["spec"]
    triton = pod["containers"][0]
    assert {"name": "tls", "secret": {"secretName": "tritonab-grpc-tls", "defaultMode": 0o440}} in pod[
        "volumes"
    ]
    assert {"name": "tls", "mountPath": "/etc/tritonab/tls", "readOnly": True} in triton["volumeMounts"]
    args = triton["args"]
    assert "--grpc-use-ssl-mutual=true" in args and "--grpc-root-cert=/etc/tritonab/tls/ca.crt" in args
    restricted = [a for a in args if "restricted" in a]
    assert (
        all(a.endswith(":x-tritonab-key=$(TRITONAB_ACCESS_KEY)") for a in restricted) and len(restricted) == 2
    )
    key = next(e for e in triton["env"] if e["name"] == "TRITONAB_ACCESS_KEY")
    assert key["valueFrom"] == {"secretKeyRef": {"name": "tritonab-access-key", "key": "key"}}


def test_an_object_storage_repository_is_synced_by_an_init_container(gpu, small):
    pod = one(gpu, "Deployment")["spec"]["template"]["spec"]
    [sync] = pod["initContainers"]
    assert sync["command"][:3] == ["aws", "s3", "sync"] and sync["command"][-1] == "/models"
    assert sync["envFrom"] == [{"secretRef": {"name": "model-store-credentials"}}]
    assert {"name": "models", "emptyDir": {"sizeLimit": "20Gi"}} in pod["volumes"]
    small_pod = one(small, "Deployment")["spec"]["template"]["spec"]
    assert "initContainers" not in small_pod
    models = next(v for v in small_pod["volumes"] if v["name"] == "models")
    assert models["persistentVolumeClaim"] == {"claimName": "model-repository", "readOnly": True}


def test_the_prometheus_rule_holds_every_rule_file_with_the_specs_thresholds(gpu):
    groups = one(gpu, "PrometheusRule")["spec"]["groups"]
    shipped = load_rule_groups()
    assert [g["name"] for g in groups] == [g["name"] for g in shipped]
    assert len(shipped) >= len(rule_files())
    records = {
        r["record"]: r
        for g in groups
        for r in g["rules"]
        if r.get("record", "").startswith("tritonab:config")
    }
    assert records["tritonab:config:error_rate_max"]["expr"] == "vector(0.02)"
    buckets = [
        r["labels"]["le"]
        for g in groups
        for r in g["rules"]
        if r.get("record") == "tritonab:config:latency_slo_bucket"
    ]
    assert buckets == ["50000", "50000.0"]
    assert one(gpu, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    monitor = one(gpu, "PodMonitor")["spec"]
    assert monitor["podMetricsEndpoints"] == [
        {"port": "metrics", "path": "/metrics", "scheme": "http", "interval": "15s"}
    ]


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("promtool") or "promtool", *args], capture_output=True, text=True)


def test_the_rendered_rules_pass_promtool_and_the_projects_cases(tmp_path):
    write_manifests(load_deploy_spec(GPU), tmp_path / "gpu")
    done = _promtool("check", "rules", str(tmp_path / "gpu" / "prometheus" / "tritonab.rules.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    # deploy-small.yaml keeps the default thresholds, which the cases are written for.
    write_manifests(load_deploy_spec(SMALL), tmp_path / "small")
    cases = yaml.safe_load(CASES.read_text())
    cases["rule_files"] = [str(tmp_path / "small" / "prometheus" / "tritonab.rules.yaml")]
    (tmp_path / "cases.yaml").write_text(yaml.safe_dump(cases, sort_keys=False))
    done = _promtool("test", "rules", str(tmp_path / "cases.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_dashboards_are_config_maps_for_grafanas_sidecar_and_files(gpu, tmp_path):
    [board] = [m for m in by_kind(gpu, "ConfigMap") if "grafana_dashboard" in m["metadata"]["labels"]]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert board["metadata"]["name"] == "tritonab-dashboard-demo-ab"
    assert json.loads(board["data"]["tritonab-demo-ab.json"])["uid"] == "tritonab-demo-ab"
    write_manifests(load_deploy_spec(GPU), tmp_path / "out")
    assert (
        json.loads((tmp_path / "out" / "dashboards" / "demo-ab.json").read_text())["title"]
        == "tritonab: demo_ab"
    )
    kustomization = yaml.safe_load((tmp_path / "out" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == sorted(p.name for p in (tmp_path / "out").glob("[0-9]*.yaml"))


# -- validation finds problems ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "change", "message"),
    [
        ("Deployment", lambda d: d["spec"].update(replica=3), "Additional properties are not allowed"),
        (
            "Deployment",
            lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports="8000"),
            "ports",
        ),
        ("Service", lambda d: d["spec"]["ports"][0].update(port="grpc"), "spec.ports.0.port"),
        ("NetworkPolicy", lambda d: d["spec"].update(policyTypes="Ingress"), "policyTypes"),
        (
            "PodMonitor",
            lambda d: d["spec"]["podMetricsEndpoints"][0].update(interval="15 seconds"),
            "interval",
        ),
        ("PodMonitor", lambda d: d["spec"].pop("selector"), "spec.selector: Field required"),
        (
            "PrometheusRule",  # a recording rule that also names an alert
            lambda d: next(r for g in d["spec"]["groups"] for r in g["rules"] if "record" in r).update(
                alert="X"
            ),
            "exactly one of",
        ),
        (
            "PrometheusRule",
            lambda d: d["spec"]["groups"].append(d["spec"]["groups"][0]),
            "duplicate rule group",
        ),
        (
            "ScaledObject",
            lambda d: d["spec"]["triggers"][0]["metadata"].pop("serverAddress"),
            "serverAddress",
        ),
        (
            "ScaledObject",
            lambda d: d["spec"]["triggers"][0]["metadata"].update(threshold="400m"),
            "not a number",
        ),
        ("ScaledObject", lambda d: d["spec"].update(minReplicaCount=30), "more than maxReplicaCount"),
    ],
)
def test_validation_reports_a_broken_manifest(gpu, kind, change, message):
    document = copy.deepcopy(next(m for m in gpu if m["kind"] == kind))
    change(document)
    problems = validate_document(document)
    assert problems and any(message in p for p in problems), problems


def test_an_unknown_kind_has_no_schema():
    problems = validate_document(
        {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    )
    assert problems and "no schema for Widget" in problems[0]


# -- the spec's errors name their field -----------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(image="registry.example.com/tritonab-triton"), "image `.*` must be pinned"),
        (lambda d: d.update(image="tritonab:latest"), "must be pinned"),
        (
            lambda d: d["resources"]["limits"].update(memory="8Gi"),
            r"resources: limits.memory \(8Gi\) is below",
        ),
        (
            lambda d: d["resources"]["requests"].update(cpu="four"),
            "resources.requests.cpu: `four` is not a Kubernetes quantity",
        ),
        (
            lambda d: d.update(replicas={"min": 2, "max": 2}),
            "autoscaling: needs replicas.max above replicas.min",
        ),
        (lambda d: d.pop("autoscaling"), "without autoscaling, set max equal to min"),
        (lambda d: d.update(regions=[]), "regions: List should have at least 1 item"),
        (lambda d: d.update(name="Triton_AB"), "name: name `Triton_AB` must be lowercase"),
        (lambda d: d["alerts"].update(latency_slo_ms=75), r"alerts.latency_slo_ms: 75 ms is not a bucket"),
        (lambda d: d["repository"].update(pvc="models"), "repository: give exactly one of `pvc`"),
        (lambda d: d["repository"].update(uri="ftp://x/y"), "must start with s3:// or gs://"),
        (lambda d: d["access_key"].update(protect=["health"]), "`health` must stay open"),
        (lambda d: d["autoscaling"].update(kind="vpa"), "autoscaling"),
        (lambda d: d.update(replica=3), "replica: Extra inputs are not permitted"),
    ],
)
def test_spec_errors_name_the_field(change, message):
    data = yaml.safe_load(GPU.read_text())
    change(data)
    with pytest.raises(DeployError, match=message):
        load_deploy_dict(data, source="`deploy.yaml`")


# -- the command line ---------------------------------------------------------------------------


def test_cli_renders_validates_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "manifests"
    assert main(["deploy", "render", str(GPU), "--out", str(out)]) == 0
    assert "16 manifests" in capsys.readouterr().out  # with the TLS proxy's ConfigMap
    assert main(["deploy", "validate", str(out), "--kubernetes-version", "1.30"]) == 0
    assert "16 manifests valid for Kubernetes 1.30" in capsys.readouterr().out
    assert main(["deploy", "render", str(SMALL), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["deploy", "render", str(SMALL), "--out", str(out), "--force"]) == 0
    assert not (out / "12-scaledobject-tritonab.yaml").exists()
    broken = out / "05-service-tritonab.yaml"
    broken.write_text(broken.read_text().replace("port: 8001", "port: grpc"))
    assert main(["deploy", "validate", str(out)]) == 1
    assert "Service/tritonab: spec.ports.1.port" in capsys.readouterr().out


def test_cli_writes_the_rules_with_a_specs_thresholds(tmp_path):
    out = tmp_path / "tritonab.rules.yaml"
    assert main(["deploy", "rules", "--spec", str(GPU), "--out", str(out)]) == 0
    assert "vector(0.02)" in out.read_text()
    assert _promtool("check", "rules", str(out)).returncode == 0
