"""`perf run`: measure one model at a sweep of load levels, with perf_analyzer or built in.

With perf_analyzer on PATH (a real executable) and `backend` `auto`, it is run and
its CSV parsed; otherwise the built-in generator measures with the same method.
Both write `perf.csv` (perf_analyzer's format) and `perf.json` into `--out`.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tritonab._io import atomic_write_text
from tritonab._transport import Connection, Endpoint, TLSFiles, WireProtocol, translated
from tritonab.errors import PerfError
from tritonab.perf._inputs import (
    ModelInfo,
    batches,
    load_input_data,
    synthetic_samples,
)
from tritonab.perf._measure import MeasureSettings, profile
from tritonab.perf._records import LoadMode, PerfRecord, dumps_json, write_perf_csv
from tritonab.perf._server_stats import ServerStats, stats_from_json
from tritonab.perf._target import RequestPlan, Target, open_model, request_parameters, split_model_spec

Backend = Literal["auto", "builtin", "perf_analyzer"]


@dataclass(frozen=True)
class LoadOptions:
    """What to send and how hard: shared by `perf run` and `perf compare`.

    `input_data` is `zero`, `random` or a perf_analyzer JSON file; `shapes` are
    `--shape` overrides; `parameters` go with every request; `unit_ids` > 0 adds a
    `unit_id` parameter drawn from that many synthetic users (for routers); `tls` and
    `headers` (access keys, never shown) reach a secured server.
    """

    url: str
    protocol: WireProtocol = "grpc"
    mode: LoadMode = "concurrency"
    levels: tuple[float, ...] = (1,)
    input_data: str = "random"
    shapes: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    batch_size: int = 1
    parameters: Mapping[str, str] = field(default_factory=dict)
    unit_ids: int = 0
    settings: MeasureSettings = field(default_factory=MeasureSettings)
    tls: TLSFiles | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def endpoint(self, url: str | None = None) -> Endpoint:
        """The server (`url`, default the options' own) with the options' TLS and headers."""
        return Endpoint(url or self.url, self.protocol, tls=self.tls, headers=self.headers)


@dataclass(frozen=True)
class PerfRun:
    """The result of `perf run`: one record per level, plus how it was measured."""

    model: str
    url: str
    protocol: str
    backend: str
    records: list[PerfRecord]
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "model": self.model,
            "url": self.url,
            "protocol": self.protocol,
            "backend": self.backend,
            "warnings": list(self.warnings),
            "records": [r.to_dict() for r in self.records],
        }


def request_plan(connection: Target, info: ModelInfo, options: LoadOptions) -> RequestPlan:
    """Prebuilt requests for `info` from the options' input data, batch size and parameters.

    Raises:
        PerfError: input data that does not match the model, or a bad batch size.
    """
    kind = options.input_data
    if kind in ("zero", "random"):
        samples = synthetic_samples(info, kind, options.shapes)
    else:
        samples = load_input_data(kind, info, options.shapes)
    tensors = batches(samples, info, options.batch_size)
    return RequestPlan(
        info.name,
        info.version,
        tuple(connection.inputs(t) for t in tensors),
        request_parameters(options.parameters, options.unit_ids),
    )


async def probe_request(connection: Target, plan: RequestPlan) -> None:
    """Send one request and raise its error: a model that rejects the data fails early."""
    model, version, inputs, params = plan.factory()(0)
    with translated(PerfError, f"model `{model}` rejected a request"):
        await connection.client.infer(
            model, inputs, model_version=version, parameters=params, **connection.call_kwargs()
        )


async def run_builtin(
    model: str, options: LoadOptions, on_level: Callable[[PerfRecord], None] | None = None
) -> PerfRun:
    """Measure `model` with the built-in generator.

    Raises:
        PerfError: unreachable server, unknown model, mismatching input data, or a
            model that rejects the first request.
    """
    connection, info = await open_model(options.endpoint(), options.protocol, model)
    try:
        plan = request_plan(connection, info, options)
        await probe_request(connection, plan)

        async def probe():
            return await connection.stats(info)

        records = await profile(
            connection, plan.factory(), options.mode, options.levels, options.settings, probe, on_level
        )
    finally:
        await connection.close()
    warnings = [
        f"{_level_name(r)} did not stabilise within {r.trials} windows" for r in records if r.stable is False
    ]
    warnings += [f"{_level_name(r)}: {r.errors} of {r.count} requests failed" for r in records if r.errors]
    return PerfRun(model, options.url, options.protocol, "builtin", records, warnings)


def _level_name(record: PerfRecord) -> str:
    if record.mode == "concurrency":
        return f"concurrency {record.concurrency}"
    return f"request rate {record.load:g}/s"


def run_perf(
    model: str,
    options: LoadOptions,
    *,
    backend: Backend = "auto",
    work_dir: str | os.PathLike[str] | None = None,
    on_level: Callable[[PerfRecord], None] | None = None,
) -> PerfRun:
    """Measure `model` (`NAME[:VERSION]`) at every load level in `options`.

    Args:
        model: the model, optionally with a version.
        options: server, load levels, input data and measurement settings.
        backend: `auto` (perf_analyzer when a real one is on PATH), `builtin` or
            `perf_analyzer` (required).
        work_dir: where perf_analyzer writes its CSV and profile export.
        on_level: called with each level's record as it completes (built-in only).

    Returns:
        The run's records, one per level.

    Raises:
        PerfError: no perf_analyzer when required, or any measurement failure.
    """
    from tritonab.perf._analyzer import find_perf_analyzer, run_perf_analyzer

    binary = find_perf_analyzer() if backend != "builtin" else None
    if backend == "perf_analyzer" and binary is None:
        raise PerfError("`perf_analyzer` is not on PATH (or is not a real executable)")
    if options.unit_ids and binary is not None:
        # perf_analyzer sends one fixed value per request parameter: no per-request unit ids.
        if backend == "perf_analyzer":
            raise PerfError(
                "--unit-ids needs the built-in generator (perf_analyzer sends fixed "
                "parameters); use --parameter unit_id=... with perf_analyzer"
            )
        binary = None
    if binary is not None:
        with Connection(options.endpoint(), error=PerfError) as connection:
            snapshot, why_not = _failure_counts(connection, model)
            records = run_perf_analyzer(binary, model, options, work_dir=work_dir, server_stats=snapshot)
        warnings = [] if all(r.errors is not None for r in records) else [_NO_ERROR_COUNTS + why_not]
        warnings += [
            f"{_level_name(r)}: {r.errors} of {r.count} requests failed" for r in records if r.errors
        ]
        return PerfRun(model, options.url, options.protocol, "perf_analyzer", records, warnings)
    return asyncio.run(run_builtin(model, options, on_level))


_NO_ERROR_COUNTS = (
    "failed requests are unknown (perf_analyzer's CSV has no error column; `perf compare` and "
    "the built-in generator count them at the client), so a gate on the error rate will fail: "
)
# Measured on Triton 2.51: a Python-backend model that answers a request with an error is
# counted as a success in its statistics (and in nv_inference_request_failure), and an
# ensemble's `fail` count is not one per failed request. Only other backends' statistics
# say how many requests failed.
_UNCOUNTED_BACKENDS = {"python": "Triton's Python backend counts error responses as successes"}


def _failure_counts(
    connection: Connection, model: str
) -> tuple[Callable[[], ServerStats | None] | None, str]:
    """Snapshots of `model`'s statistics when they count its failed requests, else None;
    and why failures may stay unknown."""
    name, version = split_model_spec(model)
    try:
        config = connection.model_config(name, version or -1)
    except PerfError as exc:
        return None, f"the model's config is not readable ({exc})"
    backend = str(config.get("backend") or config.get("platform") or "")
    if backend == "ensemble":
        return None, "an ensemble's statistics do not count one failure per failed request"
    if backend in _UNCOUNTED_BACKENDS:
        return None, f"{_UNCOUNTED_BACKENDS[backend]} in its statistics"

    def snapshot() -> ServerStats | None:
        try:
            return stats_from_json(connection.statistics(name, version or -1), name)
        except PerfError:
            return None

    return snapshot, "Triton's statistics were not readable"


def write_run(run: PerfRun, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
    """Write `perf.csv` (perf_analyzer's format) and `perf.json` into `out_dir`.

    Returns:
        The CSV and JSON paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out / "perf.csv", out / "perf.json"
    write_perf_csv(run.records, csv_path)
    atomic_write_text(json_path, dumps_json(run.to_dict()))
    return csv_path, json_path
