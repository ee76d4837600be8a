"""`tritonab monitor`: a Prometheus exporter of data and concept drift, read from the logs.

A background thread recomputes everything every `interval_s` from the log folder: for
each experiment, the data drift of the payloads logged in the last `window_s` seconds
against each variant's reference profile (`drift.check_logs`), and for each outcome
metric the windowed mean and ADWIN changes (`drift.concept_drift`). A scrape returns the
last snapshot (a custom collector), so series of features or variants that disappeared
disappear too, and a scrape never waits for a computation.

Metrics (gauges unless said otherwise; labels in braces):

- `tritonab_drift_psi`, `tritonab_drift_ks_statistic` (numeric features),
  `tritonab_drift_js_distance`, `tritonab_drift_p_value` (the feature's test, corrected)
  and `tritonab_drift_detected` (1 when the feature drifted, else 0)
  {experiment, variant, feature}: the current window against the reference;
- `tritonab_drift_window_rows`, `tritonab_drift_domain_auc` (when enabled)
  {experiment, variant};
- `tritonab_concept_window_mean` (accuracy, for a 0/1 `correct`),
  `tritonab_concept_window_count`, `tritonab_concept_drift_detected` (1 when ADWIN
  detected a change within the current window) and
  `tritonab_concept_last_change_timestamp_seconds` {experiment, variant, metric};
- `tritonab_monitor_last_success_timestamp_seconds` and the counter
  `tritonab_monitor_refresh_errors_total` {experiment}; `tritonab_monitor_refresh_seconds`.

A window with fewer than the spec's `min_rows` payload rows exports only its row count.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest

from tritonab.errors import TritonABError
from tritonab.monitoring.drift import ConceptReport, DriftReport, DriftSpec, check_logs, concept_drift
from tritonab.monitoring.router_log import PAYLOADS

DEFAULT_WINDOW_S = 3600.0
DEFAULT_HISTORY_S = 7 * 86400.0


@dataclass(frozen=True)
class MonitorSettings:
    """What the exporter watches.

    Attributes:
        log_dir: the log folder.
        experiments: the experiments to watch (empty: every experiment folder of the logs).
        repository: where each variant's reference profile is read (beside its model).
        reference: one reference (profile or data) for every variant instead.
        spec: drift thresholds and settings.
        window_s: the current window, in seconds before now.
        metrics: outcome metrics whose concept drift to export.
        delta: ADWIN's confidence.
        history_s: how much outcome history ADWIN reads.
    """

    log_dir: Path
    experiments: tuple[str, ...] = ()
    repository: Path | None = None
    reference: str | None = None
    spec: DriftSpec = field(default_factory=DriftSpec)
    window_s: float = DEFAULT_WINDOW_S
    metrics: tuple[str, ...] = ()
    delta: float = 0.002
    history_s: float = DEFAULT_HISTORY_S


@dataclass(frozen=True)
class ExperimentState:
    """One experiment's last refresh: its drift and concept reports, or the error."""

    drift: DriftReport | None
    concept: tuple[ConceptReport, ...]
    finished: float
    error: str | None = None


def _gauge(name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


class DriftMonitor:
    """Computes drift snapshots and serves them as a Prometheus collector.

    Args:
        settings: what to watch.
    """

    def __init__(self, settings: MonitorSettings) -> None:
        self.settings = settings
        self.states: dict[str, ExperimentState] = {}
        self.errors: dict[str, int] = {}
        self.last_duration = 0.0
        self._now = time.time()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    # -- computing ----------------------------------------------------------------------

    def experiments(self) -> list[str]:
        """The experiments to watch: the configured ones, or every folder with a payload log."""
        if self.settings.experiments:
            return list(self.settings.experiments)
        root = self.settings.log_dir
        return sorted(p.name for p in root.iterdir() if (p / PAYLOADS).is_dir()) if root.is_dir() else []

    def _refresh_one(self, experiment: str, now: float) -> ExperimentState:
        s = self.settings
        spec = s.spec.model_copy(update={"window": None})
        drift = check_logs(
            s.log_dir,
            experiment,
            reference=s.reference,
            repository=s.repository,
            spec=spec,
            since=now - s.window_s,
        )
        concept = tuple(
            concept_drift(
                s.log_dir, experiment, metric, delta=s.delta, since=now - s.history_s, require_outcomes=False
            )
            for metric in s.metrics
        )
        return ExperimentState(drift, concept, time.time())

    def refresh(self, now: float | None = None) -> None:
        """Recompute every experiment (errors are counted, never raised)."""
        started = time.monotonic()
        moment = time.time() if now is None else now
        for experiment in self.experiments():
            try:
                state = self._refresh_one(experiment, moment)
            except TritonABError as exc:
                with self._lock:
                    self.errors[experiment] = self.errors.get(experiment, 0) + 1
                    old = self.states.get(experiment)
                    finished = old.finished if old else 0.0
                    self.states[experiment] = ExperimentState(None, (), finished, str(exc))
                continue
            with self._lock:
                self.states[experiment] = state
        self.last_duration = time.monotonic() - started
        self._now = moment

    # -- the collector ------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        """The last snapshot as metric families."""
        with self._lock:
            states = dict(self.states)
            errors = dict(self.errors)
        feature = ("experiment", "variant", "feature")
        psi = _gauge("tritonab_drift_psi", "PSI of the current window against the reference", feature)
        ks = _gauge("tritonab_drift_ks_statistic", "two-sample KS statistic (numeric features)", feature)
        js = _gauge("tritonab_drift_js_distance", "Jensen-Shannon distance (base 2)", feature)
        pval = _gauge("tritonab_drift_p_value", "the feature's test p-value after correction", feature)
        flag = _gauge("tritonab_drift_detected", "1 when the feature drifted in the current window", feature)
        rows = _gauge(
            "tritonab_drift_window_rows", "payload rows in the current window", ("experiment", "variant")
        )
        auc = _gauge("tritonab_drift_domain_auc", "domain classifier AUC", ("experiment", "variant"))
        for experiment, state in sorted(states.items()):
            for w in state.drift.windows if state.drift else []:
                rows.add_metric([experiment, w.variant or ""], w.rows)
                if w.domain is not None:
                    auc.add_metric([experiment, w.variant or ""], w.domain.auc)
                for f in w.features:
                    labels = [experiment, w.variant or "", f.name]
                    psi.add_metric(labels, f.psi)
                    js.add_metric(labels, f.js)
                    if f.ks_statistic is not None:
                        ks.add_metric(labels, f.ks_statistic)
                    if f.p_adjusted is not None:
                        pval.add_metric(labels, f.p_adjusted)
                    if f.drifted is not None:
                        flag.add_metric(labels, 1.0 if f.drifted else 0.0)
        yield from (psi, ks, js, pval, flag, rows, auc)
        yield from self._concept_families(states)
        yield from self._health_families(states, errors)

    def _concept_families(self, states: dict[str, ExperimentState]) -> Iterator[Metric]:
        labels = ("experiment", "variant", "metric")
        mean = _gauge(
            "tritonab_concept_window_mean", "the outcome metric's mean over the current window", labels
        )
        count = _gauge("tritonab_concept_window_count", "outcomes in the current window", labels)
        flag = _gauge(
            "tritonab_concept_drift_detected", "1 when ADWIN detected a change in the window", labels
        )
        last = _gauge(
            "tritonab_concept_last_change_timestamp_seconds", "start of the last detected change", labels
        )
        start = self._now - self.settings.window_s
        for experiment, state in sorted(states.items()):
            for report in state.concept:
                for name, v in report.variants.items():
                    key = [experiment, name, report.metric]
                    recent = _recent(v, start)
                    n = sum(c for c, _ in recent)
                    count.add_metric(key, n)
                    if n:
                        mean.add_metric(key, sum(c * m for c, m in recent) / n)
                    flag.add_metric(key, 1.0 if v.changed_since(start) else 0.0)
                    if v.changes:
                        last.add_metric(key, v.changes[-1].changed_at)
        yield from (mean, count, flag, last)

    def _health_families(
        self, states: dict[str, ExperimentState], errors: dict[str, int]
    ) -> Iterator[Metric]:
        ok = _gauge(
            "tritonab_monitor_last_success_timestamp_seconds",
            "end of the last successful refresh",
            ("experiment",),
        )
        failed = CounterMetricFamily(
            "tritonab_monitor_refresh_errors", "refreshes that failed", labels=["experiment"]
        )
        for experiment, state in sorted(states.items()):
            if state.finished:
                ok.add_metric([experiment], state.finished)
            failed.add_metric([experiment], errors.get(experiment, 0))
        duration = GaugeMetricFamily("tritonab_monitor_refresh_seconds", "duration of the last refresh")
        duration.add_metric([], self.last_duration)
        yield from (ok, failed, duration)

    def exposition(self) -> bytes:
        """The current snapshot in Prometheus' text format."""
        return generate_latest(self.registry)

    # -- serving ------------------------------------------------------------------------

    def start(self, port: int, *, addr: str = "127.0.0.1", interval_s: float = 60.0) -> None:
        """Refresh once, then serve `/metrics` on `addr:port` and refresh every `interval_s`."""
        self.refresh()
        self._server, _ = start_http_server(port, addr=addr, registry=self.registry)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._loop, args=(interval_s,), name="tritonab-monitor", daemon=True
        )
        self._thread.start()

    def _loop(self, interval_s: float) -> None:
        while not self._stop.wait(interval_s):
            self.refresh()

    def stop(self) -> None:
        """Stop refreshing and serving."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        if self._server is not None:
            with contextlib.suppress(OSError):
                self._server.shutdown()
                self._server.server_close()
            self._server = None

    def __enter__(self) -> DriftMonitor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _recent(v: Any, start: float) -> list[tuple[int, float]]:
    """(count, mean) of the windows of a VariantConcept that end after `start`."""
    return [(w.count, w.mean) for w in v.windows if w.end >= start]


def monitor_settings(log_dir: str | os.PathLike[str], **kwargs: Any) -> MonitorSettings:
    """`MonitorSettings` with paths converted."""
    repository = kwargs.pop("repository", None)
    return MonitorSettings(Path(log_dir), repository=Path(repository) if repository else None, **kwargs)
