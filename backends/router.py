"""The experiment router as a Triton Python-backend model (Business Logic Scripting).

Per `execute` (one dynamic batch): every row gets a variant (`_routing.Router`),
rows are grouped into one BLS call per variant, the calls run concurrently (a
thread pool: a synchronous `execute` measured faster than `async def` here), and
outputs are scattered back into row order with `AB_VARIANT`. A refused or failed
request gets its own error response; the rest of the batch is answered. Shadow
targets receive sampled mirror calls whose results are dropped. Over variants that do
not batch (`max_batch_size: 0`, so this router has none either) each request is routed
whole: one variant, one BLS call with its tensors as they are, `AB_VARIANT` of shape [1].

Config parameters: `experiment` (the spec as JSON, written by `tritonab build`).
Logging: with a log folder (the spec's `logging.sink.path` or `$TRITONAB_LOG_DIR`, set by
`tritonab serve --log-dir`), every routed row gets an exposure record and a sample of
requests a payload record, handed to `tritonab.monitoring.router_log.RouterLog`'s
background writers after the responses are built.
"""

from __future__ import annotations

import os
import random
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import triton_python_backend_utils as pb_utils

from tritonab.backends import _triton as tb
from tritonab.backends._flusher import Flusher
from tritonab.backends._routing import (
    LATENCY_BUCKETS_US,
    VARIANT_OUTPUT,
    Call,
    CallResult,
    Plan,
    RequestError,
    RoutedBatch,
    Router,
)
from tritonab.errors import SpecError
from tritonab.monitoring.router_log import LOG_DIR_ENV, RouterLog, audit_rejection, resolve_log_dir
from tritonab.splitter.spec import spec_from_json

LATENCY_SAMPLES = 4
"""Latency observations per variant per metric pass (`Flusher`: at most every 50 ms)."""


class _Metrics:
    """Custom metric families, labelled by (experiment, variant)."""

    def __init__(self, experiment: str, variants: list[str], weights: dict[str, float]) -> None:
        # The weights this instance routes by: a gauge per variant, so Prometheus can
        # compare shares with targets and the replicas of a fleet with each other. Triton
        # shares a metric between the old and the new instance of a reload, so the value
        # switches when the new instance initializes.
        self.weight = pb_utils.MetricFamily(
            "tritonab_variant_weight",
            "Target share of the variant in the weights the router serves",
            pb_utils.MetricFamily.GAUGE,
        )
        self._weights = {
            v: self.weight.Metric(labels={"experiment": experiment, "variant": v}) for v in weights
        }
        for v, w in weights.items():
            self._weights[v].set(w)
        self.requests = pb_utils.MetricFamily(
            "tritonab_requests_total",
            "Inference rows routed, per experiment and variant",
            pb_utils.MetricFamily.COUNTER,
        )
        self.errors = pb_utils.MetricFamily(
            "tritonab_errors_total",
            "Inference rows that failed, per experiment and variant",
            pb_utils.MetricFamily.COUNTER,
        )
        self.latency = pb_utils.MetricFamily(
            "tritonab_request_latency_us",
            "Latency of the variant call seen by the router, microseconds",
            pb_utils.MetricFamily.HISTOGRAM,
        )
        labels = [*variants, "_invalid"]
        self._requests = {
            v: self.requests.Metric(labels={"experiment": experiment, "variant": v}) for v in labels
        }
        self._errors = {
            v: self.errors.Metric(labels={"experiment": experiment, "variant": v}) for v in labels
        }
        self._latency = {
            v: self.latency.Metric(
                labels={"experiment": experiment, "variant": v}, buckets=list(LATENCY_BUCKETS_US)
            )
            for v in variants
        }

    def ensure(self, experiment: str, label: str) -> None:
        """Create metrics for an extra label (a shadow target) on first use."""
        if label not in self._requests:
            ids = {"experiment": experiment, "variant": label}
            self._requests[label] = self.requests.Metric(labels=ids)
            self._errors[label] = self.errors.Metric(labels=ids)

    def count(self, variant: str, rows: int, failed: int) -> None:
        """Add `rows` routed rows, `failed` of which failed."""
        self._requests[variant].increment(rows)
        if failed:
            self._errors[variant].increment(failed)

    def observe(self, variant: str, micros: float) -> None:
        self._latency[variant].observe(micros)


class _LogMetrics:
    """Records handed to the log writers and records dropped, per (experiment, stream)."""

    def __init__(self, experiment: str, streams: list[str]) -> None:
        self.records = pb_utils.MetricFamily(
            "tritonab_log_records_total",
            "Log records accepted by the writer queue",
            pb_utils.MetricFamily.COUNTER,
        )
        self.dropped = pb_utils.MetricFamily(
            "tritonab_log_dropped_total",
            "Log records dropped because the writer queue was full",
            pb_utils.MetricFamily.COUNTER,
        )
        self.cpu = pb_utils.MetricFamily(
            "tritonab_log_writer_cpu_seconds_total",
            "CPU seconds of the log writer threads (serialising, encrypting, writing)",
            pb_utils.MetricFamily.COUNTER,
        )
        ids = {s: {"experiment": experiment, "stream": s} for s in streams}
        self._records = {s: self.records.Metric(labels=ids[s]) for s in streams}
        self._dropped = {s: self.dropped.Metric(labels=ids[s]) for s in streams}
        self._cpu = {s: self.cpu.Metric(labels=ids[s]) for s in streams}

    def add_cpu(self, seconds: dict[str, float]) -> None:
        for stream, value in seconds.items():
            if value > 0:
                self._cpu[stream].increment(value)

    def add(self, counts: dict[str, tuple[int, int]]) -> None:
        for stream, (accepted, dropped) in counts.items():
            if accepted:
                self._records[stream].increment(accepted)
            if dropped:
                self._dropped[stream].increment(dropped)


def _open_log(spec, args: dict, names: list[str]) -> RouterLog | None:
    """The instance's log writers, or None without a log folder."""
    folder = resolve_log_dir(spec)
    if folder is None:
        return None
    instance = str(args.get("model_instance_name") or spec.name)
    return RouterLog(spec, folder, instance, names)


def _log_metric_error(exc: Exception) -> None:
    pb_utils.Logger.log_error(f"tritonab: metric update failed: {exc}")


class TritonPythonModel:
    """Triton entry point; the router's `model.py` re-exports this class."""

    def initialize(self, args: dict) -> None:
        config = tb.model_config(args)
        params = tb.config_parameters(config)
        try:
            self.spec = spec_from_json(params["experiment"])
        except SpecError as exc:
            if "logging.sink.region" in str(exc) and os.environ.get(LOG_DIR_ENV):
                audit_rejection(os.environ[LOG_DIR_ENV], f"router `{config.get('name')}`", str(exc))
            raise
        self.output_dtypes = tb.output_dtypes(config)
        self.variant_outputs = [n for n in self.output_dtypes if n != VARIANT_OUTPUT]
        names = [i["name"] for i in config.get("input", [])]
        self.forward_inputs = [n for n in names if n != self.spec.unit_input]
        self.read_inputs = names
        max_rows = int(config.get("max_batch_size", 0))
        # max_batch_size 0 (non-batching variants): each request is routed whole.
        self.router = Router(self.spec, self.forward_inputs, max_rows or 1, batching=max_rows > 0)
        self.metrics = _Metrics(self.spec.name, list(self.router.names), self.spec.weights)
        # Tensors of the router's shared label arrays, by the array's id (the arrays live
        # as long as the router, so an id is never reused for another).
        self.label_tensors: dict[int, object] = {}
        # BLS `exec` blocks with the GIL released: a pool runs the calls of several
        # variants at once and the shadow calls in the background.
        workers = len(self.spec.variants) + len(self.spec.shadow)
        self.pool = ThreadPoolExecutor(max_workers=max(2, workers), thread_name_prefix="tritonab")
        self.flusher: Flusher[tuple[dict, list]] = Flusher(self._flush_metrics, on_error=_log_metric_error)
        self.log = _open_log(self.spec, args, list(self.router.names))
        # Batches whose requests each go whole to one variant take `_execute_whole`; shadow
        # mirroring stays on the general path.
        self.whole_path = not self.spec.shadow and bool(self.forward_inputs)
        self.log_metrics = _LogMetrics(self.spec.name, list(self.log.writers)) if self.log else None

    def execute(self, requests):
        per_request = [tb.request_inputs(r, self.read_inputs) for r in requests]
        params = [tb.request_parameters(r) for r in requests]
        if self.whole_path:
            variants = self.router.whole_variants(per_request, params)
            if variants is not None:
                responses = self._execute_whole(requests, per_request, params, variants)
                if responses is not None:
                    return responses
        plan = self.router.plan(per_request, params)
        # The first call runs here, the others on the pool at the same time (`exec`
        # releases the GIL while it waits): one hand-off fewer per batch than mapping
        # every call onto the pool.
        others = [self.pool.submit(self._call, call) for call in plan.calls[1:]]
        results = [self._call(plan.calls[0])] if plan.calls else []
        results += [future.result() for future in others]
        outcome = self.router.scatter(plan, [r.outputs for r in results])
        self._record(plan, results)
        self._mirror(plan, per_request)
        if self.log is not None:
            request_ids = [tb.request_id(r) for r in requests]
            self.log.record(
                RoutedBatch(time.time(), request_ids, params, per_request, plan, results, outcome)
            )
        return [
            tb.error_response(r.message, invalid_argument=r.invalid_argument)
            if isinstance(r, RequestError)
            else self._respond(r)
            for r in outcome
        ]

    def _execute_whole(self, requests, per_request, params, variants: list[int]):
        """The common batch (`Router.whole_variants`: each request whole to one variant),
        served without `plan`'s general grouping, a scatter or per-request output dicts:
        one call per variant, each response cut from its call's outputs. With logging, one
        `record_whole` per batch (the writers build the records `plan`'s path would give).
        None, before any call, when a variant's rows exceed one call (`plan` splits them)."""
        names = self.router.input_names
        first = names[0]
        rows = [arrays[first].shape[0] for arrays in per_request]  # every input is there
        members: dict[int, list[int]] = {}
        for r, v in enumerate(variants):
            members.setdefault(v, []).append(r)
        calls = []
        for v, group in members.items():
            if sum(rows[r] for r in group) > self.router.max_rows:
                return None
            inputs = (
                {n: per_request[group[0]][n] for n in names}
                if len(group) == 1
                else {n: np.concatenate([per_request[r][n] for r in group]) for n in names}
            )
            calls.append(Call(v, inputs))
        others = [self.pool.submit(self._call, call) for call in calls[1:]]
        results = [self._call(calls[0]), *(future.result() for future in others)]
        responses: list = [None] * len(variants)
        counts: dict[str, list[int]] = {}
        latencies = []
        for call, (outputs, micros) in zip(calls, results):
            v = call.variant
            name = self.router.names[v]
            latencies.append((name, micros))
            offset = 0
            error, values = None, []
            if isinstance(outputs, RequestError):
                error = outputs
            else:
                values = [(n, self._as_output(n, x)) for n, x in outputs.items()]
            for r in members[v]:
                n = rows[r]
                if error is not None:
                    responses[r] = tb.error_response(error.message)
                    offset += n
                    continue
                span = slice(offset, offset + n)
                offset += n
                tensors = [pb_utils.Tensor(k, x[span]) for k, x in values]
                tensors.append(self._label_tensor(self.router.labels(v, n)))
                responses[r] = pb_utils.InferenceResponse(output_tensors=tensors)
            counts[name] = [offset, 0 if error is None else offset]
        self.flusher.add((counts, latencies))
        if self.log is not None:
            self.log.record_whole(
                time.time(),
                [tb.request_id(r) for r in requests],
                [str(p["unit_id"]) for p in params],
                rows,
                [(c.variant, members[c.variant], c.inputs, res) for c, res in zip(calls, results)],
            )
        return responses

    def _as_output(self, name: str, value: np.ndarray) -> np.ndarray:
        """A variant output in the router's configured dtype, C-contiguous (no copy when it is)."""
        dtype = self.output_dtypes.get(name, value.dtype)
        if value.dtype != dtype or not value.flags.c_contiguous:
            return np.ascontiguousarray(value, dtype=dtype)
        return value

    def _label_tensor(self, labels: np.ndarray):
        """The tensor of a shared, read-only label array (`Router.labels`), built once: its
        BYTES serialisation is the costliest part of a response otherwise."""
        tensor = self.label_tensors.get(id(labels))
        if tensor is None:
            tensor = self.label_tensors[id(labels)] = pb_utils.Tensor(VARIANT_OUTPUT, labels)
        return tensor

    def _respond(self, outputs: dict[str, np.ndarray]):
        """The response: each variant output cast to its configured dtype, and `AB_VARIANT`.
        A shared label array (`Router.labels`) has one tensor, built once: its BYTES
        serialisation is the costliest part of a response otherwise."""
        tensors = []
        for name, value in outputs.items():
            if name == VARIANT_OUTPUT:
                shared = not value.flags.writeable  # a shared label array: keep its tensor
                tensors.append(self._label_tensor(value) if shared else pb_utils.Tensor(name, value))
                continue
            tensors.append(pb_utils.Tensor(name, self._as_output(name, value)))
        return pb_utils.InferenceResponse(output_tensors=tensors)

    def _call(self, call: Call) -> CallResult:
        """One BLS call: the variant's outputs or its error, and the microseconds it took."""
        variant = self.spec.variants[call.variant]
        request = pb_utils.InferenceRequest(
            model_name=variant.model,
            model_version=variant.version,
            requested_output_names=self.variant_outputs,
            inputs=[pb_utils.Tensor(n, v) for n, v in call.inputs.items()],
        )
        t0 = time.perf_counter()
        response = request.exec()
        micros = (time.perf_counter() - t0) * 1e6
        if response.has_error():
            error = f"variant `{variant.name}` (model `{variant.model}`): {response.error().message()}"
            return CallResult(RequestError(error), micros)
        outputs = {
            n: pb_utils.get_output_tensor_by_name(response, n).as_numpy() for n in self.variant_outputs
        }
        return CallResult(outputs, micros)

    def _record(self, plan: Plan, results: list[CallResult]) -> None:
        """Rows per variant, and one latency observation per variant call (per batch)."""
        rows: dict[str, list[int]] = {}
        latencies = []
        for call, (result, micros) in zip(plan.calls, results):
            name = self.router.names[call.variant]
            n = call.rows
            counts = rows.setdefault(name, [0, 0])
            counts[0] += n
            counts[1] += n if isinstance(result, RequestError) else 0
            latencies.append((name, micros))
        invalid = sum(plan.rows[r] for r, e in enumerate(plan.errors) if e is not None)
        if invalid:
            rows["_invalid"] = [invalid, invalid]
        self.flusher.add((rows, latencies))

    def _flush_metrics(self, items: list[tuple[dict, list]]) -> None:
        """Counters summed over every batch since the last flush; each latency observed."""
        totals: dict[str, list[int]] = {}
        for rows, _ in items:
            for name, (total, failed) in rows.items():
                counts = totals.setdefault(name, [0, 0])
                counts[0] += total
                counts[1] += failed
        for name, (total, failed) in totals.items():
            self.metrics.count(name, total, failed)
        by_variant: dict[str, list[float]] = {}
        for _, latencies in items:
            for name, micros in latencies:
                by_variant.setdefault(name, []).append(micros)
        for name, values in by_variant.items():
            # Each observation is a round trip to the server process: a uniform sample of
            # at most LATENCY_SAMPLES per variant per pass keeps quantiles and SLO ratios
            # unbiased while the cost stays bounded under any traffic.
            if len(values) > LATENCY_SAMPLES:
                values = random.sample(values, LATENCY_SAMPLES)
            for micros in values:
                self.metrics.observe(name, micros)
        if self.log is not None and self.log_metrics is not None:
            self.log_metrics.add(self.log.take_counts())
            self.log_metrics.add_cpu(self.log.take_cpu())

    def _mirror(self, plan, per_request) -> None:
        """Fire-and-forget shadow calls for the valid requests of this batch."""
        if not self.spec.shadow:
            return
        valid = [r for r, e in enumerate(plan.errors) if e is None]
        if not valid:
            return
        if not self.router.batching:  # tensors without a batch dimension: mirror each request
            for r in valid:
                for index in self.router.shadow_sample():
                    inputs = {n: per_request[r][n] for n in self.forward_inputs if n in per_request[r]}
                    self.pool.submit(self._shadow_call, index, inputs, 1)
            return
        for index in self.router.shadow_sample():
            inputs = {
                n: np.concatenate([per_request[r][n] for r in valid], axis=0) for n in self.forward_inputs
            }
            rows = sum(plan.rows[r] for r in valid)
            self.pool.submit(self._shadow_call, index, inputs, rows)

    def _shadow_call(self, index: int, inputs: dict[str, np.ndarray], rows: int) -> None:
        shadow = self.spec.shadow[index]
        label = f"shadow:{shadow.model}"
        try:
            self.metrics.ensure(self.spec.name, label)
            request = pb_utils.InferenceRequest(
                model_name=shadow.model,
                model_version=shadow.version,
                requested_output_names=self.variant_outputs,
                inputs=[pb_utils.Tensor(n, v) for n, v in inputs.items()],
            )
            response = request.exec()
            self.metrics.count(label, rows, rows if response.has_error() else 0)
        except Exception:  # a shadow never fails anything: count it and move on
            self.metrics.count(label, rows, rows)

    def finalize(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
        self.flusher.close()
        if self.log is not None:
            self.log.close()
