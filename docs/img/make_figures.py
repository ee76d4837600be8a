"""Rebuild the README's figures: a drift report's plots and an autoscaling simulation.

    python docs/img/make_figures.py        # writes docs/img/*.png (about a minute)

Drift: a reference of 5,000 rows (six numeric features, one categorical), then twelve
hourly windows of 500 rows in which `income` and `tenure` drift by one standard
deviation from the seventh hour. Autoscaling: a 7-day diurnal trace, capacity 50 rps per
replica, the last two days plotted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from tritonab.deploy.autoscale import ScalingSettings, diurnal_trace, plot_simulation, simulate
from tritonab.monitoring.drift import DriftReport, DriftSpec, build_profile, compare_window, save_figures

HERE = Path(__file__).resolve().parent
T0 = 1_767_225_600.0  # 2026-01-01 00:00 UTC
NUMERIC = ("age", "income", "tenure", "visits", "basket", "latency")


def table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    data = {name: rng.normal(10.0 * (i + 1), 1.0 + i, rows) for i, name in enumerate(NUMERIC)}
    data["income"] += shift * 2.0  # one sd of `income`
    data["tenure"] += shift * 3.0  # one sd of `tenure`
    data["country"] = rng.choice(["de", "fr", "it", "es"], rows, p=[0.4, 0.3, 0.2, 0.1])
    return pd.DataFrame(data)


def drift_figures(out: Path) -> None:
    rng = np.random.default_rng(7)
    spec = DriftSpec()
    profile = build_profile(table(rng, 5000))
    windows = [
        compare_window(
            profile,
            table(rng, 500, 1.0 if hour >= 6 else 0.0),
            spec,
            variant="treatment",
            start=T0 + 3600 * hour,
            end=T0 + 3600 * (hour + 1),
        )  # fmt: skip
        for hour in range(12)
    ]
    report = DriftReport("demo_ab", {}, spec, windows, [])
    tmp = out / "drift-tmp"
    for path in save_figures(report, tmp):
        shutil.move(path, out / f"drift-{path.name}")
    tmp.rmdir()


def autoscale_figure(out: Path) -> None:
    trace = diurnal_trace(days=7, seed=0)
    result = simulate(trace, ScalingSettings(capacity_rps=50.0), warmup_s=2 * 86400)
    plot_simulation(result, trace, out / "autoscale-simulation.png")
    print(result.to_dict()["predictive_vs_hpa"])


if __name__ == "__main__":
    drift_figures(HERE)
    autoscale_figure(HERE)
