"""`perf compare`: baseline and candidate measured in alternating windows, in one run.

At each load level, `rounds` pairs of windows run in ABBA order (baseline first in
even rounds, candidate first in odd ones) so slow drift of the machine hits both
sides alike. Each pair gives a log ratio (candidate / baseline) of throughput, p50
and p99; the ratio's estimate is exp(mean log ratio), its confidence interval
exp(mean +/- t(1 - alpha/2, n - 1) * sd / sqrt(n)), a t-interval on the per-pair log
ratios (scipy). Each side's windows are also merged into a `PerfRecord`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats as sps

from tritonab._io import atomic_write_text
from tritonab.errors import PerfError
from tritonab.perf._loadgen import LoadSession, Window
from tritonab.perf._measure import record_from_window
from tritonab.perf._records import LoadMode, PerfRecord, dumps_json
from tritonab.perf._run import LoadOptions, probe_request, request_plan
from tritonab.perf._target import open_model

METRICS = ("throughput", "p50", "p99")


@dataclass(frozen=True)
class RatioEstimate:
    """candidate / baseline for one metric: estimate and confidence interval (None when n < 2)."""

    metric: str
    estimate: float
    ci_low: float | None
    ci_high: float | None
    n: int


@dataclass(frozen=True)
class LevelComparison:
    """One load level: each side's merged record, the ratios and the per-window figures."""

    mode: LoadMode
    load: float
    baseline: PerfRecord
    candidate: PerfRecord
    ratios: dict[str, RatioEstimate]
    baseline_windows: list[dict] = field(default_factory=list)
    candidate_windows: list[dict] = field(default_factory=list)


@dataclass(frozen=True)
class CompareResult:
    """The result of `perf compare` (or of two perf_analyzer CSVs set side by side)."""

    baseline: str
    candidate: str
    levels: list[LevelComparison]
    confidence: float = 0.95
    source: str = "builtin"
    config_changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {
            "baseline": self.baseline,
            "candidate": self.candidate,
            "confidence": self.confidence,
            "source": self.source,
            "config_changes": list(self.config_changes),
            "levels": [
                {**asdict(lv), "baseline": lv.baseline.to_dict(), "candidate": lv.candidate.to_dict()}
                for lv in self.levels
            ],
        }

    @classmethod
    def from_dict(cls, data: dict) -> CompareResult:
        """The inverse of `to_dict`.

        Raises:
            PerfError: the document is not a compare result.
        """
        try:
            levels = [
                LevelComparison(
                    mode=lv["mode"],
                    load=lv["load"],
                    baseline=PerfRecord.from_dict(lv["baseline"]),
                    candidate=PerfRecord.from_dict(lv["candidate"]),
                    ratios={k: RatioEstimate(**v) for k, v in lv["ratios"].items()},
                    baseline_windows=lv.get("baseline_windows", []),
                    candidate_windows=lv.get("candidate_windows", []),
                )
                for lv in data["levels"]
            ]
            return cls(
                data["baseline"],
                data["candidate"],
                levels,
                data.get("confidence", 0.95),
                data.get("source", "builtin"),
                list(data.get("config_changes", [])),
            )
        except (KeyError, TypeError) as exc:
            raise PerfError(f"not a `perf compare` result: missing or bad field {exc}") from None


def save_compare(result: CompareResult, path: str | os.PathLike[str]) -> None:
    """Write a compare result as JSON (atomically)."""
    atomic_write_text(path, dumps_json(result.to_dict()))


def load_compare(path: str | os.PathLike[str]) -> CompareResult:
    """Read a compare result written by `save_compare`.

    Raises:
        PerfError: unreadable file or not a compare result.
    """
    try:
        return CompareResult.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as exc:
        raise PerfError(f"compare result `{path}`: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        raise PerfError(f"compare result `{path}`: not UTF-8 text: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise PerfError(f"compare result `{path}`: not valid JSON: {exc}") from None


def ratio_estimate(
    metric: str, baseline: list[float], candidate: list[float], confidence: float = 0.95
) -> RatioEstimate:
    """Geometric-mean ratio candidate/baseline over paired values, with a t-interval.

    Pairs with a non-positive or non-finite value are dropped.

    Args:
        metric: the metric's name.
        baseline, candidate: paired per-window values.
        confidence: two-sided confidence level of the interval.

    Returns:
        The estimate (nan when no valid pair) and its interval (None when fewer than 2 pairs).
    """
    b, c = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    ok = np.isfinite(b) & np.isfinite(c) & (b > 0) & (c > 0)
    logs = np.log(c[ok] / b[ok])
    n = int(logs.size)
    if n == 0:
        return RatioEstimate(metric, float("nan"), None, None, 0)
    mean = float(logs.mean())
    if n < 2:
        return RatioEstimate(metric, math.exp(mean), None, None, n)
    half = float(sps.t.ppf(0.5 + confidence / 2, n - 1)) * float(logs.std(ddof=1)) / math.sqrt(n)
    return RatioEstimate(metric, math.exp(mean), math.exp(mean - half), math.exp(mean + half), n)


def _window_figures(window: Window) -> dict:
    return {
        "throughput": window.throughput,
        "p50": window.percentile(50),
        "p99": window.percentile(99),
        "count": window.count,
        "errors": window.errors,
    }


async def _one_window(side, mode: LoadMode, load: float, options: LoadOptions, warmup_s: float) -> Window:
    """Start load on one side, let it warm up, measure one window, stop."""
    connection, info, plan = side
    session = LoadSession(
        connection,
        plan.factory(),
        concurrency=int(load) if mode == "concurrency" else 1,
        request_rate=load if mode == "request_rate" else 0.0,
        schedule=options.settings.schedule,
    )
    session.start()
    try:
        await asyncio.sleep(warmup_s)

        async def probe():
            return await connection.stats(info)

        return await session.measure(options.settings.measurement_interval_ms / 1e3, probe)
    finally:
        await session.stop()


async def _compare_level(
    sides, load: float, options: LoadOptions, rounds: int, warmup_s: float, confidence: float
) -> LevelComparison:
    windows: dict[str, list[Window]] = {"baseline": [], "candidate": []}
    for r in range(rounds):
        order = ("baseline", "candidate") if r % 2 == 0 else ("candidate", "baseline")
        for name in order:
            windows[name].append(await _one_window(sides[name], options.mode, load, options, warmup_s))
    figures = {k: [_window_figures(w) for w in v] for k, v in windows.items()}
    ratios = {
        m: ratio_estimate(
            m, [f[m] for f in figures["baseline"]], [f[m] for f in figures["candidate"]], confidence
        )
        for m in METRICS
    }
    records = {
        k: record_from_window(Window.merge(v), options.mode, load, stable=None, trials=len(v))
        for k, v in windows.items()
    }
    return LevelComparison(
        options.mode,
        load,
        records["baseline"],
        records["candidate"],
        ratios,
        figures["baseline"],
        figures["candidate"],
    )


async def compare_async(
    baseline: str,
    candidate: str,
    options: LoadOptions,
    *,
    rounds: int = 6,
    warmup_s: float = 0.2,
    confidence: float = 0.95,
    candidate_url: str | None = None,
    on_level: Callable[[LevelComparison], None] | None = None,
) -> CompareResult:
    """`compare` inside a running event loop."""
    if rounds < 2:
        raise PerfError("--rounds must be at least 2 (one pair gives no interval)")
    opened = []
    try:
        sides = {}
        for name, spec, url in (
            ("baseline", baseline, options.url),
            ("candidate", candidate, candidate_url or options.url),
        ):
            connection, info = await open_model(options.endpoint(url), options.protocol, spec)
            opened.append(connection)
            plan = request_plan(connection, info, options)
            await probe_request(connection, plan)
            sides[name] = (connection, info, plan)
        changes = await _config_changes(sides)
        levels = []
        for load in options.levels:
            levels.append(await _compare_level(sides, load, options, rounds, warmup_s, confidence))
            if on_level:
                on_level(levels[-1])
    finally:
        for connection in opened:
            await connection.close()
    return CompareResult(baseline, candidate, levels, confidence, config_changes=changes)


_INSTANCE_NAME = re.compile(r"^instance_group\[(\d+)\]\.name$")


async def _config_changes(sides: dict) -> list[str]:
    """How the candidate's config differs from the baseline's, as served (a runtime-config
    A/B differs only there); the instance names Triton derives from the model name are
    left out."""
    from google.protobuf import json_format

    from tritonab.ensembles.config import ModelConfig, config_diff

    configs = []
    for connection, info, _ in sides.values():
        raw = await connection.model_config(info.name, info.version)
        configs.append(json_format.ParseDict(raw, ModelConfig(), ignore_unknown_fields=True))
    out = []
    for change in config_diff(*configs):
        match = _INSTANCE_NAME.match(change.path)
        generated = match is not None and all(
            value == f"{config.name}_{match.group(1)}"
            for value, config in zip((change.before, change.after), configs)
        )
        if not generated:
            out.append(change.describe())
    return out


def compare(
    baseline: str,
    candidate: str,
    options: LoadOptions,
    *,
    rounds: int = 6,
    warmup_s: float = 0.2,
    confidence: float = 0.95,
    candidate_url: str | None = None,
    on_level: Callable[[LevelComparison], None] | None = None,
) -> CompareResult:
    """Measure `baseline` and `candidate` in alternating windows at every load level.

    Args:
        baseline, candidate: `NAME[:VERSION]` of each model.
        options: server, load levels, input data; `settings.measurement_interval_ms`
            is the window length.
        rounds: window pairs per level (at least 2).
        warmup_s: load before each window that is not measured.
        confidence: level of the ratio intervals.
        candidate_url: the candidate's server when it is not `options.url`.
        on_level: called with each level's comparison as it completes.

    Returns:
        Per level: both sides' records and candidate/baseline ratios with intervals.

    Raises:
        PerfError: unreachable server, unknown model, mismatching input data.
    """
    return asyncio.run(
        compare_async(
            baseline,
            candidate,
            options,
            rounds=rounds,
            warmup_s=warmup_s,
            confidence=confidence,
            candidate_url=candidate_url,
            on_level=on_level,
        )
    )


def compare_records(
    baseline: list[PerfRecord],
    candidate: list[PerfRecord],
    *,
    baseline_name: str = "baseline",
    candidate_name: str = "candidate",
) -> CompareResult:
    """Set two perf_analyzer record lists side by side, matching load levels.

    Ratios are point estimates (one measurement per level: no interval).

    Raises:
        PerfError: the two lists share no load level.
    """
    by_load = {(r.mode, r.load): r for r in candidate}
    levels = []
    for base in baseline:
        cand = by_load.get((base.mode, base.load))
        if cand is None:
            continue
        ratios = {m: ratio_estimate(m, [_metric(base, m)], [_metric(cand, m)]) for m in METRICS}
        levels.append(LevelComparison(base.mode, base.load, base, cand, ratios))
    if not levels:
        raise PerfError("the baseline and candidate CSVs share no load level")
    return CompareResult(baseline_name, candidate_name, levels, source="perf_analyzer")


def _metric(record: PerfRecord, metric: str) -> float:
    return record.throughput if metric == "throughput" else getattr(record, f"{metric}_us")
