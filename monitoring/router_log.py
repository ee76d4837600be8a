"""The router's exposure and payload logs: what the request path hands over, and the records.

The request path only packs references (`record`: a tuple per batch, no per-row work;
`record_whole` for the router's common batch: one item for both streams, the sampled
calls' tensors copied once per call); one writer thread (a `Pump`) expands them into
records, redacts and hashes payloads, and writes both streams.

Layout of a log folder (`tritonab serve --log-dir DIR`, or the spec's `logging.sink.path`):

    DIR/audit.jsonl                          hash-chained audit log (monitoring.audit)
    DIR/outcomes/*.jsonl                     outcomes (tritonab outcomes add, report_outcome)
    DIR/<experiment>/spec.json               the spec the router served (hash_salt redacted)
    DIR/<experiment>/exposures/*.jsonl       one record per routed row
    DIR/<experiment>/payloads/*.jsonl        sampled requests' inputs and outputs
    DIR/<experiment>/_drops/*.jsonl          running totals of records dropped (queue full)

With `logging.encrypt: true` both streams are encrypted (`*.jsonl.enc`) under the data
key named by `$TRITONAB_LOG_KEY_FILE`; with a region policy (`$TRITONAB_REGION_POLICY`)
every file is checked against the sink region's storage roots by its real path before
it is opened, and a refusal is audited.

Exposure record: time, experiment, variant, unit_id, request_id, row, model, version,
latency_us, ok, region. Payload record: time, experiment, request_id, unit_id, variants,
inputs, outputs, region.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tritonab._io import atomic_write_text
from tritonab.backends._routing import VARIANT_OUTPUT, CallResult, Outputs, Plan, RoutedBatch
from tritonab.errors import SecurityError
from tritonab.monitoring import audit
from tritonab.monitoring.redact import Redactor
from tritonab.monitoring.segments import Pump, SegmentWriter
from tritonab.security import LOG_KEY_ENV, Guard, guard_from_env, key_from_env
from tritonab.splitter.spec import Experiment

LOG_DIR_ENV = "TRITONAB_LOG_DIR"
EXPOSURES = "exposures"
PAYLOADS = "payloads"


Unit = str | NDArray[Any] | None
"""A request's unit: one id for all rows (the `unit_id` parameter), one per row, or none."""


@dataclass(frozen=True, slots=True)
class ExposureBatch:
    """What the exposure writer expands into one record per routed row."""

    time: float
    request_ids: Sequence[str]
    units: Sequence[Unit]
    plan: Plan
    results: Sequence[CallResult]


@dataclass(frozen=True, slots=True)
class WholeCall:
    """One variant call of a `WholeBatch`: its requests in the order of its rows."""

    variant: int
    members: Sequence[int]
    micros: float
    ok: bool
    inputs: Mapping[str, NDArray[Any]] | None  # copies, when a member's payload is sampled
    outputs: Mapping[str, NDArray[Any]] | None


@dataclass(frozen=True, slots=True)
class WholeBatch:
    """A batch whose requests each went whole to one variant (the router's common path),
    handed to both writers at once: each expands its own records from it."""

    time: float
    request_ids: Sequence[str]
    units: Sequence[str]
    rows: Sequence[int]
    calls: Sequence[WholeCall]
    sampled: Sequence[bool] | None  # per request; None: every request (sample rate 1)


@dataclass(frozen=True, slots=True)
class PayloadSample:
    """One sampled request's inputs and outputs (copies), for the payload writer."""

    time: float
    request_id: str
    unit: Unit
    inputs: Mapping[str, NDArray[Any]]
    outputs: Outputs


def resolve_log_dir(spec: Experiment, environ: dict[str, str] | None = None) -> Path | None:
    """The folder the router logs to: the spec's sink path, else `$TRITONAB_LOG_DIR`, else None."""
    env = os.environ if environ is None else environ
    if not spec.logging.enabled:
        return None
    raw = spec.logging.sink.path or env.get(LOG_DIR_ENV)
    return Path(raw) if raw else None


def _stored_spec(spec: Experiment) -> str:
    """The spec kept beside the logs, without `logging.hash_salt`: with the salt beside
    them, hashed payload values could be recovered by trying candidates."""
    if not spec.logging.hash_salt:
        return spec.to_json()
    redacted = spec.model_copy(
        update={"logging": spec.logging.model_copy(update={"hash_salt": "[REDACTED]"})}
    )
    return redacted.to_json()


def _guard(spec: Experiment, log_dir: str | os.PathLike[str]) -> Guard | None:
    """The residency check of the router's files: the sink region under `$TRITONAB_REGION_POLICY`."""
    return guard_from_env(
        spec.logging.sink.region, audit_log=audit.audit_path(log_dir), writer=f"router log `{spec.name}`"
    )


def audit_rejection(log_dir: str | os.PathLike[str], source: str, message: str) -> None:
    """Record a sink rejected for residency in the folder's audit log."""
    audit.append(audit.audit_path(log_dir), "sink.rejected", source=source, reason=message)


class RouterLog:
    """Exposure and payload writers of one router instance.

    Args:
        spec: the experiment (its `logging` section configures everything).
        log_dir: the log folder.
        instance: the router's instance name (part of every segment name).
        names: variant names in routing order (index -> name).
    """

    def __init__(
        self, spec: Experiment, log_dir: str | os.PathLike[str], instance: str, names: Sequence[str]
    ) -> None:
        self.spec = spec
        cfg = spec.logging
        self.region = cfg.sink.region
        self.folder = Path(log_dir) / spec.name
        self.guard = _guard(spec, log_dir)
        if self.guard is not None:
            self.guard(self.folder)
        self.key = key_from_env(LOG_KEY_ENV, purpose="data")
        if cfg.encrypt and self.key is None:
            raise SecurityError(
                f"experiment `{spec.name}`: logging.encrypt is true but ${LOG_KEY_ENV} names no key file"
            )
        if not cfg.encrypt:
            self.key = None
        self.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.folder / "spec.json", _stored_spec(spec))
        self.names = list(names)
        self.models = [(v.model, v.version) for v in (spec.variant(n) for n in self.names)]
        self._fragments: list[str] | None = None
        self._region_text = _json_text(self.region)
        self.sample_rate = cfg.sample_rate
        self.redactor = Redactor(cfg.redact, cfg.hash, cfg.hash_salt)
        self.unit_input = spec.unit_input
        self.instance = instance
        # One thread writes both streams: a wake-up per pass instead of one per stream.
        self.pump = Pump(f"tritonab-log-{spec.name}")
        self.exposures = self._writer(EXPOSURES, self._exposure_records)
        self.payloads = self._writer(PAYLOADS, self._payload_records) if self.sample_rate > 0 else None
        self._reported = {EXPOSURES: (0, 0), PAYLOADS: (0, 0)}
        self._cpu_reported: dict[str, float] = {}

    def _writer(self, stream: str, expand: Callable[[Any], Iterable[dict[str, Any] | str]]) -> SegmentWriter:
        cfg = self.spec.logging
        return SegmentWriter(
            self.folder / stream,
            stream,
            instance=self.instance,
            queue_size=cfg.queue_size,
            max_records=cfg.rotate_records,
            max_bytes=cfg.rotate_bytes,
            max_age_s=cfg.rotate_seconds,
            expand=expand,
            labels={"experiment": self.spec.name},
            key=self.key,
            guard=self.guard,
            pump=self.pump,
        )

    @property
    def writers(self) -> dict[str, SegmentWriter]:
        return {w.stream: w for w in (self.exposures, self.payloads) if w is not None}

    # -- request path: pack references only --------------------------------------------

    def record(self, batch: RoutedBatch) -> None:
        """Hand one executed batch to the writers (never blocks, never raises: a failure
        here counts the batch's rows as dropped rather than failing the requests)."""
        try:
            self._record(batch)
        except Exception:  # the router's requests are already answered: never fail them
            plan = batch.plan
            self.exposures.count_dropped(sum(n for n, e in zip(plan.rows, plan.errors) if e is None))

    def _record(self, batch: RoutedBatch) -> None:
        plan = batch.plan
        units = [_units_of(p, inputs, self.unit_input) for p, inputs in zip(batch.params, batch.inputs)]
        rows = sum(n for n, e in zip(plan.rows, plan.errors) if e is None)
        if rows:
            self.exposures.submit(
                ExposureBatch(batch.time, batch.request_ids, units, plan, batch.results), count=rows
            )
        if self.payloads is None:
            return
        samples = [
            # Copies: Triton may reuse the request's and responses' shared memory once
            # `execute` returns.
            PayloadSample(batch.time, batch.request_ids[r], units[r], _copy(batch.inputs[r]), _copy(result))
            for r, result in enumerate(batch.outcome)
            if isinstance(result, dict) and random.random() < self.sample_rate
        ]
        if samples:  # one hand-over per batch: a queue operation (and a wake-up) per request costs
            self.payloads.submit(samples, count=len(samples))

    def record_whole(
        self,
        time: float,
        request_ids: Sequence[str],
        units: Sequence[str],
        rows: Sequence[int],
        groups: Sequence[tuple[int, Sequence[int], Mapping[str, NDArray[Any]], CallResult]],
    ) -> None:
        """Hand over a batch whose requests each went whole to one variant: `groups` holds
        (variant, its requests in row order, the call's inputs, the call's result). One
        item for both writers, and the tensors copied once per call (not per request);
        never blocks, never raises."""
        try:
            self._record_whole(time, request_ids, units, rows, groups)
        except Exception:  # the router's requests are already answered: never fail them
            self.exposures.count_dropped(sum(rows))

    def _record_whole(self, time, request_ids, units, rows, groups) -> None:
        sampled: list[bool] | None = None
        if self.payloads is not None and self.sample_rate < 1.0:
            sampled = [random.random() < self.sample_rate for _ in request_ids]
        calls = []
        samples = 0
        for variant, members, inputs, (outputs, micros) in groups:
            ok = isinstance(outputs, dict)
            keep = 0
            if ok and self.payloads is not None:
                keep = len(members) if sampled is None else sum(sampled[r] for r in members)
            samples += keep
            calls.append(
                # Copies: Triton may reuse the request's and responses' shared memory once
                # `execute` returns.
                WholeCall(
                    variant,
                    members,
                    micros,
                    ok,
                    _copy(inputs) if keep else None,
                    _copy(outputs) if keep else None,
                )
            )
        item = WholeBatch(time, request_ids, units, rows, calls, sampled)
        self.exposures.submit(item, count=sum(rows))
        if samples and self.payloads is not None:
            self.payloads.submit(item, count=samples)

    def take_counts(self) -> dict[str, tuple[int, int]]:
        """(records accepted, records dropped) per stream since the last call."""
        out = {}
        for stream, writer in self.writers.items():
            now = (writer.submitted, writer.dropped)
            before = self._reported[stream]
            out[stream] = (now[0] - before[0], now[1] - before[1])
            self._reported[stream] = now
        return out

    def take_cpu(self) -> dict[str, float]:
        """CPU seconds the writer thread spent on each stream since the last call."""
        out = {}
        for stream, writer in self.writers.items():
            now = writer.cpu_s
            out[stream] = now - self._cpu_reported.get(stream, 0.0)
            self._cpu_reported[stream] = now
        return out

    def close(self) -> None:
        self.pump.close()

    # -- writer threads: expand ----------------------------------------------------------

    def _exposure_records(self, item: ExposureBatch | WholeBatch) -> Iterator[str]:
        """One JSON line per routed row (`EXPOSURE_FIELDS`, in that order), written with a
        format string and per-variant fragments encoded once: the writer thread shares
        the GIL with the request path, so its cost per row is the router's cost too."""
        if isinstance(item, WholeBatch):
            yield from self._whole_exposures(item)
            return
        plan = item.plan
        # Latency and failure per request: one value when a single call served the whole
        # request (the common case), else an array over its rows.
        whole: dict[int, tuple[float, bool]] = {}
        latency: dict[int, NDArray[np.float64]] = {}
        failed: dict[int, NDArray[np.bool_]] = {}
        for call, result in zip(plan.calls, item.results):
            bad = not isinstance(result.outputs, dict)
            for r, positions, _span in call.parts:
                if positions is None:
                    whole[r] = (result.micros, bad)
                    continue
                if r not in latency:
                    latency[r] = np.zeros(plan.rows[r])
                    failed[r] = np.zeros(plan.rows[r], dtype=bool)
                latency[r][positions] = result.micros
                failed[r][positions] = bad
        head = f'{{"time":{_json_number(item.time)},'
        fragments = self._variant_fragments()
        tail = self._line_end

        for r, assigned in enumerate(plan.variant_of_row):
            if plan.errors[r] is not None or assigned is None:
                continue
            rows = plan.rows[r]
            unit = item.units[r]
            if isinstance(unit, np.ndarray):  # a unit per row
                per_row, whole_unit = [_json_text(_text(u)) for u in unit.tolist()], ""
            else:
                per_row, whole_unit = None, _json_text(unit)
            request = _json_text(item.request_ids[r] or None)
            if r in whole and isinstance(assigned, int | np.integer) and per_row is None:
                # One variant, one call, one unit: every row's line differs only in `row`.
                prefix = (
                    f'{head}{fragments[int(assigned)]},"unit_id":{whole_unit},"request_id":{request},"row":'
                )
                end = tail(*whole[r])
                for row in range(rows):
                    yield f"{prefix}{row}{end}"
                continue
            variants = np.broadcast_to(np.asarray(assigned), (rows,)).tolist()
            if r in whole:
                lat, fail = [whole[r][0]] * rows, [whole[r][1]] * rows
            else:
                lat, fail = latency[r].tolist(), failed[r].tolist()
            for row in range(rows):
                unit_text = whole_unit if per_row is None else per_row[row]
                yield (
                    f'{head}{fragments[variants[row]]},"unit_id":{unit_text},"request_id":{request},'
                    f'"row":{row}{tail(lat[row], fail[row])}'
                )

    def _whole_exposures(self, item: WholeBatch) -> Iterator[str]:
        """`_exposure_records` of a `WholeBatch`: every row of a request shares its line
        but for `row`."""
        head = f'{{"time":{_json_number(item.time)},'
        fragments = self._variant_fragments()
        for call in item.calls:
            fragment = fragments[call.variant]
            end = self._line_end(call.micros, not call.ok)
            for r in call.members:
                prefix = (
                    f'{head}{fragment},"unit_id":{_json_text(item.units[r])},'
                    f'"request_id":{_json_text(item.request_ids[r] or None)},"row":'
                )
                for row in range(item.rows[r]):
                    yield f"{prefix}{row}{end}"

    def _line_end(self, micros: float, bad: bool) -> str:
        """An exposure line from `latency_us` on: latency, `ok` and region."""
        return (
            f',"latency_us":{_json_number(round(micros, 1))},'
            f'"ok":{"false" if bad else "true"},"region":{self._region_text}}}'
        )

    def _variant_fragments(self) -> list[str]:
        """`"experiment":..,"variant":..,"model":..,"version":..` per variant, encoded once."""
        if self._fragments is None:
            self._fragments = [
                f'"experiment":{_json_text(self.spec.name)},"variant":{_json_text(name)},'
                f'"model":{_json_text(model)},"version":{json.dumps(version)}'
                for name, (model, version) in zip(self.names, self.models)
            ]
            self._region_text = _json_text(self.region)
        return self._fragments

    def _payload_records(self, items: list[PayloadSample] | WholeBatch) -> Iterator[dict[str, Any]]:
        if isinstance(items, WholeBatch):
            yield from self._whole_payloads(items)
            return
        for item in items:
            yield from self._payload_record(item)

    def _whole_payloads(self, item: WholeBatch) -> Iterator[dict[str, Any]]:
        """The sampled requests' payload records of a `WholeBatch`: views of its calls' copies."""
        for call in item.calls:
            if call.inputs is None or call.outputs is None:
                continue
            name = self.names[call.variant]
            offset = 0
            for r in call.members:
                n = item.rows[r]
                span = slice(offset, offset + n)
                offset += n
                if item.sampled is not None and not item.sampled[r]:
                    continue
                yield self._payload(
                    item.time,
                    item.request_ids[r],
                    item.units[r],
                    [name] * n,
                    {k: x[span] for k, x in call.inputs.items()},
                    {k: x[span] for k, x in call.outputs.items()},
                )

    def _payload_record(self, item: PayloadSample) -> Iterator[dict[str, Any]]:
        unit: Any = item.unit
        if isinstance(unit, np.ndarray):
            unit = [_text(u) for u in unit.tolist()]
        outputs = dict(item.outputs)
        labels = outputs.pop(VARIANT_OUTPUT, None)
        variants = [] if labels is None else [_text(v) for v in np.asarray(labels).reshape(-1)]
        yield self._payload(item.time, item.request_id, unit, variants, dict(item.inputs), outputs)

    def _payload(
        self, time: float, request_id: str, unit: Any, variants: list[str], inputs: dict, outputs: dict
    ) -> dict[str, Any]:
        """A payload record (fields in the module docstring's order), redacted and hashed."""
        record = {
            "time": time,
            "experiment": self.spec.name,
            "request_id": request_id or None,
            "unit_id": unit,
            "variants": variants,
            "inputs": inputs,
            "outputs": outputs,
            "region": self.region,
        }
        return self.redactor.apply(record)


def _units_of(params: Mapping[str, Any], inputs: Mapping[str, NDArray[Any]], unit_input: str | None) -> Unit:
    """The request's unit id (parameter), or its per-row unit column, or None."""
    unit = params.get("unit_id")
    if unit is not None and str(unit) != "":
        return str(unit)
    if unit_input and unit_input in inputs:
        return np.asarray(inputs[unit_input]).reshape(-1)  # converted in the writer thread
    return None


def _copy(tensors: Mapping[str, NDArray[Any]]) -> dict[str, NDArray[Any]]:
    """Copies of tensors that may live in Triton's shared memory; the variant labels
    (`AB_VARIANT`) are the router's own array and are kept as they are."""
    return {n: v if n == VARIANT_OUTPUT else np.array(v, copy=True) for n, v in tensors.items()}


def _json_text(value: str | None) -> str:
    """A JSON string (or null), as `json.dumps` writes it."""
    return "null" if value is None else encode_basestring_ascii(value)


def _json_number(value: float) -> str:
    """A float as `json.dumps` writes it (NaN and infinities included)."""
    if math.isfinite(value):
        return repr(float(value))
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
