"""Present an `Analysis`: a rich table with the decision, and an HTML report with plots.

The HTML is one self-contained file: matplotlib PNGs embedded as base64 (effect and
its confidence sequence over time, allocation against the weights with the SRM test,
latency per variant).
"""

from __future__ import annotations

import base64
import html
import io
import os
from datetime import datetime, timezone
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from tritonab._io import atomic_write_text
from tritonab.monitoring.analysis import Analysis


def _fmt(x: Any, spec: str = ".4g") -> str:
    try:
        value = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return "n/a" if not np.isfinite(value) else format(value, spec)


def metrics_table(a: Analysis) -> Table:
    """Per-variant values of every metric, with the effect against control and its p-value."""
    table = Table(title=f"experiment {a.experiment}: analysis of the logs")
    table.add_column("metric")
    for v in a.variants:
        table.add_column(v + (" (control)" if v == a.control else ""), justify="right")
    table.add_column("effect vs control [95% CI], p (test)", justify="right")
    table.add_row("units", *(str(a.units.get(v, 0)) for v in a.variants), "")
    table.add_row("exposures", *(str(a.exposures.get(v, 0)) for v in a.variants), "")
    for name, per in a.metrics.items():
        effects = []
        for v, r in a.comparisons.get(name, {}).items():
            p = "n/a" if r.p_value is None else f"{r.p_value:.3g}"
            label = f"{v}: " if len(a.variants) > 2 else ""
            interval = f"[{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
            effects.append(f"{label}{_fmt(r.effect, '+.4g')} {interval}, p={p} ({r.test})")
        table.add_row(name, *(_fmt(per[v].mean) for v in a.variants), "; ".join(effects))
    table.caption = (
        "Table: fixed-horizon tests on the totals, for reading. The decision below uses the "
        "spec's method, named on each of its lines."
    )
    for q in ("p50", "p99"):
        table.add_row(
            f"latency {q} (ms, rows)",
            *(_fmt((a.latency.get(v, {}).get(q) or np.nan) / 1000, ".3f") for v in a.variants),
            "",
        )
    return table


def decision_lines(a: Analysis) -> list[str]:
    """The SRM check, warnings and the decision(s), as text lines."""
    lines = []
    if a.srm is not None:
        p = "n/a" if a.srm.p_value is None else f"{a.srm.p_value:.3g}"
        lines.append(
            f"sample-ratio check on units {a.units} vs weights {a.weights}: p = {p}"
            + (" -> MISMATCH" if a.srm.srm_detected else " (ok)")
        )
    for w in a.warnings:
        lines.append(f"warning: {w}")
    if not a.decisions:
        lines.append("decision: none (the spec has no success criteria)")
    for v, d in a.decisions.items():
        lines.append(f"decision for {v} vs {a.control}: {d.outcome.value.upper()}")
        lines.extend(f"  - {r}" for r in d.reasons)
    return lines


def print_analysis(a: Analysis, console: Console | None = None) -> None:
    """Print the table and the decision."""
    console = console or Console()
    console.print(metrics_table(a))
    for line in decision_lines(a):
        console.print(line, markup=False, highlight=False)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _timeline_figure(a: Analysis, plt):
    fig, ax = plt.subplots(figsize=(7, 3.4))
    t = a.timeline
    if t is None:
        ax.text(0.5, 0.5, "no timeline (one variant)", ha="center")
        return fig
    when = [datetime.fromtimestamp(x, tz=timezone.utc) for x in t.ends]
    for v, r in t.comparisons.items():
        effect = np.asarray(r.effect, dtype=float)
        ax.plot(when, effect, marker=".", label=f"{v} - {a.control}")
        ax.fill_between(
            when, np.asarray(r.ci_low, dtype=float), np.asarray(r.ci_high, dtype=float), alpha=0.25
        )
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_title(
        f"{t.metric}: effect and {1 - next(iter(t.comparisons.values())).alpha:.0%} "
        "confidence sequence (cumulative)"
    )
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    return fig


def _allocation_figure(a: Analysis, plt):
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.arange(len(a.variants))
    total = sum(a.units.values()) or 1
    ax.bar(x - 0.2, [a.units[v] / total for v in a.variants], 0.4, label="observed units")
    if a.weights:
        ax.bar(x + 0.2, [a.weights.get(v, 0) for v in a.variants], 0.4, label="weights")
    ax.set_xticks(x, a.variants)
    p = "" if a.srm is None or a.srm.p_value is None else f" (SRM p = {a.srm.p_value:.3g})"
    ax.set_title("allocation" + p)
    ax.legend(fontsize=8)
    return fig


def _latency_figure(a: Analysis, plt):
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.arange(len(a.variants))
    for i, q in enumerate(("p50", "p95", "p99")):
        values = [(a.latency.get(v, {}).get(q) or 0) / 1000 for v in a.variants]
        ax.bar(x + (i - 1) * 0.27, values, 0.27, label=q)
    ax.set_xticks(x, a.variants)
    ax.set_ylabel("ms")
    ax.set_title("variant call latency seen by the router")
    ax.legend(fontsize=8)
    return fig


def write_html(a: Analysis, path: str | os.PathLike[str]) -> None:
    """Write a self-contained HTML report (plots embedded as base64 PNGs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = []
    for build in (_timeline_figure, _allocation_figure, _latency_figure):
        fig = build(a, plt)
        images.append(_png(fig))
        plt.close(fig)
    console = Console(record=True, width=140, file=io.StringIO())
    console.print(metrics_table(a))
    table = console.export_text()
    body = "\n".join(f'<img src="data:image/png;base64,{img}">' for img in images)
    text = html.escape("\n".join(decision_lines(a)))
    atomic_write_text(
        path,
        f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tritonab analysis: {html.escape(a.experiment)}</title>
<style>body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f6f6;padding:1em}}</style>
</head><body>
<h1>Experiment {html.escape(a.experiment)}</h1>
<pre>{html.escape(table)}</pre>
<h2>Decision</h2><pre>{text}</pre>
<h2>Plots</h2>{body}
</body></html>
""",
    )
