"""Replicas of a deployment found in Kubernetes: the ready endpoints of its Service, read
from the Service's EndpointSlices with the `kubernetes` client.

Inside a pod the client uses the pod's service account (which needs `get`/`list` on
`endpointslices` in the namespace: `tritonab deploy render` writes that Role for the
controller); elsewhere the local kubeconfig.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from tritonab.errors import DeployError

SERVICE_LABEL = "kubernetes.io/service-name"


def ready_addresses(slices: Iterable[Any], port: str) -> list[str]:
    """`host:port` of every ready endpoint in EndpointSlice objects, for the named port.

    An endpoint counts when its `ready` condition is true or unknown (the API says an
    unknown state is to be read as ready); terminating and not-ready pods are left out.

    Args:
        slices: `V1EndpointSlice` objects (the client's models).
        port: the Service port's name (`grpc`).

    Returns:
        Sorted, without duplicates (an address may appear in two slices while they change).
    """
    found: set[str] = set()
    for item in slices:
        numbers = [p.port for p in item.ports or () if p.name == port and p.port]
        if not numbers:
            continue
        for endpoint in item.endpoints or ():
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            for address in endpoint.addresses or ():
                host = f"[{address}]" if ":" in address else address
                found.add(f"{host}:{numbers[0]}")
    return sorted(found)


def _discovery_api() -> Any:
    """A `DiscoveryV1Api` on the in-cluster configuration, or else the kubeconfig."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        try:
            config.load_kube_config()  # type: ignore[no-untyped-call]
        except (config.ConfigException, OSError) as exc:
            raise DeployError(f"no Kubernetes configuration (not in a pod, no kubeconfig): {exc}") from exc
    return client.DiscoveryV1Api()


def service_endpoints(
    service: str, namespace: str = "default", *, port: str = "grpc", api: Any = None
) -> list[str]:
    """The ready `host:port` endpoints of a Service's named port.

    Args:
        service: the Service's name.
        namespace: its namespace.
        port: the Service port's name.
        api: a `kubernetes.client.DiscoveryV1Api` (default: from the environment).

    Raises:
        DeployError: no cluster configuration, or the API refused or could not be reached.
    """
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    api = api if api is not None else _discovery_api()
    try:
        listing = api.list_namespaced_endpoint_slice(namespace, label_selector=f"{SERVICE_LABEL}={service}")
    except ApiException as exc:
        raise DeployError(
            f"EndpointSlices of service `{namespace}/{service}`: {exc.status} {exc.reason}"
        ) from exc
    except (HTTPError, OSError) as exc:
        raise DeployError(f"EndpointSlices of service `{namespace}/{service}`: {exc}") from exc
    return ready_addresses(listing.items or (), port)


def kubernetes_endpoints(
    service: str, namespace: str = "default", *, port: str = "grpc", api: Any = None
) -> Callable[[], list[str]]:
    """A function giving a Service's ready endpoints each time it is called (a `Fleet`'s source).

    Raises:
        DeployError: no cluster configuration (checked now, not at the first call).
    """
    api = api if api is not None else _discovery_api()

    def discover() -> list[str]:
        """The ready endpoints now."""
        return service_endpoints(service, namespace, port=port, api=api)

    return discover
