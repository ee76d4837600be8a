"""The router's logic as plain functions: assign rows, plan one call per variant, scatter.

No Triton here: `backends.router` adapts this to the Python backend, and the unit
tests drive it with numpy arrays.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import orjson
from numpy.typing import NDArray

from tritonab.splitter.assign import BUCKETS, buckets, random_buckets, salted_bucket
from tritonab.splitter.spec import Experiment

VARIANT_OUTPUT = "AB_VARIANT"
LATENCY_BUCKETS_US = (100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000)
"""Upper bounds of the router's latency histogram (`tritonab_request_latency_us`), in
microseconds; a latency SLO is set on one of them (`tritonab.monitoring.alerts`)."""
UNIT_CACHE = 1 << 16
"""Unit ids whose variant a router keeps (about 10 MiB at most; emptied when full)."""
INVALID_PARAMETERS = "__tritonab_invalid_parameters__"
"""Key of the reason a request's parameters could not be read (the router refuses it)."""


def parse_parameters(read: Callable[[], str]) -> dict[str, Any]:
    """A request's parameters from `read()` (Triton hands them over as a JSON string).

    Parameters that cannot be decoded make a dict holding only `INVALID_PARAMETERS`, so
    the request is refused alone: an exception in `execute` would fail every request
    of the batch. (Seen: a JSON `\\udfff` escape reaches the Python backend as bytes
    that are not UTF-8, and `request.parameters()` raises UnicodeDecodeError.)
    """
    try:
        raw = read()
    except UnicodeDecodeError as exc:
        return {INVALID_PARAMETERS: f"request parameters are not valid UTF-8 (byte {exc.start})"}
    if not raw:
        return {}
    try:
        value = orjson.loads(raw)  # a few times the standard decoder on the request path
    except orjson.JSONDecodeError:
        try:  # what orjson refuses and the standard module reads (NaN, huge integers)
            value = json.loads(raw)
        except (TypeError, ValueError):
            return {INVALID_PARAMETERS: "request parameters are not valid JSON"}
    return value if isinstance(value, dict) else {INVALID_PARAMETERS: "request parameters are not an object"}


def read_text(read: Callable[[], str]) -> str:
    """A string Triton hands over (a request id), or "" when it is not valid UTF-8."""
    try:
        return read()
    except UnicodeDecodeError:
        return ""


@dataclass(frozen=True)
class RequestError:
    """Why one request is refused or failed; `invalid_argument` maps to INVALID_ARG."""

    message: str
    invalid_argument: bool = False


Outputs = dict[str, NDArray[Any]]


class Part(NamedTuple):
    """Rows of one request inside a call."""

    request: int
    positions: NDArray[np.intp] | None  # the request's rows in the call; None: all of them
    span: slice  # where those rows sit in the call's batch


@dataclass
class Call:
    """One BLS call: rows of several requests routed to the same variant."""

    variant: int
    inputs: dict[str, NDArray[Any]]
    parts: list[Part] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(p.span.stop - p.span.start for p in self.parts)


class CallResult(NamedTuple):
    """What one call gave: the variant's outputs or the error, and its latency."""

    outputs: Outputs | RequestError
    micros: float


@dataclass
class Plan:
    """What one `execute` does: per-request variant indices, calls, and early errors."""

    rows: list[int]
    variant_of_row: list[int | NDArray[np.int16] | None]
    errors: list[RequestError | None]
    calls: list[Call]


@dataclass(frozen=True, slots=True)
class RoutedBatch:
    """One executed batch, as the router hands it to the log writers after responding.

    References only (no per-row work on the request path): the writer threads expand it
    into exposure and payload records.
    """

    time: float
    request_ids: Sequence[str]
    params: Sequence[Mapping[str, Any]]
    inputs: Sequence[Mapping[str, NDArray[Any]]]
    plan: Plan
    results: Sequence[CallResult]
    outcome: Sequence[Outputs | RequestError]


class Router:
    """Routes request rows to variants following an `Experiment` spec.

    Args:
        spec: the experiment.
        input_names: the variants' input names (forwarded as they are).
        max_rows_per_call: upper bound of rows in one call (the variants' max batch).
        batching: False for variants with `max_batch_size: 0`: tensors have no batch
            dimension, so each request is one unit, routed whole to one variant in a
            call of its own (never split, never joined with another request).
    """

    def __init__(
        self,
        spec: Experiment,
        input_names: Sequence[str],
        max_rows_per_call: int,
        *,
        batching: bool = True,
    ) -> None:
        self.spec = spec
        self.batching = batching
        self.allocation = spec.allocation()
        self.names = self.allocation.names
        self.encoded_names = [n.encode() for n in self.names]
        self.salt = spec.effective_salt
        self._prefix = f"{self.salt}:".encode()
        self.input_names = list(input_names)
        self.max_rows = max(1, max_rows_per_call)
        self._index = {n: i for i, n in enumerate(self.names)}
        self._label_array = np.array(self.encoded_names, dtype=np.object_)
        self._by_bucket = self.allocation.index_of(np.arange(BUCKETS)).tolist()
        self._labels: dict[tuple[int, int], NDArray[np.object_]] = {}
        self._inputs = frozenset(self.input_names)
        self._by_unit: dict[str, int] = {}

    def assign(
        self, inputs: Mapping[str, NDArray[Any]], params: Mapping[str, Any], rows: int
    ) -> int | NDArray[np.int16] | RequestError:
        """Variant index of one request (an int when every row shares it, else one per row),
        or the reason it is refused."""
        if INVALID_PARAMETERS in params:
            return RequestError(str(params[INVALID_PARAMETERS]), True)
        # Triton 2.51 lets a request to a Python model leave inputs out (seen: a request to
        # `ab_rows` with only `unit`), and the variants need every one.
        missing = [] if self._inputs <= inputs.keys() else [n for n in self.input_names if n not in inputs]
        if missing:
            return RequestError(
                f"experiment `{self.spec.name}`: the request lacks input(s) {missing}; "
                f"expected {self.input_names}",
                True,
            )
        override = params.get("variant")
        if override is not None:
            if not self.spec.allow_override:
                return RequestError(
                    f"experiment `{self.spec.name}` does not allow the `variant` override", True
                )
            index = self._index.get(str(override))
            if index is None:
                return RequestError(
                    f"unknown variant `{override}` for experiment `{self.spec.name}`; "
                    f"expected one of {list(self.names)}",
                    True,
                )
            return index
        unit = params.get("unit_id")
        if unit is not None and str(unit) != "":
            return self._variant_of_unit(unit)
        units = self._unit_column(inputs, rows)
        if isinstance(units, RequestError):
            return units
        if units is None:
            if self.spec.require_unit:
                return RequestError(self._missing_unit_message(), True)
            return self.allocation.index_of(random_buckets(rows))
        return self.allocation.index_of(buckets(self.salt, units))

    def _variant_of_unit(self, unit: Any) -> int:
        """The variant of a `unit_id` parameter. Units come back (a user's session, a
        retry), so string ids keep their variant in a bounded cache: a dict lookup instead
        of a sha256 on the request path. Other types are hashed each time (1, 1.0 and
        True are one dict key but three ids)."""
        if type(unit) is not str:
            return self._by_bucket[salted_bucket(self._prefix, unit)]
        index = self._by_unit.get(unit)
        if index is None:
            if len(self._by_unit) >= UNIT_CACHE:
                self._by_unit.clear()
            index = self._by_unit[unit] = self._by_bucket[salted_bucket(self._prefix, unit)]
        return index

    def whole_variants(
        self, per_request: Sequence[Mapping[str, NDArray[Any]]], params: Sequence[Mapping[str, Any]]
    ) -> list[int] | None:
        """The common batch, planned without a `Plan`: every request names its unit in a
        `unit_id` string parameter, sends every input and asks for no `variant` override,
        so all its rows go to its unit's variant (what `assign` gives it too). Returns the
        variant index of each request, or None when any one needs `plan` (an override,
        a unit column, a missing input, parameters that did not decode)."""
        if not self.batching:
            return None
        variants = []
        cached = self._by_unit.get
        inputs = self._inputs
        for arrays, p in zip(per_request, params):
            unit = p.get("unit_id")
            if type(unit) is not str or not unit or "variant" in p or not inputs <= arrays.keys():
                return None
            index = cached(unit)
            variants.append(self._variant_of_unit(unit) if index is None else index)
        return variants

    def _missing_unit_message(self) -> str:
        where = "the request parameter `unit_id`"
        if self.spec.unit_input:
            where += f" or the input `{self.spec.unit_input}` (one per row)"
        return f"experiment `{self.spec.name}` requires a unit id: set {where}"

    def _unit_column(
        self, inputs: Mapping[str, NDArray[Any]], rows: int
    ) -> list[bytes] | RequestError | None:
        name = self.spec.unit_input
        if not name or name not in inputs:
            return None
        column = np.asarray(inputs[name]).reshape(-1)
        if column.shape[0] != rows:
            return RequestError(
                f"input `{name}` must hold one unit id per row: got {column.shape[0]} for {rows} rows", True
            )
        units = [u if isinstance(u, bytes) else str(u).encode() for u in column.tolist()]
        if any(len(u) == 0 for u in units):
            if self.spec.require_unit:
                return RequestError(f"input `{name}` has an empty unit id", True)
            return None
        return units

    def plan(
        self, per_request: Sequence[Mapping[str, NDArray[Any]]], params: Sequence[Mapping[str, Any]]
    ) -> Plan:
        """Assign every request's rows and group them into calls per variant."""
        if not self.batching:
            return self._plan_whole(per_request, params)
        rows = [_row_count(inputs) for inputs in per_request]
        variant_of_row: list[int | NDArray[np.int16] | None] = []
        errors: list[RequestError | None] = []
        for inputs, p, n in zip(per_request, params, rows):
            result = self.assign(inputs, p, n)
            if isinstance(result, RequestError):
                variant_of_row.append(None)
                errors.append(result)
            else:
                variant_of_row.append(result)
                errors.append(None)
        calls = []
        for v, pieces in enumerate(self._pieces(variant_of_row, rows)):
            if pieces:
                calls.extend(self._calls_for(v, pieces, per_request, rows))
        return Plan(rows, variant_of_row, errors, calls)

    def _pieces(
        self, variant_of_row: Sequence[int | NDArray[np.int16] | None], rows: Sequence[int]
    ) -> list[list[tuple[int, NDArray[np.intp] | None, int]]]:
        """Per variant, in request order, the (request, row positions or None for all,
        row count) that go to it: one pass over the requests."""
        pieces: list[list[tuple[int, NDArray[np.intp] | None, int]]] = [[] for _ in self.names]
        for r, assigned in enumerate(variant_of_row):
            if assigned is None:
                continue
            if isinstance(assigned, int):  # the common case: a request's rows share a unit
                pieces[assigned].append((r, None, rows[r]))
                continue
            for v, mine in enumerate(self._positions(assigned)):
                if mine.size == rows[r]:
                    pieces[v].append((r, None, rows[r]))
                elif mine.size:
                    pieces[v].append((r, mine, mine.size))
        return pieces

    def _positions(self, assigned: NDArray[np.int16]) -> list[NDArray[np.intp]]:
        """Row positions per variant of a request whose rows have their own variants."""
        return [np.flatnonzero(assigned == v) for v in range(len(self.names))]

    def _plan_whole(
        self, per_request: Sequence[Mapping[str, NDArray[Any]]], params: Sequence[Mapping[str, Any]]
    ) -> Plan:
        """Non-batching variants: one variant per request and one call per request, its
        tensors forwarded as they are (a request counts as one row)."""
        variant_of_row: list[int | NDArray[np.int16] | None] = []
        errors: list[RequestError | None] = []
        calls: list[Call] = []
        for r, (inputs, p) in enumerate(zip(per_request, params)):
            result = self.assign(inputs, p, 1)
            if isinstance(result, RequestError):
                variant_of_row.append(None)
                errors.append(result)
                continue
            v = int(np.asarray(result).reshape(-1)[0])  # one unit, so one variant
            variant_of_row.append(v)
            errors.append(None)
            forwarded = {n: inputs[n] for n in self.input_names if n in inputs}
            calls.append(Call(v, forwarded, [Part(r, None, slice(0, 1))]))
        return Plan([1] * len(per_request), variant_of_row, errors, calls)

    def _calls_for(
        self,
        v: int,
        pieces: Sequence[tuple[int, NDArray[np.intp] | None, int]],
        per_request: Sequence[Mapping[str, NDArray[Any]]],
        rows: Sequence[int],
    ) -> list[Call]:
        """The variant's pieces packed into calls of at most `max_rows` rows."""
        if sum(size for _, _, size in pieces) <= self.max_rows:  # one call: the usual case
            return [self._make_call(v, pieces, per_request)]
        calls: list[Call] = []
        current: list[tuple[int, NDArray[np.intp] | None, int]] = []
        count = 0
        for r, positions, size in pieces:
            chunks: list[tuple[int, NDArray[np.intp] | None]] = [(r, positions)]
            if size > self.max_rows:  # only possible with a spec max_batch_size below the variant's
                every = np.arange(rows[r]) if positions is None else positions
                chunks = [(r, every[s : s + self.max_rows]) for s in range(0, size, self.max_rows)]
            for r_, chunk in chunks:
                n = rows[r_] if chunk is None else chunk.size
                if current and count + n > self.max_rows:
                    calls.append(self._make_call(v, current, per_request))
                    current, count = [], 0
                current.append((r_, chunk, n))
                count += n
        if current:
            calls.append(self._make_call(v, current, per_request))
        return calls

    def _make_call(
        self,
        v: int,
        pieces: Sequence[tuple[int, NDArray[np.intp] | None, int]],
        per_request: Sequence[Mapping[str, NDArray[Any]]],
    ) -> Call:
        call = Call(variant=v, inputs={})
        offset = 0
        for r, positions, n in pieces:
            call.parts.append(Part(r, positions, slice(offset, offset + n)))
            offset += n
        for name in self.input_names:
            arrays = [_take(per_request[r][name], positions) for r, positions, _ in pieces]
            call.inputs[name] = arrays[0] if len(arrays) == 1 else np.concatenate(arrays, axis=0)
        return call

    def scatter(self, plan: Plan, results: Sequence[Outputs | RequestError]) -> list[Outputs | RequestError]:
        """Per-request outputs in row order (plus `AB_VARIANT`), or the request's error."""
        if not self.batching:
            return self._scatter_whole(plan, results)
        outcome: list[Outputs | RequestError] = [e if e is not None else {} for e in plan.errors]
        for call, result in zip(plan.calls, results):
            for r, positions, part in call.parts:
                current = outcome[r]
                if isinstance(current, RequestError):
                    continue
                if isinstance(result, RequestError):
                    outcome[r] = result
                    continue
                _place(current, result, positions, part, plan.rows[r])
        for r, assigned in enumerate(plan.variant_of_row):
            done = outcome[r]
            if assigned is None or isinstance(done, RequestError):
                continue
            if isinstance(assigned, int):
                labels = self.labels(assigned, plan.rows[r])
            else:
                labels = self._label_array[assigned].reshape(-1, 1)
            done[VARIANT_OUTPUT] = labels
        return outcome

    def _scatter_whole(
        self, plan: Plan, results: Sequence[Outputs | RequestError]
    ) -> list[Outputs | RequestError]:
        """Non-batching: each call's outputs are its request's, plus `AB_VARIANT` of shape [1]."""
        outcome: list[Outputs | RequestError] = [e if e is not None else {} for e in plan.errors]
        for call, result in zip(plan.calls, results):
            r = call.parts[0].request
            if isinstance(result, RequestError):
                outcome[r] = result
                continue
            outputs = dict(result)
            outputs[VARIANT_OUTPUT] = np.array([self.encoded_names[call.variant]], dtype=np.object_)
            outcome[r] = outputs
        return outcome

    def labels(self, variant: int, rows: int) -> NDArray[np.object_]:
        """`AB_VARIANT` of a request whose `rows` all went to `variant`: built once per
        (variant, rows) and shared, read-only (a request path without allocations)."""
        key = (variant, rows)
        labels = self._labels.get(key)
        if labels is None:
            labels = np.full((rows, 1), self.encoded_names[variant], dtype=np.object_)
            labels.flags.writeable = False
            self._labels[key] = labels
        return labels

    def shadow_sample(self) -> list[int]:
        """Indices of the shadow targets that mirror this batch (each by its sample rate)."""
        return [i for i, s in enumerate(self.spec.shadow) if random.random() < s.sample_rate]


def _row_count(inputs: Mapping[str, NDArray[Any]]) -> int:
    for value in inputs.values():
        shape = value.shape if isinstance(value, np.ndarray) else np.shape(value)
        return int(shape[0]) if shape else 1
    return 0


def _take(array: NDArray[Any], positions: NDArray[np.intp] | None) -> NDArray[Any]:
    return array if positions is None else array[positions]


def _place(
    target: Outputs,
    result: Outputs,
    positions: NDArray[np.intp] | None,
    part: slice,
    rows: int,
) -> None:
    """Write a call's rows (`part`) into a request's outputs at `positions` (None: all)."""
    for name, value in result.items():
        piece = value[part]
        if positions is None:
            target[name] = piece  # the whole request came from this call: no copy
            continue
        if name not in target:
            target[name] = np.empty((rows, *value.shape[1:]), dtype=value.dtype)
        target[name][positions] = piece
