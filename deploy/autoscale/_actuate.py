"""Where a decision goes: a Prometheus gauge for KEDA or an HPA, or a Deployment's scale.

- `ReplicaExporter` serves `tritonab_desired_replicas{deployment}` (and the forecast
  behind it: `tritonab_forecast_rps{deployment,bound="median"|"upper"}`,
  `tritonab_observed_rps{deployment}`) on `/metrics`. An HPA on an External metric
  (through prometheus-adapter) or a KEDA `prometheus` trigger then asks for
  `max(tritonab_desired_replicas{deployment="triton"})` with a target of 1 per pod
  (`AverageValue: 1` for the HPA, `threshold: "1"` for KEDA): desired replicas / 1 is
  exactly the count.
- `ScaleActuator` reads and patches the Deployment's `scale` subresource through an
  `AppsV1Api`-shaped client; `kubernetes_apps_api` is the one place that builds the real
  one (in-cluster config, else kubeconfig). Kubernetes errors become `AutoscaleError`
  here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric

from tritonab.deploy.autoscale._plan import Decision
from tritonab.errors import AutoscaleError

DESIRED_METRIC = "tritonab_desired_replicas"


class AppsApi(Protocol):
    """The two calls of `kubernetes.client.AppsV1Api` the scale actuator uses."""

    def read_namespaced_deployment_scale(self, name: str, namespace: str) -> Any: ...

    def patch_namespaced_deployment_scale(self, name: str, namespace: str, body: Any) -> Any: ...


class ReplicaExporter:
    """Serves the last decision as gauges (see the module docstring).

    Args:
        deployment: the `deployment` label.
    """

    def __init__(self, deployment: str) -> None:
        self.deployment = deployment
        self.decision: Decision | None = None
        self.registry = CollectorRegistry(auto_describe=True)
        self.registry.register(self)
        self._server: Any = None

    def collect(self) -> Iterator[Metric]:
        decision = self.decision
        if decision is None:
            return
        labels = ["deployment"]
        desired = GaugeMetricFamily(
            DESIRED_METRIC, "Replicas the predictive autoscaler asks for", labels=labels
        )
        desired.add_metric([self.deployment], decision.desired)
        observed = GaugeMetricFamily(
            "tritonab_observed_rps", "Request rate of the last completed step", labels=labels
        )
        observed.add_metric([self.deployment], decision.observed_rps)
        forecast = GaugeMetricFamily(
            "tritonab_forecast_rps",
            "Forecast peak request rate until new capacity has served one sync",
            labels=[*labels, "bound"],
        )
        forecast.add_metric([self.deployment, "median"], decision.peak_median_rps)
        forecast.add_metric([self.deployment, "upper"], decision.peak_upper_rps)
        yield from (desired, observed, forecast)

    def apply(self, decision: Decision) -> int:
        """Publish `decision`; returns its desired replicas."""
        self.decision = decision
        return decision.desired

    def start(self, port: int, *, addr: str = "127.0.0.1") -> None:
        """Serve `/metrics` on `addr:port` in a background thread.

        Raises:
            AutoscaleError: the port cannot be bound.
        """
        try:
            self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
        except OSError as exc:
            raise AutoscaleError(f"exporter port `{addr}:{port}` cannot be bound: {exc.strerror}") from exc

    def close(self) -> None:
        if self._server is not None:
            with contextlib.suppress(Exception):
                self._server.shutdown()
                self._server.server_close()
            self._server = None


class ScaleActuator:
    """Reads and sets a Deployment's replicas through its `scale` subresource.

    Args:
        api: a `kubernetes.client.AppsV1Api` (or one shaped like it).
        name, namespace: the Deployment.
    """

    def __init__(self, api: AppsApi, name: str, namespace: str = "default") -> None:
        self.api = api
        self.name = name
        self.namespace = namespace

    def current(self) -> int:
        """The Deployment's `spec.replicas` now.

        Raises:
            AutoscaleError: the API refused or the Deployment does not exist.
        """
        try:
            scale = self.api.read_namespaced_deployment_scale(self.name, self.namespace)
        except Exception as exc:  # kubernetes ApiException, urllib3 errors: one boundary
            raise AutoscaleError(
                f"Deployment `{self.namespace}/{self.name}`: cannot read its scale: {exc}"
            ) from exc
        return int(scale.spec.replicas or 0)

    def apply(self, decision: Decision) -> int:
        """Patch `spec.replicas` to the decision's count when it differs; returns it.

        Raises:
            AutoscaleError: the API refused the patch.
        """
        if self.current() == decision.desired:
            return decision.desired
        body = {"spec": {"replicas": decision.desired}}
        try:
            self.api.patch_namespaced_deployment_scale(self.name, self.namespace, body)
        except Exception as exc:  # kubernetes ApiException, urllib3 errors: one boundary
            raise AutoscaleError(
                f"Deployment `{self.namespace}/{self.name}`: cannot scale to {decision.desired}: {exc}"
            ) from exc
        return decision.desired


def kubernetes_apps_api(kubeconfig: str | None = None, context: str | None = None) -> AppsApi:
    """The real `AppsV1Api`: in-cluster configuration, else the kubeconfig.

    Raises:
        AutoscaleError: no usable configuration.
    """
    from kubernetes import client, config

    try:
        if kubeconfig is None and context is None:
            try:
                config.load_incluster_config()  # type: ignore[no-untyped-call]
            except config.ConfigException:
                config.load_kube_config()  # type: ignore[no-untyped-call]
        else:
            config.load_kube_config(config_file=kubeconfig, context=context)  # type: ignore[no-untyped-call]
    except Exception as exc:  # ConfigException, missing file: one boundary
        raise AutoscaleError(f"no Kubernetes configuration (in-cluster or kubeconfig): {exc}") from exc
    api: AppsApi = client.AppsV1Api()
    return api
