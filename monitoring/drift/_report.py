"""Present drift: rich tables for the terminal, an HTML report with plots, PNG figures.

The HTML report is one self-contained file (matplotlib PNGs embedded as base64):
per-feature histograms of the reference and the current rows (of each variant's latest
judged window), PSI over the windows, and, with a concept report, each variant's
windowed outcome mean with the detected change points.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rich.console import Console
from rich.table import Table

from tritonab._io import atomic_write_bytes, atomic_write_text
from tritonab.monitoring.drift._check import DriftReport, FeatureDrift, WindowDrift
from tritonab.monitoring.drift._concept import ConceptReport

MAX_PLOTTED = 12


def _fmt(value: float | None, spec: str = ".3g") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def _when(t: float | None) -> str:
    if t is None or math.isnan(t):
        return "-"
    return datetime.fromtimestamp(t, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")


def _label(window: WindowDrift) -> str:
    span = "" if window.start is None else f" {_when(window.start)} .. {_when(window.end)}"
    return f"{window.variant or 'current'}{span}"


def window_table(window: WindowDrift) -> Table:
    """Every feature's figures and verdict for one window."""
    table = Table(title=f"drift: {_label(window)} ({window.rows} rows)")
    table.add_column("feature", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for column in ("PSI", "JS", "KS D", "KS p", "chi2 p", "p adj", "drifted"):
        table.add_column(column, justify="right", no_wrap=True)
    for f in window.features:
        mark = "[red]yes[/]" if f.drifted else ("-" if f.drifted is None else "no")
        table.add_row(
            f.name,
            f.kind[:4],
            _fmt(f.psi),
            _fmt(f.js),
            _fmt(f.ks_statistic),
            _fmt(f.ks_pvalue),
            _fmt(f.chi2_pvalue),
            _fmt(f.p_adjusted),
            mark,
        )
    if window.domain is not None:
        d = window.domain
        table.caption = f"domain classifier AUC {d.auc:.3f} (p {d.p_value:.3g}): " + (
            "drifted" if d.drifted else "not drifted"
        )
    return table


def windows_table(report: DriftReport) -> Table:
    """One line per (variant, window): rows and drifted features."""
    table = Table(title=f"drift windows of {report.experiment or 'the data'}")
    for column in ("variant", "window start (UTC)", "rows", "status", "drifted features"):
        table.add_column(column)
    for w in report.windows:
        names = ", ".join(w.drifted_features) or ("-" if w.status == "ok" else "")
        table.add_row(w.variant or "-", _when(w.start), str(w.rows), w.status, names)
    return table


def latest_windows(report: DriftReport) -> list[WindowDrift]:
    """Each variant's latest judged window."""
    latest: dict[str | None, WindowDrift] = {}
    for w in report.windows:
        if w.status == "ok":
            latest[w.variant] = w
    return list(latest.values())


def drift_lines(report: DriftReport) -> list[str]:
    """The verdict and the notes, as text lines."""
    verdict = "DRIFT" if report.drifted else "no drift"
    lines = [f"verdict: {verdict}"]
    for w in latest_windows(report):
        for f in w.features:
            if f.drifted:
                lines.append(f"  {w.variant or 'current'}: `{f.name}` drifted: {f.reason}")
    lines += [f"note: {n}" for n in report.notes]
    return lines


def print_drift(report: DriftReport, console: Console | None = None) -> None:
    """Print the windows (when several), the latest window of each variant, the verdict."""
    console = console or Console()
    if len(report.windows) > 1:
        console.print(windows_table(report))
    for w in latest_windows(report):
        console.print(window_table(w))
    for line in drift_lines(report):
        console.print(line, markup=False, highlight=False)


def concept_table(report: ConceptReport) -> Table:
    """Per variant: outcomes, mean, latest window and detected changes."""
    table = Table(
        title=f"concept drift of `{report.metric}` in {report.experiment} (ADWIN delta {report.delta:g})"
    )
    for column in ("variant", "outcomes", "mean", "latest window mean", "changes (UTC: before -> after)"):
        table.add_column(column)
    for v in report.variants.values():
        last = v.windows[-1] if v.windows else None
        changes = "; ".join(
            f"{_when(c.changed_at)}: {c.mean_before:.3f} -> {c.mean_after:.3f}" for c in v.changes
        )
        table.add_row(
            v.variant, str(v.count), f"{v.mean:.4f}", _fmt(last.mean if last else None, ".4f"), changes or "-"
        )
    return table


# -- figures ---------------------------------------------------------------------------


def _plotted(window: WindowDrift) -> list[FeatureDrift]:
    ranked = sorted(
        window.features, key=lambda f: (not f.drifted, -(f.psi if not math.isnan(f.psi) else 0.0))
    )
    return ranked[:MAX_PLOTTED]


def _shares(counts: Any) -> NDArray[np.float64]:
    array = np.asarray(counts, dtype=np.float64)
    return array / array.sum() if array.sum() else array


def histogram_figure(window: WindowDrift, plt: Any) -> Any:
    """Small multiples: reference vs current shares of the most drifted features."""
    features = _plotted(window)
    cols = min(3, max(1, len(features)))
    rows = max(1, math.ceil(len(features) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(features) :]:
        ax.axis("off")
    for ax, f in zip(axes.ravel(), features):
        h = f.histogram
        if h.numeric:
            edges = np.asarray(h.labels, dtype=np.float64)
            ax.stairs(_shares(h.reference), edges, fill=True, alpha=0.45, label="reference")
            ax.stairs(_shares(h.current), edges, lw=1.6, label="current")
        else:
            x = np.arange(len(h.labels))
            ax.bar(x - 0.2, _shares(h.reference), 0.4, label="reference")
            ax.bar(x + 0.2, _shares(h.current), 0.4, label="current")
            ax.set_xticks(x, [str(c)[:10] for c in h.labels], rotation=45, fontsize=7)
        flag = " DRIFTED" if f.drifted else ""
        ax.set_title(
            f"{f.name}: PSI {f.psi:.3g}{flag}", fontsize=9, color="tab:red" if f.drifted else "black"
        )
        ax.tick_params(labelsize=7)
    axes.ravel()[0].legend(fontsize=7)
    fig.suptitle(f"reference vs current: {_label(window)} ({window.rows} rows)", fontsize=10)
    fig.tight_layout()
    return fig


def psi_figure(report: DriftReport, plt: Any) -> Any:
    """PSI of the most drifted features over the windows (a bar per feature for one window)."""
    fig, ax = plt.subplots(figsize=(8, 3.4))
    judged = [w for w in report.windows if w.status == "ok"]
    limit = report.spec.thresholds.psi
    if len({w.start for w in judged}) <= 1:
        for w in judged:
            names = [f.name for f in w.features]
            ax.bar(
                names,
                [f.psi for f in w.features],
                color=["tab:red" if f.drifted else "tab:blue" for f in w.features],
            )
            ax.tick_params(axis="x", rotation=60, labelsize=7)
        ax.set_title("PSI per feature (red: drifted)")
    else:
        top = {f.name for w in latest_windows(report) for f in _plotted(w)[:6]}
        for variant in dict.fromkeys(w.variant for w in judged):
            mine = [w for w in judged if w.variant == variant]
            when = [datetime.fromtimestamp(w.start or 0.0, tz=timezone.utc) for w in mine]
            for name in sorted(top):
                values = [next((f.psi for f in w.features if f.name == name), np.nan) for w in mine]
                ax.plot(when, values, marker=".", label=f"{variant}: {name}")
        ax.set_title("PSI over time (window start, UTC)")
        ax.legend(fontsize=7, ncol=2)
        fig.autofmt_xdate()
    if limit is not None:
        ax.axhline(limit, color="tab:red", lw=0.8, ls="--")
    ax.set_ylabel("PSI")
    fig.tight_layout()
    return fig


def concept_figure(report: ConceptReport, plt: Any) -> Any:
    """Windowed outcome mean per variant, change points as vertical lines."""
    fig, ax = plt.subplots(figsize=(8, 3.2))
    for v in report.variants.values():
        when = [datetime.fromtimestamp(w.start, tz=timezone.utc) for w in v.windows]
        (line,) = ax.plot(when, [w.mean for w in v.windows], marker=".", label=v.variant)
        for c in v.changes:
            ax.axvline(datetime.fromtimestamp(c.changed_at, tz=timezone.utc), color=line.get_color(), ls=":")
    ax.set_title(f"`{report.metric}` per window (dotted: changes ADWIN detected)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return fig


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def drift_figures(report: DriftReport, concept: ConceptReport | None = None) -> dict[str, bytes]:
    """PNG bytes of every figure of the report, by name."""
    plt = _pyplot()
    builders: list[tuple[str, Any]] = [
        (f"histograms-{w.variant or 'current'}", lambda w=w: histogram_figure(w, plt))
        for w in latest_windows(report)
    ]
    builders.append(("psi", lambda: psi_figure(report, plt)))
    if concept is not None:
        builders.append(("concept", lambda: concept_figure(concept, plt)))
    out = {}
    for name, build in builders:
        fig = build()
        out[name] = _png(fig)
        plt.close(fig)
    return out


def save_figures(
    report: DriftReport, folder: str | os.PathLike[str], concept: ConceptReport | None = None
) -> list[Path]:
    """Write every figure as `<folder>/<name>.png`."""
    paths = []
    for name, data in drift_figures(report, concept).items():
        path = Path(folder) / f"{name}.png"
        atomic_write_bytes(path, data)
        paths.append(path)
    return paths


def write_drift_html(
    report: DriftReport, path: str | os.PathLike[str], concept: ConceptReport | None = None
) -> None:
    """Write a self-contained HTML drift report (plots embedded as base64 PNGs)."""
    console = Console(record=True, width=150, file=io.StringIO())
    if len(report.windows) > 1:
        console.print(windows_table(report))
    for w in latest_windows(report):
        console.print(window_table(w))
    if concept is not None:
        console.print(concept_table(concept))
    tables = html.escape(console.export_text())
    lines = html.escape("\n".join(drift_lines(report)))
    images = "\n".join(
        f'<h3>{html.escape(name)}</h3><img src="data:image/png;base64,{base64.b64encode(data).decode()}">'
        for name, data in drift_figures(report, concept).items()
    )
    title = html.escape(report.experiment or "data")
    atomic_write_text(
        path,
        f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tritonab drift: {title}</title>
<style>body{{font-family:sans-serif;margin:2em}} pre{{background:#f6f6f6;padding:1em}}</style>
</head><body>
<h1>Drift: {title}</h1>
<pre>{lines}</pre>
<h2>Figures</h2>{images}
<h2>Tables</h2><pre>{tables}</pre>
</body></html>
""",
    )
