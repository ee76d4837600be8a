"""NetworkPolicies: everything to and from the Triton pods is denied, then inference
clients may reach the gRPC and HTTP ports, Prometheus the metrics port, and the pods
may resolve names (and, with an object-storage repository, reach it on 443).

The kubelet's probes come from the node, which NetworkPolicy implementations let through.
"""

from __future__ import annotations

from typing import Any

from tritonab.deploy.k8s._workload import Manifest, labels, metadata
from tritonab.deploy.k8s.spec import DeploySpec, Peers


def _peer(peers: Peers) -> dict[str, Any]:
    """A NetworkPolicy peer from namespace and pod labels."""
    peer: dict[str, Any] = {}
    if peers.namespace_labels is not None:
        peer["namespaceSelector"] = {"matchLabels": dict(peers.namespace_labels)}
    if peers.pod_labels is not None:
        peer["podSelector"] = {"matchLabels": dict(peers.pod_labels)}
    return peer


def _policy(spec: DeploySpec, suffix: str, body: dict[str, Any]) -> Manifest:
    """A NetworkPolicy on the deployment's pods."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(spec, f"{spec.name}-{suffix}"),
        "spec": {"podSelector": {"matchLabels": labels(spec)}, **body},
    }


def network_policies(spec: DeploySpec) -> list[Manifest]:
    """Default deny, then the three allowances."""
    egress: list[dict[str, Any]] = [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        }
    ]
    if spec.repository.uri is not None:
        egress.append({"ports": [{"protocol": "TCP", "port": 443}]})
    return [
        _policy(spec, "default-deny", {"policyTypes": ["Ingress", "Egress"]}),
        _policy(
            spec,
            "allow-clients",
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [_peer(p) for p in spec.clients],
                        "ports": [{"protocol": "TCP", "port": "grpc"}, {"protocol": "TCP", "port": "http"}],
                    }
                ],
            },
        ),
        _policy(
            spec,
            "allow-prometheus",
            {
                "policyTypes": ["Ingress"],
                "ingress": [
                    {
                        "from": [_peer(spec.monitoring.prometheus)],
                        "ports": [{"protocol": "TCP", "port": "metrics"}],
                    }
                ],
            },
        ),
        _policy(spec, "allow-egress", {"policyTypes": ["Egress"], "egress": egress}),
    ]
