"""`--report DIR`: a Markdown report and PNG plots (matplotlib, Agg backend).

`latency_vs_throughput.png`: p50/p90/p99 latency (ms) against throughput for the
baseline and the candidate, one point per load level. `ratios.png` (built-in
comparisons only): per-window candidate/baseline ratios with the estimates.
"""

from __future__ import annotations

import os
from pathlib import Path

from tritonab._io import atomic_write_text
from tritonab.perf._compare import METRICS, CompareResult
from tritonab.perf._gate import GateResult


def _plot_latency(result: CompareResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for side, colour in (("baseline", "tab:blue"), ("candidate", "tab:orange")):
        records = [getattr(level, side) for level in result.levels]
        x = [r.throughput for r in records]
        for q, style in (("p50", "-o"), ("p90", "--s"), ("p99", ":^")):
            y = [getattr(r, f"{q}_us") / 1e3 for r in records]
            ax.plot(x, y, style, color=colour, label=f"{side} {q}")
    ax.set_xlabel("throughput (inferences/s)")
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"{result.candidate} vs {result.baseline}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_ratios(result: CompareResult, path: Path) -> bool:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not any(level.baseline_windows for level in result.levels):
        return False
    fig, axes = plt.subplots(1, len(METRICS), figsize=(10, 3.5), sharey=False)
    for ax, metric in zip(axes, METRICS):
        for i, level in enumerate(result.levels):
            pairs = zip(level.baseline_windows, level.candidate_windows)
            ratios = [c[metric] / b[metric] for b, c in pairs if b[metric] and c[metric]]
            ax.plot([i] * len(ratios), ratios, "o", alpha=0.5, color="tab:gray")
            ax.plot([i], [level.ratios[metric].estimate], "D", color="tab:red")
        ax.axhline(1.0, color="black", lw=0.8)
        ax.set_xticks(range(len(result.levels)), [f"{lv.load:g}" for lv in result.levels])
        ax.set_title(f"{metric} ratio")
        ax.set_xlabel("load level")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value / scale:.{digits}f}"


def report_markdown(result: CompareResult, gate: GateResult | None, images: list[str]) -> str:
    """The Markdown text of a report (tables of levels, ratios and gate checks)."""
    lines = [f"# Perf report: `{result.candidate}` vs `{result.baseline}`", ""]
    if gate is not None:
        lines += [f"**Gate: {'PASS' if gate.passed else 'FAIL'}**", ""]
    if result.config_changes:
        lines += ["## Configuration of the candidate, against the baseline's", ""]
        lines += [f"- `{change}`" for change in result.config_changes] + [""]
    lines += [
        "## Load levels",
        "",
        "| level | side | throughput (/s) | p50 (ms) | p90 (ms) | p99 (ms) | queue (us) "
        "| compute infer (us) | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for level in result.levels:
        for side in ("baseline", "candidate"):
            r = getattr(level, side)
            errors = "n/a" if r.errors is None else f"{r.errors}/{r.count}"
            lines.append(
                f"| {level.mode} {level.load:g} | {side} | {r.throughput:.1f} | "
                f"{_fmt(r.p50_us, 1e3)} | {_fmt(r.p90_us, 1e3)} | {_fmt(r.p99_us, 1e3)} | "
                f"{_fmt(r.queue_us, 1, 0)} | {_fmt(r.compute_infer_us, 1, 0)} | {errors} |"
            )
    lines += [
        "",
        f"## Ratios (candidate / baseline, {result.confidence:.0%} interval)",
        "",
        "| level | metric | estimate | interval | pairs |",
        "|---|---|---|---|---|",
    ]
    for level in result.levels:
        for metric, ratio in level.ratios.items():
            interval = "n/a" if ratio.ci_low is None else f"[{ratio.ci_low:.3f}, {ratio.ci_high:.3f}]"
            lines.append(
                f"| {level.mode} {level.load:g} | {metric} | {ratio.estimate:.3f} | {interval} | {ratio.n} |"
            )
    if gate is not None:
        lines += [
            "",
            "## Gate checks",
            "",
            "| level | check | value | limit | status |",
            "|---|---|---|---|---|",
        ]
        for c in gate.checks:
            lines.append(f"| {c.level} | {c.name} | {_fmt(c.value, 1, 3)} | {c.limit:g} | {c.status} |")
    lines += [""] + [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def write_report(
    result: CompareResult, out_dir: str | os.PathLike[str], gate: GateResult | None = None
) -> Path:
    """Write `report.md` and its PNG plots into `out_dir`.

    Args:
        result: the comparison.
        out_dir: the report folder (created).
        gate: the gate's checks, included when given.

    Returns:
        The path of `report.md`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    images = ["latency_vs_throughput.png"]
    _plot_latency(result, out / images[0])
    if _plot_ratios(result, out / "ratios.png"):
        images.append("ratios.png")
    path = out / "report.md"
    atomic_write_text(path, report_markdown(result, gate, images))
    return path
