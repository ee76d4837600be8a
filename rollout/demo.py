"""A complete local canary you can watch: `tritonab rollout demo` (`make demo-rollout`).

On a copy of the demo repository it builds a router `demo_canary` (the demo experiment
with the candidate at 0%), starts an explicit-mode Triton and a Prometheus scraping it,
sends background traffic from simulated users, and runs a canary of the candidate with
short intervals: a perf gate, then steps judged on the Prometheus checks. Each tick is a
row of a live table; at the end the weights and the readings over time are drawn in a
PNG beside the rollout's state and audit log.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tritonab.errors import ClientError, RolloutError
from tritonab.rollout.spec import CanarySpec, load_rollout_dict
from tritonab.rollout.state import SavedState
from tritonab.rollout.tick import TickEvent

EXPERIMENT = "demo_canary"
_FEATURES = 30


@dataclass
class Traffic:
    """Requests through a router from simulated users, at about `rate` per second, in a
    thread of its own until stopped.

    Attributes:
        served: requests answered.
        failures: the errors of requests that failed.
    """

    url: str
    experiment: str
    rate: float = 100.0
    users: int = 500
    served: int = 0
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, name="demo-traffic", daemon=True)

    def _send(self) -> None:
        from tritonab.client import ExperimentClient

        rng = np.random.default_rng(11)
        rows = rng.normal(size=(256, _FEATURES)).astype(np.float32)
        gap, due = 1.0 / self.rate, time.monotonic()
        with ExperimentClient(self.url) as client:
            i = 0
            while not self._stop.is_set():
                try:
                    client.infer(
                        self.experiment,
                        {"input": rows[i % 256 : i % 256 + 1]},
                        unit_id=f"user-{i % self.users}",
                    )
                    self.served += 1
                except ClientError as exc:
                    self.failures.append(str(exc))
                i += 1
                due += gap
                self._stop.wait(max(0.0, due - time.monotonic()))

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class DemoResult:
    """What the demo leaves: the final state, its files and the traffic it sent."""

    state: SavedState
    events: list[TickEvent]
    picture: Path
    state_path: Path
    audit_path: Path
    served: int
    failures: int


def demo_spec(
    *, steps: Sequence[float] = (10, 50, 100), interval_s: float = 2.0, window: str = "6s"
) -> CanarySpec:
    """The demo's canary: a perf gate, then each step judged on rows, errors and p99."""
    spec = load_rollout_dict(
        {
            "experiment": EXPERIMENT,
            "candidate": "treatment",
            "steps": list(steps),
            "interval_s": interval_s,
            "window": window,
            "failed_checks": 2,
            "progress_deadline": 15,
            "checks": [
                {"metric": "rows", "min": 10},
                {"metric": "error_rate", "max": 0.01},
                {"metric": "latency", "quantile": 0.99, "max": 3.0, "relative": True},
            ],
            "perf_gate": {
                "thresholds": {"max_p99_ratio": 5.0, "max_error_rate": 0.0},
                "rounds": 2,
                "window_ms": 1000,
                "warmup_s": 0.5,
            },
        }
    )
    assert isinstance(spec, CanarySpec)
    return spec


def prepare_repository(source: str | os.PathLike[str], target: Path) -> Path:
    """A copy of the demo repository with the demo router `demo_canary` at 100/0.

    Raises:
        RolloutError: `source` is not the demo repository.
    """
    from tritonab.ensembles.build import build_router
    from tritonab.splitter.spec import load_spec_dict

    src = Path(source)
    if not (src / "demo_logreg_pipeline").is_dir() or not (src / "demo_gbt").is_dir():
        raise RolloutError(f"`{src}` is not the demo model repository (no demo_logreg_pipeline, demo_gbt)")
    shutil.copytree(src, target)
    build_router(
        load_spec_dict(
            {
                "name": EXPERIMENT,
                "salt": "demo_canary",
                "variants": [
                    {"name": "control", "model": "demo_logreg_pipeline", "version": 1, "weight": 1.0},
                    {"name": "treatment", "model": "demo_gbt", "version": 1, "weight": 0.0},
                ],
                "require_unit": True,
            }
        ),
        target,
    )
    return target


def run_demo(
    out_dir: str | os.PathLike[str],
    *,
    repository: str | os.PathLike[str] = "model_repository",
    spec: CanarySpec | None = None,
    rate: float = 100.0,
    on_event: Callable[[TickEvent], None] | None = None,
) -> DemoResult:
    """Run the demo canary end to end; files go to `out_dir` (state, audit, PNG).

    Args:
        out_dir: where the state, the audit log and `rollout.png` are written.
        repository: the demo model repository (copied; the copy is removed after).
        spec: the canary (default: `demo_spec()`).
        rate: background requests per second.
        on_event: called with every tick (the CLI's live table).

    Raises:
        RolloutError: the demo could not run.
    """
    from tritonab.deploy.prometheus_server import PrometheusServer
    from tritonab.deploy.server import TritonServer
    from tritonab.rollout.wiring import run_rollout

    spec = spec or demo_spec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state_path, audit_path = out / "state.json", out / "audit.jsonl"
    for stale in (state_path, audit_path, audit_path.with_name(audit_path.name + ".head")):
        stale.unlink(missing_ok=True)
    events: list[tuple[float, TickEvent]] = []

    def record(event: TickEvent) -> None:
        events.append((time.time(), event))
        if on_event is not None:
            on_event(event)

    with tempfile.TemporaryDirectory(prefix="tritonab-demo-rollout-") as tmp:
        repo = prepare_repository(repository, Path(tmp) / "model_repository")
        with (
            TritonServer(repo, model_control_mode="explicit") as server,
            PrometheusServer([server.urls.metrics], interval_s=1.0) as prometheus,
            Traffic(server.urls.grpc, EXPERIMENT, rate=rate) as traffic,
        ):
            started = time.time()
            state = run_rollout(
                spec,
                triton_url=server.urls.grpc,
                prometheus=prometheus.url,
                state_path=state_path,
                audit_path=audit_path,
                actor="demo",
                on_event=record,
            )
            time.sleep(1.5)  # one more scrape, so the series reach the last tick
            series = read_series(prometheus.url, started, time.time())
    picture = draw(events, series, started, out / "rollout.png")
    return DemoResult(
        state, [e for _, e in events], picture, state_path, audit_path, traffic.served, len(traffic.failures)
    )


Series = dict[str, list[tuple[float, float]]]


def read_series(prometheus_url: str, start: float, end: float) -> Series:
    """Per-variant request rate and p99 latency over the rollout, from Prometheus (3 s
    ranges at 1 s steps)."""
    from tritonab.monitoring.promql import RouterQueries

    queries = RouterQueries(prometheus_url)
    out: Series = {}
    for variant in ("control", "treatment"):
        sel = f'experiment="{EXPERIMENT}",variant="{variant}"'
        rate = queries.range_sum(f"sum(rate(tritonab_requests_total{{{sel}}}[3s]))", start, end, 1.0)
        p99 = queries.range_sum(
            f"histogram_quantile(0.99, sum by (le) (rate(tritonab_request_latency_us_bucket{{{sel}}}[3s])))",
            start,
            end,
            1.0,
        )
        out[f"{variant} req/s"] = sorted(rate.items())
        out[f"{variant} p99"] = sorted(p99.items())
    return out


def draw(events: Sequence[tuple[float, TickEvent]], series: Series, started: float, path: Path) -> Path:
    """The candidate's weight per tick, and each variant's request rate and p99 latency
    over time (from Prometheus), as a PNG written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    times = [t - started for t, _ in events]
    share = [100 * (e.weights or {}).get("treatment", 0.0) for _, e in events]
    axes[0].step([0.0, *times], [0.0, *share], where="post", color="tab:orange")  # from 0%
    for t, y, (_, event) in zip(times, share, events, strict=True):
        if event.outcome.value != "hold":
            axes[0].annotate(
                event.outcome.value, (t, y), textcoords="offset points", xytext=(2, 4), fontsize=8
            )
    axes[0].plot(times, share, "o", color="tab:orange", markersize=3, label="tick (candidate weight)")
    axes[0].set_ylabel("candidate %")
    axes[0].set_ylim(-5, 115)
    colours = {"control": "tab:blue", "treatment": "tab:orange"}
    for variant, colour in colours.items():
        for ax, key in ((axes[1], f"{variant} req/s"), (axes[2], f"{variant} p99")):
            points = series.get(key, [])
            ax.plot([t - started for t, _ in points], [v for _, v in points], color=colour, label=key)
    axes[1].set_ylabel("rows per second")
    axes[2].set_ylabel("variant call p99 (us)")
    axes[2].set_xlabel("seconds since the rollout started")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"canary of `{EXPERIMENT}`: {events[-1][1].status if events else 'no ticks'}")
    fig.tight_layout()
    partial = path.with_name(f".{path.name}.partial")
    fig.savefig(partial, format="png", dpi=90)
    plt.close(fig)
    os.replace(partial, path)
    return path
