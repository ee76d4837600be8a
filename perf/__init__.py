"""tritonab.perf: measure Triton models the way perf_analyzer does, compare and gate.

- `run_perf` measures a model at a sweep of load levels, with perf_analyzer when a
  real one is on PATH, else with the built-in asynchronous generator (same method,
  same CSV columns); `read_perf_analyzer_csv` reads perf_analyzer's `-f` CSV.
- `compare` measures a baseline and a candidate in alternating windows and gives
  candidate/baseline ratios with confidence intervals.
- `gate` checks a comparison against `GateThresholds`; `write_report` writes Markdown
  and PNG plots.
"""

from tritonab.perf._analyzer import find_perf_analyzer, perf_analyzer_command, run_perf_analyzer
from tritonab.perf._compare import (
    CompareResult,
    LevelComparison,
    RatioEstimate,
    compare,
    compare_records,
    load_compare,
    ratio_estimate,
    save_compare,
)
from tritonab.perf._gate import (
    Check,
    GateResult,
    GateThresholds,
    evaluate_gate,
    gate_table,
    load_thresholds,
    save_gate,
)
from tritonab.perf._inputs import (
    ModelInfo,
    TensorInfo,
    load_input_data,
    parse_input_data,
    parse_shape_overrides,
)
from tritonab.perf._loadgen import LoadSession, Window
from tritonab.perf._measure import MeasureSettings, parse_range
from tritonab.perf._records import (
    PerfRecord,
    format_perf_csv,
    parse_perf_analyzer_csv,
    read_perf_analyzer_csv,
    write_perf_csv,
)
from tritonab.perf._report import report_markdown, write_report
from tritonab.perf._run import LoadOptions, PerfRun, run_perf, write_run
from tritonab.perf._server_stats import ServerStats, split_latency

__all__ = [
    "Check",
    "CompareResult",
    "GateResult",
    "GateThresholds",
    "LevelComparison",
    "LoadOptions",
    "LoadSession",
    "MeasureSettings",
    "ModelInfo",
    "PerfRecord",
    "PerfRun",
    "RatioEstimate",
    "ServerStats",
    "TensorInfo",
    "Window",
    "compare",
    "compare_records",
    "evaluate_gate",
    "find_perf_analyzer",
    "format_perf_csv",
    "gate_table",
    "load_compare",
    "load_input_data",
    "load_thresholds",
    "parse_input_data",
    "parse_perf_analyzer_csv",
    "parse_range",
    "parse_shape_overrides",
    "perf_analyzer_command",
    "ratio_estimate",
    "read_perf_analyzer_csv",
    "report_markdown",
    "run_perf",
    "run_perf_analyzer",
    "save_compare",
    "save_gate",
    "split_latency",
    "write_perf_csv",
    "write_report",
    "write_run",
]
