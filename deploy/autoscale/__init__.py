"""tritonab.deploy.autoscale: forecast-driven replicas, and the HPA to compare them with.

- `Forecaster`: Holt-Winters (statsmodels) with daily seasonality on log request rates;
- `ScalingSettings`, `HPAPolicy`, `PredictivePolicy`: the Kubernetes HPA algorithm as
  documented, and the predictive policy (forecast upper bound over start-up + horizon);
- `simulate`, `plot_simulation`: replay a `time_s,rps` trace against both policies;
- `diurnal_trace`, `bursty_trace`, `read_trace`, `write_trace`: traces;
- `plan`, `Autoscaler`, `PrometheusRates`: the predictive policy on Prometheus history;
  `ReplicaExporter` (`tritonab_desired_replicas` for KEDA or an HPA) and
  `ScaleActuator` (a Deployment's scale subresource) act on its decisions;
- `capacity_from_perf`: capacity per replica from a `tritonab perf run` CSV.
"""

from tritonab.deploy.autoscale._actuate import (
    DESIRED_METRIC,
    AppsApi,
    ReplicaExporter,
    ScaleActuator,
    kubernetes_apps_api,
)
from tritonab.deploy.autoscale._capacity import capacity_from_perf, capacity_from_records
from tritonab.deploy.autoscale._forecast import Forecaster, ForecastModel
from tritonab.deploy.autoscale._plan import (
    Autoscaler,
    Decision,
    ForecastPoint,
    PrometheusRates,
    RateSource,
    default_query,
    plan,
)
from tritonab.deploy.autoscale._policy import (
    ClusterView,
    HPAPolicy,
    Policy,
    PredictivePolicy,
    ScalingSettings,
)
from tritonab.deploy.autoscale._simulate import (
    POLICIES,
    PolicyResult,
    Simulation,
    make_policy,
    plot_simulation,
    simulate,
)
from tritonab.deploy.autoscale._traces import Trace, bursty_trace, diurnal_trace, read_trace, write_trace

__all__ = [
    "DESIRED_METRIC",
    "POLICIES",
    "AppsApi",
    "Autoscaler",
    "ClusterView",
    "Decision",
    "ForecastPoint",
    "PrometheusRates",
    "RateSource",
    "ReplicaExporter",
    "ScaleActuator",
    "capacity_from_perf",
    "capacity_from_records",
    "default_query",
    "kubernetes_apps_api",
    "plan",
    "ForecastModel",
    "Forecaster",
    "HPAPolicy",
    "Policy",
    "PolicyResult",
    "PredictivePolicy",
    "ScalingSettings",
    "Simulation",
    "Trace",
    "bursty_trace",
    "diurnal_trace",
    "make_policy",
    "plot_simulation",
    "read_trace",
    "simulate",
    "write_trace",
]
